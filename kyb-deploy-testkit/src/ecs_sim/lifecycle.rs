//! The virtual runtime's task lifecycle: PROVISIONING -> PENDING -> RUNNING (then healthy)
//! -> STOPPING -> STOPPED, with the task faults of the task's images applied on the way.
//! The Docker-backed runtime uses the same steps, with PENDING -> RUNNING held until the
//! task's container has started.

use rand::rngs::StdRng;
use serde_json::Value;

use super::faults::{FaultSet, TaskFaultKind};
use super::model::{ACCOUNT, Ids, Phase, Task, TaskDefinition, TaskTimes};
use super::network;

/// Simulated seconds a task spends PROVISIONING.
pub(crate) const PROVISIONING_SECONDS: f64 = 5.0;
/// Simulated seconds a task spends PENDING (pulling its image).
pub(crate) const PULL_SECONDS: f64 = 10.0;
/// Simulated seconds a task spends STOPPING.
pub(crate) const STOPPING_SECONDS: f64 = 5.0;
/// Simulated seconds until a container health check first passes.
pub(crate) const HEALTH_CHECK_SECONDS: f64 = 10.0;

/// What a new task is made of, whoever starts it (a service's scheduler or RunTask).
pub(crate) struct TaskLaunch<'a> {
    pub(crate) region: &'a str,
    pub(crate) cluster: &'a str,
    pub(crate) cluster_arn: &'a str,
    pub(crate) definition: &'a TaskDefinition,
    pub(crate) launch_type: &'a str,
    /// The `networkConfiguration` an awsvpc task gets its interface from.
    pub(crate) network: Option<&'a Value>,
    /// The health check grace period, in seconds.
    pub(crate) grace: f64,
    pub(crate) faults: &'a FaultSet,
    /// Whether containers run in Docker, where a real health check decides.
    pub(crate) docker: bool,
    pub(crate) at: f64,
}

/// A new PROVISIONING task with the faults of its images; a standalone task (group
/// `family:FAMILY`, no service) until the caller says otherwise.
pub(crate) fn new_task(launch: &TaskLaunch<'_>, rng: &mut StdRng) -> Task {
    let definition = launch.definition;
    let id = Ids::task(rng);
    let faults: Vec<TaskFaultKind> = definition
        .containers
        .iter()
        .flat_map(|container| launch.faults.for_image(&container.image))
        .collect();
    let has_check = definition.containers.iter().any(|c| c.has_health_check);
    let checks_health = has_check || faults.contains(&TaskFaultKind::HealthCheckFails);
    // With the Docker-backed runtime a real health check decides, whenever it does.
    let real_check =
        launch.docker && has_check && !faults.contains(&TaskFaultKind::HealthCheckFails);
    let check = if real_check {
        f64::INFINITY
    } else if checks_health {
        HEALTH_CHECK_SECONDS
    } else {
        0.0
    };
    let awsvpc = definition.body["networkMode"] == "awsvpc";
    let eni = launch
        .network
        .filter(|_| awsvpc)
        .and_then(|network| network::new_eni(network, launch.region, rng));
    Task {
        arn: format!(
            "arn:aws:ecs:{}:{ACCOUNT}:task/{}/{id}",
            launch.region, launch.cluster
        ),
        id,
        cluster_arn: launch.cluster_arn.to_owned(),
        task_definition: definition.arn.clone(),
        service: String::new(),
        deployment: String::new(),
        started_by: None,
        group: format!("family:{}", definition.family),
        overrides: None,
        eni,
        launch_type: launch.launch_type.to_owned(),
        containers: definition.containers.clone(),
        cpu: definition.cpu.clone(),
        memory: definition.memory.clone(),
        phase: Phase::Provisioning,
        desired_running: true,
        next_at: launch.at + PROVISIONING_SECONDS,
        healthy: false,
        health_delay: launch.grace.max(check),
        faults,
        times: TaskTimes {
            created: launch.at,
            ..TaskTimes::default()
        },
        stopped_reason: None,
        stop_code: None,
        exit_code: None,
        failed: false,
        tags: Vec::new(),
    }
}

/// Which deployment lost a task.
pub(crate) struct FailedTask {
    pub(crate) service: String,
    pub(crate) deployment: String,
}

