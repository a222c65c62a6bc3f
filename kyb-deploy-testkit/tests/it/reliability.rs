//! What a run may claim under faults: writes whose answers were lost, releases that fail
//! after they passed verification, rollback targets, and a ledger that stops taking writes.
//! Each test compares the run's outcome with what the (fake) platform runs afterwards.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use kyb_deploy_core::{
    CancellationToken, DeployRequest, Operation, Outcome, RecordStatus, RecordStore as _,
    RollbackRequest, RunControl, Stage,
};
use kyb_deploy_testkit::{
    FakeRollout, FakeTarget, InMemoryRecordStore, ProbeVerdict, ScriptedProbe, TargetCall,
};

use crate::harness::{Harness, environment, past_run, release, version};

fn request() -> DeployRequest {
    DeployRequest::new(environment(""))
}

fn lookups(target: &FakeTarget) -> usize {
    target
        .calls()
        .iter()
        .filter(|c| matches!(c, TargetCall::FindRollout(_)))
        .count()
}

fn stages(report: &kyb_deploy_core::RunReport) -> Vec<Stage> {
    report.stages.iter().map(|s| s.stage).collect()
}

/// The platform applied the deploy but its answer was lost: the run finds the rollout,
/// follows it and verifies it, instead of claiming nothing was deployed.
#[tokio::test]
async fn a_deploy_whose_answer_was_lost_is_found_followed_and_verified() {
    let target = FakeTarget::new()
        .with_current(release("v0"))
        .script(FakeRollout::AnswerLost(Box::new(FakeRollout::Complete(
            Duration::ZERO,
        ))));
    let h = Harness::new(target, ScriptedProbe::new(), InMemoryRecordStore::new());
    let report = h.deploy("v1", request()).await;

    assert!(
        matches!(&report.outcome, Outcome::Succeeded { release, .. } if release.version == version("v1")),
        "{:?}",
        report.outcome
    );
    assert_eq!(h.target.current().unwrap().version, version("v1"));
    assert_eq!(lookups(&h.target), 1);
    assert!(stages(&report).contains(&Stage::Reconcile));
    assert_eq!(h.record(&report).status, RecordStatus::Succeeded);
    assert_eq!(
        h.record(&report).rollout_id.as_deref(),
        Some("fake-rollout-1")
    );
}

/// The same lost answer, for a release that then fails verification: the rollback policy
/// applies (exit 4), it is never "failed before anything was deployed" (exit 3).
#[tokio::test]
async fn a_lost_answer_whose_release_fails_is_rolled_back() {
    let store = InMemoryRecordStore::with_records([past_run("r0", "v0", RecordStatus::Succeeded)]);
    let target = FakeTarget::new()
        .with_current(release("v0"))
        .script(FakeRollout::AnswerLost(Box::new(FakeRollout::Complete(
            Duration::ZERO,
        ))));
    let h = Harness::new(
        target,
        ScriptedProbe::new().fail_version("v1", "liveness", "HTTP 503"),
        store,
    );
    let report = h.deploy("v1", request()).await;

    assert!(
        matches!(&report.outcome, Outcome::RolledBack { stage: Stage::Verify, to, .. } if to.version == version("v0")),
        "{:?}",
        report.outcome
    );
    assert_eq!(h.target.current().unwrap().version, version("v0"));
    assert_eq!(h.record(&report).status, RecordStatus::RolledBack);
}

/// Reads fail for a while after the lost answer, then work: the run keeps asking (bounded)
/// and follows the rollout it finds.
#[tokio::test]
async fn failing_reads_after_a_lost_answer_are_retried() {
    let target = FakeTarget::new()
        .with_current(release("v0"))
        .script(FakeRollout::AnswerLost(Box::new(FakeRollout::Complete(
            Duration::ZERO,
        ))))
        .fail_reads(2);
    let h = Harness::new(target, ScriptedProbe::new(), InMemoryRecordStore::new());
    let report = h.deploy("v1", request()).await;

    assert!(report.outcome.is_success(), "{:?}", report.outcome);
    assert_eq!(lookups(&h.target), 3);
    assert_eq!(h.target.current().unwrap().version, version("v1"));
}

