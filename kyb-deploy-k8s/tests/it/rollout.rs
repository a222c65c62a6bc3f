//! Following rollouts on the simulator: the watches see a rollout through to its end, fail
//! fast on pods that cannot start, give the deadline's verdict, survive disconnects, and
//! stop at once when cancelled.

use std::time::Duration;

use kyb_deploy_k8s::{
    AppliedRelease, ApplyMode, RolloutEnd, RolloutFailure, RolloutScope, apply_all, label_value,
};
use kyb_deploy_testkit::k8s_sim::Fault;
use tokio_util::sync::CancellationToken;

use super::{Cluster, manifests, release, settings};

fn scope() -> RolloutScope {
    RolloutScope {
        namespace: "kyb".into(),
        name: "web".into(),
        selector: "app.kubernetes.io/name=web".into(),
    }
}

/// Applies the built-in manifests of `version` (fast probes) and returns what to follow.
async fn deploy(c: &Cluster, version: &str, extra: &str) -> AppliedRelease {
    let s = settings(&format!(
        "[probes.readiness]\npath = \"/ready\"\ninitial_delay = \"1s\"\nperiod = \"1s\"\ntimeout = \"1s\"\nfailure_threshold = 3\n{extra}"
    ));
    let applied = apply_all(
        &c.client,
        &manifests(&s, &release(version)),
        ApplyMode::default(),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let deployment = applied.iter().find(|o| o["kind"] == "Deployment").unwrap();
    AppliedRelease {
        version: label_value(version),
        generation: deployment["metadata"]["generation"].as_i64().unwrap(),
    }
}

async fn follow(c: &Cluster, rollout: &AppliedRelease) -> (RolloutEnd, Vec<String>) {
    let mut seen = Vec::new();
    let end = tokio::time::timeout(
        Duration::from_secs(120),
        kyb_deploy_k8s::follow_rollout(
            &c.client,
            &scope(),
            rollout,
            |waiting| seen.push(waiting.to_string()),
            &CancellationToken::new(),
        ),
    )
    .await
    .expect("the rollout never ended")
    .unwrap_or_else(|e| panic!("{e}"));
    (end, seen)
}

#[tokio::test]
async fn a_rollout_is_followed_to_completion_and_an_update_to_its_own() {
    let c = Cluster::start().await;
    let first = deploy(&c, "v1", "").await;
    let (end, seen) = follow(&c, &first).await;
    assert_eq!(end, RolloutEnd::Complete, "{seen:?}");
    let second = deploy(&c, "v2", "").await;
    let (end, seen) = follow(&c, &second).await;
    assert_eq!(end, RolloutEnd::Complete);
    assert!(!seen.is_empty(), "an update waits for its replicas");
    // The simulator agrees: every pod runs v2.
    let pods = c.running.handle().list("Pod", "kyb");
    assert!(!pods.is_empty());
    for pod in &pods {
        assert_eq!(
            pod["spec"]["containers"][0]["image"], "registry.test/web:v2",
            "{pod:#}"
        );
    }
}

#[tokio::test]
async fn pods_that_cannot_pull_their_image_fail_the_rollout_fast_quoting_the_kubelet() {
    let c = Cluster::start().await;
    c.running
        .handle()
        .add_fault(Fault::image_pull_backoff("registry.test/web:v1"));
    let rollout = deploy(&c, "v1", "").await;
    let (end, _) = follow(&c, &rollout).await;
    let RolloutEnd::Failed(RolloutFailure::PodsDoomed(pods)) = end else {
        panic!("expected doomed pods, got {end:?}");
    };
    assert_eq!(pods.len(), 2, "{pods:?}");
    assert!(
        pods.iter()
            .all(|p| ["ErrImagePull", "ImagePullBackOff"].contains(&p.reason.as_str())),
        "{pods:?}"
    );
}

#[tokio::test]
async fn a_crash_loop_fails_the_rollout() {
    let c = Cluster::start().await;
    c.running
        .handle()
        .add_fault(Fault::crash_loop("registry.test/web:v1", 3));
    let rollout = deploy(&c, "v1", "").await;
    let (end, _) = follow(&c, &rollout).await;
    let RolloutEnd::Failed(RolloutFailure::PodsDoomed(pods)) = end else {
        panic!("expected doomed pods, got {end:?}");
    };
    assert!(
        pods.iter().all(|p| p.reason == "CrashLoopBackOff"),
        "{pods:?}"
    );
}

#[tokio::test]
async fn pods_that_never_get_ready_meet_the_progress_deadline() {
    let c = Cluster::start().await;
    c.running
        .handle()
        .add_fault(Fault::never_ready("registry.test/web:v1"));
    let rollout = deploy(&c, "v1", "[rollout]\nprogress_deadline = \"30s\"").await;
    let (end, _) = follow(&c, &rollout).await;
    let RolloutEnd::Failed(RolloutFailure::ProgressDeadlineExceeded { message }) = end else {
        panic!("expected the deadline, got {end:?}");
    };
    assert!(message.contains("progress"), "{message}");
}

#[tokio::test]
async fn watches_cut_short_resume_without_a_false_verdict() {
    let c = Cluster::start().await;
    c.running
        .handle()
        .add_fault(Fault::watch_disconnect_after(Duration::from_millis(150)));
    let rollout = deploy(&c, "v1", "").await;
    let (end, _) = follow(&c, &rollout).await;
    assert_eq!(end, RolloutEnd::Complete);
}

#[tokio::test]
async fn cancelling_stops_following_at_once() {
    let c = Cluster::start().await;
    c.running
        .handle()
        .add_fault(Fault::never_ready("registry.test/web:v1"));
    let rollout = deploy(&c, "v1", "").await;
    let cancel = CancellationToken::new();
    let cancelled = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        cancelled.cancel();
    });
    let result = tokio::time::timeout(
        Duration::from_secs(30),
        kyb_deploy_k8s::follow_rollout(&c.client, &scope(), &rollout, |_| {}, &cancel),
    )
    .await
    .expect("cancel was not honoured");
    assert!(
        matches!(result, Err(kyb_deploy_k8s::Error::Cancelled)),
        "{result:?}"
    );
}
