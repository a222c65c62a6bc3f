//! Pausing, resuming and scaling, ownership, and the events written along the way.

use serde_json::json;

use super::{Sim, condition, deployment, ready, rolled_out, rolling};

#[test]
fn pause_stops_a_rollout_and_resume_continues_it() {
    let mut sim = Sim::new();
    sim.create("Deployment", rolling("web", "web:v1", 2, 1, 0));
    sim.run(10);
    sim.edit("web", |d| d["spec"]["paused"] = json!(true));
    sim.run(1);
    let d = sim.get("Deployment", "web");
    let progressing = condition(&d, "Progressing");
    assert_eq!(progressing["status"], "Unknown");
    assert_eq!(progressing["reason"], "DeploymentPaused");
    assert_eq!(progressing["message"], "Deployment is paused");

    sim.set_image("web", "web:v2");
    sim.run(20);
    assert_eq!(sim.list("ReplicaSet").len(), 1, "no rollout while paused");
    let d = sim.get("Deployment", "web");
    assert_eq!(
        d["status"]["observedGeneration"],
        d["metadata"]["generation"]
    );
    assert!(
        d["status"].get("updatedReplicas").is_none(),
        "no replica is updated"
    );
    assert_eq!(condition(&d, "Progressing")["reason"], "DeploymentPaused");

    sim.edit("web", |d| d["spec"]["paused"] = json!(false));
    sim.controllers
        .reconcile(&mut sim.state, sim.now, &sim.faults);
    let d = sim.get("Deployment", "web");
    let progressing = condition(&d, "Progressing");
    assert_eq!(progressing["reason"], "NewReplicaSetCreated", "{d:#}");
    assert_eq!(progressing["status"], "True");
    sim.run(20);
    let d = sim.get("Deployment", "web");
    assert!(rolled_out(&d), "{d:#}");
    assert_eq!(
        sim.pods_of_image("web:v2")
            .iter()
            .filter(|p| ready(p))
            .count(),
        2
    );
    assert_eq!(
        condition(&d, "Progressing")["reason"],
        "NewReplicaSetAvailable"
    );
}

#[test]
fn a_paused_deployment_still_scales() {
    let mut sim = Sim::new();
    sim.create("Deployment", deployment("web", "web:v1", 2));
    sim.run(10);
    sim.edit("web", |d| {
        d["spec"]["paused"] = json!(true);
        d["spec"]["replicas"] = json!(5);
    });
    sim.run(10);
    let rs = sim.rs_with_image("web:v1");
    assert_eq!(rs["spec"]["replicas"], 5);
    assert_eq!(
        rs["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"],
        "5"
    );
    assert_eq!(
        rs["metadata"]["annotations"]["deployment.kubernetes.io/max-replicas"],
        "7"
    );
    assert_eq!(sim.ready_pods(), 5);
    let name = rs["metadata"]["name"].as_str().unwrap();
    assert!(
        sim.messages("ScalingReplicaSet")
            .contains(&format!("Scaled up replica set {name} from 2 to 5"))
    );
    let d = sim.get("Deployment", "web");
    assert_eq!(d["status"]["availableReplicas"], 5);
    assert_eq!(condition(&d, "Progressing")["reason"], "DeploymentPaused");

    sim.edit("web", |d| d["spec"]["replicas"] = json!(1));
    sim.run(2);
    assert_eq!(sim.list("Pod").len(), 1);
    let deleted = sim.messages("SuccessfulDelete");
    assert_eq!(deleted.len(), 4);
    assert!(
        deleted
            .iter()
            .all(|m| m.starts_with(&format!("Deleted pod: {name}-")))
    );
}

#[test]
fn scaling_in_the_middle_of_a_rollout_is_proportional() {
    let mut sim = Sim::new();
    sim.create("Deployment", rolling("web", "web:v1", 10, 3, 2));
    sim.run(10);
    sim.set_image("web", "web:v2");
    // One pass at the same second: the new ReplicaSet is created, nothing is ready yet.
    sim.settle();
    let sizes = |sim: &Sim| {
        (
            sim.rs_with_image("web:v1")["spec"]["replicas"]
                .as_i64()
                .unwrap(),
            sim.rs_with_image("web:v2")["spec"]["replicas"]
                .as_i64()
                .unwrap(),
        )
    };
    assert_eq!(sizes(&sim), (8, 5));
    sim.edit("web", |d| d["spec"]["replicas"] = json!(20));
    sim.settle();
    // 13 pods were allowed; now 23: the 10 more go 8:5, leftovers to the largest.
    let (old, new) = sizes(&sim);
    assert_eq!(old + new, 23);
    assert_eq!((old, new), (14, 9));
    sim.run(60);
    assert_eq!(sizes(&sim), (0, 20));
    assert!(rolled_out(&sim.get("Deployment", "web")));
}

