//! The target's own calls: plan, deploy and wait, rollback, history.

use std::time::Duration;

use kyb_deploy_core::{CancellationToken, RolloutOutcome, Stage, StageProgress, Target as _};
use kyb_deploy_testkit::ecs_sim::Fault;

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

#[tokio::test]
async fn redeploying_the_running_release_registers_nothing_and_completes_at_once() {
    let sim = serve(sim().time_scale(TIME_SCALE).seed(2)).await;
    service_running(&sim, "v1").await;
    let target = target(&sim, &environment(""), true);
    let first = target.deploy(&release("v2")).await.unwrap();
    let progress = StageProgress::discard(Stage::Wait);
    let cancel = CancellationToken::new();
    assert_eq!(
        target.wait(&first, &progress, &cancel).await.unwrap(),
        RolloutOutcome::Completed
    );
    sim.handle().clear_request_log();

    let plan = target.plan(&release("v2")).await.unwrap();
    assert!(plan.changes.is_empty(), "{plan:#?}");
    let again = target.deploy(&release("v2")).await.unwrap();
    assert_eq!(again.rollout_id, first.rollout_id, "no new deployment");
    assert_eq!(again.release.platform_ref, first.release.platform_ref);
    assert_eq!(
        target.wait(&again, &progress, &cancel).await.unwrap(),
        RolloutOutcome::Completed
    );
    let counts = sim.handle().operation_counts();
    assert_eq!(counts.get("RegisterTaskDefinition"), None, "{counts:?}");
}

