use serde_json::json;

use super::*;
use crate::verdict::DoomedPod;

fn deployment(annotations: serde_json::Value, labels: serde_json::Value) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": "web", "annotations": {"deployment.kubernetes.io/revision": "3"}},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {
            "metadata": {"annotations": annotations, "labels": labels},
            "spec": {"containers": [{"name": "web", "image": "r/web@sha256:1"}]}}},
    }))
    .unwrap()
}

#[test]
fn a_template_runs_the_exact_version_of_its_annotation_else_its_label() {
    let exact = deployment(
        json!({"kyb-deploy.io/version": "v1.2.3"}),
        json!({"app.kubernetes.io/version": "shortened-abc"}),
    );
    let release = release_of_deployment(&exact).unwrap();
    assert_eq!(release.version.as_str(), "v1.2.3");
    assert_eq!(release.image, "r/web@sha256:1");
    assert_eq!(release.platform_ref.as_deref(), Some("revision 3"));
    let labelled = deployment(json!({}), json!({"app.kubernetes.io/version": "v9"}));
    assert_eq!(
        release_of_deployment(&labelled).unwrap().version.as_str(),
        "v9"
    );
    // Not ours: no version at all.
    assert_eq!(
        release_of_deployment(&deployment(json!({}), json!({}))),
        None
    );
}

#[test]
fn a_failed_rollout_reads_as_what_failed_and_what_was_said() {
    let d = "Deployment kyb/web";
    let doomed = |pod: &str, message: Option<&str>| DoomedPod {
        pod: pod.into(),
        container: "web".into(),
        reason: "ImagePullBackOff".into(),
        message: message.map(str::to_owned),
    };
    let cases = [
        (
            RolloutFailure::ProgressDeadlineExceeded {
                message: "ReplicaSet \"web-2\" has timed out progressing.".into(),
            },
            "Deployment kyb/web exceeded its progress deadline: ReplicaSet \"web-2\" has timed out progressing.",
        ),
        (
            RolloutFailure::PodsDoomed(vec![
                doomed("web-2-a", Some("Back-off pulling image")),
                doomed("web-2-b", None),
            ]),
            "no pod of the new ReplicaSet of Deployment kyb/web can start: pod web-2-a container web: ImagePullBackOff: Back-off pulling image (and 1 more pods)",
        ),
        (
            RolloutFailure::PodsDoomed(vec![doomed("web-2-a", None)]),
            "no pod of the new ReplicaSet of Deployment kyb/web can start: pod web-2-a container web: ImagePullBackOff",
        ),
        (
            RolloutFailure::Paused,
            "Deployment kyb/web is paused and will not roll out; resume it (kubectl rollout resume) or deploy again",
        ),
        (
            RolloutFailure::Replaced {
                by: Some("v9".into()),
            },
            "another release (v9) replaced this one in Deployment kyb/web while it rolled out",
        ),
        (
            RolloutFailure::Replaced { by: None },
            "another release (without a version label) replaced this one in Deployment kyb/web while it rolled out",
        ),
    ];
    for (failure, expected) in cases {
        assert_eq!(failure_reason(d, &failure), expected);
    }
}
