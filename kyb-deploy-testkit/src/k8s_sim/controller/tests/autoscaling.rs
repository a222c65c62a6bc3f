//! The HorizontalPodAutoscaler controller: bounds, scaling on the reported CPU figure, the
//! scale-down stabilization window, and its status.

use serde_json::json;

use super::super::super::faults::Fault;
use super::{Sim, deployment};

fn autoscaler(min: i64, max: i64) -> serde_json::Value {
    json!({"metadata": {"name": "web"}, "spec": {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        "minReplicas": min, "maxReplicas": max,
        "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]
    }})
}

fn replicas(sim: &Sim) -> i64 {
    sim.get("Deployment", "web")["spec"]["replicas"]
        .as_i64()
        .unwrap()
}

#[test]
fn bounds_and_the_cpu_figure_set_the_targets_replicas() {
    let mut sim = Sim::new();
    sim.create("Deployment", deployment("web", "reg/web:v1", 1));
    sim.create("HorizontalPodAutoscaler", autoscaler(2, 4));
    sim.run(5);
    // No metric: the replicas are only brought within the bounds.
    assert_eq!(replicas(&sim), 2);
    let hpa = sim.get("HorizontalPodAutoscaler", "web");
    assert_eq!(hpa["status"]["desiredReplicas"], 2);
    assert!(
        sim.messages("SuccessfulRescale")
            .iter()
            .any(|m| m == "New size: 2; reason: Current number of replicas below Spec.MinReplicas"),
        "{:?}",
        sim.messages("SuccessfulRescale")
    );
    let active = hpa["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "ScalingActive")
        .unwrap()
        .clone();
    assert_eq!(active["status"], "False");

    // Eight pods' worth of load on two: 400 % each against a 50 % target, limited by the
    // maximum; at four replicas each reports 200 %.
    sim.faults.add(Fault::cpu_load("reg/web:*", 800));
    sim.run(5);
    assert_eq!(replicas(&sim), 4);
    let hpa = sim.get("HorizontalPodAutoscaler", "web");
    let limited = hpa["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "ScalingLimited")
        .unwrap()
        .clone();
    assert_eq!(
        (limited["status"].clone(), limited["reason"].clone()),
        (json!("True"), json!("TooManyReplicas"))
    );
    assert_eq!(
        hpa["status"]["currentMetrics"][0]["resource"]["current"]["averageUtilization"],
        200
    );
}

#[test]
fn scale_downs_wait_for_the_stabilization_window() {
    // Two pods' worth of load: 100 % each on two replicas, 50 % (the target) on four.
    let mut sim = Sim::new().with_fault(Fault::cpu_load("reg/web:*", 200));
    sim.create("Deployment", deployment("web", "reg/web:v1", 2));
    sim.create("HorizontalPodAutoscaler", autoscaler(1, 10));
    sim.run(2);
    assert_eq!(replicas(&sim), 4, "scale-ups are at once");
    sim.faults.clear();
    // Load drops to one pod's worth: 25 % each on four, so two replicas would do.
    sim.faults.add(Fault::cpu_load("reg/web:*", 100));
    sim.run(200);
    assert_eq!(
        replicas(&sim),
        4,
        "within the 300 s window, the higher recommendation holds"
    );
    sim.run(120);
    assert_eq!(replicas(&sim), 2);
}
