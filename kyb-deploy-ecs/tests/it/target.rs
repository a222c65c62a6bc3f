//! The target's own calls: plan, deploy and wait, rollback, history.

use kyb_deploy_core::{CancellationToken, RolloutOutcome, Stage, StageProgress, Target as _};

use crate::support::*;

#[tokio::test]
async fn a_deploy_registers_once_updates_the_service_and_completes() {
    let sim = serve(sim().time_scale(TIME_SCALE).seed(1)).await;
    service_running(&sim, "v1").await;
    let target = target(&sim, &environment(""), true);
    sim.handle().clear_request_log();

    let handle = target.deploy(&release("v2")).await.unwrap();
    assert!(
        handle.rollout_id.starts_with("ecs-svc/"),
        "{}",
        handle.rollout_id
    );
    let arn = handle.release.platform_ref.clone().unwrap();
    assert!(arn.contains(":task-definition/kyb-api:2"), "{arn}");
    let outcome = target
        .wait(
            &handle,
            &StageProgress::discard(Stage::Wait),
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(outcome, RolloutOutcome::Completed);

    let counts = sim.handle().operation_counts();
    assert_eq!(counts.get("RegisterTaskDefinition"), Some(&1), "{counts:?}");
    assert_eq!(counts.get("UpdateService"), Some(&1), "{counts:?}");
    let current = target.current_release().await.unwrap().unwrap();
    assert_eq!(current.version, version("v2"));
    assert_eq!(current.image, image("v2"));
    assert_eq!(current.platform_ref.as_deref(), Some(arn.as_str()));
}
