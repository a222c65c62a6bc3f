//! Faults: API faults per operation (throttling, server errors, latency) and task faults per
//! image (fail to start, essential container exit, failing health check, slow start).

use crate::sim_runtime::glob_matches;
use std::time::Duration;

use rand::Rng as _;
use rand::rngs::StdRng;
use serde::Serialize;

/// A fault the simulator injects; build one with the constructors.
///
/// ```
/// use std::time::Duration;
/// use kyb_deploy_testkit::ecs_sim::Fault;
///
/// let faults = [
///     Fault::throttle_every(3),
///     Fault::server_errors(2).on_operation("UpdateService"),
///     Fault::fail_to_start("*:broken", "CannotPullContainerError: manifest unknown"),
///     Fault::slow_start("example/api:*", Duration::from_secs(30)),
/// ];
/// assert_eq!(faults.len(), 4);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub enum Fault {
    /// A fault of API calls.
    Api(ApiFault),
    /// A fault of the tasks whose image matches a pattern.
    Task(TaskFault),
}

/// A fault of API calls, for every operation or for one.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ApiFault {
    /// The operation it applies to (`"UpdateService"`); `None` for every operation.
    pub operation: Option<String>,
    /// What happens.
    pub kind: ApiFaultKind,
}

/// What an [`ApiFault`] does.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub enum ApiFaultKind {
    /// Every Nth matching call (the Nth, the 2Nth, ...) fails with `ThrottlingException`.
    ThrottleEvery(u32),
    /// Each matching call fails with `ThrottlingException` with this probability, drawn from
    /// the simulator's seeded generator.
    ThrottleProbability(f64),
    /// The next N matching calls fail with `ServerException` (HTTP 500).
    ServerErrorBurst(u32),
    /// Every matching call is answered this much later (real time).
    Latency(Duration),
}

/// A fault of the tasks whose image matches `image`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TaskFault {
    /// The image pattern: `*` matches any run of characters, everything else itself; the
    /// pattern must match the whole image reference.
    pub image: String,
    /// What happens to the tasks.
    pub kind: TaskFaultKind,
}

/// What a [`TaskFault`] does to a task.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub enum TaskFaultKind {
    /// The task stops before it runs, with this `stoppedReason` (stop code
    /// `TaskFailedToStart`).
    FailToStart {
        /// The `stoppedReason`, like `CannotPullContainerError: ...`.
        reason: String,
    },
    /// The essential container exits with `exit_code` this long after the task runs.
    EssentialExit {
        /// The container's exit code.
        exit_code: i32,
        /// How long the task runs first (simulated time).
        after: Duration,
    },
    /// The task runs but never passes its health check, and is stopped once checked.
    HealthCheckFails,
    /// The task takes this much longer (simulated time) to start.
    SlowStart(Duration),
}

impl Fault {
    /// Every Nth API call fails with `ThrottlingException`.
    #[must_use]
    pub fn throttle_every(every: u32) -> Self {
        Self::api(ApiFaultKind::ThrottleEvery(every.max(1)))
    }

    /// Each API call fails with `ThrottlingException` with probability `probability`.
    #[must_use]
    pub fn throttle_probability(probability: f64) -> Self {
        Self::api(ApiFaultKind::ThrottleProbability(
            probability.clamp(0.0, 1.0),
        ))
    }

    /// The next `count` API calls fail with `ServerException`.
    #[must_use]
    pub fn server_errors(count: u32) -> Self {
        Self::api(ApiFaultKind::ServerErrorBurst(count))
    }

    /// Every API call is answered `delay` later.
    #[must_use]
    pub fn latency(delay: Duration) -> Self {
        Self::api(ApiFaultKind::Latency(delay))
    }

    /// Tasks of images matching `image` fail to start with `reason` as `stoppedReason`.
    #[must_use]
    pub fn fail_to_start(image: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::task(
            image,
            TaskFaultKind::FailToStart {
                reason: reason.into(),
            },
        )
    }

    /// The essential container of tasks of matching images exits with `exit_code` after
    /// running for `after`.
    #[must_use]
    pub fn essential_exit(image: impl Into<String>, exit_code: i32, after: Duration) -> Self {
        Self::task(image, TaskFaultKind::EssentialExit { exit_code, after })
    }

    /// Tasks of matching images fail their health check.
    #[must_use]
    pub fn health_check_fails(image: impl Into<String>) -> Self {
        Self::task(image, TaskFaultKind::HealthCheckFails)
    }

    /// Tasks of matching images take `extra` longer to start.
    #[must_use]
    pub fn slow_start(image: impl Into<String>, extra: Duration) -> Self {
        Self::task(image, TaskFaultKind::SlowStart(extra))
    }

