//! Following a rollout: our deployment, until ECS completes it, fails it, or replaces it.

use std::collections::HashSet;

use aws_sdk_ecs::types::{Deployment, Service, ServiceEvent, Task};
use kyb_deploy_core::{
    CancellationToken, DeployHandle, Error, Result, RolloutOutcome, StageProgress,
};

use super::EcsTarget;
use super::calls::primary;
use super::verdict::{RollbackVerdict, Verdict, find, judge, judge_rollback};
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
    /// The first observation's events from before the rollout are still to be marked seen.
    seeded: bool,
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
        let mut follow = Follow {
            target: self,
            handle,
            progress,
            seeded: false,
            seen_events: HashSet::new(),
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
        if let Some(ours) = find(service, &rollout_id) {
            self.report_counts(ours);
            if ours.failed_tasks > self.failed_tasks_seen {
                self.failed_tasks_seen = ours.failed_tasks;
                self.report_stopped_tasks(&rollout_id).await;
            }
        }
        let failed = |reason| {
            Ok(Some(RolloutOutcome::Failed {
                reason,
                platform_rolled_back_to: None,
            }))
        };
        match judge(service, &rollout_id) {
            Verdict::InProgress => Ok(None),
            Verdict::Completed => Ok(Some(RolloutOutcome::Completed)),
            Verdict::Failed { why } => failed(format!(
                "deployment {rollout_id} failed: {why}{}",
                self.quoted_reasons()
            )),
            Verdict::PlatformRollback { to, why } => {
                let reason = match why {
                    Some(why) => {
                        self.progress.progress(format!(
                            "ECS is rolling back to {} (deployment {})",
                            to.task_definition.as_deref().unwrap_or("?"),
                            to.id.as_deref().unwrap_or("?")
                        ));
                        format!(
                            "deployment {rollout_id} failed: {why}{}",
                            self.quoted_reasons()
                        )
                    }
                    None => format!(
                        "ECS's deployment circuit breaker stopped deployment {rollout_id}{}",
                        self.quoted_reasons()
                    ),
                };
                let id = to.id.clone().unwrap_or_default();
                self.enter_platform_rollback(to, reason);
                self.observe_platform_rollback(service, &id).await
            }
            Verdict::Replaced { gone: true } => failed(format!(
                "deployment {rollout_id} no longer exists; the service's primary deployment is {}",
                describe_deployment(primary(service))
            )),
            Verdict::Replaced { gone: false } => failed(format!(
                "deployment {rollout_id} was replaced by {} (another deployment started while this one ran)",
                describe_deployment(primary(service))
            )),
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
        if let Some(rollback) = find(service, id) {
            self.report_counts(rollback);
        }
        let failed = |reason| {
            Ok(Some(RolloutOutcome::Failed {
                reason,
                platform_rolled_back_to: None,
            }))
        };
        match judge_rollback(service, id) {
            RollbackVerdict::InProgress => Ok(None),
            RollbackVerdict::Completed => {
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
            RollbackVerdict::Failed(why) => failed(format!(
                "{reason}; ECS's rollback deployment {id} failed too: {why}"
            )),
            RollbackVerdict::Replaced => failed(format!(
                "{reason}; ECS's rollback deployment {id} was replaced by {}",
                describe_deployment(primary(service))
            )),
        }
    }

    /// New service events, oldest first.
    fn report_events(&mut self, service: &Service) {
        if !self.seeded {
            self.seeded = true;
            for id in events_before(service.events(), self.handle) {
                self.seen_events.insert(id);
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
                    .warn(format!("could not read the stopped tasks: {}", e.chain()));
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

/// The ids of `events` (newest first, as ECS lists them) from before the rollout of
/// `handle`: its cursor (the newest event before the update) and everything older. Without
/// a cursor, or once the cursor's event has aged out of the list, the events created before
/// the rollout started.
fn events_before(events: &[ServiceEvent], handle: &DeployHandle) -> Vec<String> {
    let ids = |events: &[ServiceEvent]| -> Vec<String> {
        events.iter().filter_map(|e| e.id.clone()).collect()
    };
    if let Some(cursor) = &handle.cursor
        && let Some(at) = events.iter().position(|e| e.id.as_ref() == Some(cursor))
    {
        return ids(&events[at..]);
    }
    let started = handle.started_at.unix_timestamp();
    let older: Vec<ServiceEvent> = events
        .iter()
        .filter(|e| e.created_at.is_some_and(|at| at.secs() < started))
        .cloned()
        .collect();
    ids(&older)
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

#[cfg(test)]
mod tests {
    use aws_sdk_ecs::primitives::DateTime;
    use kyb_deploy_core::{Release, Version};
    use time::OffsetDateTime;

    use super::*;

    fn event(id: &str, at: i64) -> ServiceEvent {
        ServiceEvent::builder()
            .id(id)
            .created_at(DateTime::from_secs(at))
            .message(format!("event {id}"))
            .build()
    }

    fn handle(cursor: Option<&str>, started_at: i64) -> DeployHandle {
        DeployHandle {
            rollout_id: "ecs-svc/1".into(),
            release: Release::new(Version::parse("v2").unwrap(), "repo@sha256:2"),
            started_at: OffsetDateTime::from_unix_timestamp(started_at).unwrap(),
            candidate_endpoint: None,
            cursor: cursor.map(str::to_owned),
        }
    }

    #[test]
    fn the_cursor_and_everything_older_came_before_the_rollout() {
        // Newest first, as ECS lists them; "c" and "d" came after the update.
        let events = [
            event("d", 400),
            event("c", 300),
            event("b", 200),
            event("a", 100),
        ];
        assert_eq!(events_before(&events, &handle(Some("b"), 350)), ["b", "a"]);
        // The cursor's event aged out of the list: the start time decides.
        assert_eq!(events_before(&events, &handle(Some("z"), 250)), ["b", "a"]);
        // No cursor (a rollout found again after a lost answer): the start time decides.
        assert_eq!(events_before(&events, &handle(None, 301)), ["c", "b", "a"]);
        assert!(events_before(&[], &handle(Some("b"), 0)).is_empty());
    }
}
