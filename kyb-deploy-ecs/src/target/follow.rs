//! Following a rollout: our deployment, until ECS completes it, fails it, or replaces it.

use std::collections::HashSet;

use aws_sdk_ecs::types::{Deployment, DeploymentRolloutState, Service, Task};
use kyb_deploy_core::{
    CancellationToken, DeployHandle, Error, Result, RolloutOutcome, StageProgress,
};

use super::EcsTarget;
use super::calls::primary;
use crate::poller::Observation;

/// Calls in a row that may fail before the wait gives up.
const ERRORS_TOLERATED: u32 = 5;

/// How many stopped-task reasons a failure message quotes.
const REASONS_QUOTED: usize = 3;

/// What the wait is following.
enum Phase {
    /// Our deployment.
    Ours,
    /// ECS's circuit breaker rolled our deployment back; the rollback deployment `id`
    /// runs `task_definition`.
    PlatformRollback {
        id: String,
        task_definition: String,
        reason: String,
    },
}

/// The state of one wait.
struct Follow<'a> {
    target: &'a EcsTarget,
    handle: &'a DeployHandle,
    progress: &'a StageProgress,
    seen_events: HashSet<String>,
    /// The events from before the rollout are not known yet: the first observation's
    /// events older than the rollout count as seen.
    seed_events_by_time: bool,
    seen_tasks: HashSet<String>,
    failed_tasks_seen: i32,
    stopped_reasons: Vec<String>,
    last_summary: String,
    phase: Phase,
}

impl EcsTarget {
    pub(crate) async fn follow(
        &self,
        handle: &DeployHandle,
        progress: &StageProgress,
        cancel: &CancellationToken,
    ) -> Result<RolloutOutcome> {
        let mut subscription = self
            .poller
            .subscribe(&self.spec.cluster, &self.spec.service);
        let seen_events = self.events_before(&handle.rollout_id);
        let mut follow = Follow {
            target: self,
            handle,
            progress,
            seed_events_by_time: seen_events.is_none(),
            seen_events: seen_events.unwrap_or_default(),
            seen_tasks: HashSet::new(),
            failed_tasks_seen: 0,
            stopped_reasons: Vec::new(),
            last_summary: String::new(),
            phase: Phase::Ours,
        };
        let mut errors = 0;
        loop {
            let observation = tokio::select! {
                () = cancel.cancelled() => return Err(Error::Cancelled),
                o = subscription.next() => o,
            };
            match observation {
                Observation::Service(service) => {
                    errors = 0;
                    if let Some(outcome) = follow.observe(&service).await? {
                        return Ok(outcome);
                    }
                }
                Observation::Missing(reason) => {
                    return Ok(RolloutOutcome::Failed {
                        reason: format!(
                            "service {} disappeared from cluster {} during the rollout ({reason})",
                            self.spec.service, self.spec.cluster
                        ),
                        platform_rolled_back_to: None,
                    });
                }
                Observation::Error(message) => {
                    errors += 1;
                    progress.warn(format!("following the rollout: {message}"));
                    if errors >= ERRORS_TOLERATED {
                        return Err(Error::target(
                            "ecs",
                            format!(
                                "{errors} DescribeServices calls in a row failed; the last: {message}"
                            ),
                        ));
                    }
                }
            }
        }
    }
}