#[tokio::test]
async fn server_errors_on_writes_are_checked_before_repeating_them() {
    let sim = serve(sim().time_scale(TIME_SCALE).seed(3)).await;
    service_running(&sim, "v1").await;
    let target = target(&sim, &environment(""), true);
    sim.handle().clear_request_log();
    sim.handle()
        .add_fault(Fault::server_errors(2).on_operation("RegisterTaskDefinition"));
    sim.handle()
        .add_fault(Fault::server_errors(2).on_operation("UpdateService"));

    let handle = target.deploy(&release("v2")).await.unwrap();
    let outcome = target
        .wait(
            &handle,
            &StageProgress::discard(Stage::Wait),
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(outcome, RolloutOutcome::Completed);
    let log = sim.handle().request_log();
    let count = |operation: &str, status: u16| {
        log.iter()
            .filter(|r| r.operation == operation && r.status == status)
            .count()
    };
    assert_eq!(count("RegisterTaskDefinition", 500), 2, "{log:?}");
    assert_eq!(count("RegisterTaskDefinition", 200), 1, "{log:?}");
    assert_eq!(count("UpdateService", 500), 2, "{log:?}");
    assert_eq!(count("UpdateService", 200), 1, "{log:?}");
    let service = &client(&sim)
        .describe_services()
        .cluster(CLUSTER)
        .services(SERVICE)
        .send()
        .await
        .unwrap()
        .services()[0]
        .clone();
    assert!(
        service
            .task_definition()
            .unwrap()
            .ends_with(":task-definition/kyb-api:2"),
        "{service:?}"
    );
}

#[tokio::test]
async fn a_deployment_replaced_by_someone_else_is_a_failure() {
    let sim = serve(
        sim()
            .time_scale(TIME_SCALE)
            .seed(4)
            .fault(Fault::slow_start(image("v2"), Duration::from_secs(3600))),
    )
    .await;
    service_running(&sim, "v1").await;
    let target = target(&sim, &environment(""), true);
    let handle = target.deploy(&release("v2")).await.unwrap();
    let c = client(&sim);
    // Someone else points the service back at revision 1 while v2 rolls out.
    c.update_service()
        .cluster(CLUSTER)
        .service(SERVICE)
        .task_definition(format!("{FAMILY}:1"))
        .send()
        .await
        .unwrap();
    let outcome = target
        .wait(
            &handle,
            &StageProgress::discard(Stage::Wait),
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    let RolloutOutcome::Failed {
        reason,
        platform_rolled_back_to,
    } = outcome
    else {
        panic!("{outcome:?}");
    };
    assert!(reason.contains("was replaced by"), "{reason}");
    assert!(reason.contains(":task-definition/kyb-api:1"), "{reason}");
    assert_eq!(platform_rolled_back_to, None);
}

#[tokio::test]
async fn without_ecs_rollback_a_tripped_breaker_is_a_plain_failure_with_its_reasons() {
    let sim = serve(
        sim()
            .time_scale(TIME_SCALE)
            .seed(5)
            .fault(Fault::essential_exit(
                image("v2"),
                3,
                Duration::from_secs(2),
            )),
    )
    .await;
    service_running(&sim, "v1").await;
    let env = environment_with_ecs(
        "[environments.staging.ecs.deployment]\ncircuit_breaker_rollback = false",
    );
    let target = target(&sim, &env, true);
    let (sink, mut events) = kyb_deploy_core::EventSink::new().channel();
    let handle = target.deploy(&release("v2")).await.unwrap();
    let outcome = target
        .wait(
            &handle,
            &sink.for_stage(Stage::Wait),
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    let RolloutOutcome::Failed {
        reason,
        platform_rolled_back_to,
    } = outcome
    else {
        panic!("{outcome:?}");
    };
    assert_eq!(
        platform_rolled_back_to, None,
        "ECS was told not to roll back"
    );
    assert!(reason.contains("circuit breaker"), "{reason}");
    assert!(reason.contains("exit code 3"), "{reason}");
    let mut lines = Vec::new();
    while let Ok(event) = events.try_recv() {
        if let kyb_deploy_core::Event::Log { line, .. } = event {
            lines.push(line);
        }
    }
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("event: ") && l.contains("has started 2 tasks")),
        "service events are streamed: {lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("task ") && l.contains("stopped: ")),
        "stopped tasks are streamed: {lines:#?}"
    );
}

#[tokio::test]
async fn history_lists_revisions_newest_first_and_status_describes_the_rollout() {
    let sim = serve(sim().time_scale(TIME_SCALE).seed(6)).await;
    service_running(&sim, "v1").await;
    let target = target(&sim, &environment(""), true);
    for v in ["v2", "v3"] {
        let handle = target.deploy(&release(v)).await.unwrap();
        target
            .wait(
                &handle,
                &StageProgress::discard(Stage::Wait),
                &CancellationToken::new(),
            )
            .await
            .unwrap();
    }
    let history = target.history().await.unwrap();
    let versions: Vec<&str> = history.iter().map(|r| r.release.version.as_str()).collect();
    assert_eq!(versions, ["v3", "v2", "v1"]);
    let active: Vec<bool> = history.iter().map(|r| r.active).collect();
    assert_eq!(active, [true, false, false]);
    assert!(history.iter().all(|r| r.deployed_at.is_some()));

    let description = target.describe().await.unwrap();
    assert_eq!(
        description.name,
        format!("service {SERVICE} in cluster {CLUSTER}")
    );
    let detail = |key: &str| {
        description
            .details
            .iter()
            .find(|(k, _)| k.starts_with(key))
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {key} in {:#?}", description.details))
    };
    assert_eq!(detail("version"), "v3");
    assert_eq!(detail("tasks"), "2 running, 0 pending, 2 desired");
    assert!(detail("deployment ecs-svc/").starts_with("PRIMARY COMPLETED, 2 of 2 running"));
    assert!(
        detail("event ").contains("steady state"),
        "{:#?}",
        description.details
    );
}

#[tokio::test]
async fn fargate_size_errors_are_found_before_any_call() {
    let dir = tempfile::tempdir().unwrap();
    let bad = TEMPLATE.replace("\"memory\": \"512\"", "\"memory\": \"4096\"");
    std::fs::write(dir.path().join("td.json"), bad).unwrap();
    let env = environment_with_ecs("task_definition = \"td.json\"\ncontainer = \"api\"");
    let err = kyb_deploy_ecs::EcsTargetSpec::from_environment(&env, dir.path()).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("td.json"), "{message}");
    assert!(
        message.contains("Fargate does not offer cpu 256 with memory 4096 MiB; with cpu 256 use memory 512, 1024, 2048"),
        "{message}"
    );
    assert!(err.is_usage(), "a configuration error: {err:?}");
}

/// A rollout whose tasks never start: ECS calls the new deployment PRIMARY while the old
/// one still serves every request. `serving` reports both with their counts, so `status`
/// can say what answers rather than what was asked for.
#[tokio::test]
async fn serving_reports_every_deployment_with_its_counts_not_just_the_primary() {
    let sim = serve(
        sim()
            .time_scale(TIME_SCALE)
            .seed(8)
            .fault(Fault::fail_to_start(
                image("v2"),
                "CannotPullContainerError",
            )),
    )
    .await;
    service_running(&sim, "v1").await;
    let env = environment_with_ecs(
        "[environments.staging.ecs.deployment]\ncircuit_breaker_rollback = false",
    );
    let target = target(&sim, &env, true);
    let before = target.serving().await.unwrap();
    assert_eq!(before.len(), 1, "{before:#?}");
    assert_eq!(before[0].release.version.as_str(), "v1");
    assert_eq!((before[0].running, before[0].desired), (Some(2), Some(2)));
    assert!(before[0].primary && before[0].answers());

    target.deploy(&release("v2")).await.unwrap();
    let during = target.serving().await.unwrap();
    let versions: Vec<&str> = during.iter().map(|s| s.release.version.as_str()).collect();
    assert_eq!(versions, ["v2", "v1"], "{during:#?}");
    let (new, old) = (&during[0], &during[1]);
    assert!(new.primary, "{new:#?}");
    assert_eq!(new.running, Some(0), "{new:#?}");
    assert!(!new.answers());
    assert!(!old.primary, "{old:#?}");
    assert_eq!(old.running, Some(2), "{old:#?}");
    assert!(old.answers());
    assert_eq!(new.state.as_deref(), Some("IN_PROGRESS"));
}