#[test]
fn events_are_written_like_the_real_components_write_them() {
    let mut sim = Sim::new();
    sim.create("Deployment", deployment("web", "web:v1", 1));
    sim.run(5);
    let rs = sim.rs_with_image("web:v1");
    let pod = sim.list("Pod").remove(0);
    let (rs_name, pod_name) = (
        rs["metadata"]["name"].as_str().unwrap(),
        pod["metadata"]["name"].as_str().unwrap(),
    );
    assert_eq!(pod_name.len(), rs_name.len() + 6);
    assert_eq!(pod["spec"]["nodeName"], "kyb-sim-node");
    assert_eq!(pod["metadata"]["ownerReferences"][0]["name"], rs_name);

    let scaled = &sim.events("ScalingReplicaSet")[0];
    assert_eq!(
        scaled["message"],
        format!("Scaled up replica set {rs_name} from 0 to 1")
    );
    assert_eq!(scaled["involvedObject"]["kind"], "Deployment");
    assert_eq!(scaled["involvedObject"]["apiVersion"], "apps/v1");
    assert_eq!(scaled["source"]["component"], "deployment-controller");
    assert_eq!(scaled["reportingComponent"], "deployment-controller");
    assert_eq!(scaled["type"], "Normal");
    assert_eq!(scaled["count"], 1);
    assert_eq!(scaled["firstTimestamp"], scaled["lastTimestamp"]);
    assert!(
        scaled["metadata"]["name"]
            .as_str()
            .unwrap()
            .starts_with("web.")
    );

    let created = &sim.events("SuccessfulCreate")[0];
    assert_eq!(created["message"], format!("Created pod: {pod_name}"));
    assert_eq!(created["involvedObject"]["uid"], rs["metadata"]["uid"]);
    assert_eq!(created["source"]["component"], "replicaset-controller");

    let scheduled = &sim.events("Scheduled")[0];
    assert_eq!(
        scheduled["message"],
        format!("Successfully assigned default/{pod_name} to kyb-sim-node")
    );
    assert_eq!(scheduled["source"]["component"], "default-scheduler");

    for (reason, message) in [
        ("Pulling", "Pulling image \"web:v1\"".to_owned()),
        ("Created", "Created container: app".to_owned()),
        ("Started", "Started container app".to_owned()),
    ] {
        let e = &sim.events(reason)[0];
        assert_eq!(e["message"], message);
        assert_eq!(e["involvedObject"]["name"], pod_name);
        assert_eq!(e["involvedObject"]["fieldPath"], "spec.containers{app}");
        assert_eq!(
            e["source"],
            json!({"component": "kubelet", "host": "kyb-sim-node"})
        );
    }
    let pulled = sim.messages("Pulled");
    assert!(
        pulled[0].starts_with("Successfully pulled image \"web:v1\" in 2s (2s including waiting).")
    );

    let status = &pod["status"];
    assert_eq!(status["phase"], "Running");
    assert_eq!(status["qosClass"], "BestEffort");
    assert_eq!(status["podIP"], "10.244.0.2");
    let types: Vec<&str> = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "PodReadyToStartContainers",
            "Initialized",
            "Ready",
            "ContainersReady",
            "PodScheduled"
        ]
    );
    let container = &status["containerStatuses"][0];
    assert!(
        container["imageID"]
            .as_str()
            .unwrap()
            .starts_with("docker-pullable://web:v1@sha256:")
    );
    assert!(container["state"]["running"]["startedAt"].is_string());
    assert_eq!(container["restartCount"], 0);
}

#[test]
fn deleted_pods_are_replaced_and_orphans_collected() {
    let mut sim = Sim::new();
    sim.create("Deployment", deployment("web", "web:v1", 2));
    sim.run(5);
    let pod = sim.list("Pod").remove(0);
    let name = pod["metadata"]["name"].as_str().unwrap().to_owned();
    sim.state
        .store
        .delete(super::kind("Pod"), "default", &name)
        .unwrap();
    sim.run(5);
    assert_eq!(sim.ready_pods(), 2);
    assert!(
        sim.list("Pod")
            .iter()
            .all(|p| p["metadata"]["name"] != name.as_str())
    );
    // Deleting the Deployment without cascading through the API: the garbage collector
    // takes the ReplicaSet and its pods.
    sim.state
        .store
        .delete(super::kind("Deployment"), "default", "web")
        .unwrap();
    sim.run(1);
    assert!(sim.list("ReplicaSet").is_empty());
    assert!(sim.list("Pod").is_empty());
}