/// Moves `task` through every lifecycle step due by `at`; tells when it failed.
#[cfg(test)]
pub(crate) fn advance_task(task: &mut Task, at: f64) -> Option<FailedTask> {
    advance_task_gated(task, at, true)
}

/// [`advance_task`], except that PENDING -> RUNNING waits while `container_started` is
/// false: the task stays PENDING and the step is retried at the next pass.
pub(crate) fn advance_task_gated(
    task: &mut Task,
    at: f64,
    container_started: bool,
) -> Option<FailedTask> {
    while task.phase != Phase::Stopped && task.next_at <= at {
        let now = task.next_at;
        match task.phase {
            Phase::Pending if !container_started => {
                task.next_at = at;
                return None;
            }
            Phase::Provisioning => {
                task.phase = Phase::Pending;
                task.times.pull_started = Some(now);
                task.next_at = now + PULL_SECONDS + slow_start(task);
            }
            Phase::Pending => {
                task.times.pull_stopped = Some(now);
                if let Some(reason) = task.faults.iter().find_map(|fault| match fault {
                    TaskFaultKind::FailToStart { reason } => Some(reason.clone()),
                    _ => None,
                }) {
                    return Some(fail(task, now, reason, "TaskFailedToStart", None));
                }
                task.phase = Phase::Running;
                task.times.started = Some(now);
                // Without a grace period or health check a running task counts as healthy
                // at once (a failing check always has a delay, see `new_task`).
                task.healthy = task.health_delay <= 0.0;
                task.next_at = next_running_event(task);
            }
            Phase::Running => {
                let started = task.times.started.unwrap_or(now);
                if let Some((code, after)) = essential_exit(task)
                    && now >= started + after
                {
                    let reason = "Essential container in task exited".to_owned();
                    return Some(fail(
                        task,
                        now,
                        reason,
                        "EssentialContainerExited",
                        Some(code),
                    ));
                }
                if fails_health(task) {
                    let reason = "Task failed container health checks".to_owned();
                    return Some(fail(task, now, reason, "TaskFailedToStart", None));
                }
                task.healthy = true;
                task.next_at = next_running_event(task);
            }
            Phase::Stopping => {
                task.phase = Phase::Stopped;
                task.times.stopped = Some(now);
                task.next_at = f64::INFINITY;
            }
            Phase::Stopped => {}
        }
    }
    None
}

/// The next due event of a running task: its health check, its essential container exit,
/// or never.
fn next_running_event(task: &Task) -> f64 {
    let started = task.times.started.unwrap_or(task.times.created);
    let health = if task.healthy {
        f64::INFINITY
    } else {
        started + task.health_delay
    };
    let exit = essential_exit(task).map_or(f64::INFINITY, |(_, after)| started + after);
    health.min(exit)
}

fn slow_start(task: &Task) -> f64 {
    task.faults
        .iter()
        .map(|fault| match fault {
            TaskFaultKind::SlowStart(extra) => extra.as_secs_f64(),
            _ => 0.0,
        })
        .sum()
}

fn essential_exit(task: &Task) -> Option<(i32, f64)> {
    task.faults.iter().find_map(|fault| match fault {
        TaskFaultKind::EssentialExit { exit_code, after } => {
            Some((*exit_code, after.as_secs_f64()))
        }
        _ => None,
    })
}

fn fails_health(task: &Task) -> bool {
    task.faults.contains(&TaskFaultKind::HealthCheckFails)
}

/// Stops `task` at `at` as failed, with `reason`, stop `code` and the container's exit code.
pub(crate) fn fail(
    task: &mut Task,
    at: f64,
    reason: String,
    code: &'static str,
    exit_code: Option<i32>,
) -> FailedTask {
    task.phase = Phase::Stopped;
    task.desired_running = false;
    task.healthy = false;
    task.failed = true;
    task.next_at = f64::INFINITY;
    task.times.stopping = Some(at);
    task.times.stopped = Some(at);
    task.stopped_reason = Some(reason);
    task.stop_code = Some(code);
    task.exit_code = exit_code;
    FailedTask {
        service: task.service.clone(),
        deployment: task.deployment.clone(),
    }
}