impl Follow<'_> {
    /// Looks at one observation; `Some` when the rollout ended.
    async fn observe(&mut self, service: &Service) -> Result<Option<RolloutOutcome>> {
        self.report_events(service);
        let rollout_id = self.handle.rollout_id.clone();
        if let Phase::PlatformRollback { id, .. } = &self.phase {
            let id = id.clone();
            return self.observe_platform_rollback(service, &id).await;
        }
        let ours = service
            .deployments()
            .iter()
            .find(|d| d.id.as_deref() == Some(rollout_id.as_str()));
        let primary = primary(service);
        let Some(ours) = ours else {
            // Gone. A circuit-breaker rollback that completed between two polls removes
            // the failed deployment; anything else replaced it.
            if let Some(p) = primary.filter(|p| is_breaker_rollback(p)) {
                let reason = format!(
                    "ECS's deployment circuit breaker stopped deployment {rollout_id}{}",
                    self.quoted_reasons()
                );
                self.enter_platform_rollback(p, reason);
                return self
                    .observe_platform_rollback(service, &p.id.clone().unwrap_or_default())
                    .await;
            }
            return Ok(Some(RolloutOutcome::Failed {
                reason: format!(
                    "deployment {rollout_id} no longer exists; the service's primary deployment is {}",
                    describe_deployment(primary)
                ),
                platform_rolled_back_to: None,
            }));
        };
        self.report_counts(ours);
        if ours.failed_tasks > self.failed_tasks_seen {
            self.failed_tasks_seen = ours.failed_tasks;
            self.report_stopped_tasks(&rollout_id).await;
        }
        let is_primary = primary.and_then(|p| p.id.as_deref()) == Some(rollout_id.as_str());
        match ours.rollout_state {
            Some(DeploymentRolloutState::Failed) => {
                let why = ours
                    .rollout_state_reason
                    .clone()
                    .unwrap_or_else(|| "ECS marked the deployment FAILED".into());
                let reason = format!(
                    "deployment {rollout_id} failed: {why}{}",
                    self.quoted_reasons()
                );
                match primary.filter(|p| {
                    !is_primary && p.rollout_state != Some(DeploymentRolloutState::Failed)
                }) {
                    Some(rollback) => {
                        self.progress.progress(format!(
                            "ECS is rolling back to {} (deployment {})",
                            rollback.task_definition.as_deref().unwrap_or("?"),
                            rollback.id.as_deref().unwrap_or("?")
                        ));
                        self.enter_platform_rollback(rollback, reason);
                        let id = rollback.id.clone().unwrap_or_default();
                        self.observe_platform_rollback(service, &id).await
                    }
                    None => Ok(Some(RolloutOutcome::Failed {
                        reason,
                        platform_rolled_back_to: None,
                    })),
                }
            }
            Some(DeploymentRolloutState::Completed)
                if is_primary
                    && ours.running_count == ours.desired_count
                    && ours.desired_count == service.desired_count =>
            {
                Ok(Some(RolloutOutcome::Completed))
            }
            _ if !is_primary => Ok(Some(RolloutOutcome::Failed {
                reason: format!(
                    "deployment {rollout_id} was replaced by {} (another deployment started while this one ran)",
                    describe_deployment(primary)
                ),
                platform_rolled_back_to: None,
            })),
            _ => Ok(None),
        }
    }

    fn enter_platform_rollback(&mut self, rollback: &Deployment, reason: String) {
        self.phase = Phase::PlatformRollback {
            id: rollback.id.clone().unwrap_or_default(),
            task_definition: rollback.task_definition.clone().unwrap_or_default(),
            reason,
        };
    }

    /// Follows ECS's own rollback until it completes: the release it restores is then
    /// verified by the pipeline, not rolled back a second time.
    async fn observe_platform_rollback(
        &mut self,
        service: &Service,
        id: &str,
    ) -> Result<Option<RolloutOutcome>> {
        let Phase::PlatformRollback {
            task_definition,
            reason,
            ..
        } = &self.phase
        else {
            return Ok(None);
        };
        let (task_definition, reason) = (task_definition.clone(), reason.clone());
        let Some(rollback) = service
            .deployments()
            .iter()
            .find(|d| d.id.as_deref() == Some(id))
        else {
            return Ok(Some(RolloutOutcome::Failed {
                reason: format!(
                    "{reason}; ECS's rollback deployment {id} was replaced by {}",
                    describe_deployment(primary(service))
                ),
                platform_rolled_back_to: None,
            }));
        };
        self.report_counts(rollback);
        match rollback.rollout_state {
            Some(DeploymentRolloutState::Completed)
                if rollback.running_count == rollback.desired_count =>
            {
                let registered = self.target.task_definition(&task_definition).await?;
                let release = self.target.release_of(&registered);
                self.progress.progress(format!(
                    "ECS rolled back to {} ({})",
                    release.version, registered.arn
                ));
                Ok(Some(RolloutOutcome::Failed {
                    reason: format!("{reason}; ECS rolled back to {}", release.version),
                    platform_rolled_back_to: Some(release),
                }))
            }
            Some(DeploymentRolloutState::Failed) => Ok(Some(RolloutOutcome::Failed {
                reason: format!(
                    "{reason}; ECS's rollback deployment {id} failed too: {}",
                    rollback
                        .rollout_state_reason
                        .as_deref()
                        .unwrap_or("no reason given")
                ),
                platform_rolled_back_to: None,
            })),
            _ => Ok(None),
        }
    }

    /// New service events, oldest first.
    fn report_events(&mut self, service: &Service) {
        if self.seed_events_by_time {
            self.seed_events_by_time = false;
            let started = self.handle.started_at.unix_timestamp();
            for e in service.events() {
                if e.created_at.is_some_and(|at| at.secs() < started) {
                    self.seen_events.insert(e.id.clone().unwrap_or_default());
                }
            }
        }
        let fresh: Vec<_> = service
            .events()
            .iter()
            .filter(|e| {
                e.id.as_ref()
                    .is_some_and(|id| !self.seen_events.contains(id))
            })
            .collect();
        for e in fresh.into_iter().rev() {
            self.seen_events.insert(e.id.clone().unwrap_or_default());
            if let Some(message) = &e.message {
                self.progress.log(format!("event: {message}"));
            }
        }
    }

    /// The deployment's counts, when they changed.
    fn report_counts(&mut self, d: &Deployment) {
        let summary = format!(
            "{} of {} tasks running, {} pending, {} failed",
            d.running_count, d.desired_count, d.pending_count, d.failed_tasks
        );
        if summary != self.last_summary {
            self.progress.progress(format!(
                "deployment {}: {summary}",
                d.id.as_deref().unwrap_or("?")
            ));
            self.last_summary = summary;
        }
    }

    /// Reports the deployment's newly stopped tasks with their reasons.
    async fn report_stopped_tasks(&mut self, rollout_id: &str) {
        let tasks = match self.target.stopped_tasks(rollout_id).await {
            Ok(tasks) => tasks,
            Err(e) => {
                self.progress
                    .warn(format!("could not read the stopped tasks: {e}"));
                return;
            }
        };
        for task in tasks {
            let arn = task.task_arn.clone().unwrap_or_default();
            if !self.seen_tasks.insert(arn.clone()) {
                continue;
            }
            let line = stopped_reason(&task);
            self.progress
                .log(format!("task {} stopped: {line}", short_id(&arn)));
            if !self.stopped_reasons.contains(&line) {
                self.stopped_reasons.push(line);
            }
        }
    }

    fn quoted_reasons(&self) -> String {
        if self.stopped_reasons.is_empty() {
            return String::new();
        }
        let quoted: Vec<&str> = self
            .stopped_reasons
            .iter()
            .take(REASONS_QUOTED)
            .map(String::as_str)
            .collect();
        format!("; stopped tasks: {}", quoted.join("; "))
    }
}

/// A deployment the circuit breaker started to roll back.
fn is_breaker_rollback(d: &Deployment) -> bool {
    d.rollout_state_reason
        .as_deref()
        .is_some_and(|r| r.contains("circuit breaker") && r.contains("rolling back"))
}

fn describe_deployment(d: Option<&Deployment>) -> String {
    d.map_or_else(
        || "none".to_owned(),
        |d| {
            format!(
                "{} ({})",
                d.id.as_deref().unwrap_or("?"),
                d.task_definition.as_deref().unwrap_or("?")
            )
        },
    )
}

/// A stopped task's reason, with its containers' reasons and exit codes.
pub(crate) fn stopped_reason(task: &Task) -> String {
    let mut line = task
        .stopped_reason
        .clone()
        .unwrap_or_else(|| "no reason given".into());
    for c in task.containers() {
        let mut parts = Vec::new();
        if let Some(reason) = &c.reason {
            parts.push(reason.clone());
        }
        if let Some(code) = c.exit_code {
            parts.push(format!("exit code {code}"));
        }
        if !parts.is_empty() {
            line.push_str(&format!(
                " (container {}: {})",
                c.name.as_deref().unwrap_or("?"),
                parts.join(", ")
            ));
        }
    }
    line
}

fn short_id(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}
