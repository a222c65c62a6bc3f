//! The main job's flow against the real sample service: real HTTP probes, smoke tests, the
//! JSON-lines ledger and the file lock; only the platform is a fake that starts processes.

use std::sync::Arc;

use kyb_deploy_core::config::Config;
use kyb_deploy_core::verify::HttpHealthProbe;
use kyb_deploy_core::{
    CancellationToken, DeployRequest, FileDeployLock, JsonlRecordStore, Outcome, Pipeline,
    RecordStatus, RecordStore, RunControl, Stage, Version,
};
use kyb_deploy_testkit::{FakeTarget, SampleApiProcess};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn the_sample_service_is_verified_and_a_broken_release_rolled_back_over_http() {
    let sample = SampleApiProcess::new(env!("CARGO_BIN_EXE_kyb-sample-api"), free_port())
        .with_faults_for("-broken", &[("KYB_SAMPLE_FAULT_CLASSIFY_500", "1")])
        .with_faults_for("-slowstart", &[("KYB_SAMPLE_FAULT_READY_AFTER", "0.3")]);
    // The repository's example configuration: its development probes and smoke test.
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let config = Config::load(Some(&repo.join("kyb-deploy.toml"))).unwrap();
    let mut env = config.environment("development").unwrap();
    env.settings.verify.base_url = Some(sample.endpoint());
    env.settings.verify.readiness.period = std::time::Duration::from_millis(100);
    env.settings.verify.liveness.period = std::time::Duration::from_millis(100);

    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(JsonlRecordStore::new(dir.path().join("ledger.jsonl")));
    let target = Arc::new(
        FakeTarget::new()
            .with_endpoint(sample.endpoint())
            .on_activate(sample.activate_hook()),
    );
    let pipeline = Pipeline::new(
        target.clone(),
        Arc::new(HttpHealthProbe::new(env.settings.verify.clone()).unwrap()),
        store.clone(),
        Arc::new(FileDeployLock::new(dir.path().join("locks"))),
    );
    let deploy = |version: &str| {
        let mut request = DeployRequest::new(env.clone());
        request.version = Some(Version::parse(version).unwrap());
        request.project_dir = repo.clone();
        let pipeline = pipeline.clone();
        async move {
            pipeline
                .deploy(&request, &RunControl::new(CancellationToken::new()))
                .await
        }
    };

    // A release that takes a moment to become ready passes the readiness gate.
    let good = deploy("v1.0.0-slowstart").await;
    assert!(good.outcome.is_success(), "{:?}", good.outcome);
    let verification = good.verification.unwrap();
    assert_eq!(
        verification.reported_version.as_deref(),
        Some("v1.0.0-slowstart")
    );
    let readiness = &verification.checks[0];
    assert_eq!(readiness.name, "readiness");
    assert!(readiness.attempts > 1, "{readiness:?}");
    assert!(
        verification
            .checks
            .iter()
            .any(|c| c.name == "metrics" && c.passed)
    );
    assert!(verification.latency.p95_ms.is_some());

    // A release whose classify endpoint fails its smoke test is rolled back and v1 verified.
    let broken = deploy("v1.1.0-broken").await;
    match &broken.outcome {
        Outcome::RolledBack {
            stage, reason, to, ..
        } => {
            assert_eq!(*stage, Stage::Verify);
            assert!(
                reason.contains("classify") && reason.contains("500"),
                "{reason}"
            );
            assert_eq!(to.version.as_str(), "v1.0.0-slowstart");
        }
        other => panic!("expected a rollback, got {other:?}"),
    }
    let status: serde_json::Value = reqwest::get(sample.endpoint().join("/status").unwrap())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["version"], "v1.0.0-slowstart");

    let ledger = store.load().await.unwrap();
    let statuses: Vec<_> = ledger.records.iter().map(|r| r.status.clone()).collect();
    assert_eq!(
        statuses,
        [RecordStatus::Succeeded, RecordStatus::RolledBack]
    );
    sample.stop().await;
}
