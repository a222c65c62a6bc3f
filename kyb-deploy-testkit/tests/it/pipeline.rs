//! The pipeline engine end to end, with every seam faked.

use std::sync::Arc;
use std::time::Duration;

use kyb_deploy_core::{
    CancellationToken, DeployRequest, Event, EventSink, Outcome, RecordStatus, RollbackRequest,
    RollbackSummary, RunControl, Stage, TestSuite,
};
use kyb_deploy_testkit::{
    FakeImageBuilder, FakeRegistry, FakeRollout, FakeScanner, FakeTarget, FakeTestRunner,
    FixedVersion, InMemoryRecordStore, RecordingNotifier, ScriptedProbe, TargetCall,
};

use crate::harness::{Harness, environment, past_run, release, version};

fn request(extra: &str) -> DeployRequest {
    DeployRequest::new(environment(extra))
}

fn suites() -> Vec<TestSuite> {
    ["unit", "integration"]
        .map(|name| TestSuite {
            name: name.into(),
            command: format!("run {name} tests"),
            workdir: ".".into(),
        })
        .to_vec()
}

#[tokio::test]
async fn success_deploys_verifies_records_and_notifies() {
    let h = Harness::new(
        FakeTarget::new().with_current(release("v0")),
        ScriptedProbe::new(),
        InMemoryRecordStore::new(),
    );
    let notifier = Arc::new(RecordingNotifier::new());
    let (events, mut rx) = EventSink::new().channel();
    let mut req = request("");
    req.tests = suites();
    let report = h
        .pipeline("v1")
        .with_notifier(notifier.clone())
        .with_events(events)
        .deploy(&req, &RunControl::new(CancellationToken::new()))
        .await;

    assert!(
        matches!(&report.outcome, Outcome::Succeeded { release, dry_run: false } if release.version == version("v1")),
        "{:?}",
        report.outcome
    );
    assert_eq!(h.target.current().unwrap().version, version("v1"));
    assert_eq!(h.tests.ran(), ["unit", "integration"]);
    let record = h.record(&report);
    assert_eq!(record.status, RecordStatus::Succeeded);
    assert_eq!(record.previous.unwrap().version, version("v0"));
    assert_eq!(record.rollout_id.as_deref(), Some("fake-rollout-1"));
    assert!(record.commit.is_some());
    // Written once in progress before the deploy call, then finalized.
    let versions: Vec<_> = h
        .store
        .appended()
        .iter()
        .map(|r| r.status.clone())
        .collect();
    assert_eq!(
        versions,
        [RecordStatus::InProgress, RecordStatus::Succeeded]
    );
    assert_eq!(notifier.sent().len(), 1);
    assert!(notifier.sent()[0].text.contains("deployed v1"));

    let mut finished = Vec::new();
    while let Ok(event) = rx.try_recv() {
        if let Event::StageFinished { stage, .. } = event {
            finished.push(stage);
        }
    }
    use Stage::*;
    assert_eq!(
        finished,
        [
            Preflight, Version, Lock, Tests, Build, Scan, Push, Record, Deploy, Wait, Verify, Soak,
            Finalize
        ]
    );
}

/// The example: v1 succeeded, v2 failed and was rolled back, v3 fails verification:
/// the rollback must go to v1 (the last known-good), not v2 (N-1).
#[tokio::test]
async fn failed_verification_rolls_back_to_last_known_good_not_previous() {
    let store = InMemoryRecordStore::with_records([
        past_run("r1", "v1", RecordStatus::Succeeded),
        past_run("r2", "v2", RecordStatus::RolledBack),
    ]);
    // v2 still runs (say its rollback was by hand elsewhere): N-1 would be v2.
    let h = Harness::new(
        FakeTarget::new().with_current(release("v2")),
        ScriptedProbe::new().fail_version("v3", "liveness", "HTTP 503 from /health"),
        store,
    );
    let report = h.deploy("v3", request("")).await;

    match &report.outcome {
        Outcome::RolledBack {
            stage,
            reason,
            to,
            by_platform,
        } => {
            assert_eq!(*stage, Stage::Verify);
            assert!(reason.contains("HTTP 503"), "{reason}");
            assert_eq!(to.version, version("v1"));
            assert!(!by_platform);
        }
        other => panic!("expected a rollback, got {other:?}"),
    }
    assert!(report.outcome.summary().contains("rolled back to v1"));
    assert_eq!(
        h.target.mutating_calls(),
        [
            TargetCall::Deploy("v3".into()),
            TargetCall::Rollback("v1".into())
        ]
    );
    assert_eq!(h.target.current().unwrap().version, version("v1"));
    // The rollback was verified as v1.
    let verified: Vec<_> = h
        .probe
        .requests()
        .iter()
        .map(|r| r.expected_version.to_string())
        .collect();
    assert_eq!(verified, ["v3", "v1"]);
    let record = h.record(&report);
    assert_eq!(record.status, RecordStatus::RolledBack);
    let rollback = record.rollback.unwrap();
    assert!(rollback.succeeded);
    assert_eq!(rollback.to.unwrap().version, version("v1"));
    assert!(report.rollback_verification.unwrap().passed);
}