    /// Restricts an API fault to one operation, like `"DescribeServices"`; a task fault is
    /// returned unchanged.
    #[must_use]
    pub fn on_operation(self, operation: impl Into<String>) -> Self {
        match self {
            Self::Api(fault) => Self::Api(ApiFault {
                operation: Some(operation.into()),
                ..fault
            }),
            task @ Self::Task(_) => task,
        }
    }

    fn api(kind: ApiFaultKind) -> Self {
        Self::Api(ApiFault {
            operation: None,
            kind,
        })
    }

    fn task(image: impl Into<String>, kind: TaskFaultKind) -> Self {
        Self::Task(TaskFault {
            image: image.into(),
            kind,
        })
    }
}

/// What an API call suffers.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct ApiVerdict {
    pub(crate) latency: Duration,
    /// `Some((code, message))` when the call fails.
    pub(crate) error: Option<(&'static str, &'static str)>,
}

/// The faults in force, with the counters of the stateful ones.
#[derive(Debug, Default, Serialize)]
pub(crate) struct FaultSet {
    api: Vec<(ApiFault, u64)>,
    task: Vec<TaskFault>,
}

impl FaultSet {
    pub(crate) fn add(&mut self, fault: Fault) {
        match fault {
            Fault::Api(fault) => self.api.push((fault, 0)),
            Fault::Task(fault) => self.task.push(fault),
        }
    }

    pub(crate) fn clear(&mut self) {
        self.api.clear();
        self.task.clear();
    }

    /// Decides the fate of one call of `operation`, counting it against the faults.
    pub(crate) fn on_call(&mut self, operation: &str, rng: &mut StdRng) -> ApiVerdict {
        let mut verdict = ApiVerdict::default();
        for (fault, calls) in &mut self.api {
            if fault.operation.as_deref().is_some_and(|op| op != operation) {
                continue;
            }
            *calls += 1;
            let fails = match fault.kind {
                ApiFaultKind::ThrottleEvery(every) => calls
                    .is_multiple_of(u64::from(every.max(1)))
                    .then_some(THROTTLED),
                ApiFaultKind::ThrottleProbability(p) => rng.random_bool(p).then_some(THROTTLED),
                ApiFaultKind::ServerErrorBurst(ref mut left) => (*left > 0).then(|| {
                    *left -= 1;
                    SERVER_ERROR
                }),
                ApiFaultKind::Latency(delay) => {
                    verdict.latency += delay;
                    None
                }
            };
            if verdict.error.is_none() {
                verdict.error = fails;
            }
        }
        verdict
    }

    /// The task faults whose pattern matches `image`, in the order they were added.
    pub(crate) fn for_image(&self, image: &str) -> Vec<TaskFaultKind> {
        self.task
            .iter()
            .filter(|fault| glob_matches(&fault.image, image))
            .map(|fault| fault.kind.clone())
            .collect()
    }
}

const THROTTLED: (&str, &str) = ("ThrottlingException", "Rate exceeded");
const SERVER_ERROR: (&str, &str) = (
    "ServerException",
    "Service Unavailable. Please try again later.",
);

#[cfg(test)]
mod tests {
    use rand::SeedableRng as _;

    use super::*;

    #[test]
    fn throttles_every_third_matching_call() {
        let mut faults = FaultSet::default();
        faults.add(Fault::throttle_every(3).on_operation("ListTasks"));
        let mut rng = StdRng::seed_from_u64(1);
        let outcomes: Vec<bool> = (0..6)
            .map(|_| faults.on_call("ListTasks", &mut rng).error.is_some())
            .collect();
        assert_eq!(outcomes, [false, false, true, false, false, true]);
        assert_eq!(
            faults.on_call("ListServices", &mut rng),
            ApiVerdict::default()
        );
    }

    #[test]
    fn server_error_burst_runs_out() {
        let mut faults = FaultSet::default();
        faults.add(Fault::server_errors(2));
        faults.add(Fault::latency(Duration::from_millis(5)));
        let mut rng = StdRng::seed_from_u64(1);
        let first = faults.on_call("CreateCluster", &mut rng);
        assert_eq!(first.error.map(|e| e.0), Some("ServerException"));
        assert_eq!(first.latency, Duration::from_millis(5));
        assert!(faults.on_call("CreateCluster", &mut rng).error.is_some());
        assert!(faults.on_call("CreateCluster", &mut rng).error.is_none());
    }

    #[test]
    fn seeded_probability_is_reproducible() {
        let run = || {
            let mut faults = FaultSet::default();
            faults.add(Fault::throttle_probability(0.5));
            let mut rng = StdRng::seed_from_u64(7);
            (0..32)
                .map(|_| faults.on_call("ListTasks", &mut rng).error.is_some())
                .collect::<Vec<_>>()
        };
        let first = run();
        assert_eq!(first, run());
        assert!(first.contains(&true) && first.contains(&false));
    }
}
