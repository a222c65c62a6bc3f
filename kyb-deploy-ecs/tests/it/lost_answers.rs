//! Writes that ECS applied but whose answers never arrived, injected by a fault proxy between
//! the target and the simulator. The run's claim is compared with what the simulator runs
//! afterwards: a run never says "nothing was deployed" while ECS rolls the release out.

use kyb_deploy_core::{Outcome, RecordStatus, Stage};
use kyb_deploy_testkit::RequestMatch;
use kyb_deploy_testkit::{Fault, FaultProxy, ScriptedProbe};

use crate::support::*;

fn operation(name: &str) -> RequestMatch {
    RequestMatch::header("x-amz-target", &format!(".{name}"))
}

/// UpdateService calls that the simulator applied (status 200 in its own log).
fn applied_updates(h: &Harness) -> usize {
    h.sim
        .handle()
        .request_log()
        .iter()
        .filter(|r| r.operation == "UpdateService" && r.status == 200)
        .count()
}

async fn behind_proxy(initial: &str, probe: ScriptedProbe) -> (Harness, FaultProxy) {
    let h = Harness::new(sim(), initial, probe).await;
    let proxy = FaultProxy::start(h.sim.addr()).await.unwrap();
    let h = h.through(&proxy.url());
    (h, proxy)
}

/// Two UpdateService attempts refused with 500, then a third that ECS applies but answers
/// with 500: the run finds the deployment, follows it and verifies it.
#[tokio::test]
async fn an_update_applied_on_the_last_attempt_but_answered_500_is_followed() {
    let (h, proxy) = behind_proxy("v1", ScriptedProbe::new()).await;
    proxy.add(
        operation("UpdateService"),
        Fault::refuse_with_server_error(),
        2,
    );
    proxy.add(
        operation("UpdateService"),
        Fault::apply_then_server_error(),
        1,
    );

    let report = h.deploy("v2").await;

    assert!(
        matches!(&report.outcome, Outcome::Succeeded { release, .. } if release.version == version("v2")),
        "{:?}",
        report.outcome
    );
    assert_eq!(h.record(&report).status, RecordStatus::Succeeded);
    assert_eq!(applied_updates(&h), 1, "exactly one UpdateService applied");
    assert_eq!(h.running_image().await, image("v2"));
    let rollout = report.rollout_id.clone().unwrap();
    assert_eq!(
        h.service_state()["deployments"][0]["id"],
        rollout.as_str(),
        "the run followed the deployment ECS started"
    );
}

/// An UpdateService applied whose connection dropped, and the "did it apply?" reads failing
/// for a while: the run keeps asking and follows the deployment once ECS answers.
#[tokio::test]
async fn a_dropped_update_with_failing_reads_is_found_once_ecs_answers() {
    let (h, proxy) = behind_proxy("v1", ScriptedProbe::new()).await;
    proxy.add(operation("UpdateService"), Fault::ApplyThenDrop, 1);
    // The target's own check and the pipeline's first lookups fail (each DescribeServices
    // is retried by the SDK three times).
    proxy.add_after(
        operation("UpdateService"),
        operation("DescribeServices"),
        Fault::refuse_with_server_error(),
        9,
    );

    let report = h.deploy("v2").await;

    assert!(report.outcome.is_success(), "{:?}", report.outcome);
    assert!(
        report.stages.iter().any(|s| s.stage == Stage::Reconcile),
        "{:?}",
        report.stages
    );
    assert_eq!(applied_updates(&h), 1);
    assert_eq!(h.running_image().await, image("v2"));
}

/// The update is applied but ECS cannot be read at all afterwards: the run cannot know, and
/// says the environment needs attention; the ledger never says `failed_before_deploy` while
/// ECS rolls the release out.
#[tokio::test]
async fn a_dropped_update_with_ecs_unreadable_needs_attention() {
    let (h, proxy) = behind_proxy("v1", ScriptedProbe::new()).await;
    proxy.add(operation("UpdateService"), Fault::ApplyThenDrop, 1);
    proxy.add_after(
        operation("UpdateService"),
        operation("DescribeServices"),
        Fault::refuse_with_server_error(),
        u32::MAX,
    );

    let report = h.deploy("v2").await;

    match &report.outcome {
        Outcome::RollbackFailed {
            stage,
            rollback_error,
            ..
        } => {
            assert_eq!(*stage, Stage::Deploy);
            assert!(rollback_error.contains("is unknown"), "{rollback_error}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(h.record(&report).status, RecordStatus::RollbackFailed);
    // What the platform really did: the release is rolling out.
    assert_eq!(applied_updates(&h), 1);
    proxy.clear();
    wait_steady(&h.sim).await;
    assert_eq!(h.running_image().await, image("v2"));
}

/// A RegisterTaskDefinition refused ambiguously every time never reaches UpdateService: the
/// run says nothing was deployed, and ECS agrees.
#[tokio::test]
async fn ambiguous_refusals_before_any_update_deploy_nothing() {
    let (h, proxy) = behind_proxy("v1", ScriptedProbe::new()).await;
    proxy.add(
        operation("RegisterTaskDefinition"),
        Fault::refuse_with_server_error(),
        u32::MAX,
    );

    let report = h.deploy("v2").await;

    assert!(
        matches!(
            &report.outcome,
            Outcome::FailedBeforeDeploy {
                stage: Stage::Deploy,
                ..
            }
        ),
        "{:?}",
        report.outcome
    );
    assert_eq!(applied_updates(&h), 0);
    assert_eq!(h.running_image().await, image("v1"));
}
