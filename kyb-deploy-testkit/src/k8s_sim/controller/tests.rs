//! Scenario tests of the controllers: a store, a manual clock and direct passes of
//! [`Controllers::reconcile`], no HTTP.

mod autoscaling;
mod failures;
mod rollouts;
mod scaling;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::SeedableRng as _;
use rand::rngs::StdRng;
use serde_json::{Value, json};

use super::super::cluster::State;
use super::super::faults::{Fault, FaultSet};
use super::super::resources::kind;
use super::super::store::Store;
use super::Controllers;

/// A cluster driven by hand.
struct Sim {
    state: State,
    now: SystemTime,
    faults: FaultSet,
    controllers: Controllers,
}

impl Sim {
    fn new() -> Self {
        let mut store = Store::new();
        let mut rng = StdRng::seed_from_u64(7);
        store
            .create(
                kind("Namespace"),
                "",
                json!({"metadata": {"name": "default"}}),
                "t",
                &mut rng,
            )
            .unwrap();
        Self {
            state: State { store, rng },
            now: UNIX_EPOCH + Duration::from_secs(1_800_000_000),
            faults: FaultSet::default(),
            controllers: Controllers::default(),
        }
    }

    fn with_fault(mut self, fault: Fault) -> Self {
        self.faults.add(fault);
        self
    }

    /// Passes at the current time until one writes nothing, calling `check` after each.
    fn settle_checking(&mut self, check: &mut dyn FnMut(&Sim)) {
        for _ in 0..50 {
            let changed = self
                .controllers
                .reconcile(&mut self.state, self.now, &self.faults);
            check(self);
            if !changed {
                return;
            }
        }
        panic!("the controllers did not settle");
    }

    fn settle(&mut self) {
        self.settle_checking(&mut |_| {});
    }

    /// Moves time on by `secs`, one second at a time, settling (and checking) each second.
    fn run_checking(&mut self, secs: u64, check: &mut dyn FnMut(&Sim)) {
        self.settle_checking(check);
        for _ in 0..secs {
            self.now += Duration::from_secs(1);
            self.settle_checking(check);
        }
    }

    fn run(&mut self, secs: u64) {
        self.run_checking(secs, &mut |_| {});
    }

    fn create(&mut self, kind_name: &str, object: Value) -> Value {
        let now = super::super::cluster::timestamp(self.now);
        let State { store, rng } = &mut self.state;
        store
            .create(kind(kind_name), "default", object, &now, rng)
            .unwrap()
    }

    /// Changes the Deployment's spec as `kubectl` would (a main write).
    fn edit(&mut self, name: &str, change: impl FnOnce(&mut Value)) {
        let mut d = self.get("Deployment", name);
        change(&mut d);
        self.state
            .store
            .update(kind("Deployment"), "default", name, d, false)
            .unwrap();
    }

    fn set_image(&mut self, name: &str, image: &str) {
        self.edit(name, |d| {
            d["spec"]["template"]["spec"]["containers"][0]["image"] = json!(image);
        });
    }

    fn get(&self, kind_name: &str, name: &str) -> Value {
        self.state
            .store
            .find(kind(kind_name), "default", name)
            .cloned()
            .unwrap_or_else(|| panic!("{kind_name} {name} exists"))
    }

    fn list(&self, kind_name: &str) -> Vec<Value> {
        self.state
            .store
            .list(
                kind(kind_name),
                Some("default"),
                &Default::default(),
                &Default::default(),
            )
            .0
    }

    /// ReplicaSets by revision.
    fn replica_sets(&self) -> Vec<Value> {
        let mut all = self.list("ReplicaSet");
        all.sort_by_key(revision);
        all
    }

    fn rs_with_image(&self, image: &str) -> Value {
        self.list("ReplicaSet")
            .into_iter()
            .find(|rs| rs["spec"]["template"]["spec"]["containers"][0]["image"] == image)
            .unwrap_or_else(|| panic!("a ReplicaSet of {image}"))
    }

