//! The pipeline engine: one run of a deployment or a rollback, start to finish.

mod checks;
mod deploy;
mod image;
mod known_good;
mod reconcile;
mod records;
mod rollback;
mod run;
mod shared;
mod soak;
mod stage;

use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;
use url::Url;

use crate::command_test_runner::CommandTestRunner;
use crate::config::{Environment, ImageConfig, ProjectConfig};
use crate::deploy_lock::DeployLock;
use crate::error::{Error, Result};
use crate::event::EventSink;
use crate::git_version::GitVersionSource;
use crate::image_builder::ImageBuilder;
use crate::notifier::{Notification, Notifier};
use crate::outcome::Outcome;
use crate::record::{DeploymentRecord, StageTiming, ci_run_url, current_actor};
use crate::record_store::RecordStore;
use crate::registry::Registry;
use crate::release::Release;
use crate::scanner::{ScanReport, Scanner};
use crate::stage::Stage;
use crate::target::{Plan, Target};
use crate::test_runner::{TestReport, TestRunner, TestSuite};
use crate::verify::{HealthProbe, VerificationReport};
use crate::version::Version;
use crate::version_source::{ResolvedVersion, VersionSource};

pub use self::stage::RunControl;

/// The deployment pipeline, assembled from its seams.
///
/// A [`Pipeline`] holds one target and everything a run needs; [`Pipeline::deploy`] and
/// [`Pipeline::rollback`] run it. Nothing is printed: progress goes to the [`EventSink`], and
/// the result is a [`RunReport`].
#[derive(Clone)]
pub struct Pipeline {
    target: Arc<dyn Target>,
    probe: Arc<dyn HealthProbe>,
    store: Arc<dyn RecordStore>,
    lock: Arc<dyn DeployLock>,
    versions: Option<Arc<dyn VersionSource>>,
    tests: Arc<dyn TestRunner>,
    builder: Option<Arc<dyn ImageBuilder>>,
    scanner: Option<Arc<dyn Scanner>>,
    registry: Option<Arc<dyn Registry>>,
    notifiers: Vec<Arc<dyn Notifier>>,
    events: EventSink,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("target", &self.target.kind())
            .field("builder", &self.builder.is_some())
            .field("scanner", &self.scanner.is_some())
            .field("registry", &self.registry.is_some())
            .field("notifiers", &self.notifiers.len())
            .finish_non_exhaustive()
    }
}

impl Pipeline {
    /// A pipeline deploying to `target`, verifying with `probe`, recording in `store`, and
    /// serialising runs per environment with `lock`. Versions come from git (or the request's
    /// explicit version), tests run as shell commands, and no image is built until an image
    /// builder is set.
    pub fn new(
        target: Arc<dyn Target>,
        probe: Arc<dyn HealthProbe>,
        store: Arc<dyn RecordStore>,
        lock: Arc<dyn DeployLock>,
    ) -> Self {
        Self {
            target,
            probe,
            store,
            lock,
            versions: None,
            tests: Arc::new(CommandTestRunner),
            builder: None,
            scanner: None,
            registry: None,
            notifiers: Vec::new(),
            events: EventSink::new(),
        }
    }

    /// Resolves versions with `source` instead of git.
    pub fn with_version_source(mut self, source: Arc<dyn VersionSource>) -> Self {
        self.versions = Some(source);
        self
    }

    /// Runs tests with `runner`.
    pub fn with_test_runner(mut self, runner: Arc<dyn TestRunner>) -> Self {
        self.tests = runner;
        self
    }

    /// Builds, scans and pushes images with these seams. Without a builder the build, scan
    /// and push stages are skipped and the request's prebuilt image is deployed.
    pub fn with_image_pipeline(
        mut self,
        builder: Arc<dyn ImageBuilder>,
        scanner: Option<Arc<dyn Scanner>>,
        registry: Option<Arc<dyn Registry>>,
    ) -> Self {
        self.builder = Some(builder);
        self.scanner = scanner;
        self.registry = registry;
        self
    }

    /// Adds a notifier.
    pub fn with_notifier(mut self, notifier: Arc<dyn Notifier>) -> Self {
        self.notifiers.push(notifier);
        self
    }

