//! Rollouts: rolling updates, Recreate, rollbacks and the revision history.

use serde_json::{Value, json};

use super::{Sim, condition, deployment, ready, revision, rolled_out, rolling};

const REVISION: &str = "deployment.kubernetes.io/revision";

fn annotation<'a>(o: &'a Value, key: &str) -> &'a Value {
    &o["metadata"]["annotations"][key]
}

#[test]
fn a_rolling_update_keeps_within_surge_and_availability() {
    let mut sim = Sim::new();
    sim.create("Deployment", rolling("web", "web:v1", 4, 1, 0));
    sim.run(10);
    let d = sim.get("Deployment", "web");
    assert!(rolled_out(&d), "{d:#}");
    assert_eq!(annotation(&d, REVISION), "1");
    assert_eq!(sim.ready_pods(), 4);

    sim.set_image("web", "web:v2");
    let (mut max_pods, mut min_available) = (0, usize::MAX);
    sim.run_checking(40, &mut |sim| {
        max_pods = max_pods.max(sim.list("Pod").len());
        min_available = min_available.min(sim.ready_pods());
    });
    assert_eq!(max_pods, 5, "at most replicas + maxSurge pods");
    assert_eq!(
        min_available, 4,
        "never fewer than replicas - maxUnavailable"
    );

    let (old, new) = (sim.rs_with_image("web:v1"), sim.rs_with_image("web:v2"));
    assert_eq!(old["spec"]["replicas"], 0);
    assert_eq!(new["spec"]["replicas"], 4);
    assert_eq!(new["status"]["availableReplicas"], 4);
    assert_eq!(annotation(&old, REVISION), "1");
    assert_eq!(annotation(&new, REVISION), "2");
    assert_eq!(
        annotation(&new, "deployment.kubernetes.io/desired-replicas"),
        "4"
    );
    assert_eq!(
        annotation(&new, "deployment.kubernetes.io/max-replicas"),
        "5"
    );
    let hash = new["metadata"]["labels"]["pod-template-hash"]
        .as_str()
        .unwrap();
    assert_eq!(new["metadata"]["name"], format!("web-{hash}"));
    assert_eq!(
        new["spec"]["selector"]["matchLabels"]["pod-template-hash"],
        hash
    );
    assert_eq!(new["metadata"]["ownerReferences"][0]["kind"], "Deployment");
    assert_eq!(
        new["metadata"]["ownerReferences"][0]["blockOwnerDeletion"],
        true
    );

    let d = sim.get("Deployment", "web");
    assert!(rolled_out(&d), "{d:#}");
    assert_eq!(annotation(&d, REVISION), "2");
    assert_eq!(
        d["status"]["observedGeneration"],
        d["metadata"]["generation"]
    );
    assert_eq!(d["status"]["updatedReplicas"], 4);
    assert!(d["status"].get("unavailableReplicas").is_none());
    let progressing = condition(&d, "Progressing");
    assert_eq!(progressing["status"], "True");
    assert_eq!(progressing["reason"], "NewReplicaSetAvailable");
    let new_name = new["metadata"]["name"].as_str().unwrap();
    assert_eq!(
        progressing["message"],
        format!("ReplicaSet \"{new_name}\" has successfully progressed.")
    );
    let available = condition(&d, "Available");
    assert_eq!(available["reason"], "MinimumReplicasAvailable");
    assert_eq!(available["message"], "Deployment has minimum availability.");

    let scaling = sim.messages("ScalingReplicaSet");
    let old_name = old["metadata"]["name"].as_str().unwrap();
    assert!(
        scaling.contains(&format!("Scaled up replica set {new_name} from 0 to 1")),
        "{scaling:?}"
    );
    assert!(
        scaling.contains(&format!("Scaled down replica set {old_name} from 4 to 3")),
        "{scaling:?}"
    );
    assert!(
        scaling.contains(&format!("Scaled down replica set {old_name} from 1 to 0")),
        "{scaling:?}"
    );
}

#[test]
fn recreate_stops_the_old_pods_before_starting_new_ones() {
    let mut sim = Sim::new();
    let mut d = deployment("web", "web:v1", 3);
    d["spec"]["strategy"] = json!({"type": "Recreate"});
    sim.create("Deployment", d);
    sim.run(10);
    assert!(rolled_out(&sim.get("Deployment", "web")));
    let d = sim.get("Deployment", "web");
    assert!(d["spec"]["strategy"].get("rollingUpdate").is_none());
    // Recreate tolerates no available pods in between.
    assert!(d["status"].get("unavailableReplicas").is_none());

    sim.set_image("web", "web:v2");
    let mut overlap = false;
    let mut saw_none = false;
    sim.run_checking(15, &mut |sim| {
        let (old, new) = (
            sim.pods_of_image("web:v1").len(),
            sim.pods_of_image("web:v2").len(),
        );
        overlap |= old > 0 && new > 0;
        saw_none |= old == 0 && new == 0;
    });
    assert!(!overlap, "old and new pods never run together");
    assert!(saw_none);
    let d = sim.get("Deployment", "web");
    assert!(rolled_out(&d), "{d:#}");
    assert_eq!(sim.rs_with_image("web:v2")["spec"]["replicas"], 3);
    assert_eq!(sim.rs_with_image("web:v1")["spec"]["replicas"], 0);
    let scaling = sim.messages("ScalingReplicaSet");
    assert_eq!(scaling.len(), 3, "{scaling:?}");
    assert!(
        scaling[1].starts_with("Scaled down replica set web-")
            && scaling[1].ends_with("from 3 to 0")
    );
    assert!(scaling[2].ends_with("from 0 to 3"));
}