/// The scheduler stops `task` on behalf of `deployment`.
pub(crate) fn stop(task: &mut Task, at: f64, deployment: &str) {
    let reason = format!("Scaling activity initiated by (deployment {deployment})");
    stop_with(task, at, reason, "ServiceSchedulerInitiated");
}

/// Stops `task` (STOPPING, then STOPPED) with `reason` and stop `code`; a task already
/// stopping or stopped keeps its reason.
pub(crate) fn stop_with(task: &mut Task, at: f64, reason: String, code: &'static str) {
    if !task.is_active() {
        return;
    }
    task.desired_running = false;
    task.healthy = false;
    task.phase = Phase::Stopping;
    task.times.stopping = Some(at);
    task.next_at = at + STOPPING_SECONDS;
    task.stopped_reason = Some(reason);
    task.stop_code = Some(code);
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::ecs_sim::model::ContainerSpec;

    fn task(faults: Vec<TaskFaultKind>, health_delay: f64) -> Task {
        Task {
            id: "0".repeat(32),
            arn: String::new(),
            cluster_arn: String::new(),
            task_definition: String::new(),
            service: "s".into(),
            deployment: "ecs-svc/1".into(),
            started_by: Some("ecs-svc/1".into()),
            group: "service:s".into(),
            overrides: None,
            eni: None,
            launch_type: "EC2".into(),
            containers: vec![ContainerSpec {
                name: "app".into(),
                image: "app:v1".into(),
                essential: true,
                has_health_check: false,
            }],
            cpu: None,
            memory: None,
            phase: Phase::Provisioning,
            desired_running: true,
            next_at: PROVISIONING_SECONDS,
            healthy: false,
            health_delay,
            faults,
            times: TaskTimes::default(),
            stopped_reason: None,
            stop_code: None,
            exit_code: None,
            failed: false,
            tags: Vec::new(),
        }
    }

    const RUNNING_AT: f64 = PROVISIONING_SECONDS + PULL_SECONDS;

    #[test]
    fn a_task_without_faults_runs_and_is_healthy_after_its_delay() {
        let mut task = task(Vec::new(), 10.0);
        assert!(advance_task(&mut task, RUNNING_AT).is_none());
        assert_eq!((task.phase, task.healthy), (Phase::Running, false));
        assert!(advance_task(&mut task, RUNNING_AT + 10.0).is_none());
        assert!(task.healthy);
        assert_eq!(task.next_at, f64::INFINITY);
    }

    #[test]
    fn slow_start_delays_running() {
        let slow = TaskFaultKind::SlowStart(Duration::from_secs(20));
        let mut task = task(vec![slow], 0.0);
        advance_task(&mut task, RUNNING_AT + 19.0);
        assert_eq!(task.phase, Phase::Pending);
        advance_task(&mut task, RUNNING_AT + 20.0);
        assert_eq!((task.phase, task.healthy), (Phase::Running, true));
    }

    #[test]
    fn an_essential_exit_stops_a_running_task_with_its_exit_code() {
        let exit = TaskFaultKind::EssentialExit {
            exit_code: 137,
            after: Duration::from_secs(30),
        };
        let mut task = task(vec![exit], 0.0);
        assert!(advance_task(&mut task, RUNNING_AT + 29.0).is_none());
        assert!(task.healthy);
        let failed = advance_task(&mut task, RUNNING_AT + 30.0).expect("the task fails");
        assert_eq!(failed.deployment, "ecs-svc/1");
        assert_eq!(task.phase, Phase::Stopped);
        assert_eq!(task.exit_code, Some(137));
        assert_eq!(task.stop_code, Some("EssentialContainerExited"));
        assert_eq!(
            task.stopped_reason.as_deref(),
            Some("Essential container in task exited")
        );
    }

    #[test]
    fn a_failing_health_check_stops_the_task_once_checked() {
        let mut task = task(vec![TaskFaultKind::HealthCheckFails], HEALTH_CHECK_SECONDS);
        assert!(advance_task(&mut task, RUNNING_AT).is_none());
        let failed = advance_task(&mut task, RUNNING_AT + HEALTH_CHECK_SECONDS);
        assert!(failed.is_some());
        assert!(!task.healthy && task.failed);
        assert_eq!(
            task.stopped_reason.as_deref(),
            Some("Task failed container health checks")
        );
    }
}
