//! [`Cluster`]: the state every request and controller shares.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use rand::rngs::StdRng;
use serde_json::json;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

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
