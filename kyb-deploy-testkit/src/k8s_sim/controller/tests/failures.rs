//! Faults: image pulls that fail, containers that crash or never get ready, and the
//! progress deadline.

use serde_json::{Value, json};

use super::super::super::faults::Fault;
use super::{Sim, condition, deployment, ready, rolled_out};

fn container_status(pod: &Value) -> &Value {
    &pod["status"]["containerStatuses"][0]
}

#[test]
fn image_pull_back_off_times_out_the_rollout_while_old_pods_serve() {
    let mut sim = Sim::new().with_fault(Fault::image_pull_backoff("*:broken"));
    sim.create("Deployment", deployment("web", "web:v1", 4));
    sim.run(10);
    sim.set_image("web", "web:broken");
    sim.run(60);
    let new = sim.rs_with_image("web:broken");
    let new_name = new["metadata"]["name"].as_str().unwrap().to_owned();
    assert_eq!(
        new["status"]["replicas"], 2,
        "maxSurge 1 over the 3 old pods left"
    );
    assert!(new["status"].get("availableReplicas").is_none());
    assert_eq!(sim.rs_with_image("web:v1")["spec"]["replicas"], 3);
    for pod in sim.pods_of_image("web:broken") {
        assert_eq!(pod["status"]["phase"], "Pending");
        let waiting = &container_status(&pod)["state"]["waiting"];
        assert_eq!(waiting["reason"], "ImagePullBackOff");
        assert_eq!(waiting["message"], "Back-off pulling image \"web:broken\"");
        assert_eq!(container_status(&pod)["imageID"], "");
    }
    let d = sim.get("Deployment", "web");
    assert_eq!(condition(&d, "Progressing")["reason"], "ReplicaSetUpdated");

    sim.run(600);
    let d = sim.get("Deployment", "web");
    let progressing = condition(&d, "Progressing");
    assert_eq!(progressing["status"], "False");
    assert_eq!(progressing["reason"], "ProgressDeadlineExceeded");
    assert_eq!(
        progressing["message"],
        format!("ReplicaSet \"{new_name}\" has timed out progressing.")
    );
    // Old pods keep serving: the Deployment stays available.
    assert_eq!(condition(&d, "Available")["status"], "True");
    assert_eq!(d["status"]["availableReplicas"], 3);
    assert_eq!(
        sim.pods_of_image("web:v1")
            .iter()
            .filter(|p| ready(p))
            .count(),
        3
    );
    // Every retry of the pull repeats the same events, counted.
    let failed: Vec<Value> = sim
        .events("Failed")
        .into_iter()
        .filter(|e| e["message"] == "Error: ErrImagePull")
        .collect();
    assert_eq!(failed.len(), 2, "one Event per pod");
    assert!(
        failed.iter().all(|e| e["count"].as_i64().unwrap() >= 5),
        "{failed:#?}"
    );
    assert!(failed.iter().all(|e| e["type"] == "Warning"));
    assert!(!sim.events("BackOff").is_empty());
}

#[test]
fn a_fixed_image_recovers_at_the_next_pull() {
    let mut sim = Sim::new().with_fault(Fault::image_pull_backoff("web:v1"));
    sim.create("Deployment", deployment("web", "web:v1", 1));
    sim.run(30);
    assert!(!ready(&sim.pods_of_image("web:v1")[0]));
    sim.faults.clear();
    sim.run(60);
    let pod = &sim.pods_of_image("web:v1")[0];
    assert!(ready(pod), "{pod:#}");
    assert_eq!(pod["status"]["phase"], "Running");
    assert!(rolled_out(&sim.get("Deployment", "web")));
}

#[test]
fn crash_loops_restart_with_growing_back_off() {
    let mut sim = Sim::new().with_fault(Fault::crash_loop("web:v1", 3));
    sim.create("Deployment", deployment("web", "web:v1", 1));
    // Started and exited at 3 s: terminated, until the kubelet restarts it at once.
    sim.run(3);
    let pod = &sim.pods_of_image("web:v1")[0];
    let terminated = &container_status(pod)["state"]["terminated"];
    assert_eq!(terminated["exitCode"], 3, "{pod:#}");
    assert_eq!(terminated["reason"], "Error");
    assert_eq!(pod["status"]["phase"], "Running");
    // Exited again at 4 s: back-off 10 s.
    sim.run(2);
    let status = container_status(&sim.pods_of_image("web:v1")[0]).clone();
    assert_eq!(status["restartCount"], 1);
    assert_eq!(status["state"]["waiting"]["reason"], "CrashLoopBackOff");
    assert!(
        status["state"]["waiting"]["message"]
            .as_str()
            .unwrap()
            .starts_with("back-off 10s ")
    );
    let mut restarts = Vec::new();
    for _ in 0..10 {
        sim.run(30);
        let pod = &sim.pods_of_image("web:v1")[0];
        restarts.push(container_status(pod)["restartCount"].as_i64().unwrap());
    }
    // Restarts at 4 s (at once), 14 s, 34 s, 74 s, 154 s and 314 s.
    assert_eq!(restarts, [3, 3, 4, 4, 5, 5, 5, 5, 5, 5]);
    let pod = &sim.pods_of_image("web:v1")[0];
    let status = container_status(pod);
    assert_eq!(pod["status"]["phase"], "Running");
    assert_eq!(status["ready"], false);
    assert_eq!(status["state"]["waiting"]["reason"], "CrashLoopBackOff");
    let message = status["state"]["waiting"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("back-off 2m40s restarting failed container=app pod=web-"),
        "{message}"
    );
    assert_eq!(status["lastState"]["terminated"]["exitCode"], 3);
    assert_eq!(status["lastState"]["terminated"]["reason"], "Error");
    assert!(
        status["containerID"]
            .as_str()
            .unwrap()
            .starts_with("containerd://")
    );
    let back_off = sim.events("BackOff");
    assert_eq!(back_off.len(), 1);
    assert_eq!(back_off[0]["count"], 5);
    assert_eq!(
        back_off[0]["involvedObject"]["fieldPath"],
        "spec.containers{app}"
    );
    let d = sim.get("Deployment", "web");
    assert_eq!(condition(&d, "Available")["status"], "False");
}