    /// Sends events to `events`.
    pub fn with_events(mut self, events: EventSink) -> Self {
        self.events = events;
        self
    }

    /// The target.
    pub fn target(&self) -> &Arc<dyn Target> {
        &self.target
    }

    /// The record store.
    pub fn store(&self) -> &Arc<dyn RecordStore> {
        &self.store
    }

    fn version_source(&self, request: &DeployRequest) -> Arc<dyn VersionSource> {
        self.versions.clone().unwrap_or_else(|| {
            Arc::new(GitVersionSource::new(
                &request.project_dir,
                request.version.clone(),
            ))
        })
    }

    /// Where the service answers: see [`service_url`].
    pub async fn base_url(&self, environment: &Environment) -> Result<Url> {
        service_url(environment, self.target.as_ref()).await
    }

    /// Tells every notifier about a finished run (dry runs change nothing and are not
    /// announced). A failed notification becomes a warning of the report; the record was
    /// already written, so it is not in the ledger.
    async fn notify(&self, report: &mut RunReport, project: &str) {
        let dry_run = matches!(report.outcome, Outcome::Succeeded { dry_run: true, .. });
        if self.notifiers.is_empty() || dry_run {
            return;
        }
        let notification = Notification {
            text: format!(
                "{project} {} → {}: {}",
                report
                    .version
                    .as_ref()
                    .map_or("?".to_owned(), |v| v.version.to_string()),
                report.environment,
                report.summary()
            ),
            project: project.to_owned(),
            environment: report.environment.clone(),
            version: report
                .version
                .as_ref()
                .map_or_else(String::new, |v| v.version.to_string()),
            actor: current_actor(),
            ci_run_url: ci_run_url(),
            run_id: report.run_id.clone(),
            outcome: report.outcome.clone(),
        };
        for notifier in &self.notifiers {
            if let Err(e) = notifier.notify(&notification).await {
                let message = format!("notification via {} failed: {}", notifier.name(), e.chain());
                self.events.warn(Stage::Notify, message.clone());
                report.warnings.push(message);
            }
        }
    }

    /// Records where the service answers once a run put a release in service.
    async fn locate(&self, environment: &Environment, report: &mut RunReport) {
        let in_service = matches!(
            report.outcome,
            Outcome::Succeeded { dry_run: false, .. } | Outcome::RolledBack { .. }
        );
        if in_service {
            report.url = self.base_url(environment).await.ok();
        }
    }
}

/// Where the service of `environment` answers: its `verify.base_url`, else the endpoint
/// `target` reports. Fails with a message naming the key to set when neither is known.
pub async fn service_url(environment: &Environment, target: &dyn Target) -> Result<Url> {
    if let Some(url) = &environment.settings.verify.base_url {
        return Ok(url.clone());
    }
    target.describe().await?.endpoint.ok_or_else(|| Error::Config {
        message: format!(
            "environments.{}.verify.base_url: not set, and the {} target reports no endpoint; set the URL the service answers on",
            environment.name,
            target.kind()
        ),
    })
}

/// What to deploy, and how.
#[derive(Clone, Debug)]
pub struct DeployRequest {
    /// The environment.
    pub environment: Environment,
    /// The project settings.
    pub project: ProjectConfig,
    /// How the image is built and named.
    pub image: ImageConfig,
    /// Test suites to run before the build.
    pub tests: Vec<TestSuite>,
    /// An explicit version; the git commit when `None`.
    pub version: Option<Version>,
    /// The image to deploy when no image builder is set (`repo:tag` or `repo@digest`);
    /// defaults to `<image.repository>:<version>`.
    pub prebuilt_image: Option<String>,
    /// The project directory (git working tree, test working directory).
    pub project_dir: PathBuf,
    /// Continue past failing tests and scans, and deploy a dirty tree where the environment
    /// requires a clean one. Recorded with a warning.
    pub force: bool,
    /// Do not run tests. Recorded with a warning.
    pub skip_tests: bool,
    /// Change nothing; plan against the live target.
    pub dry_run: bool,
    /// The user confirmed (for environments with `guards.confirm`).
    pub confirmed: bool,
    /// How long to wait for the environment's lock while another run holds it (zero:
    /// fail at once, naming the holder).
    pub wait_for_lock: std::time::Duration,
}

