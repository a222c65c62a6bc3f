//! [`Cluster`]: the state every request and controller shares.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use rand::rngs::StdRng;
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::controller::NODE as NODE_NAME;
use super::docker::DockerPods;
use super::faults::FaultSet;
use super::resources::kind;
use super::store::Store;
use crate::sim_runtime::SimClock;

/// The objects and the generator of names, behind one lock.
#[derive(Debug)]
pub(crate) struct State {
    /// Every object.
    pub(crate) store: Store,
    /// Names, uids and random faults.
    pub(crate) rng: StdRng,
}

/// The shared state of a simulated cluster.
#[derive(Debug)]
pub(crate) struct Cluster {
    state: Mutex<State>,
    /// Simulated time, for timestamps and the controllers.
    pub(crate) clock: SimClock,
    /// The bearer token every request must carry; `None` accepts any request.
    pub(crate) token: Option<String>,
    /// Fired when the server stops: ends watches and controllers.
    pub(crate) shutdown: CancellationToken,
    /// Notified after every write, so that controllers react at once.
    pub(crate) changed: Notify,
    /// Faults in force.
    pub(crate) faults: Mutex<FaultSet>,
    /// The pods' containers and the Services' proxies, when the simulator is Docker-backed.
    pub(crate) docker: Option<Arc<DockerPods>>,
}

impl Cluster {
    /// A cluster with the `default`, `kube-system` and `kube-public` namespaces.
    pub(crate) fn new(
        clock: SimClock,
        mut rng: StdRng,
        token: Option<String>,
        faults: FaultSet,
        docker: Option<DockerPods>,
    ) -> Self {
        let mut store = Store::new();
        let now = timestamp(clock.now());
        for name in ["default", "kube-system", "kube-public"] {
            store
                .create(
                    kind("Namespace"),
                    "",
                    json!({"metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}}, "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}),
                    &now,
                    &mut rng,
                )
                .expect("a fresh store takes the built-in namespaces");
        }
        // The one node every pod is scheduled to.
        store
            .create(kind("Node"), "", node(&now), &now, &mut rng)
            .expect("a fresh store takes the node");
        Self {
            state: Mutex::new(State { store, rng }),
            clock,
            token,
            shutdown: CancellationToken::new(),
            changed: Notify::new(),
            faults: Mutex::new(faults),
            docker: docker.map(Arc::new),
        }
    }

    /// The state, locked.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The faults, locked.
    pub(crate) fn faults(&self) -> MutexGuard<'_, FaultSet> {
        self.faults
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The simulated time now, as Kubernetes writes timestamps (`2026-11-26T09:30:00Z`).
    pub(crate) fn now(&self) -> String {
        timestamp(self.clock.now())
    }
}

/// RFC 3339 in whole seconds, UTC.
pub(crate) fn timestamp(at: SystemTime) -> String {
    let t = time::OffsetDateTime::from(at);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Parses a timestamp written by [`timestamp`] (or any RFC 3339 time).
pub(crate) fn parse_timestamp(text: &str) -> Option<SystemTime> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(SystemTime::from)
}

/// The node pods run on, as `kubectl get nodes` and `describe node` show it.
fn node(now: &str) -> Value {
    let condition = |kind: &str, status: &str, reason: &str| json!({"type": kind, "status": status, "reason": reason, "lastHeartbeatTime": now, "lastTransitionTime": now});
    let resources =
        json!({"cpu": "8", "memory": "32Gi", "pods": "110", "ephemeral-storage": "100Gi"});
    json!({
        "metadata": {"name": NODE_NAME, "labels": {
            "kubernetes.io/hostname": NODE_NAME,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "node-role.kubernetes.io/control-plane": ""
        }},
        "spec": {},
        "status": {
            "capacity": resources,
            "allocatable": resources,
            "conditions": [
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory"),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID"),
                condition("Ready", "True", "KubeletReady"),
            ],
            "addresses": [
                {"type": "InternalIP", "address": "127.0.0.1"},
                {"type": "Hostname", "address": NODE_NAME}
            ],
            "nodeInfo": {
                "kubeletVersion": super::discovery::GIT_VERSION,
                "kubeProxyVersion": super::discovery::GIT_VERSION,
                "containerRuntimeVersion": "containerd://1.7.0",
                "operatingSystem": "linux",
                "architecture": "amd64",
                "osImage": "kyb-sim",
                "kernelVersion": "6.0.0",
                "machineID": "", "systemUUID": "", "bootID": ""
            }
        }
    })
}
