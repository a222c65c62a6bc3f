//! Whole deployments through the pipeline against the simulator: each test checks the
//! outcome, the ledger, and the simulator's final state.

use std::time::Duration;

use kyb_deploy_core::{
    CancellationToken, Outcome, RecordStatus, RollbackRequest, RollbackSummary, RunControl, Stage,
};
use kyb_deploy_testkit::ScriptedProbe;
use kyb_deploy_testkit::ecs_sim::Fault;

use crate::support::*;

/// A successful run's record, checked.
fn assert_succeeded(h: &Harness, report: &kyb_deploy_core::RunReport, v: &str) -> String {
    assert!(
        matches!(&report.outcome, Outcome::Succeeded { release, .. } if release.version == version(v)),
        "{:?}",
        report.outcome
    );
    let record = h.record(report);
    assert_eq!(record.status, RecordStatus::Succeeded);
    assert!(record.rollout_id.unwrap().starts_with("ecs-svc/"));
    record.release.unwrap().platform_ref.unwrap()
}

#[tokio::test]
async fn a_deployment_reaches_completed_and_is_recorded() {
    let h = Harness::new(sim(), "v1", ScriptedProbe::new()).await;
    let report = h.deploy("v2").await;
    let arn = assert_succeeded(&h, &report, "v2");
    assert!(arn.contains(":task-definition/kyb-api:2"), "{arn}");
    assert_eq!(h.running_image().await, image("v2"));
    let service = h.service_state();
    assert_eq!(service["taskDefinition"], arn.as_str(), "{service:#}");
    assert_eq!(
        service["deployments"].as_array().unwrap().len(),
        1,
        "{service:#}"
    );
    assert_eq!(service["deployments"][0]["rolloutState"], "COMPLETED");
    assert_eq!(service["runningCount"], 2);
}

#[tokio::test]
async fn an_image_that_cannot_be_pulled_is_rolled_back_by_ecs_and_reported() {
    let h = Harness::new(
        sim().fault(Fault::fail_to_start(
            image("v2"),
            "CannotPullContainerError: pull image manifest has been retried 1 time(s): manifest unknown",
        )),
        "v1",
        ScriptedProbe::new(),
    )
    .await;
    let v1 = h.deploy("v1").await;
    let v1_arn = assert_succeeded(&h, &v1, "v1");
    h.sim.handle().clear_request_log();

    let report = h.deploy("v2").await;
    let Outcome::RolledBack {
        stage,
        reason,
        to,
        by_platform,
    } = &report.outcome
    else {
        panic!("{:?}", report.outcome);
    };
    assert_eq!(*stage, Stage::Wait);
    assert!(*by_platform, "ECS rolled back, not kyb-deploy");
    assert_eq!(to.version, version("v1"));
    assert!(reason.contains("circuit breaker"), "{reason}");
    assert!(reason.contains("CannotPullContainerError"), "{reason}");
    // kyb-deploy did not roll back a second time: one UpdateService, its own.
    assert_eq!(
        h.sim.handle().operation_counts().get("UpdateService"),
        Some(&1)
    );
    let record = h.record(&report);
    assert_eq!(record.status, RecordStatus::RolledBack);
    let service = h.service_state();
    assert_eq!(service["taskDefinition"], v1_arn.as_str(), "{service:#}");
    assert_eq!(h.running_image().await, image("v1"));
}

#[tokio::test]
async fn a_release_failing_verification_is_rolled_back_to_the_last_known_good() {
    let h = Harness::new(
        sim(),
        "v0",
        ScriptedProbe::new().fail_version("v3", "readiness", "GET /ready answered 503"),
    )
    .await;
    let v1_arn = assert_succeeded(&h, &h.deploy("v1").await, "v1");
    // v2 is the last known-good release when v3 fails.
    let v2 = h.deploy("v2").await;
    assert_succeeded(&h, &v2, "v2");

    let report = h.deploy("v3").await;
    let Outcome::RolledBack {
        stage,
        to,
        by_platform,
        ..
    } = &report.outcome
    else {
        panic!("{:?}", report.outcome);
    };
    assert_eq!(*stage, Stage::Verify);
    assert!(!by_platform);
    assert_eq!(to.version, version("v2"));
    let v2_arn = h.record(&v2).release.unwrap().platform_ref.unwrap();
    assert_ne!(v1_arn, v2_arn);
    // The rollback reused v2's task definition: no registration beyond v0 (the service's
    // first, registered by the set-up), v1, v2 and v3.
    let service = h.service_state();
    assert_eq!(service["taskDefinition"], v2_arn.as_str(), "{service:#}");
    assert_eq!(
        service["deployments"][0]["rolloutState"], "COMPLETED",
        "{service:#}"
    );
    assert_eq!(
        h.sim
            .handle()
            .operation_counts()
            .get("RegisterTaskDefinition"),
        Some(&4)
    );
    assert_eq!(h.record(&report).status, RecordStatus::RolledBack);
}