/// What `kubectl rollout undo --to-revision=N` does: the ReplicaSet's template, without
/// its hash label, back into the Deployment.
fn undo_to(sim: &mut Sim, revision_wanted: i64) {
    let rs = sim
        .replica_sets()
        .into_iter()
        .find(|rs| revision(rs) == revision_wanted)
        .unwrap();
    let mut template = rs["spec"]["template"].clone();
    template["metadata"]["labels"]
        .as_object_mut()
        .unwrap()
        .remove("pod-template-hash");
    sim.edit("web", |d| d["spec"]["template"] = template);
}

#[test]
fn a_rollback_reuses_the_old_replica_set_with_a_new_revision() {
    let mut sim = Sim::new();
    sim.create("Deployment", rolling("web", "web:v1", 2, 1, 0));
    sim.run(10);
    sim.set_image("web", "web:v2");
    sim.run(20);
    let v1 = sim.rs_with_image("web:v1");
    undo_to(&mut sim, 1);
    sim.run(20);

    assert_eq!(sim.list("ReplicaSet").len(), 2, "no new ReplicaSet");
    let again = sim.rs_with_image("web:v1");
    assert_eq!(again["metadata"]["name"], v1["metadata"]["name"]);
    assert_eq!(again["metadata"]["uid"], v1["metadata"]["uid"]);
    assert_eq!(annotation(&again, REVISION), "3");
    assert_eq!(
        annotation(&again, "deployment.kubernetes.io/revision-history"),
        "1"
    );
    assert_eq!(again["spec"]["replicas"], 2);
    assert_eq!(sim.rs_with_image("web:v2")["spec"]["replicas"], 0);
    let d = sim.get("Deployment", "web");
    assert_eq!(annotation(&d, REVISION), "3");
    assert!(rolled_out(&d));
    assert_eq!(
        sim.pods_of_image("web:v1")
            .iter()
            .filter(|p| ready(p))
            .count(),
        2
    );

    // Back to v2, then v1 again: the history grows.
    undo_to(&mut sim, 2);
    sim.run(20);
    undo_to(&mut sim, 3);
    sim.run(20);
    let again = sim.rs_with_image("web:v1");
    assert_eq!(annotation(&again, REVISION), "5");
    assert_eq!(
        annotation(&again, "deployment.kubernetes.io/revision-history"),
        "1,3"
    );
    assert_eq!(
        annotation(
            &sim.rs_with_image("web:v2"),
            "deployment.kubernetes.io/revision-history"
        ),
        "2"
    );
}

#[test]
fn change_causes_are_copied_to_the_new_replica_set() {
    let mut sim = Sim::new();
    let mut d = deployment("web", "web:v1", 1);
    d["metadata"]["annotations"] = json!({
        "kubernetes.io/change-cause": "first",
        "kubectl.kubernetes.io/last-applied-configuration": "{}",
    });
    sim.create("Deployment", d);
    sim.run(5);
    let rs = sim.rs_with_image("web:v1");
    assert_eq!(annotation(&rs, "kubernetes.io/change-cause"), "first");
    assert!(annotation(&rs, "kubectl.kubernetes.io/last-applied-configuration").is_null());
    sim.edit("web", |d| {
        d["metadata"]["annotations"]["kubernetes.io/change-cause"] = json!("second");
        d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("web:v2");
    });
    sim.run(10);
    assert_eq!(
        annotation(&sim.rs_with_image("web:v2"), "kubernetes.io/change-cause"),
        "second"
    );
    assert_eq!(
        annotation(&sim.rs_with_image("web:v1"), "kubernetes.io/change-cause"),
        "first"
    );
}

#[test]
fn the_revision_history_limit_deletes_the_oldest_replica_sets() {
    let mut sim = Sim::new();
    let mut d = rolling("web", "web:v1", 2, 1, 0);
    d["spec"]["revisionHistoryLimit"] = json!(1);
    sim.create("Deployment", d);
    sim.run(10);
    for image in ["web:v2", "web:v3"] {
        sim.set_image("web", image);
        sim.run(20);
    }
    let revisions: Vec<i64> = sim.replica_sets().iter().map(revision).collect();
    assert_eq!(revisions, [2, 3]);
    assert!(sim.pods_of_image("web:v1").is_empty());
    assert!(rolled_out(&sim.get("Deployment", "web")));
}

#[test]
fn defaults_are_filled_in_once() {
    let mut sim = Sim::new();
    sim.create("Deployment", deployment("web", "web:v1", 1));
    sim.run(5);
    let d = sim.get("Deployment", "web");
    assert_eq!(d["spec"]["strategy"]["type"], "RollingUpdate");
    assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
    assert_eq!(
        d["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"],
        "25%"
    );
    assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
    assert_eq!(d["spec"]["progressDeadlineSeconds"], 600);
    assert_eq!(d["spec"]["template"]["spec"]["restartPolicy"], "Always");
    assert_eq!(
        d["status"]["observedGeneration"],
        d["metadata"]["generation"]
    );
    let generation = d["metadata"]["generation"].clone();
    sim.run(5);
    assert_eq!(
        sim.get("Deployment", "web")["metadata"]["generation"],
        generation
    );
}
