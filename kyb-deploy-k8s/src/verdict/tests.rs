use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};

use super::*;

const UID: &str = "deployment-uid";

fn release() -> AppliedRelease {
    AppliedRelease {
        version: "v2".into(),
        generation: 4,
    }
}

/// The counts of a Deployment's status.
#[derive(Clone, Copy)]
struct Counts {
    replicas: i32,
    updated: i32,
    available: i32,
}

const DONE: Counts = Counts {
    replicas: 3,
    updated: 3,
    available: 3,
};

/// A Deployment of 3 replicas with the template of `version` at generation 4, revision 2,
/// observed at `observed`, with `counts` and the `Progressing` reason `progressing`.
fn deployment(version: &str, observed: i64, counts: Counts, progressing: &str) -> Value {
    json!({
        "metadata": {"name": "web", "uid": UID, "generation": 4,
            "annotations": {"deployment.kubernetes.io/revision": "2"}},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web", "app.kubernetes.io/version": version}}},
        },
        "status": {
            "observedGeneration": observed,
            "replicas": counts.replicas,
            "updatedReplicas": counts.updated,
            "availableReplicas": counts.available,
            "conditions": [{"type": "Progressing", "status": "True", "reason": progressing,
                "message": format!("ReplicaSet \"web-2\" {progressing}")}],
        },
    })
}

/// ReplicaSet `name` of revision `revision` with the template of `version`, controlled by
/// the Deployment.
fn replica_set(name: &str, revision: &str, version: &str) -> ReplicaSet {
    from(json!({
        "metadata": {"name": name, "uid": format!("{name}-uid"),
            "annotations": {"deployment.kubernetes.io/revision": revision},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                "uid": UID, "controller": true}]},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web", "app.kubernetes.io/version": version}}}},
    }))
}

/// Pod `name` of ReplicaSet `set` with its container in `state`.
fn pod(name: &str, set: &str, state: Value) -> Pod {
    from(json!({
        "metadata": {"name": name, "ownerReferences": [{"apiVersion": "apps/v1",
            "kind": "ReplicaSet", "name": set, "uid": format!("{set}-uid"), "controller": true}]},
        "status": {"containerStatuses": [{"name": "api", "image": "x", "imageID": "",
            "ready": false, "restartCount": 3, "state": state}]},
    }))
}

fn waiting(reason: &str, message: &str) -> Value {
    json!({"waiting": {"reason": reason, "message": message}})
}

fn running() -> Value {
    json!({"running": {"startedAt": "2026-01-01T00:00:00Z"}})
}

fn from<T: serde::de::DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).unwrap()
}

/// The two ReplicaSets of a rollout from v1 to v2.
fn sets() -> Vec<ReplicaSet> {
    vec![
        replica_set("web-1", "1", "v1"),
        replica_set("web-2", "2", "v2"),
    ]
}

fn judge(deployment: Value, sets: &[ReplicaSet], pods: &[Pod]) -> RolloutVerdict {
    let deployment: Deployment = from(deployment);
    judge_rollout(&release(), &deployment, sets, pods)
}

fn doomed(pod: &str, reason: &str, message: &str) -> DoomedPod {
    DoomedPod {
        pod: pod.into(),
        container: "api".into(),
        reason: reason.into(),
        message: Some(message.into()),
    }
}

#[test]
fn kubectls_rules_in_order() {
    let progressing = "ReplicaSetUpdated";
    let cases = [
        (
            "complete",
            deployment("v2", 4, DONE, "NewReplicaSetAvailable"),
            RolloutVerdict::Complete,
        ),
        (
            "spec not observed",
            deployment("v2", 3, DONE, "NewReplicaSetAvailable"),
            RolloutVerdict::InProgress(Waiting::SpecNotObserved),
        ),
        (
            "updating",
            deployment(
                "v2",
                4,
                Counts {
                    replicas: 4,
                    updated: 1,
                    available: 3,
                },
                progressing,
            ),
            RolloutVerdict::InProgress(Waiting::Updating {
                updated: 1,
                desired: 3,
            }),
        ),
        (
            "old replicas left",
            deployment(
                "v2",
                4,
                Counts {
                    replicas: 5,
                    updated: 3,
                    available: 3,
                },
                progressing,
            ),
            RolloutVerdict::InProgress(Waiting::OldReplicasPending { count: 2 }),
        ),
        (
            "not all available",
            deployment(
                "v2",
                4,
                Counts {
                    replicas: 3,
                    updated: 3,
                    available: 2,
                },
                progressing,
            ),
            RolloutVerdict::InProgress(Waiting::Available {
                available: 2,
                updated: 3,
            }),
        ),
        (
            "deadline",
            deployment(
                "v2",
                4,
                Counts {
                    replicas: 4,
                    updated: 1,
                    available: 3,
                },
                DEADLINE,
            ),
            RolloutVerdict::Failed(RolloutFailure::ProgressDeadlineExceeded {
                message: "ReplicaSet \"web-2\" ProgressDeadlineExceeded".into(),
            }),
        ),
        (
            "another version in the template",
            deployment("v3", 4, DONE, "NewReplicaSetAvailable"),
            RolloutVerdict::Failed(RolloutFailure::Replaced {
                by: Some("v3".into()),
            }),
        ),
    ];
    for (name, deployment, expected) in cases {
        assert_eq!(judge(deployment, &sets(), &[]), expected, "{name}");
    }
}