#[tokio::test]
async fn a_rollback_to_an_explicit_version_uses_its_task_definition() {
    let h = Harness::new(sim(), "v0", ScriptedProbe::new()).await;
    let v1_arn = assert_succeeded(&h, &h.deploy("v1").await, "v1");
    assert_succeeded(&h, &h.deploy("v2").await, "v2");
    h.sim.handle().clear_request_log();

    let request = RollbackRequest {
        environment: h.env.clone(),
        project: Default::default(),
        to: Some(version("v1")),
        project_dir: ".".into(),
        confirmed: true,
        dry_run: false,
    };
    let report = h
        .pipeline("v1")
        .rollback(&request, &RunControl::new(CancellationToken::new()))
        .await;
    assert!(
        matches!(&report.outcome, Outcome::Succeeded { release, .. } if release.version == version("v1")),
        "{:?}",
        report.outcome
    );
    let counts = h.sim.handle().operation_counts();
    assert_eq!(counts.get("RegisterTaskDefinition"), None, "{counts:?}");
    assert_eq!(counts.get("UpdateService"), Some(&1), "{counts:?}");
    assert_eq!(h.service_state()["taskDefinition"], v1_arn.as_str());
    assert_eq!(h.running_image().await, image("v1"));
}

#[tokio::test]
async fn a_rollout_that_outlasts_its_time_limit_times_out_and_rolls_back() {
    let mut h = Harness::new(
        sim().fault(Fault::slow_start(
            image("v2"),
            Duration::from_secs(24 * 3600),
        )),
        "v0",
        ScriptedProbe::new(),
    )
    .await;
    let v1_arn = assert_succeeded(&h, &h.deploy("v1").await, "v1");
    h.env.settings.timeouts.wait = Duration::from_millis(600);

    let report = h.deploy("v2").await;
    let Outcome::TimedOut { stage, rollback } = &report.outcome else {
        panic!("{:?}", report.outcome);
    };
    assert_eq!(*stage, Stage::Wait);
    assert!(
        matches!(rollback, Some(RollbackSummary::RolledBack { to }) if to.version == version("v1")),
        "{rollback:?}"
    );
    assert_eq!(h.record(&report).status, RecordStatus::TimedOut);
    assert_eq!(h.service_state()["taskDefinition"], v1_arn.as_str());
}