/// An ambiguous answer to a change the platform refused: only after the platform showed no
/// rollout twice does the run say nothing was deployed.
#[tokio::test]
async fn an_ambiguous_refusal_is_confirmed_before_claiming_nothing_was_deployed() {
    let target = FakeTarget::new()
        .with_current(release("v0"))
        .script(FakeRollout::RefusedAmbiguously);
    let h = Harness::new(target, ScriptedProbe::new(), InMemoryRecordStore::new());
    let report = h.deploy("v1", request()).await;

    match &report.outcome {
        Outcome::FailedBeforeDeploy { stage, reason } => {
            assert_eq!(*stage, Stage::Deploy);
            assert!(reason.contains("shows no rollout of v1"), "{reason}");
            assert!(reason.contains("may have been applied"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(lookups(&h.target), 2);
    assert_eq!(h.target.current().unwrap().version, version("v0"));
}

/// The platform cannot be read at all after a lost answer: the run cannot know what runs,
/// so it says the environment needs attention (exit 5), never "nothing deployed" (exit 3),
/// and the record says so too.
#[tokio::test(start_paused = true)]
async fn an_unreadable_platform_after_a_lost_answer_needs_attention() {
    let store = InMemoryRecordStore::with_records([past_run("r0", "v0", RecordStatus::Succeeded)]);
    let target = FakeTarget::new()
        .with_current(release("v0"))
        .script(FakeRollout::AnswerLost(Box::new(FakeRollout::Hang)))
        .fail_reads(u32::MAX);
    let h = Harness::new(target, ScriptedProbe::new(), store);
    let started = tokio::time::Instant::now();
    let report = h.deploy("v1", request()).await;
    // Five lookups, backing off 0, 0.5, 1, 2 and 4 s (on the paused clock): a platform
    // that recovers within seconds is asked again, and not hammered meanwhile.
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(7500) && waited < Duration::from_secs(9),
        "{waited:?}"
    );

    match &report.outcome {
        Outcome::RollbackFailed {
            stage,
            rollback_error,
            ..
        } => {
            assert_eq!(*stage, Stage::Deploy);
            assert!(rollback_error.contains("is unknown"), "{rollback_error}");
            assert!(
                rollback_error.contains("connection reset"),
                "{rollback_error}"
            );
            assert!(
                rollback_error.contains("kyb-deploy rollback -e staging"),
                "{rollback_error}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(lookups(&h.target), 5);
    assert_eq!(h.record(&report).status, RecordStatus::RollbackFailed);
    // Nothing was rolled back blindly.
    assert!(
        !h.target
            .mutating_calls()
            .iter()
            .any(|c| matches!(c, TargetCall::Rollback(_)))
    );
}

/// A platform that accepted the change but answered after the deploy time limit: the run
/// looks the rollout up and follows it to its verdict.
#[tokio::test]
async fn a_deploy_call_that_times_out_is_looked_up_and_followed() {
    let store = InMemoryRecordStore::with_records([past_run("r1", "v1", RecordStatus::Succeeded)]);
    let target = FakeTarget::new()
        .with_current(release("v1"))
        .script(FakeRollout::SlowStart(Duration::from_secs(5)));
    let h = Harness::new(target, ScriptedProbe::new(), store);
    let report = h
        .deploy(
            "v2",
            DeployRequest::new(environment(
                "[environments.staging.timeouts]\ndeploy = \"100ms\"",
            )),
        )
        .await;
    assert!(report.outcome.is_success(), "{:?}", report.outcome);
    assert_eq!(h.target.current().unwrap().version, version("v2"));
    assert_eq!(lookups(&h.target), 1);
}

/// A release that restarts after it passed verification fails its soak and is rolled back;
/// the verification report carries the soak's verdict.
#[tokio::test]
async fn a_release_that_restarts_during_the_soak_is_rolled_back() {
    let store = InMemoryRecordStore::with_records([past_run("r0", "v0", RecordStatus::Succeeded)]);
    let target = FakeTarget::new()
        .with_current(release("v0"))
        .restart_counts([0, 1]);
    let h = Harness::new(target, ScriptedProbe::new(), store);
    let report = h.deploy("v1", request()).await;

    match &report.outcome {
        Outcome::RolledBack {
            stage, reason, to, ..
        } => {
            assert_eq!(*stage, Stage::Soak);
            assert!(reason.contains("restarted during the soak"), "{reason}");
            assert_eq!(to.version, version("v0"));
        }
        other => panic!("{other:?}"),
    }
    let verification = report.verification.as_ref().expect("verification kept");
    assert!(!verification.passed);
    let soak = verification
        .checks
        .iter()
        .find(|c| c.name == "soak")
        .unwrap();
    assert!(!soak.passed);
    assert_eq!(h.target.current().unwrap().version, version("v0"));
    assert_eq!(h.record(&report).status, RecordStatus::RolledBack);
}

/// A soak that sees too many failures fails the release; one that passes is part of the
/// run's stages, with the environment's default duration and failure ratio.
#[tokio::test]
async fn the_soak_decides_whether_a_verified_release_is_good() {
    let store = InMemoryRecordStore::with_records([past_run("r0", "v0", RecordStatus::Succeeded)]);
    let probe =
        ScriptedProbe::new().fail_soak("v1", "4 of 30 probes failed (GET /health -> 503 x4)");
    let h = Harness::new(FakeTarget::new().with_current(release("v0")), probe, store);
    let report = h.deploy("v1", request()).await;
    assert!(
        matches!(&report.outcome, Outcome::RolledBack { stage: Stage::Soak, reason, .. } if reason.contains("503 x4")),
        "{:?}",
        report.outcome
    );

    let report = h.deploy("v2", request()).await;
    assert!(report.outcome.is_success(), "{:?}", report.outcome);
    assert!(stages(&report).contains(&Stage::Soak));
    let soaks = h.probe.soaks();
    let last = soaks.last().unwrap();
    assert_eq!(last.expected_version, version("v2"));
    assert_eq!(
        last.duration,
        Duration::from_secs(60),
        "staging soaks a minute"
    );
    assert!((last.max_failure_ratio - 0.1).abs() < f64::EPSILON);
}

/// Redeploying the serving version (a rebuild) that fails goes back to the build that served,
/// never down to an older version.
#[tokio::test]
async fn a_failed_redeploy_of_the_serving_version_goes_back_to_the_serving_build() {
    let store = InMemoryRecordStore::with_records([
        past_run("r1", "v1", RecordStatus::Succeeded),
        past_run("r2", "v2", RecordStatus::Succeeded),
    ]);
    // The rebuild fails; the build that served still passes when it is verified again.
    let probe = ScriptedProbe::new().set(
        "v2",
        ProbeVerdict::FailOnce {
            check: "liveness".into(),
            detail: "HTTP 503".into(),
        },
    );
    let h = Harness::new(FakeTarget::new().with_current(release("v2")), probe, store);
    // The rebuilt v2 is a new image (the harness deploys `<repository>:v2`).
    let report = h.deploy("v2", request()).await;
    match &report.outcome {
        Outcome::RolledBack { to, .. } => {
            assert_eq!(to.version, version("v2"));
            assert_eq!(to.image, release("v2").image);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(h.target.current().unwrap(), release("v2"));
}

/// What served before the run, when it was verified, is where a failure goes back to, even
/// when a newer release was verified later (and replaced by hand since).
#[tokio::test]
async fn a_failure_goes_back_to_the_verified_release_that_served_before_the_run() {
    let store = InMemoryRecordStore::with_records([
        past_run("r2", "v2", RecordStatus::Succeeded),
        past_run("r3", "v3", RecordStatus::Succeeded),
    ]);
    let h = Harness::new(
        FakeTarget::new().with_current(release("v2")),
        ScriptedProbe::new().fail_version("v4", "liveness", "HTTP 503"),
        store,
    );
    let report = h.deploy("v4", request()).await;
    assert!(
        matches!(&report.outcome, Outcome::RolledBack { to, .. } if to.version == version("v2")),
        "{:?}",
        report.outcome
    );
    assert_eq!(h.target.current().unwrap().version, version("v2"));
}

/// A serving release that no verified run deployed is no rollback target: the last verified
/// release is.
#[tokio::test]
async fn an_unverified_serving_release_is_not_a_rollback_target() {
    let store = InMemoryRecordStore::with_records([
        past_run("r1", "v1", RecordStatus::Succeeded),
        past_run("r9", "v9", RecordStatus::RollbackFailed),
    ]);
    let h = Harness::new(
        FakeTarget::new().with_current(release("v9")),
        ScriptedProbe::new().fail_version("v2", "liveness", "HTTP 503"),
        store,
    );
    let report = h.deploy("v2", request()).await;
    assert!(
        matches!(&report.outcome, Outcome::RolledBack { to, .. } if to.version == version("v1")),
        "{:?}",
        report.outcome
    );
    assert_eq!(h.target.current().unwrap().version, version("v1"));
}

/// The ledger stops taking writes while the release rolls out: the release is verified, but
/// the run is not recorded, and says so; nothing claims it was.
#[tokio::test]
async fn a_final_record_that_cannot_be_written_is_reported() {
    let store = InMemoryRecordStore::new();
    let broken = store.clone();
    let target = FakeTarget::new().on_activate(Arc::new(move |_| {
        broken.set_fail_appends(true);
        async { Ok(()) }.boxed()
    }));
    let h = Harness::new(target, ScriptedProbe::new(), store);
    let report = h.deploy("v1", request()).await;

    assert!(report.outcome.is_success(), "{:?}", report.outcome);
    assert!(!report.recorded);
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("writing the final deployment record failed after 3 attempts")),
        "{:?}",
        report.warnings
    );
    // Only the in-progress record reached the ledger.
    let statuses: Vec<RecordStatus> = h.store.appended().into_iter().map(|r| r.status).collect();
    assert_eq!(statuses, [RecordStatus::InProgress]);
}

/// The final record of a verified release is lost, but the target keeps verification
/// notes: the next run records the lost run as succeeded from the note, so when the next
/// release fails, the run goes back to the one that was verified.
#[tokio::test]
async fn a_verified_release_whose_record_was_lost_stays_known_good() {
    let store = InMemoryRecordStore::new();
    let broken = store.clone();
    let fail_once = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let target = FakeTarget::new()
        .keeping_verification_notes()
        .on_activate(Arc::new(move |_| {
            if fail_once.swap(false, std::sync::atomic::Ordering::SeqCst) {
                broken.set_fail_appends(true);
            }
            async { Ok(()) }.boxed()
        }));
    let h = Harness::new(
        target,
        ScriptedProbe::new().fail_version("v2", "liveness", "HTTP 503"),
        store,
    );
    let lost = h.deploy("v1", request()).await;
    assert!(lost.outcome.is_success(), "{:?}", lost.outcome);
    assert!(!lost.recorded);
    assert_eq!(
        h.target
            .verification_note()
            .map(|(run, r)| (run, r.version)),
        Some((lost.run_id.clone(), version("v1")))
    );

    h.store.set_fail_appends(false);
    let next = h.deploy("v2", request()).await;
    assert!(
        matches!(&next.outcome, Outcome::RolledBack { to, .. } if to.version == version("v1")),
        "{:?}",
        next.outcome
    );
    assert_eq!(h.target.current().unwrap().version, version("v1"));
    let recovered = h.record(&lost);
    assert_eq!(recovered.status, RecordStatus::Succeeded);
    assert_eq!(
        recovered.release.as_ref().map(|r| &r.version),
        Some(&version("v1"))
    );
    assert!(
        recovered
            .warnings
            .iter()
            .any(|w| w.contains("recorded by a later run")),
        "{:?}",
        recovered.warnings
    );
    assert!(
        next.warnings
            .iter()
            .any(|w| w.contains("so it is recorded as succeeded")),
        "{:?}",
        next.warnings
    );
}

/// A run left `in_progress` whose run the platform's note does not name is abandoned, even
/// though the platform holds a note (of another run): a note proves only its own run.
#[tokio::test]
async fn an_interrupted_run_without_its_own_note_is_abandoned() {
    let target = FakeTarget::new().keeping_verification_notes();
    let h = Harness::new(target, ScriptedProbe::new(), InMemoryRecordStore::new());
    let first = h.deploy("v1", request()).await;
    assert!(first.outcome.is_success(), "{:?}", first.outcome);
    let mut dead = past_run("r9", "v9", RecordStatus::InProgress);
    dead.release = None;
    h.store.append(&dead).await.unwrap();

    let next = h.deploy("v2", request()).await;
    assert!(next.outcome.is_success(), "{:?}", next.outcome);
    let resolved = h
        .store
        .records()
        .into_iter()
        .find(|r| r.id == "r9")
        .unwrap();
    assert_eq!(resolved.status, RecordStatus::Abandoned);
    assert!(
        h.target
            .calls()
            .contains(&TargetCall::VerifiedBy("r9".into()))
    );
    // Each verified run left its note; the newest one is kept.
    assert_eq!(
        h.target.verification_note().map(|(run, _)| run),
        Some(next.run_id.clone())
    );
}

/// A rollback on request resolves runs that died, as a deployment does.
#[tokio::test]
async fn a_rollback_resolves_interrupted_runs() {
    let mut dead = past_run("r9", "v9", RecordStatus::InProgress);
    dead.pid = 999_999;
    let store =
        InMemoryRecordStore::with_records([past_run("r1", "v1", RecordStatus::Succeeded), dead]);
    let h = Harness::new(
        FakeTarget::new().with_current(release("v9")),
        ScriptedProbe::new(),
        store,
    );
    let mut request = RollbackRequest {
        environment: environment(""),
        project: Default::default(),
        to: None,
        project_dir: ".".into(),
        confirmed: true,
        dry_run: false,
    };
    request.to = Some(version("v1"));
    let report = h
        .pipeline("v1")
        .rollback(&request, &RunControl::new(CancellationToken::new()))
        .await;
    assert!(report.outcome.is_success(), "{:?}", report.outcome);
    assert_eq!(report.operation, Operation::Rollback);
    assert_eq!(report.interrupted_runs.len(), 1);
    let resolved = h
        .store
        .records()
        .into_iter()
        .find(|r| r.id == "r9")
        .unwrap();
    assert_eq!(resolved.status, RecordStatus::Abandoned);
}
