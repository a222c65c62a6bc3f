//! [`K8sHandle`]: in-process access to a simulated cluster.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::cluster::Cluster;
use super::faults::Fault;
use super::resources::RESOURCES;

/// A cheap, cloneable handle on a simulated cluster, for tests in the same process.
#[derive(Clone, Debug)]
pub struct K8sHandle {
    pub(crate) cluster: Arc<Cluster>,
}

impl K8sHandle {
    /// Moves a manual clock forward and lets the controllers react.
    ///
    /// # Panics
    ///
    /// With a scaled clock (see [`super::K8sSimulatorBuilder::manual_clock`]).
    pub fn advance(&self, by: Duration) {
        self.cluster.clock.advance(by);
        self.cluster.changed.notify_waiters();
    }

    /// An object as stored, by kind (`Deployment`), namespace and name.
    #[must_use]
    pub fn get(&self, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let r = RESOURCES.iter().find(|r| r.kind == kind)?;
        self.cluster.lock().store.find(r, namespace, name).cloned()
    }

    /// Every object of `kind` in `namespace`.
    #[must_use]
    pub fn list(&self, kind: &str, namespace: &str) -> Vec<Value> {
        let Some(r) = RESOURCES.iter().find(|r| r.kind == kind) else {
            return Vec::new();
        };
        let state = self.cluster.lock();
        state
            .store
            .list(r, Some(namespace), &Default::default(), &Default::default())
            .0
    }

    /// Adds a fault while the cluster runs.
    pub fn add_fault(&self, fault: Fault) {
        self.cluster.faults().add(fault);
        self.cluster.changed.notify_waiters();
    }

    /// Removes every fault.
    pub fn clear_faults(&self) {
        self.cluster.faults().clear();
        self.cluster.changed.notify_waiters();
    }

    /// The stable local URL of a Service with the Docker-backed runtime; see
    /// [`RunningK8sSimulator::service_url`](super::RunningK8sSimulator::service_url).
    #[must_use]
    pub fn service_url(&self, namespace: &str, name: &str) -> Option<String> {
        self.cluster.docker.as_ref()?.service_url(namespace, name)
    }

    /// The latest resourceVersion.
    #[must_use]
    pub fn resource_version(&self) -> u64 {
        self.cluster.lock().store.revision()
    }
}