#[test]
fn the_controller_must_have_seen_our_generation_not_only_the_current_one() {
    // The view is older than our apply: generation 3 is observed, ours is 4.
    let mut view = deployment("v2", 3, DONE, "NewReplicaSetAvailable");
    view["metadata"]["generation"] = json!(3);
    assert_eq!(
        judge(view, &sets(), &[]),
        RolloutVerdict::InProgress(Waiting::SpecNotObserved)
    );
}

#[test]
fn a_later_spec_change_must_be_observed_too() {
    // Someone changed the spec after our apply (generation 5), keeping our template: the
    // status (of generation 4) does not describe the Deployment as it is.
    let mut view = deployment("v2", 4, DONE, "NewReplicaSetAvailable");
    view["metadata"]["generation"] = json!(5);
    assert_eq!(
        judge(view, &sets(), &[]),
        RolloutVerdict::InProgress(Waiting::SpecNotObserved)
    );
}

#[test]
fn completion_needs_the_new_replica_set_and_it_must_be_ours() {
    let view = || deployment("v2", 4, DONE, "NewReplicaSetAvailable");
    // Not in the view yet (its watch lags the Deployment's).
    assert_eq!(
        judge(view(), &[replica_set("web-1", "1", "v1")], &[]),
        RolloutVerdict::InProgress(Waiting::NewReplicaSetUnseen)
    );
    // Of another Deployment (another owner uid): not ours either.
    let mut foreign = replica_set("web-2", "2", "v2");
    foreign.metadata.owner_references.as_mut().unwrap()[0].uid = "other".into();
    assert_eq!(
        judge(view(), &[foreign], &[]),
        RolloutVerdict::InProgress(Waiting::NewReplicaSetUnseen)
    );
    // Revision 2 runs another version: someone replaced our template in between.
    assert_eq!(
        judge(view(), &[replica_set("web-2", "2", "v9")], &[]),
        RolloutVerdict::Failed(RolloutFailure::Replaced {
            by: Some("v9".into())
        })
    );
}

