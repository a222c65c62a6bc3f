//! The controllers: Deployments, ReplicaSets and Pods, driven by the simulated clock.
//!
//! [`Controllers::reconcile`] runs one pass of every controller at a given simulated time,
//! straight against the store: the scheduler and kubelet of the one node (pods), the
//! ReplicaSet controller, the Deployment controller, and the garbage collector. A pass is
//! idempotent: it writes only what differs, so a second pass at the same time writes
//! nothing. [`run`] repeats passes while they change something, and otherwise waits for a
//! write through the API or for simulated time to move on.
//!
//! The controllers follow upstream's code (`pkg/controller/deployment`,
//! `pkg/controller/replicaset`) closely, so that `kubectl rollout status|history|undo|
//! pause|resume`, `scale` and `set image` see what they would see on a real cluster. Where
//! they differ:
//!
//! - Pod-template hashes are computed over canonical JSON, not Go's `%#v` printing: same
//!   shape and stability, other values than a real cluster's.
//! - Deleted pods go at once (no graceful termination), so Recreate waits for nothing.
//! - The ReplicaSet status counts the pods after the sync's creations and deletions, not
//!   before (upstream catches up one sync later).
//! - Virtual containers always pull their image (2 s); init containers, probes other than
//!   the readiness probe's initial delay, and volumes are not simulated. With the
//!   Docker-backed runtime (`real`) a pod's first container follows a real one instead.
//! - Upstream's controllers write the status several times per sync (often failing with a
//!   conflict and retrying); here each sync writes each object at most once or twice.

mod autoscaler;
mod ctx;
pub(crate) mod defaults;
mod deployment;
mod env;
mod events;
mod hash;
mod json;
mod new_rs;
mod pods;
mod progress;
mod real;
mod replicaset;
mod rollout;
mod runtime;
mod service_accounts;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use self::ctx::Ctx;
pub(crate) use self::events::NODE;
use super::cluster::{Cluster, State};
use super::faults::FaultSet;

/// Real time between passes when nothing is written, so that simulated time passing is
/// noticed (a manual clock notifies `changed` when it moves).
const TICK: Duration = Duration::from_millis(20);

/// Passes in a row, while each changes something, before waiting anyway.
const MAX_ROUNDS: usize = 100;

/// Simulated time between sweeps of expired Events.
const EVENT_SWEEP: Duration = Duration::from_secs(60);

/// The controllers and what they remember between passes (the kubelet's back-off state).
#[derive(Debug, Default)]
pub(crate) struct Controllers {
    kubelet: pods::Kubelet,
    autoscalers: autoscaler::Autoscalers,
    next_event_sweep: Option<SystemTime>,
}

impl Controllers {
    /// Runs one pass of every controller at simulated time `now`, with the image `faults`
    /// in force. Returns whether anything was written; passes at the same time converge, so
    /// repeating until `false` settles the cluster.
    pub(crate) fn reconcile(
        &mut self,
        state: &mut State,
        now: SystemTime,
        faults: &FaultSet,
    ) -> bool {
        let State { store, rng } = state;
        let mut ctx = Ctx {
            store,
            rng,
            faults,
            now,
            changed: false,
        };
        self.kubelet.sync(&mut ctx);
        self.autoscalers.sync_all(&mut ctx);
        replicaset::sync_all(&mut ctx);
        deployment::sync_all(&mut ctx);
        replicaset::collect_garbage(&mut ctx);
        service_accounts::sync_all(&mut ctx);
        if self.next_event_sweep.is_none_or(|at| at <= now) {
            ctx.expire_events();
            self.next_event_sweep = Some(now + EVENT_SWEEP);
        }
        ctx.changed
    }
}

/// Runs the controllers until the cluster shuts down.
pub(crate) async fn run(cluster: Arc<Cluster>) {
    let mut controllers = Controllers {
        kubelet: pods::Kubelet::new(cluster.docker.clone()),
        ..Controllers::default()
    };
    loop {
        // Registered before the pass, so that a write during the pass is not missed.
        let notified = cluster.changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let mut rounds = 0;
        while rounds < MAX_ROUNDS && pass(&cluster, &mut controllers) {
            rounds += 1;
            tokio::task::yield_now().await;
        }
        if rounds > 0 {
            cluster.changed.notify_waiters();
        }
        tokio::select! {
            () = cluster.shutdown.cancelled() => return,
            () = &mut notified => {}
            () = tokio::time::sleep(TICK) => {}
        }
    }
}

/// One pass under the locks. The faults are locked before the state; nothing else holds
/// both.
fn pass(cluster: &Cluster, controllers: &mut Controllers) -> bool {
    let faults = cluster.faults();
    let mut state = cluster.lock();
    controllers.reconcile(&mut state, cluster.clock.now(), &faults)
}
