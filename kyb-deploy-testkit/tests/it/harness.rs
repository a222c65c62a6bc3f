//! Shared set-up for the pipeline tests.

use std::sync::Arc;

use kyb_deploy_core::config::{Config, Environment};
use kyb_deploy_core::{
    CancellationToken, DeployRequest, DeploymentRecord, Operation, Pipeline, RecordStatus, Release,
    RunControl, RunReport, Version,
};
use kyb_deploy_testkit::{
    FakeTarget, FakeTestRunner, FixedVersion, InMemoryLock, InMemoryRecordStore, ScriptedProbe,
};

/// An environment named `staging` with `extra` TOML appended to its table.
pub(crate) fn environment(extra: &str) -> Environment {
    let text = format!(
        "[environments.staging]\ntarget = \"docker\"\n{extra}\n[environments.staging.docker]\n\
         [environments.staging.verify]\nbase_url = \"http://127.0.0.1:9\"\n"
    );
    Config::from_toml(&text)
        .expect("valid test config")
        .environment("staging")
        .expect("staging exists")
}

pub(crate) fn version(v: &str) -> Version {
    Version::parse(v).expect("valid version")
}

pub(crate) fn release(v: &str) -> Release {
    Release::new(
        version(v),
        format!(
            "registry.test/kyb@sha256:{}",
            kyb_deploy_testkit::fake_digest(v)
        ),
    )
}

/// A finished ledger record of `v` in staging.
pub(crate) fn past_run(id: &str, v: &str, status: RecordStatus) -> DeploymentRecord {
    let mut r = DeploymentRecord::start(id, Operation::Deploy, "staging", "fake", version(v));
    r.release = Some(release(v));
    r.status = status;
    r
}

/// The seams of one test, kept so the test can inspect them afterwards.
pub(crate) struct Harness {
    pub(crate) target: Arc<FakeTarget>,
    pub(crate) probe: Arc<ScriptedProbe>,
    pub(crate) store: Arc<InMemoryRecordStore>,
    pub(crate) lock: Arc<InMemoryLock>,
    pub(crate) tests: Arc<FakeTestRunner>,
}

impl Harness {
    pub(crate) fn new(
        target: FakeTarget,
        probe: ScriptedProbe,
        store: InMemoryRecordStore,
    ) -> Self {
        Self {
            target: Arc::new(target),
            probe: Arc::new(probe),
            store: Arc::new(store),
            lock: Arc::new(InMemoryLock::new()),
            tests: Arc::new(FakeTestRunner::new()),
        }
    }

    pub(crate) fn with_tests(mut self, tests: FakeTestRunner) -> Self {
        self.tests = Arc::new(tests);
        self
    }

    pub(crate) fn pipeline(&self, v: &str) -> Pipeline {
        Pipeline::new(
            self.target.clone(),
            self.probe.clone(),
            self.store.clone(),
            self.lock.clone(),
        )
        .with_version_source(Arc::new(FixedVersion::new(v)))
        .with_test_runner(self.tests.clone())
    }

    pub(crate) async fn deploy(&self, v: &str, request: DeployRequest) -> RunReport {
        self.pipeline(v)
            .deploy(&request, &RunControl::new(CancellationToken::new()))
            .await
    }

    /// The final record of the run.
    pub(crate) fn record(&self, report: &RunReport) -> DeploymentRecord {
        self.store
            .records()
            .into_iter()
            .find(|r| r.id == report.run_id)
            .expect("the run is recorded")
    }
}
