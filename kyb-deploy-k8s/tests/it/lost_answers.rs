//! Writes the API server applied but whose answers never arrived, injected by a fault proxy
//! between the target and the simulator. The run's claim is compared with what the cluster
//! runs afterwards: a run never says "nothing was deployed" while the release rolls out.

use kyb_deploy_core::{Outcome, RecordStatus, Stage};
use kyb_deploy_testkit::k8s_sim::Fault as SimFault;
use kyb_deploy_testkit::{Fault, RequestMatch, ScriptedProbe};

use super::Cluster;
use super::pipeline::{Harness, REPO, succeeded};

/// The server-side apply of the Deployment.
fn deployment_apply() -> RequestMatch {
    RequestMatch::method("PATCH").and_path_prefix("/apis/apps/v1/namespaces/kyb/deployments/web")
}

/// A Kubernetes `Status` answer with `code`.
fn status(code: u16) -> String {
    serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
        "message": "etcdserver: request timed out", "reason": "InternalError", "code": code})
    .to_string()
}

/// A 500 with the API server's `Status`, after the write (`applied`) or instead of it.
fn server_error(applied: bool) -> Fault {
    let body = status(500);
    if applied {
        Fault::ApplyThenAnswer { status: 500, body }
    } else {
        Fault::Refuse { status: 500, body }
    }
}

/// v1 runs; `fault` hits the Deployment's apply `times` times while v2 is deployed, and v2
/// is followed to success all the same.
async fn v2_succeeds_despite(fault: Fault, times: u32) {
    let h = harness().await;
    h.cluster
        .proxy
        .as_ref()
        .unwrap()
        .add(deployment_apply(), fault, times);
    let report = h.deploy("v2").await;
    succeeded(&h, &report, "v2");
    assert_eq!(h.image(), format!("{REPO}:v2"));
}

async fn harness() -> Harness {
    let h = Harness::on(Cluster::behind_proxy().await, ScriptedProbe::new());
    succeeded(&h, &h.deploy("v1").await, "v1");
    h
}

#[tokio::test]
async fn an_apply_whose_connection_dropped_is_found_and_followed() {
    let h = harness().await;
    let proxy = h.cluster.proxy.as_ref().unwrap();
    proxy.add(deployment_apply(), Fault::ApplyThenDrop, 1);
    let report = h.deploy("v2").await;
    succeeded(&h, &report, "v2");
    assert_eq!(h.image(), format!("{REPO}:v2"));
    let dropped = proxy
        .requests()
        .into_iter()
        .filter(|r| r.fault.is_some())
        .count();
    assert_eq!(dropped, 1, "the fault was injected");
}

#[tokio::test]
async fn an_apply_answered_500_after_it_was_applied_is_followed() {
    v2_succeeds_despite(server_error(true), 1).await;
}

#[tokio::test]
async fn an_apply_refused_with_500_a_few_times_is_tried_again() {
    v2_succeeds_despite(server_error(false), 3).await;
}

#[tokio::test]
async fn an_apply_refused_with_500_every_time_deployed_nothing_and_says_so() {
    let h = harness().await;
    let proxy = h.cluster.proxy.as_ref().unwrap();
    proxy.add(deployment_apply(), server_error(false), 4);
    let report = h.deploy("v2").await;
    let Outcome::FailedBeforeDeploy { stage, reason } = &report.outcome else {
        panic!("{:?}", report.outcome);
    };
    assert_eq!(*stage, Stage::Deploy);
    assert!(reason.contains("request timed out"), "{reason}");
    let record = h
        .store
        .records()
        .into_iter()
        .find(|r| r.id == report.run_id)
        .unwrap();
    assert_eq!(record.status, RecordStatus::FailedBeforeDeploy);
    // The claim holds: the cluster still runs v1.
    assert_eq!(h.image(), format!("{REPO}:v1"));
}

/// A proxy in front of the API server answering its own JSON (not a Kubernetes `Status`):
/// the client cannot tell the HTTP status, so the write may have been applied.
#[tokio::test]
async fn an_apply_answered_with_a_proxys_error_after_it_was_applied_is_followed() {
    v2_succeeds_despite(Fault::apply_then_server_error(), 4).await;
}

