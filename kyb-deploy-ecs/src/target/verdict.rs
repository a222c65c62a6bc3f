//! The rollout verdict: what one DescribeServices answer says about our deployment, as pure
//! functions of the service, so every rule has a table test. Following the rollout (polling,
//! reporting, reading stopped tasks) is `follow.rs`.

use aws_sdk_ecs::types::{Deployment, DeploymentRolloutState, Service};

use super::calls::primary;

/// Where our deployment stands in one answer.
#[derive(Debug, PartialEq)]
pub(super) enum Verdict<'a> {
    /// Still rolling out.
    InProgress,
    /// Done: ours is PRIMARY and COMPLETED, every task of it runs, and it has as many as
    /// the service wants.
    Completed,
    /// ECS marked ours FAILED (`why`) and no other deployment takes over.
    Failed { why: String },
    /// ECS is rolling back to `to`: ours FAILED (`why`) while another, healthy deployment is
    /// PRIMARY, or ours is gone and the PRIMARY is a circuit-breaker rollback (`why` is
    /// `None`: ECS removed the failed deployment between two answers).
    PlatformRollback {
        to: &'a Deployment,
        why: Option<String>,
    },
    /// Another deployment replaced ours: ours is gone (`gone`), or no longer PRIMARY.
    Replaced { gone: bool },
}

/// What `service` says about deployment `rollout_id`.
pub(super) fn judge<'a>(service: &'a Service, rollout_id: &str) -> Verdict<'a> {
    let primary = primary(service);
    let Some(ours) = find(service, rollout_id) else {
        return match primary.filter(|p| is_breaker_rollback(p)) {
            Some(to) => Verdict::PlatformRollback { to, why: None },
            None => Verdict::Replaced { gone: true },
        };
    };
    let is_primary = primary.and_then(|p| p.id.as_deref()) == Some(rollout_id);
    match ours.rollout_state {
        Some(DeploymentRolloutState::Failed) => {
            let why = ours
                .rollout_state_reason
                .clone()
                .unwrap_or_else(|| "ECS marked the deployment FAILED".into());
            match primary
                .filter(|p| !is_primary && p.rollout_state != Some(DeploymentRolloutState::Failed))
            {
                Some(to) => Verdict::PlatformRollback { to, why: Some(why) },
                None => Verdict::Failed { why },
            }
        }
        Some(DeploymentRolloutState::Completed)
            if is_primary
                && ours.running_count == ours.desired_count
                && ours.desired_count == service.desired_count =>
        {
            Verdict::Completed
        }
        _ if !is_primary => Verdict::Replaced { gone: false },
        _ => Verdict::InProgress,
    }
}

/// Where ECS's own rollback deployment `id` stands in one answer.
#[derive(Debug, PartialEq)]
pub(super) enum RollbackVerdict {
    /// Still rolling back.
    InProgress,
    /// COMPLETED with every task running.
    Completed,
    /// The rollback failed too, for this reason.
    Failed(String),
    /// Gone: another deployment replaced the rollback.
    Replaced,
}

/// What `service` says about ECS's rollback deployment `id`.
pub(super) fn judge_rollback(service: &Service, id: &str) -> RollbackVerdict {
    let Some(rollback) = find(service, id) else {
        return RollbackVerdict::Replaced;
    };
    match rollback.rollout_state {
        Some(DeploymentRolloutState::Completed)
            if rollback.running_count == rollback.desired_count =>
        {
            RollbackVerdict::Completed
        }
        Some(DeploymentRolloutState::Failed) => RollbackVerdict::Failed(
            rollback
                .rollout_state_reason
                .clone()
                .unwrap_or_else(|| "no reason given".into()),
        ),
        _ => RollbackVerdict::InProgress,
    }
}

/// The deployment `id` of `service`.
pub(super) fn find<'a>(service: &'a Service, id: &str) -> Option<&'a Deployment> {
    service
        .deployments()
        .iter()
        .find(|d| d.id.as_deref() == Some(id))
}

/// A deployment the circuit breaker started to roll back.
fn is_breaker_rollback(d: &Deployment) -> bool {
    d.rollout_state_reason
        .as_deref()
        .is_some_and(|r| r.contains("circuit breaker") && r.contains("rolling back"))
}

#[cfg(test)]
mod tests;