#[test]
fn never_ready_containers_run_but_stay_unready() {
    let mut sim = Sim::new().with_fault(Fault::never_ready("web:v1"));
    sim.create("Deployment", deployment("web", "web:v1", 2));
    sim.run(30);
    for pod in sim.pods_of_image("web:v1") {
        assert_eq!(pod["status"]["phase"], "Running");
        assert!(!ready(&pod));
        assert_eq!(container_status(&pod)["started"], true);
        let ready_condition = pod["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Ready")
            .unwrap()
            .clone();
        assert_eq!(ready_condition["reason"], "ContainersNotReady");
        assert_eq!(
            ready_condition["message"],
            "containers with unready status: [app]"
        );
    }
    assert!(
        sim.get("Deployment", "web")["status"]
            .get("readyReplicas")
            .is_none()
    );
}

#[test]
fn slow_starts_and_readiness_delays_take_simulated_time() {
    let mut sim = Sim::new().with_fault(Fault::slow_start(
        "web:v1",
        std::time::Duration::from_secs(10),
    ));
    let mut d = deployment("web", "web:v1", 1);
    d["spec"]["template"]["spec"]["containers"][0]["readinessProbe"] =
        json!({"initialDelaySeconds": 5, "httpGet": {"path": "/", "port": 80}});
    sim.create("Deployment", d);
    sim.run(12);
    let pod = &sim.pods_of_image("web:v1")[0];
    assert_eq!(pod["status"]["phase"], "Pending");
    assert_eq!(
        container_status(pod)["state"]["waiting"]["reason"],
        "ContainerCreating"
    );
    sim.run(2);
    let pod = &sim.pods_of_image("web:v1")[0];
    assert_eq!(pod["status"]["phase"], "Running");
    assert!(!ready(pod));
    sim.run(5);
    assert!(ready(&sim.pods_of_image("web:v1")[0]));
}

#[test]
fn min_ready_seconds_delay_availability() {
    let mut sim = Sim::new();
    let mut d = deployment("web", "web:v1", 2);
    d["spec"]["minReadySeconds"] = json!(10);
    sim.create("Deployment", d);
    sim.run(8);
    assert_eq!(sim.ready_pods(), 2);
    let d = sim.get("Deployment", "web");
    assert_eq!(d["status"]["readyReplicas"], 2);
    assert!(d["status"].get("availableReplicas").is_none());
    assert_eq!(
        condition(&d, "Available")["reason"],
        "MinimumReplicasUnavailable"
    );
    assert_eq!(sim.rs_with_image("web:v1")["spec"]["minReadySeconds"], 10);
    sim.run(8);
    let d = sim.get("Deployment", "web");
    assert_eq!(d["status"]["availableReplicas"], 2);
    assert_eq!(
        condition(&d, "Available")["reason"],
        "MinimumReplicasAvailable"
    );
    assert!(rolled_out(&d));
}

/// Stored past validation (which refuses it at the API), a Deployment whose selector
/// misses its template must not make the controllers create without end: nothing is made,
/// and the passes settle.
#[test]
fn a_selector_that_misses_its_template_creates_nothing() {
    let mut sim = Sim::new();
    let mut d = deployment("web", "web:v1", 3);
    d["spec"]["template"]["metadata"]["labels"] = json!({"app": "other"});
    sim.create("Deployment", d);
    let mut rs = json!({"metadata": {"name": "loose", "namespace": "default"}, "spec": {
        "replicas": 3,
        "selector": {"matchLabels": {"app": "loose"}},
        "template": {"metadata": {"labels": {"app": "elsewhere"}},
            "spec": {"containers": [{"name": "c", "image": "web:v1"}]}}
    }});
    rs["spec"]["minReadySeconds"] = json!(0);
    sim.create("ReplicaSet", rs);
    sim.run(30);
    assert_eq!(sim.list("Pod").len(), 0);
    assert_eq!(sim.replica_sets().len(), 1, "only the one created directly");
}
