//! [`SimHandle`]: in-process access to a running simulator's clock, faults, request log and
//! state.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::faults::Fault;
use super::shared::Core;

/// One API call the simulator answered, in arrival order.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoggedRequest {
    /// The operation, like `"UpdateService"`, as named in `X-Amz-Target` (even when unknown).
    pub operation: String,
    /// When it was answered, in simulated time.
    pub at: SystemTime,
    /// Whether the operation changes state (`Create*`, `Register*`, `Deregister*`,
    /// `Delete*`, `UpdateService`, `RunTask`, `StopTask`, `TagResource`, `UntagResource`),
    /// whatever its outcome.
    pub mutating: bool,
    /// The HTTP status of the answer.
    pub status: u16,
    /// The error code (`__type`) of a failed call.
    pub error: Option<String>,
}

/// A cheap, cloneable handle on a simulator, for tests in the same process.
///
/// ```
/// use std::time::Duration;
/// use kyb_deploy_testkit::ecs_sim::{EcsSimulator, Fault};
///
/// let sim = EcsSimulator::builder().manual_clock().seed(7).build();
/// let handle = sim.handle();
/// handle.add_fault(Fault::throttle_every(5));
/// handle.advance(Duration::from_secs(30));
/// assert!(handle.request_log().is_empty());
/// assert!(handle.snapshot()["regions"].as_object().unwrap().is_empty());
/// ```
#[derive(Clone)]
pub struct SimHandle {
    pub(crate) core: Arc<Core>,
}

impl std::fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHandle")
            .field("clock", &self.core.clock)
            .finish_non_exhaustive()
    }
}

impl SimHandle {
    /// Every call answered so far, in order.
    #[must_use]
    pub fn request_log(&self) -> Vec<LoggedRequest> {
        self.core.lock().log.clone()
    }

    /// How many calls of each operation were answered, failed ones included.
    #[must_use]
    pub fn operation_counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for request in &self.core.lock().log {
            *counts.entry(request.operation.clone()).or_insert(0) += 1;
        }
        counts
    }

    /// How many calls of mutating operations were answered, failed ones included.
    #[must_use]
    pub fn mutating_calls(&self) -> usize {
        self.core.lock().log.iter().filter(|r| r.mutating).count()
    }

    /// Forgets the request log (to measure one phase of a test).
    pub fn clear_request_log(&self) {
        self.core.lock().log.clear();
    }

    /// The whole state as JSON, in the API's shapes: `{"now", "regions": {"<region>":
    /// {"clusters": [{...cluster, "services": [...], "tasks": [...]}], "taskDefinitions":
    /// [...]}}, "faults"}`.
    #[must_use]
    pub fn snapshot(&self) -> Value {
        self.core.snapshot()
    }

    /// The current simulated time.
    #[must_use]
    pub fn now(&self) -> SystemTime {
        self.core.clock.now()
    }

    /// Moves a manual clock forward by `by` and runs the controller up to the new time.
    ///
    /// # Panics
    ///
    /// Panics when the simulator follows real time (it was not built with
    /// [`manual_clock`](super::EcsSimulatorBuilder::manual_clock)).
    pub fn advance(&self, by: Duration) {
        self.core.clock.advance(by);
        drop(self.core.lock());
    }

    /// Adds a fault; it applies from the next call (API faults) or the next task started
    /// (task faults).
    pub fn add_fault(&self, fault: Fault) {
        self.core.lock().faults.add(fault);
    }

    /// The stable local URL of a service of a Docker-backed simulator, like
    /// `http://127.0.0.1:41234`: a TCP proxy that spreads connections over the service's
    /// RUNNING, healthy tasks and closes them while there is none. `None` for the virtual
    /// runtime or an unknown service; `cluster` and `service` are names.
    #[must_use]
    pub fn service_url(&self, region: &str, cluster: &str, service: &str) -> Option<String> {
        self.service_addr(region, cluster, service)
            .map(|addr| format!("http://{addr}"))
    }

    /// The address of [`service_url`](Self::service_url).
    #[must_use]
    pub fn service_addr(&self, region: &str, cluster: &str, service: &str) -> Option<SocketAddr> {
        let docker = self.core.docker.as_ref()?;
        let exists = {
            let inner = self.core.lock();
            let cluster = inner.state.regions.get(region)?.clusters.get(cluster)?;
            cluster.services.contains_key(service)
        };
        exists.then(|| docker.ensure_proxy(region, cluster, service))?
    }

    /// Removes every fault. Tasks already started keep the faults they started with.
    pub fn clear_faults(&self) {
        self.core.lock().faults.clear();
    }
}