    fn pods_of_image(&self, image: &str) -> Vec<Value> {
        self.list("Pod")
            .into_iter()
            .filter(|p| p["spec"]["containers"][0]["image"] == image)
            .collect()
    }

    fn ready_pods(&self) -> usize {
        self.list("Pod").iter().filter(|p| ready(p)).count()
    }

    /// Events with `reason`.
    fn events(&self, reason: &str) -> Vec<Value> {
        self.list("Event")
            .into_iter()
            .filter(|e| e["reason"] == reason)
            .collect()
    }

    fn messages(&self, reason: &str) -> Vec<String> {
        let mut events = self.events(reason);
        events.sort_by_key(|e| e["metadata"]["name"].as_str().unwrap_or("").to_owned());
        events
            .iter()
            .map(|e| e["message"].as_str().unwrap_or("").to_owned())
            .collect()
    }
}

fn revision(rs: &Value) -> i64 {
    rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
        .as_str()
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

fn ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

fn condition<'a>(d: &'a Value, t: &str) -> &'a Value {
    d["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == t))
        .unwrap_or(&Value::Null)
}

/// A Deployment of `image` labelled `app: <name>`.
fn deployment(name: &str, image: &str, replicas: i64) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
        },
    })
}

/// A RollingUpdate Deployment with explicit surge and unavailability.
fn rolling(name: &str, image: &str, replicas: i64, surge: i64, unavailable: i64) -> Value {
    let mut d = deployment(name, image, replicas);
    d["spec"]["strategy"] = json!({
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable},
    });
    d
}

/// Whether the Deployment's rollout is done, as `kubectl rollout status` decides.
fn rolled_out(d: &Value) -> bool {
    let n = |k: &str| d["status"][k].as_i64().unwrap_or(0);
    d["metadata"]["generation"] == d["status"]["observedGeneration"]
        && n("updatedReplicas") == d["spec"]["replicas"].as_i64().unwrap_or(1)
        && n("replicas") == n("updatedReplicas")
        && n("availableReplicas") == n("updatedReplicas")
}

#[test]
fn a_settled_cluster_writes_nothing() {
    let mut sim = Sim::new();
    sim.create("Deployment", deployment("web", "web:v1", 2));
    sim.run(10);
    let revision = sim.state.store.revision();
    assert!(
        !sim.controllers
            .reconcile(&mut sim.state, sim.now, &sim.faults)
    );
    assert_eq!(sim.state.store.revision(), revision);
}

#[tokio::test]
async fn the_loop_reconciles_until_shutdown() {
    use std::sync::Arc;

    use super::super::cluster::Cluster;
    use crate::sim_runtime::SimClock;

    let cluster = Arc::new(Cluster::new(
        SimClock::manual(),
        StdRng::seed_from_u64(1),
        None,
        FaultSet::default(),
        None,
    ));
    let task = tokio::spawn(super::run(Arc::clone(&cluster)));
    {
        let now = cluster.now();
        let mut state = cluster.lock();
        let State { store, rng } = &mut *state;
        store
            .create(
                kind("Deployment"),
                "default",
                deployment("web", "web:v1", 1),
                &now,
                rng,
            )
            .unwrap();
    }
    cluster.changed.notify_waiters();
    let mut available = false;
    for _ in 0..200 {
        cluster.clock.advance(Duration::from_secs(1));
        cluster.changed.notify_waiters();
        tokio::time::sleep(Duration::from_millis(5)).await;
        let state = cluster.lock();
        let d = state
            .store
            .find(kind("Deployment"), "default", "web")
            .cloned();
        if d.is_some_and(|d| d["status"]["availableReplicas"] == 1) {
            available = true;
            break;
        }
    }
    assert!(available, "the Deployment became available");
    cluster.shutdown.cancel();
    task.await.unwrap();
}