impl DeployRequest {
    /// A request for `environment` with defaults: version from git in the current directory,
    /// no tests, nothing forced, not a dry run, not confirmed.
    pub fn new(environment: Environment) -> Self {
        Self {
            environment,
            project: ProjectConfig::default(),
            image: ImageConfig::default(),
            tests: Vec::new(),
            version: None,
            prebuilt_image: None,
            project_dir: PathBuf::from("."),
            force: false,
            skip_tests: false,
            dry_run: false,
            confirmed: false,
            wait_for_lock: std::time::Duration::ZERO,
        }
    }
}

/// What to roll back to.
#[derive(Clone, Debug)]
pub struct RollbackRequest {
    /// The environment.
    pub environment: Environment,
    /// The project settings.
    pub project: ProjectConfig,
    /// The version to go back to; the last known-good release other than the one running
    /// when `None`.
    pub to: Option<Version>,
    /// The project directory (for preflight).
    pub project_dir: PathBuf,
    /// The user confirmed (for environments with `guards.confirm`).
    pub confirmed: bool,
    /// Only say what would happen.
    pub dry_run: bool,
}

/// Everything a run did: the JSON report of `--output json`.
#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    /// Run id (also the ledger record id).
    pub run_id: String,
    /// Deploy or rollback.
    pub operation: crate::record::Operation,
    /// Environment name.
    pub environment: String,
    /// Target kind.
    pub target: String,
    /// When the run started.
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: time::OffsetDateTime,
    /// How it ended.
    pub outcome: Outcome,
    /// The resolved version, when resolution got that far.
    pub version: Option<ResolvedVersion>,
    /// The release deployed.
    pub release: Option<Release>,
    /// The release that ran before.
    pub previous: Option<Release>,
    /// The platform's rollout id.
    pub rollout_id: Option<String>,
    /// Stage timings in order.
    pub stages: Vec<StageTiming>,
    /// Test results.
    pub tests: Vec<TestReport>,
    /// Scan result.
    pub scan: Option<ScanReport>,
    /// The plan (dry runs).
    pub plan: Option<Plan>,
    /// Verification of the deployed release.
    pub verification: Option<VerificationReport>,
    /// Verification of the release rolled back to.
    pub rollback_verification: Option<VerificationReport>,
    /// Warnings, also kept in the record.
    pub warnings: Vec<String>,
    /// Earlier runs of this environment that never finished (killed), found by this run.
    pub interrupted_runs: Vec<DeploymentRecord>,
    /// Whether the record could be written.
    pub recorded: bool,
    /// Where the environment's service answers, after a run that put a release in service.
    #[serde(serialize_with = "crate::redact::serialize_redacted_url")]
    pub url: Option<Url>,
}

impl RunReport {
    /// A one-line summary for people, worded for the operation (a successful rollback says
    /// "rolled back", not "deployed").
    pub fn summary(&self) -> String {
        match (&self.operation, &self.outcome) {
            (crate::record::Operation::Rollback, Outcome::Succeeded { release, dry_run }) => {
                if *dry_run {
                    format!(
                        "dry run: would roll back {} to {} ({}); nothing was changed",
                        self.environment, release.version, release.image
                    )
                } else {
                    format!(
                        "rolled back {} to {} ({})",
                        self.environment, release.version, release.image
                    )
                }
            }
            (_, outcome) => outcome.summary(),
        }
    }

    fn new(
        run_id: String,
        operation: crate::record::Operation,
        environment: &str,
        target: &str,
    ) -> Self {
        Self {
            run_id,
            operation,
            environment: environment.to_owned(),
            target: target.to_owned(),
            started_at: time::OffsetDateTime::now_utc(),
            outcome: Outcome::FailedBeforeDeploy {
                stage: Stage::Preflight,
                reason: "not started".into(),
            },
            version: None,
            release: None,
            previous: None,
            rollout_id: None,
            stages: Vec::new(),
            tests: Vec::new(),
            scan: None,
            plan: None,
            verification: None,
            rollback_verification: None,
            warnings: Vec::new(),
            interrupted_runs: Vec::new(),
            recorded: false,
            url: None,
        }
    }
}