#[tokio::test]
async fn cancelling_during_the_rollout_stops_waiting_and_rolls_back() {
    let h = Harness::new(
        sim().fault(Fault::slow_start(
            image("v2"),
            Duration::from_secs(24 * 3600),
        )),
        "v0",
        ScriptedProbe::new(),
    )
    .await;
    let v1_arn = assert_succeeded(&h, &h.deploy("v1").await, "v1");
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    let handle = h.sim.handle().clone();
    tokio::spawn(async move {
        // Cancel once the v2 rollout is under way.
        for _ in 0..500 {
            if handle.operation_counts().get("UpdateService") == Some(&2) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        trigger.cancel();
    });
    let report = h
        .pipeline("v2")
        .deploy(&h.request(), &RunControl::new(cancel))
        .await;
    let Outcome::Cancelled { stage, rollback } = &report.outcome else {
        panic!("{:?}", report.outcome);
    };
    assert_eq!(*stage, Stage::Wait);
    assert!(
        matches!(rollback, Some(RollbackSummary::RolledBack { to }) if to.version == version("v1")),
        "{rollback:?}"
    );
    assert_eq!(h.record(&report).status, RecordStatus::Cancelled);
    assert_eq!(h.service_state()["taskDefinition"], v1_arn.as_str());
}

#[tokio::test]
async fn thirty_percent_throttled_calls_still_deploy_with_no_duplicated_write() {
    let h = Harness::new(sim(), "v0", ScriptedProbe::new()).await;
    assert_succeeded(&h, &h.deploy("v1").await, "v1");
    h.sim.handle().clear_request_log();
    h.sim.handle().add_fault(Fault::throttle_probability(0.3));

    let report = h.deploy("v2").await;
    assert_succeeded(&h, &report, "v2");
    let log = h.sim.handle().request_log();
    let throttled = log
        .iter()
        .filter(|r| r.error.as_deref() == Some("ThrottlingException"))
        .count();
    assert!(throttled > 0, "no call was throttled: {log:?}");
    let applied = |operation: &str| {
        log.iter()
            .filter(|r| r.operation == operation && r.status == 200)
            .count()
    };
    assert_eq!(applied("RegisterTaskDefinition"), 1, "{log:?}");
    assert_eq!(applied("UpdateService"), 1, "{log:?}");
    h.sim.handle().clear_faults();
    assert_eq!(h.running_image().await, image("v2"));
}

#[tokio::test]
async fn a_dry_run_plans_against_the_service_and_changes_nothing() {
    let h = Harness::new(sim(), "v1", ScriptedProbe::new()).await;
    h.sim.handle().clear_request_log();
    let mut request = h.request();
    request.dry_run = true;
    let report = h
        .pipeline("v2")
        .deploy(&request, &RunControl::new(CancellationToken::new()))
        .await;
    assert!(
        matches!(&report.outcome, Outcome::Succeeded { dry_run: true, .. }),
        "{:?}",
        report.outcome
    );
    let log = h.sim.handle().request_log();
    assert!(!log.is_empty(), "the plan reads the live service");
    assert_eq!(h.sim.handle().mutating_calls(), 0, "{log:?}");
    let plan = report.plan.expect("a dry run reports its plan");
    let image_change = plan
        .changes
        .iter()
        .find(|c| c.resource == "container api" && c.field == "image")
        .unwrap_or_else(|| panic!("{plan:#?}"));
    assert_eq!(image_change.from.as_deref(), Some(image("v1").as_str()));
    assert_eq!(image_change.to.as_deref(), Some(image("v2").as_str()));
    assert!(
        h.store
            .records()
            .iter()
            .all(|r| r.status != RecordStatus::InProgress)
    );
    assert_eq!(h.running_image().await, image("v1"));
}

#[tokio::test]
async fn a_rollback_to_a_deregistered_revision_registers_it_again() {
    let h = Harness::new(sim(), "v0", ScriptedProbe::new()).await;
    let v1_arn = assert_succeeded(&h, &h.deploy("v1").await, "v1");
    assert_succeeded(&h, &h.deploy("v2").await, "v2");
    client(&h.sim)
        .deregister_task_definition()
        .task_definition(&v1_arn)
        .send()
        .await
        .unwrap();
    h.sim.handle().clear_request_log();

    let request = RollbackRequest {
        environment: h.env.clone(),
        project: Default::default(),
        to: Some(version("v1")),
        project_dir: ".".into(),
        confirmed: true,
        dry_run: false,
    };
    let report = h
        .pipeline("v1")
        .rollback(&request, &RunControl::new(CancellationToken::new()))
        .await;
    assert!(report.outcome.is_success(), "{:?}", report.outcome);
    let counts = h.sim.handle().operation_counts();
    assert_eq!(counts.get("RegisterTaskDefinition"), Some(&1), "{counts:?}");
    let running = h.service_state()["taskDefinition"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(running, v1_arn, "a fresh revision, not the INACTIVE one");
    assert_eq!(h.running_image().await, image("v1"));
}

/// The ledger stops taking writes after the run's `in_progress` record: v2 is deployed and
/// verified but its final record is lost. The service's tags hold the run's verification note
/// (read back here through the SDK), so the next run records v2 as succeeded, and when v3
/// fails it goes back to v2.
#[tokio::test]
async fn a_verified_release_whose_record_was_lost_is_found_through_the_service_tags() {
    let h = Harness::new(
        sim(),
        "v1",
        ScriptedProbe::new().fail_version("v3", "liveness", "HTTP 503"),
    )
    .await;
    h.store.fail_appends_after(1);
    let lost = h.deploy("v2").await;
    assert!(lost.outcome.is_success(), "{:?}", lost.outcome);
    assert!(!lost.recorded);

    let service = h.described_service().await;
    let tags = client(&h.sim)
        .list_tags_for_resource()
        .resource_arn(service.service_arn().unwrap())
        .send()
        .await
        .unwrap();
    let tag = |key: &str| {
        tags.tags()
            .iter()
            .find(|t| t.key() == Some(key))
            .and_then(|t| t.value())
            .map(str::to_owned)
    };
    assert_eq!(
        tag("kyb-deploy:verified-run").as_deref(),
        Some(lost.run_id.as_str())
    );
    assert_eq!(
        tag("kyb-deploy:verified-task-definition").as_deref(),
        service.task_definition()
    );
    assert!(tag("kyb-deploy:verified-at").is_some(), "{tags:?}");

    h.store.set_fail_appends(false);
    let next = h.deploy("v3").await;
    assert!(
        matches!(&next.outcome, Outcome::RolledBack { to, .. } if to.version == version("v2")),
        "{:?}",
        next.outcome
    );
    assert_eq!(h.running_image().await, image("v2"));
    let recovered = h.record(&lost);
    assert_eq!(recovered.status, RecordStatus::Succeeded);
    assert_eq!(
        recovered.release.and_then(|r| r.platform_ref).as_deref(),
        service.task_definition()
    );
}