#[tokio::test]
async fn a_record_of_manifests_stored_but_answered_500_starts_nothing_and_says_so() {
    let h = harness().await;
    let proxy = h.cluster.proxy.as_ref().unwrap();
    proxy.add(
        RequestMatch::method("PATCH")
            .and_path_prefix("/api/v1/namespaces/kyb/configmaps/web-manifests-"),
        server_error(true),
        4,
    );
    let report = h.deploy("v2").await;
    // Written, unanswered: a record is bookkeeping, so nothing was deployed, truly, and
    // there is no rollout to look for on the platform.
    let Outcome::FailedBeforeDeploy { stage, .. } = &report.outcome else {
        panic!("{:?}", report.outcome);
    };
    assert_eq!(*stage, Stage::Deploy);
    assert!(
        report.stages.iter().all(|s| s.stage != Stage::Reconcile),
        "{:?}",
        report.stages
    );
    assert_eq!(h.image(), format!("{REPO}:v1"));
    let template = h
        .cluster
        .running
        .handle()
        .get("Deployment", "kyb", "web")
        .unwrap();
    assert_eq!(template["metadata"]["generation"], 1, "{template:#}");
}

#[tokio::test]
async fn an_object_refused_after_the_deployment_was_written_is_no_claim_of_nothing_deployed() {
    let h = harness().await;
    let proxy = h.cluster.proxy.as_ref().unwrap();
    // The PodDisruptionBudget comes after the Deployment; an admission webhook refuses it.
    proxy.add(
        RequestMatch::method("PATCH")
            .and_path_prefix("/apis/policy/v1/namespaces/kyb/poddisruptionbudgets/web"),
        Fault::Refuse {
            status: 422,
            body: serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                "message": "admission webhook denied the request", "reason": "Invalid", "code": 422})
            .to_string(),
        },
        1,
    );
    let report = h.deploy("v2").await;
    // v2 was written: the run follows it (and verifies it) rather than claiming nothing.
    assert!(
        !matches!(report.outcome, Outcome::FailedBeforeDeploy { .. }),
        "{:?}",
        report.outcome
    );
    succeeded(&h, &report, "v2");
    assert_eq!(h.image(), format!("{REPO}:v2"));
}

#[tokio::test]
async fn a_storm_of_write_conflicts_is_survived_with_one_rollout() {
    let h = harness().await;
    h.cluster
        .running
        .handle()
        .add_fault(kyb_deploy_testkit::k8s_sim::Fault::conflicts("PATCH", 3));
    let report = h.deploy("v2").await;
    succeeded(&h, &report, "v2");
    let deployment = h
        .cluster
        .running
        .handle()
        .get("Deployment", "kyb", "web")
        .unwrap();
    // One rollout per release: v1 was revision 1, v2 is revision 2.
    assert_eq!(
        deployment["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "2",
        "{deployment:#}"
    );
}

#[tokio::test]
async fn a_slow_api_server_with_server_errors_gives_one_rollout_and_a_true_verdict() {
    let h = harness().await;
    let sim = h.cluster.running.handle();
    sim.add_fault(SimFault::latency(
        "*",
        std::time::Duration::from_millis(150),
    ));
    sim.add_fault(SimFault::server_errors("PATCH", 2));
    let report = h.deploy("v2").await;
    succeeded(&h, &report, "v2");
    let deployment = sim.get("Deployment", "kyb", "web").unwrap();
    assert_eq!(
        deployment["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "2",
        "{deployment:#}"
    );
    // And a release that cannot start is still found out, slowly answered or not.
    sim.add_fault(SimFault::image_pull_backoff(format!("{REPO}:v3")));
    let report = h.deploy("v3").await;
    assert!(
        matches!(report.outcome, Outcome::RolledBack { .. }),
        "{:?}",
        report.outcome
    );
    assert_eq!(h.image(), format!("{REPO}:v2"));
}