#[tokio::test]
async fn rollback_that_fails_is_reported_as_such() {
    let store = InMemoryRecordStore::with_records([past_run("r1", "v1", RecordStatus::Succeeded)]);
    let target = FakeTarget::new()
        .with_current(release("v1"))
        .script(FakeRollout::Complete(Duration::ZERO))
        .script(FakeRollout::Fail(
            Duration::ZERO,
            "task stopped: exit code 137".into(),
        ));
    let h = Harness::new(
        target,
        ScriptedProbe::new().fail_version("v3", "smoke: classify", "HTTP 500"),
        store,
    );
    let report = h.deploy("v3", request("")).await;

    match &report.outcome {
        Outcome::RollbackFailed {
            stage,
            rollback_error,
            ..
        } => {
            assert_eq!(*stage, Stage::Verify);
            assert!(rollback_error.contains("exit code 137"), "{rollback_error}");
        }
        other => panic!("expected a failed rollback, got {other:?}"),
    }
    let record = h.record(&report);
    assert_eq!(record.status, RecordStatus::RollbackFailed);
    assert!(!record.rollback.unwrap().succeeded);
}

#[tokio::test]
async fn no_known_good_release_means_no_rollback() {
    let h = Harness::new(
        FakeTarget::new(),
        ScriptedProbe::new().fail_version("v1", "readiness", "never ready"),
        InMemoryRecordStore::new(),
    );
    let report = h.deploy("v1", request("")).await;
    match &report.outcome {
        Outcome::RollbackFailed { rollback_error, .. } => {
            assert!(
                rollback_error.contains("no known-good release"),
                "{rollback_error}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(h.target.mutating_calls(), [TargetCall::Deploy("v1".into())]);
}

#[tokio::test]
async fn policy_never_leaves_the_failed_release() {
    let store = InMemoryRecordStore::with_records([past_run("r1", "v1", RecordStatus::Succeeded)]);
    let h = Harness::new(
        FakeTarget::new(),
        ScriptedProbe::new().fail_version("v2", "status", "version mismatch"),
        store,
    );
    let report = h.deploy("v2", request("rollback = \"never\"")).await;
    match &report.outcome {
        Outcome::RollbackFailed { rollback_error, .. } => {
            assert!(rollback_error.contains("\"never\""))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(h.target.mutating_calls(), [TargetCall::Deploy("v2".into())]);
}

#[tokio::test]
async fn rollout_failure_the_platform_rolled_back_is_verified_not_rolled_back_twice() {
    let store = InMemoryRecordStore::with_records([past_run("r1", "v1", RecordStatus::Succeeded)]);
    let target =
        FakeTarget::new()
            .with_current(release("v1"))
            .script(FakeRollout::PlatformRollback(
                Duration::ZERO,
                "circuit breaker: 3 tasks failed".into(),
            ));
    let h = Harness::new(target, ScriptedProbe::new(), store);
    let report = h.deploy("v2", request("")).await;
    match &report.outcome {
        Outcome::RolledBack {
            stage,
            to,
            by_platform,
            reason,
        } => {
            assert_eq!(*stage, Stage::Wait);
            assert!(*by_platform);
            assert_eq!(to.version, version("v1"));
            assert!(reason.contains("circuit breaker"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(h.target.mutating_calls(), [TargetCall::Deploy("v2".into())]);
    let verified: Vec<_> = h
        .probe
        .requests()
        .iter()
        .map(|r| r.expected_version.to_string())
        .collect();
    assert_eq!(verified, ["v1"]);
}

#[tokio::test]
async fn wait_timeout_times_out_and_applies_rollback_policy() {
    let store = InMemoryRecordStore::with_records([past_run("r1", "v1", RecordStatus::Succeeded)]);
    let target = FakeTarget::new()
        .with_current(release("v1"))
        .script(FakeRollout::Hang);
    let h = Harness::new(target, ScriptedProbe::new(), store);
    let report = h
        .deploy(
            "v2",
            request("[environments.staging.timeouts]\nwait = \"200ms\""),
        )
        .await;
    match &report.outcome {
        Outcome::TimedOut { stage, rollback } => {
            assert_eq!(*stage, Stage::Wait);
            assert!(
                matches!(rollback, Some(RollbackSummary::RolledBack { to }) if to.version == version("v1"))
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(h.record(&report).status, RecordStatus::TimedOut);
}

#[tokio::test]
async fn overall_timeout_bounds_every_stage() {
    let target = FakeTarget::new().script(FakeRollout::Hang);
    let h = Harness::new(target, ScriptedProbe::new(), InMemoryRecordStore::new());
    let report = h
        .deploy(
            "v2",
            request("[environments.staging.timeouts]\noverall = \"200ms\""),
        )
        .await;
    assert!(
        matches!(
            report.outcome,
            Outcome::TimedOut {
                stage: Stage::Wait,
                ..
            }
        ),
        "{:?}",
        report.outcome
    );
}

#[tokio::test]
async fn cancel_during_wait_finalizes_the_record_as_cancelled() {
    let store = InMemoryRecordStore::with_records([past_run("r1", "v1", RecordStatus::Succeeded)]);
    let target = FakeTarget::new()
        .with_current(release("v1"))
        .script(FakeRollout::Hang);
    let h = Harness::new(target, ScriptedProbe::new(), store);
    let cancel = CancellationToken::new();
    let (events, mut rx) = EventSink::new().channel();
    let trigger = cancel.clone();
    // Cancel once the wait stage has started, like Ctrl-C during a rollout.
    tokio::spawn(async move {
        while let Some(event) = rx.recv().await {
            if matches!(event, Event::StageStarted { stage: Stage::Wait }) {
                trigger.cancel();
            }
        }
    });
    let report = h
        .pipeline("v2")
        .with_events(events)
        .deploy(&request(""), &RunControl::new(cancel))
        .await;
    match &report.outcome {
        Outcome::Cancelled { stage, rollback } => {
            assert_eq!(*stage, Stage::Wait);
            assert!(matches!(rollback, Some(RollbackSummary::RolledBack { .. })));
        }
        other => panic!("{other:?}"),
    }
    let record = h.record(&report);
    assert_eq!(record.status, RecordStatus::Cancelled);
    assert!(record.finished_at.is_some());
    assert_eq!(h.target.current().unwrap().version, version("v1"));
}

#[tokio::test]
async fn dry_run_changes_nothing() {
    let h = Harness::new(
        FakeTarget::new().with_current(release("v1")),
        ScriptedProbe::new(),
        InMemoryRecordStore::new(),
    );
    let mut req = request("");
    req.dry_run = true;
    req.tests = suites();
    let report = h.deploy("v2", req).await;
    assert!(matches!(
        report.outcome,
        Outcome::Succeeded { dry_run: true, .. }
    ));
    assert!(
        h.target.mutating_calls().is_empty(),
        "{:?}",
        h.target.calls()
    );
    assert!(h.target.calls().contains(&TargetCall::Plan("v2".into())));
    assert!(h.store.appended().is_empty());
    assert!(h.tests.ran().is_empty());
    assert!(h.probe.requests().is_empty());
    let plan = report.plan.unwrap();
    assert_eq!(plan.changes.len(), 1);
    assert_eq!(plan.changes[0].field, "image");
}

#[tokio::test]
async fn failing_tests_stop_the_run_unless_forced() {
    let tests = FakeTestRunner::new().fail("integration", 101);
    let h = Harness::new(
        FakeTarget::new(),
        ScriptedProbe::new(),
        InMemoryRecordStore::new(),
    )
    .with_tests(tests);
    let mut req = request("");
    req.tests = suites();
    let report = h.deploy("v1", req.clone()).await;
    match &report.outcome {
        Outcome::FailedBeforeDeploy { stage, reason } => {
            assert_eq!(*stage, Stage::Tests);
            assert!(
                reason.contains("integration tests failed (exit code 101)"),
                "{reason}"
            );
            assert!(reason.contains("--force"));
        }
        other => panic!("{other:?}"),
    }
    assert!(h.target.mutating_calls().is_empty());
    assert_eq!(h.record(&report).status, RecordStatus::FailedBeforeDeploy);

    req.force = true;
    let report = h.deploy("v1", req).await;
    assert!(report.outcome.is_success(), "{:?}", report.outcome);
    let record = h.record(&report);
    assert!(record.forced);
    assert!(
        record
            .warnings
            .iter()
            .any(|w| w.contains("FORCED past the failed tests stage")),
        "{:?}",
        record.warnings
    );
}

#[tokio::test]
async fn skip_tests_runs_none_and_says_so() {
    let h = Harness::new(
        FakeTarget::new(),
        ScriptedProbe::new(),
        InMemoryRecordStore::new(),
    );
    let mut req = request("");
    req.tests = suites();
    req.skip_tests = true;
    let report = h.deploy("v1", req).await;
    assert!(report.outcome.is_success());
    assert!(h.tests.ran().is_empty());
    let record = h.record(&report);
    assert!(record.skipped_tests);
    assert!(record.warnings.iter().any(|w| w.contains("skipped")));
}

#[tokio::test]
async fn image_is_deployed_by_digest_and_failing_scan_stops_unless_forced() {
    let h = Harness::new(
        FakeTarget::new(),
        ScriptedProbe::new(),
        InMemoryRecordStore::new(),
    );
    let registry = Arc::new(FakeRegistry::new());
    let builder = Arc::new(FakeImageBuilder::new());
    let report = h
        .pipeline("v1")
        .with_image_pipeline(
            builder.clone(),
            Some(Arc::new(FakeScanner::clean())),
            Some(registry.clone()),
        )
        .deploy(&request(""), &RunControl::new(CancellationToken::new()))
        .await;
    assert!(report.outcome.is_success(), "{:?}", report.outcome);
    let pushed = &registry.pushed()[0];
    assert_eq!(h.target.current().unwrap().image, pushed.reference);
    assert!(pushed.reference.contains("@sha256:"));
    let labels = &builder.requests()[0].labels;
    assert_eq!(labels["org.opencontainers.image.version"], "v1");
    assert!(labels.contains_key("org.opencontainers.image.revision"));

    let scanning = |force| {
        let mut req = request("");
        req.force = force;
        let pipeline = h.pipeline("v2").with_image_pipeline(
            Arc::new(FakeImageBuilder::new()),
            Some(Arc::new(FakeScanner::with_high_finding())),
            Some(Arc::new(FakeRegistry::new())),
        );
        async move {
            pipeline
                .deploy(&req, &RunControl::new(CancellationToken::new()))
                .await
        }
    };
    let report = scanning(false).await;
    assert!(
        matches!(
            report.outcome,
            Outcome::FailedBeforeDeploy {
                stage: Stage::Scan,
                ..
            }
        ),
        "{:?}",
        report.outcome
    );
    let report = scanning(true).await;
    assert!(report.outcome.is_success());
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("FORCED past the failed scan stage"))
    );
}

#[tokio::test]
async fn guards_refuse_dirty_trees_and_unconfirmed_runs() {
    let h = Harness::new(
        FakeTarget::new(),
        ScriptedProbe::new(),
        InMemoryRecordStore::new(),
    );
    let guarded = "[environments.staging.guards]\nrequire_clean_tree = true\nconfirm = true\nbranches = [\"main\"]";
    let dirty = |req: DeployRequest| {
        let pipeline = h
            .pipeline("v1")
            .with_version_source(Arc::new(FixedVersion::new("v1").dirty()));
        async move {
            pipeline
                .deploy(&req, &RunControl::new(CancellationToken::new()))
                .await
        }
    };
    let mut req = request(guarded);
    req.confirmed = true;
    let report = dirty(req.clone()).await;
    assert!(
        matches!(&report.outcome, Outcome::FailedBeforeDeploy { stage: Stage::Version, reason } if reason.contains("uncommitted changes") && reason.contains("--force")),
        "{:?}",
        report.outcome
    );
    req.force = true;
    let report = dirty(req.clone()).await;
    assert!(report.outcome.is_success(), "{:?}", report.outcome);
    assert!(h.record(&report).dirty);

    req.confirmed = false;
    let report = h.deploy("v2", req).await;
    assert!(
        matches!(&report.outcome, Outcome::FailedBeforeDeploy { reason, .. } if reason.contains("--yes")),
        "{:?}",
        report.outcome
    );
    assert_eq!(h.target.mutating_calls().len(), 1);
}

#[tokio::test]
async fn failures_that_must_not_touch_the_target() {
    // A held lock.
    let h = Harness::new(
        FakeTarget::new(),
        ScriptedProbe::new(),
        InMemoryRecordStore::new(),
    );
    let guard = kyb_deploy_core::DeployLock::acquire(h.lock.as_ref(), "staging")
        .await
        .unwrap();
    let report = h.deploy("v1", request("")).await;
    assert!(
        matches!(&report.outcome, Outcome::FailedBeforeDeploy { stage: Stage::Lock, reason } if reason.contains("locked")),
        "{:?}",
        report.outcome
    );
    drop(guard);

    // A record that cannot be written: nothing may be deployed without an audit trail.
    h.store.set_fail_appends(true);
    let report = h.deploy("v1", request("")).await;
    assert!(
        matches!(
            &report.outcome,
            Outcome::FailedBeforeDeploy {
                stage: Stage::Record,
                ..
            }
        ),
        "{:?}",
        report.outcome
    );
    assert!(!report.recorded);

    // The target refusing the deployment.
    h.store.set_fail_appends(false);
    let h = Harness::new(
        FakeTarget::new().script(FakeRollout::Reject("service not found".into())),
        ScriptedProbe::new(),
        InMemoryRecordStore::new(),
    );
    let report = h.deploy("v1", request("")).await;
    assert!(
        matches!(&report.outcome, Outcome::FailedBeforeDeploy { stage: Stage::Deploy, reason } if reason.contains("service not found")),
        "{:?}",
        report.outcome
    );
}

#[tokio::test]
async fn a_failing_notifier_only_warns() {
    let h = Harness::new(
        FakeTarget::new(),
        ScriptedProbe::new(),
        InMemoryRecordStore::new(),
    );
    let (events, mut rx) = EventSink::new().channel();
    let report = h
        .pipeline("v1")
        .with_notifier(Arc::new(RecordingNotifier::failing()))
        .with_events(events)
        .deploy(&request(""), &RunControl::new(CancellationToken::new()))
        .await;
    assert!(report.outcome.is_success());
    let mut warned = false;
    while let Ok(event) = rx.try_recv() {
        warned |= matches!(
            event,
            Event::Warning {
                stage: Stage::Notify,
                ..
            }
        );
    }
    assert!(warned);
}

#[tokio::test]
async fn rollback_command_goes_to_named_or_last_known_good_release() {
    let store = InMemoryRecordStore::with_records([
        past_run("r0", "v0", RecordStatus::Succeeded),
        past_run("r1", "v1", RecordStatus::Succeeded),
        past_run("r2", "v2", RecordStatus::Succeeded),
    ]);
    let h = Harness::new(
        FakeTarget::new().with_current(release("v2")),
        ScriptedProbe::new(),
        store,
    );
    let rollback = rollback_request;
    let control = RunControl::new(CancellationToken::new());
    let report = h
        .pipeline("unused")
        .rollback(&rollback(None), &control)
        .await;
    assert!(
        matches!(&report.outcome, Outcome::Succeeded { release, .. } if release.version == version("v1")),
        "{:?}",
        report.outcome
    );
    assert_eq!(h.target.current().unwrap().version, version("v1"));

    let report = h
        .pipeline("unused")
        .rollback(&rollback(Some("v0")), &control)
        .await;
    assert!(report.outcome.is_success());
    assert_eq!(h.target.current().unwrap().version, version("v0"));
    assert_eq!(h.record(&report).status, RecordStatus::Succeeded);

    let report = h
        .pipeline("unused")
        .rollback(&rollback(Some("v9")), &control)
        .await;
    assert!(
        matches!(&report.outcome, Outcome::FailedBeforeDeploy { reason, .. } if reason.contains("never deployed")),
        "{:?}",
        report.outcome
    );
}

/// Guards that need the git working tree refuse to pass silently without one.
#[tokio::test]
async fn source_guards_refuse_an_unknown_working_tree_unless_forced() {
    let h = Harness::new(
        FakeTarget::new(),
        ScriptedProbe::new(),
        InMemoryRecordStore::new(),
    );
    let mut unknown = FixedVersion::new("v1");
    unknown.0.commit = None;
    unknown.0.branch = None;
    let unknown = Arc::new(unknown);
    let mut req = request("[environments.staging.guards]\nbranches = [\"main\"]");
    let run = |req: DeployRequest| {
        let pipeline = h.pipeline("v1").with_version_source(unknown.clone());
        async move {
            pipeline
                .deploy(&req, &RunControl::new(CancellationToken::new()))
                .await
        }
    };
    let report = run(req.clone()).await;
    assert!(
        matches!(&report.outcome, Outcome::FailedBeforeDeploy { stage: Stage::Version, reason } if reason.contains("not a git working tree")),
        "{:?}",
        report.outcome
    );
    req.force = true;
    let report = run(req).await;
    assert!(report.outcome.is_success(), "{:?}", report.outcome);
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("guards were not checked"))
    );
}

/// The environment stays locked until the final record is written, so no other run can
/// take this run's `in_progress` record for a dead one.
#[tokio::test]
async fn the_lock_is_held_until_the_final_record_is_written() {
    #[derive(Debug)]
    struct LockWatchingStore {
        inner: InMemoryRecordStore,
        lock: Arc<kyb_deploy_testkit::InMemoryLock>,
        finals_while_locked: Arc<std::sync::Mutex<Vec<bool>>>,
    }
    #[kyb_deploy_core::async_trait]
    impl kyb_deploy_core::RecordStore for LockWatchingStore {
        async fn append(
            &self,
            record: &kyb_deploy_core::DeploymentRecord,
        ) -> kyb_deploy_core::Result<()> {
            if record.status != RecordStatus::InProgress {
                self.finals_while_locked
                    .lock()
                    .unwrap()
                    .push(self.lock.is_held(&record.environment));
            }
            self.inner.append(record).await
        }
        async fn load(&self) -> kyb_deploy_core::Result<kyb_deploy_core::LedgerSnapshot> {
            self.inner.load().await
        }
    }
    let lock = Arc::new(kyb_deploy_testkit::InMemoryLock::new());
    let finals = Arc::new(std::sync::Mutex::new(Vec::new()));
    let store = Arc::new(LockWatchingStore {
        inner: InMemoryRecordStore::new(),
        lock: lock.clone(),
        finals_while_locked: finals.clone(),
    });
    let pipeline = kyb_deploy_core::Pipeline::new(
        Arc::new(FakeTarget::new()),
        Arc::new(ScriptedProbe::new()),
        store,
        lock.clone(),
    )
    .with_version_source(Arc::new(FixedVersion::new("v1")));
    let report = pipeline
        .deploy(&request(""), &RunControl::new(CancellationToken::new()))
        .await;
    assert!(report.outcome.is_success());
    assert_eq!(*finals.lock().unwrap(), [true]);
    assert!(!lock.is_held("staging"));
}

#[tokio::test]
async fn dry_runs_are_not_announced_and_failed_notifications_are_reported() {
    let h = Harness::new(
        FakeTarget::new(),
        ScriptedProbe::new(),
        InMemoryRecordStore::new(),
    );
    let notifier = Arc::new(RecordingNotifier::new());
    let mut req = request("");
    req.dry_run = true;
    let report = h
        .pipeline("v1")
        .with_notifier(notifier.clone())
        .deploy(&req, &RunControl::new(CancellationToken::new()))
        .await;
    assert!(report.outcome.is_success());
    assert!(notifier.sent().is_empty());

    let report = h
        .pipeline("v1")
        .with_notifier(Arc::new(RecordingNotifier::failing()))
        .deploy(&request(""), &RunControl::new(CancellationToken::new()))
        .await;
    assert!(report.outcome.is_success());
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("notification via recording notifier failed")),
        "{:?}",
        report.warnings
    );
}

/// A target that verifies beside the old release: verification goes to the candidate, the
/// release takes over only after it passed, and a failed candidate never takes over.
#[tokio::test]
async fn candidates_are_verified_before_they_are_promoted() {
    let candidate: kyb_deploy_core::Url = "http://127.0.0.1:9999".parse().unwrap();
    let store = InMemoryRecordStore::with_records([past_run("r1", "v1", RecordStatus::Succeeded)]);
    let h = Harness::new(
        FakeTarget::new()
            .with_current(release("v1"))
            .with_candidate_endpoint(candidate.clone()),
        ScriptedProbe::new().fail_version("v3", "liveness", "HTTP 503"),
        store,
    );
    let report = h.deploy("v2", request("")).await;
    assert!(report.outcome.is_success(), "{:?}", report.outcome);
    assert_eq!(h.probe.requests()[0].base_url, candidate);
    assert_eq!(
        h.target.mutating_calls(),
        [
            TargetCall::Deploy("v2".into()),
            TargetCall::Promote("v2".into())
        ]
    );
    assert!(report.stages.iter().any(|s| s.stage == Stage::Promote));

    let report = h.deploy("v3", request("")).await;
    assert!(
        matches!(&report.outcome, Outcome::RolledBack { to, .. } if to.version == version("v2")),
        "{:?}",
        report.outcome
    );
    // The failed candidate is discarded; the serving v2 was never replaced, only verified.
    assert_eq!(
        h.target.mutating_calls()[2..],
        [
            TargetCall::Deploy("v3".into()),
            TargetCall::Discard("v3".into())
        ]
    );
    assert_eq!(h.target.current().unwrap().version, version("v2"));
    let last = h.probe.requests().pop().unwrap();
    assert_eq!(last.expected_version, version("v2"));
    assert_ne!(last.base_url, candidate);

    // Redeploying the serving version, which now fails: still nothing is replaced (the
    // ledger's last known-good other than v2 would be v1).
    let h = Harness::new(
        FakeTarget::new()
            .with_current(release("v2"))
            .with_candidate_endpoint(candidate.clone()),
        ScriptedProbe::new().fail_version("v2", "liveness", "HTTP 503"),
        InMemoryRecordStore::with_records([
            past_run("r1", "v1", RecordStatus::Succeeded),
            past_run("r2", "v2", RecordStatus::Succeeded),
        ]),
    );
    let _ = h.deploy("v2", request("")).await;
    assert_eq!(
        h.target.mutating_calls(),
        [
            TargetCall::Deploy("v2".into()),
            TargetCall::Discard("v2".into())
        ]
    );
    assert_eq!(h.target.current().unwrap().version, version("v2"));
}

#[tokio::test]
async fn a_first_candidate_that_fails_is_removed_and_reported() {
    let candidate: kyb_deploy_core::Url = "http://127.0.0.1:9999".parse().unwrap();
    let h = Harness::new(
        FakeTarget::new().with_candidate_endpoint(candidate),
        ScriptedProbe::new().fail_version("v1", "readiness", "never ready"),
        InMemoryRecordStore::new(),
    );
    let report = h.deploy("v1", request("rollback = \"never\"")).await;
    match &report.outcome {
        Outcome::RollbackFailed { rollback_error, .. } => {
            assert!(
                rollback_error.contains("nothing served before"),
                "{rollback_error}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        h.target.mutating_calls(),
        [
            TargetCall::Deploy("v1".into()),
            TargetCall::Discard("v1".into())
        ]
    );
    assert!(h.target.current().is_none());
}

#[tokio::test]
async fn a_run_without_the_lock_tests_builds_and_pushes_nothing_unless_it_waits_for_it() {
    let h = Harness::new(
        FakeTarget::new(),
        ScriptedProbe::new(),
        InMemoryRecordStore::new(),
    );
    let registry = Arc::new(FakeRegistry::new());
    let builder = Arc::new(FakeImageBuilder::new());
    let pipeline = h.pipeline("v1").with_image_pipeline(
        builder.clone(),
        Some(Arc::new(FakeScanner::clean())),
        Some(registry.clone()),
    );
    let mut req = request("");
    req.tests = suites();
    let guard = kyb_deploy_core::DeployLock::acquire(h.lock.as_ref(), "staging")
        .await
        .unwrap();
    let report = pipeline
        .deploy(&req, &RunControl::new(CancellationToken::new()))
        .await;
    assert!(
        matches!(&report.outcome, Outcome::FailedBeforeDeploy { stage: Stage::Lock, reason } if reason.contains("locked")),
        "{:?}",
        report.outcome
    );
    assert!(h.tests.ran().is_empty());
    assert!(builder.requests().is_empty());
    assert!(registry.pushed().is_empty());
    assert!(h.target.mutating_calls().is_empty());

    // Waiting: the holder lets go after a moment, and the run goes on.
    req.wait_for_lock = std::time::Duration::from_secs(30);
    let released = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        drop(guard);
    });
    let report = pipeline
        .deploy(&req, &RunControl::new(CancellationToken::new()))
        .await;
    released.await.unwrap();
    assert!(report.outcome.is_success(), "{:?}", report.outcome);
    assert_eq!(builder.requests().len(), 1);
    assert_eq!(registry.pushed().len(), 1);
    let stages: Vec<Stage> = report.stages.iter().map(|s| s.stage).collect();
    let at = |stage| stages.iter().position(|s| *s == stage).unwrap();
    assert!(at(Stage::Lock) < at(Stage::Tests) && at(Stage::Lock) < at(Stage::Build));

    // A short wait ends with the holder named.
    let _held = kyb_deploy_core::DeployLock::acquire(h.lock.as_ref(), "staging")
        .await
        .unwrap();
    req.wait_for_lock = std::time::Duration::from_millis(1200);
    let report = pipeline
        .deploy(&req, &RunControl::new(CancellationToken::new()))
        .await;
    assert!(
        matches!(
            &report.outcome,
            Outcome::FailedBeforeDeploy {
                stage: Stage::Lock,
                ..
            }
        ),
        "{:?}",
        report.outcome
    );
}

/// A fresh runner: the ledger is empty, the platform runs v2 and lists v1 before it.
#[tokio::test]
async fn a_fresh_runner_rolls_back_to_what_the_platform_ran_and_finds_its_versions() {
    let h = Harness::new(
        FakeTarget::new().with_history([release("v2"), release("v1")]),
        ScriptedProbe::new().fail_version("v3", "readiness", "GET /ready answered 503"),
        InMemoryRecordStore::new(),
    );
    let report = h.deploy("v3", request("")).await;
    match &report.outcome {
        Outcome::RolledBack { to, .. } => assert_eq!(to.version, version("v2")),
        other => panic!("{other:?}"),
    }
    assert_eq!(h.target.current().unwrap().version, version("v2"));

    // A version only the platform knows can be rolled back to by name.
    let request = rollback_request(Some("v1"));
    let control = RunControl::new(CancellationToken::new());
    let report = h.pipeline("unused").rollback(&request, &control).await;
    assert!(report.outcome.is_success(), "{:?}", report.outcome);
    assert_eq!(h.target.current().unwrap().version, version("v1"));
    let report = h
        .pipeline("unused")
        .rollback(
            &RollbackRequest {
                to: Some(version("v9")),
                ..request
            },
            &control,
        )
        .await;
    assert!(
        matches!(&report.outcome, Outcome::FailedBeforeDeploy { reason, .. } if reason.contains("never deployed to staging according to the ledger or the platform")),
        "{:?}",
        report.outcome
    );
}

/// A first deploy that fails has nothing to go back to, and says what to do.
#[tokio::test]
async fn a_first_deploy_that_fails_names_a_command_that_works() {
    let h = Harness::new(
        FakeTarget::new(),
        ScriptedProbe::new().fail_version("v1", "readiness", "GET /ready answered 503"),
        InMemoryRecordStore::new(),
    );
    let report = h.deploy("v1", request("")).await;
    match &report.outcome {
        Outcome::RollbackFailed { rollback_error, .. } => assert!(
            rollback_error
                .contains("no known-good release of staging in the ledger or on the platform")
                && rollback_error.contains("`kyb-deploy rollback -e staging --to VERSION`"),
            "{rollback_error}"
        ),
        other => panic!("{other:?}"),
    }
}

/// `{environment}-latest` is pushed with nothing: it moves to a release once verified.
#[tokio::test]
async fn mutable_tags_move_only_to_a_verified_release() {
    let h = Harness::new(
        FakeTarget::new(),
        ScriptedProbe::new().fail_version("v2", "readiness", "GET /ready answered 503"),
        InMemoryRecordStore::new(),
    );
    let registry = Arc::new(FakeRegistry::new());
    let builder = Arc::new(FakeImageBuilder::new());
    let deploy = |v: &'static str| {
        let pipeline = h.pipeline(v).with_image_pipeline(
            builder.clone(),
            Some(Arc::new(FakeScanner::clean())),
            Some(registry.clone()),
        );
        async move {
            pipeline
                .deploy(&request(""), &RunControl::new(CancellationToken::new()))
                .await
        }
    };
    let report = deploy("v1").await;
    assert!(report.outcome.is_success(), "{:?}", report.outcome);
    let v1 = registry.pushed()[0].clone();
    assert!(!v1.tags.contains(&"staging-latest".to_owned()), "{v1:?}");
    assert!(
        !builder.requests()[0]
            .tags
            .contains(&"staging-latest".to_owned())
    );
    let latest = |registry: &FakeRegistry| {
        registry
            .moved_tags()
            .into_iter()
            .filter(|(tag, _)| tag.ends_with(":staging-latest"))
            .map(|(_, digest)| digest)
            .collect::<Vec<_>>()
    };
    assert_eq!(latest(&registry), std::slice::from_ref(&v1.digest));
    let stages: Vec<Stage> = report.stages.iter().map(|s| s.stage).collect();
    let at = |stage| stages.iter().position(|s| *s == stage).unwrap();
    assert!(at(Stage::Soak) < at(Stage::Tag), "{stages:?}");

    // v2 is pushed, fails verification and is rolled back: the tag still names v1.
    let report = deploy("v2").await;
    assert!(
        matches!(report.outcome, Outcome::RolledBack { .. }),
        "{:?}",
        report.outcome
    );
    assert_eq!(registry.pushed().len(), 2);
    assert_eq!(latest(&registry), [v1.digest]);
}

/// Without a registry the local image's tag moves, likewise only once verified.
#[tokio::test]
async fn a_local_mutable_tag_moves_only_to_a_verified_release() {
    let h = Harness::new(
        FakeTarget::new(),
        ScriptedProbe::new().fail_version("v2", "readiness", "GET /ready answered 503"),
        InMemoryRecordStore::new(),
    );
    let builder = Arc::new(FakeImageBuilder::new());
    for v in ["v1", "v2"] {
        h.pipeline(v)
            .with_image_pipeline(builder.clone(), None, None)
            .deploy(&request(""), &RunControl::new(CancellationToken::new()))
            .await;
    }
    let tags = builder.local_tags();
    let v1_image = format!("sha256:{}", kyb_deploy_testkit::fake_digest("image-v1"));
    assert_eq!(
        tags.iter()
            .filter(|(tag, _)| tag.ends_with(":staging-latest"))
            .map(|(_, id)| id.clone())
            .collect::<Vec<_>>(),
        [v1_image]
    );
}

/// A release the platform rolled back to, and that a run verified, is a known-good one.
#[tokio::test]
async fn a_release_rolled_back_to_and_verified_is_known_good() {
    let mut failed = past_run("r2", "v2", RecordStatus::InProgress);
    failed.finish(Outcome::RolledBack {
        stage: Stage::Wait,
        reason: "the circuit breaker rolled back".into(),
        to: release("v1"),
        by_platform: true,
    });
    let h = Harness::new(
        FakeTarget::new().with_current(release("v3")),
        ScriptedProbe::new(),
        InMemoryRecordStore::with_records([failed]),
    );
    let request = rollback_request(None);
    let report = h
        .pipeline("unused")
        .rollback(&request, &RunControl::new(CancellationToken::new()))
        .await;
    assert!(
        matches!(&report.outcome, Outcome::Succeeded { release, .. } if release.version == version("v1")),
        "{:?}",
        report.outcome
    );
    assert_eq!(h.target.current().unwrap().version, version("v1"));
}

/// An unconfirmed rollback of staging, to `to` or to the last known-good release.
fn rollback_request(to: Option<&str>) -> RollbackRequest {
    RollbackRequest {
        environment: environment(""),
        project: Default::default(),
        to: to.map(version),
        project_dir: ".".into(),
        confirmed: false,
        dry_run: false,
    }
}