#[test]
fn a_paused_deployment_fails_unless_already_complete() {
    let mut paused = deployment(
        "v2",
        4,
        Counts {
            replicas: 3,
            updated: 1,
            available: 3,
        },
        "DeploymentPaused",
    );
    paused["spec"]["paused"] = json!(true);
    assert_eq!(
        judge(paused.clone(), &sets(), &[]),
        RolloutVerdict::Failed(RolloutFailure::Paused)
    );
    paused["status"]["updatedReplicas"] = json!(3);
    assert_eq!(
        judge(paused.clone(), &sets(), &[]),
        RolloutVerdict::Complete
    );

    // The view a paused Deployment really gives: our template applied, but no ReplicaSet
    // made for it (the revision is still the old one's): paused, not replaced.
    paused["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = json!("1");
    paused["status"]["updatedReplicas"] = json!(0);
    assert_eq!(
        judge(paused, &[replica_set("web-1", "1", "v1")], &[]),
        RolloutVerdict::Failed(RolloutFailure::Paused)
    );
}

#[test]
fn a_deadline_left_over_from_another_replica_set_is_not_this_rollouts() {
    // Back to revision 2's ReplicaSet after web-3 timed out: the condition still names
    // web-3 until the controller moves on.
    let view = deployment(
        "v2",
        4,
        Counts {
            replicas: 3,
            updated: 1,
            available: 3,
        },
        DEADLINE,
    );
    let mut stale = view.clone();
    stale["status"]["conditions"][0]["message"] =
        json!("ReplicaSet \"web-3\" has timed out progressing.");
    assert_eq!(
        judge(stale, &sets(), &[]),
        RolloutVerdict::InProgress(Waiting::Updating {
            updated: 1,
            desired: 3
        })
    );
    let mut ours = view;
    ours["status"]["conditions"][0]["message"] =
        json!("ReplicaSet \"web-2\" has timed out progressing.");
    assert!(matches!(
        judge(ours, &sets(), &[]),
        RolloutVerdict::Failed(RolloutFailure::ProgressDeadlineExceeded { .. })
    ));
}

#[test]
fn a_view_older_than_our_write_is_not_a_replacement() {
    // Our apply made generation 4 with v2; this view is of generation 3, still v1.
    let mut old = deployment("v1", 3, DONE, "NewReplicaSetAvailable");
    old["metadata"]["generation"] = json!(3);
    assert_eq!(
        judge(old, &sets(), &[]),
        RolloutVerdict::InProgress(Waiting::SpecNotObserved)
    );
}

#[test]
fn every_pod_of_the_new_replica_set_doomed_fails_fast_quoting_the_kubelet() {
    let view = || {
        deployment(
            "v2",
            4,
            Counts {
                replicas: 4,
                updated: 2,
                available: 3,
            },
            "ReplicaSetUpdated",
        )
    };
    let crash = waiting(
        "CrashLoopBackOff",
        "back-off 10s restarting failed container",
    );
    let pull = waiting("ImagePullBackOff", "Back-off pulling image \"r/web:v2\"");
    let pods = [
        pod("web-2-a", "web-2", crash.clone()),
        pod("web-2-b", "web-2", pull),
    ];
    assert_eq!(
        judge(view(), &sets(), &pods),
        RolloutVerdict::Failed(RolloutFailure::PodsDoomed(vec![
            doomed(
                "web-2-a",
                "CrashLoopBackOff",
                "back-off 10s restarting failed container"
            ),
            doomed(
                "web-2-b",
                "ImagePullBackOff",
                "Back-off pulling image \"r/web:v2\""
            ),
        ]))
    );

    // One pod that may still start is enough to keep waiting (the deadline decides).
    let mixed = [
        pod("web-2-a", "web-2", crash.clone()),
        pod("web-2-b", "web-2", running()),
    ];
    assert_eq!(
        judge(view(), &sets(), &mixed),
        RolloutVerdict::InProgress(Waiting::Updating {
            updated: 2,
            desired: 3
        })
    );
    // Old pods crashing are not the new release's fault; no pod at all is no verdict.
    let old = [pod("web-1-a", "web-1", crash)];
    assert_eq!(
        judge(view(), &sets(), &old),
        RolloutVerdict::InProgress(Waiting::Updating {
            updated: 2,
            desired: 3
        })
    );
}

#[test]
fn a_pull_error_dooms_a_pod_only_when_the_image_is_missing() {
    let view = || {
        deployment(
            "v2",
            4,
            Counts {
                replicas: 4,
                updated: 1,
                available: 3,
            },
            "ReplicaSetUpdated",
        )
    };
    let missing = "failed to pull image \"r/web:v2\": manifest unknown";
    let unreachable = "failed to pull image \"r/web:v2\": dial tcp: i/o timeout";
    assert_eq!(
        judge(
            view(),
            &sets(),
            &[pod("p", "web-2", waiting("ErrImagePull", missing))]
        ),
        RolloutVerdict::Failed(RolloutFailure::PodsDoomed(vec![doomed(
            "p",
            "ErrImagePull",
            missing
        )]))
    );
    assert!(matches!(
        judge(
            view(),
            &sets(),
            &[pod("p", "web-2", waiting("ErrImagePull", unreachable))]
        ),
        RolloutVerdict::InProgress(_)
    ));
    // A runtime that refused to run the container; a container that merely exited is not.
    let refused = json!({"terminated": {"exitCode": 128, "reason": "ContainerCannotRun",
        "message": "exec: \"/app\": permission denied"}});
    let exited = json!({"terminated": {"exitCode": 1, "reason": "Error"}});
    assert_eq!(
        judge(view(), &sets(), &[pod("p", "web-2", refused)]),
        RolloutVerdict::Failed(RolloutFailure::PodsDoomed(vec![doomed(
            "p",
            "ContainerCannotRun",
            "exec: \"/app\": permission denied"
        )]))
    );
    assert!(matches!(
        judge(view(), &sets(), &[pod("p", "web-2", exited)]),
        RolloutVerdict::InProgress(_)
    ));
    // A pod being deleted does not count either way.
    let mut leaving = pod("q", "web-2", running());
    leaving.metadata.deletion_timestamp = Some(from(json!("2026-01-01T00:00:00Z")));
    let config = waiting("CreateContainerConfigError", "secret \"db\" not found");
    assert_eq!(
        judge(view(), &sets(), &[leaving, pod("p", "web-2", config)]),
        RolloutVerdict::Failed(RolloutFailure::PodsDoomed(vec![doomed(
            "p",
            "CreateContainerConfigError",
            "secret \"db\" not found"
        )]))
    );
}

#[test]
fn waiting_reads_like_kubectl() {
    assert_eq!(
        Waiting::Updating {
            updated: 1,
            desired: 3
        }
        .to_string(),
        "1 out of 3 new replicas have been updated"
    );
    assert_eq!(
        Waiting::OldReplicasPending { count: 2 }.to_string(),
        "2 old replicas are pending termination"
    );
    assert_eq!(
        Waiting::Available {
            available: 2,
            updated: 3
        }
        .to_string(),
        "2 of 3 updated replicas are available"
    );
}
