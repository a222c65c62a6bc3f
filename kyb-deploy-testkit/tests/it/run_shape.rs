//! Deploy and rollback runs end the stages they share the same way: Ctrl-C during a dry
//! run's plan or while waiting for the environment's lock is `cancelled` (exit 130), a time
//! limit there is `timed_out` (exit 6); neither is "failed before anything was deployed"
//! (exit 3), whichever operation runs.

use std::sync::Arc;
use std::time::Duration;

use kyb_deploy_core::{
    CancellationToken, DeployLock, DeployRequest, LockGuard, Outcome, Pipeline, RecordStatus,
    Result, RollbackRequest, RunControl, Stage, async_trait,
};
use kyb_deploy_testkit::{
    FakeTarget, FixedVersion, InMemoryLock, InMemoryRecordStore, ScriptedProbe,
};

use crate::harness::{environment, past_run, release, version};

/// A lock whose holder never lets go: `acquire` never answers.
struct HeldForever;

#[async_trait]
impl DeployLock for HeldForever {
    async fn acquire(&self, _environment: &str) -> Result<LockGuard> {
        std::future::pending().await
    }
}

#[derive(Clone, Copy, Debug)]
enum Operation {
    Deploy,
    Rollback,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Stop {
    /// Ctrl-C (or SIGTERM) 50 ms into the stage.
    Cancel,
    /// `timeouts.deploy`, which bounds both stages, of 1 s.
    TimeLimit,
}

/// Runs `operation` until it hangs at `stage` (the plan of a dry run, or the lock), and
/// stops it with `stop`.
async fn stopped_at(operation: Operation, stage: Stage, stop: Stop) -> Outcome {
    let target = FakeTarget::new().with_current(release("v1"));
    let (target, lock): (_, Arc<dyn DeployLock>) = match stage {
        Stage::Plan => (target.hang_plans(), Arc::new(InMemoryLock::new())),
        _ => (target, Arc::new(HeldForever)),
    };
    let store = InMemoryRecordStore::with_records([past_run("r0", "v0", RecordStatus::Succeeded)]);
    let pipeline = Pipeline::new(
        Arc::new(target),
        Arc::new(ScriptedProbe::new()),
        Arc::new(store),
        lock,
    )
    .with_version_source(Arc::new(FixedVersion::new("v2")));
    let env = environment(match stop {
        Stop::TimeLimit => "[environments.staging.timeouts]\ndeploy = \"1s\"",
        Stop::Cancel => "",
    });
    let dry_run = stage == Stage::Plan;
    let cancel = CancellationToken::new();
    if stop == Stop::Cancel {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            cancel.cancel();
        });
    }
    let control = RunControl::new(cancel);
    let report = match operation {
        Operation::Deploy => {
            let mut request = DeployRequest::new(env);
            request.dry_run = dry_run;
            pipeline.deploy(&request, &control).await
        }
        Operation::Rollback => {
            let request = RollbackRequest {
                environment: env,
                project: Default::default(),
                to: Some(version("v0")),
                project_dir: ".".into(),
                confirmed: true,
                dry_run,
            };
            pipeline.rollback(&request, &control).await
        }
    };
    report.outcome
}

#[tokio::test(start_paused = true)]
async fn deploy_and_rollback_end_a_stopped_plan_or_lock_the_same_way() {
    for operation in [Operation::Deploy, Operation::Rollback] {
        for stage in [Stage::Plan, Stage::Lock] {
            let case = format!("{operation:?} stopped at {stage:?}");
            match stopped_at(operation, stage, Stop::Cancel).await {
                Outcome::Cancelled {
                    stage: at,
                    rollback: None,
                } => assert_eq!(at, stage, "{case}"),
                other => panic!("{case} by Ctrl-C: {other:?}"),
            }
            match stopped_at(operation, stage, Stop::TimeLimit).await {
                Outcome::TimedOut {
                    stage: at,
                    rollback: None,
                } => assert_eq!(at, stage, "{case}"),
                other => panic!("{case} by its time limit: {other:?}"),
            }
        }
    }
}

/// A lock that is lost as soon as it is taken: another run took it over.
struct LostAtOnce;

#[async_trait]
impl DeployLock for LostAtOnce {
    async fn acquire(&self, _environment: &str) -> Result<LockGuard> {
        let lost = CancellationToken::new();
        lost.cancel();
        Ok(LockGuard::new(()).with_lost(lost))
    }
}

/// A run whose lock was taken over before it deployed changes nothing: it stops before its
/// record and the rollout, says why, and leaves the platform as it was.
#[tokio::test]
async fn a_run_that_lost_its_lock_deploys_nothing() {
    let target = Arc::new(FakeTarget::new().with_current(release("v1")));
    let pipeline = Pipeline::new(
        target.clone(),
        Arc::new(ScriptedProbe::new()),
        Arc::new(InMemoryRecordStore::new()),
        Arc::new(LostAtOnce),
    )
    .with_version_source(Arc::new(FixedVersion::new("v2")));
    let report = pipeline
        .deploy(
            &DeployRequest::new(environment("")),
            &RunControl::new(CancellationToken::new()),
        )
        .await;
    let Outcome::FailedBeforeDeploy { stage, reason } = &report.outcome else {
        panic!("{:?}", report.outcome);
    };
    assert_eq!(*stage, Stage::Record);
    assert!(reason.contains("the lock of staging was lost"), "{reason}");
    assert_eq!(target.current().unwrap().version, version("v1"));
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("was lost during this run")),
        "{:?}",
        report.warnings
    );
}
