//! A run killed with SIGKILL leaves an `in_progress` record; the next run reports it and
//! marks it abandoned. The test re-runs itself as a child process and kills it mid-rollout.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kyb_deploy_core::{
    CancellationToken, DeployRequest, FileDeployLock, JsonlRecordStore, Pipeline, RecordStatus,
    RecordStore, RunControl,
};
use kyb_deploy_testkit::{FakeRollout, FakeTarget, FixedVersion, ScriptedProbe};

use crate::harness::environment;

const CHILD_LEDGER: &str = "KYB_TEST_SIGKILL_CHILD_LEDGER";
const TEST_NAME: &str =
    "sigkill::a_sigkilled_run_leaves_an_in_progress_record_the_next_run_reports";

fn pipeline(
    dir: &std::path::Path,
    target: FakeTarget,
    version: &str,
) -> (Pipeline, JsonlRecordStore) {
    let store = JsonlRecordStore::new(dir.join("ledger.jsonl"));
    let pipeline = Pipeline::new(
        Arc::new(target),
        Arc::new(ScriptedProbe::new()),
        Arc::new(store.clone()),
        Arc::new(FileDeployLock::new(dir.join("locks"))),
    )
    .with_version_source(Arc::new(FixedVersion::new(version)));
    (pipeline, store)
}

/// In the child: deploy with a rollout that never ends, until killed (or the overall
/// timeout, should the parent die first).
fn child(dir: &str) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let (pipeline, _) = pipeline(
            dir.as_ref(),
            FakeTarget::new().script(FakeRollout::Hang),
            "v7",
        );
        let request = DeployRequest::new(environment(
            "[environments.staging.timeouts]\noverall = \"120s\"",
        ));
        pipeline
            .deploy(&request, &RunControl::new(CancellationToken::new()))
            .await;
    });
}

#[test]
fn a_sigkilled_run_leaves_an_in_progress_record_the_next_run_reports() {
    if let Ok(dir) = std::env::var(CHILD_LEDGER) {
        child(&dir);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_LEDGER, dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let store = JsonlRecordStore::new(dir.path().join("ledger.jsonl"));

    // Wait for the child's in-progress record (bounded, so a broken child fails the test).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let snapshot = runtime.block_on(store.load()).unwrap();
        if snapshot.in_progress("staging").count() == 1 {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the child exited before writing its record"
        );
        assert!(
            Instant::now() < deadline,
            "the child never wrote its record"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let killed = runtime.block_on(store.load()).unwrap();
    let record = killed.in_progress("staging").next().unwrap().clone();
    assert_eq!(record.version.as_str(), "v7");
    assert!(record.finished_at.is_none());
    assert_ne!(record.pid, std::process::id());

    // The next deployment takes the (released) lock, reports the dead run and resolves it.
    let (next, _) = pipeline(dir.path(), FakeTarget::new(), "v8");
    let report = runtime.block_on(next.deploy(
        &DeployRequest::new(environment("")),
        &RunControl::new(CancellationToken::new()),
    ));
    assert!(report.outcome.is_success(), "{:?}", report.outcome);
    assert_eq!(report.interrupted_runs.len(), 1);
    assert_eq!(report.interrupted_runs[0].id, record.id);
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("never finished") && w.contains(&record.id))
    );
    let after = runtime.block_on(store.load()).unwrap();
    let resolved = after.records.iter().find(|r| r.id == record.id).unwrap();
    assert_eq!(resolved.status, RecordStatus::Abandoned);
    assert_eq!(after.in_progress("staging").count(), 0);
}
