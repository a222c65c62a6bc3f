//! The project a command works on: its configuration, its directory, and the seams built
//! from them (target, probe, ledger, lock, notifiers, tests).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use kyb_deploy_core::config::{
    Config, DEFAULT_CONFIG_FILE, Environment, ScanKind, StateBackendKind,
};
use kyb_deploy_core::verify::{HealthProbe, HttpHealthProbe};
use kyb_deploy_core::{
    DeployLock, EventSink, FileDeployLock, ImageBuilder, JsonlRecordStore, Notifier, Pipeline,
    RecordStore, Registry, ScanChain, Scanner, Target, TestSuite, Version, WebhookNotifier,
};
use kyb_deploy_docker::{
    CredentialSource, DockerEngine, DockerImageBuilder, DockerRegistry, ImagePolicyScanner,
    PolicySettings, TrivyScanner,
};

use crate::args::GlobalArgs;
use crate::context::CliContext;
use crate::error::CliError;

/// An environment's record store and lock, and where they are, for messages.
pub(crate) struct State {
    pub(crate) records: Arc<dyn RecordStore>,
    pub(crate) lock: Arc<dyn DeployLock>,
    /// The ledger file as configured, or `s3://bucket/prefix/environment`.
    pub(crate) location: String,
}

/// A loaded configuration and the directory it belongs to.
#[derive(Debug)]
pub(crate) struct Project {
    pub(crate) config: Config,
    /// The configuration file.
    pub(crate) path: PathBuf,
    /// The project directory: the configuration file's directory. The ledger, test working
    /// directories and the git working tree are relative to it.
    pub(crate) dir: PathBuf,
}

impl Project {
    /// Loads `--config` (or `KYB_DEPLOY_CONFIG`, or `kyb-deploy.toml` in the working
    /// directory) with `KYB_DEPLOY_*` overrides, and validates it.
    pub(crate) fn load(ctx: &CliContext, global: &GlobalArgs) -> Result<Self, CliError> {
        let given = global
            .config
            .as_deref()
            .unwrap_or(Path::new(DEFAULT_CONFIG_FILE));
        let path = ctx.cwd.join(given);
        if !path.is_file() {
            return Err(CliError::ConfigNotFound { path });
        }
        let config = Config::load(Some(&path))?;
        // Every environment's target settings, by its kind's backend, before any command.
        crate::targets::registered_backends().validate(&config)?;
        let dir = path
            .parent()
            .map_or_else(|| ctx.cwd.clone(), Path::to_path_buf);
        Ok(Self { config, path, dir })
    }

    /// The environment `name`, with `--timeout` applied to its overall time limit.
    pub(crate) fn environment(
        &self,
        name: &str,
        overall: Option<Duration>,
    ) -> Result<Environment, CliError> {
        let mut env = self.config.environment(name)?;
        if let Some(overall) = overall {
            env.settings.timeouts.overall = overall;
        }
        Ok(env)
    }

    /// The project's JSON-lines ledger: the records of the environments whose state backend
    /// is `file`.
    pub(crate) fn ledger(&self) -> JsonlRecordStore {
        JsonlRecordStore::new(self.ledger_path())
    }

    /// Where `env`'s records and lock live: its state backend's store and lock.
    pub(crate) async fn state(&self, env: &Environment) -> Result<State, CliError> {
        let settings = &env.settings.state;
        match settings.backend {
            StateBackendKind::File => Ok(State {
                records: Arc::new(self.ledger()),
                lock: Arc::new(self.lock()),
                location: self.config.ledger.path.display().to_string(),
            }),
            StateBackendKind::S3 => {
                let (records, lock) = kyb_deploy_ecs::s3_state(settings, &env.name).await?;
                Ok(State {
                    records: Arc::new(records),
                    lock: Arc::new(lock),
                    location: format!(
                        "s3://{}/{}/{}",
                        settings.bucket.as_deref().unwrap_or_default(),
                        settings.prefix.trim_matches('/'),
                        env.name
                    ),
                })
            }
            StateBackendKind::Kubernetes => {
                let (records, lock) = kyb_deploy_k8s::kubernetes_state(env, &self.config).await?;
                Ok(State {
                    records: Arc::new(records),
                    lock: Arc::new(lock),
                    location: format!(
                        "Kubernetes namespace {}: {}/{}",
                        kyb_deploy_k8s::state_namespace(env)?,
                        settings.prefix.trim_matches('/'),
                        env.name
                    ),
                })
            }
        }
    }

    fn ledger_path(&self) -> PathBuf {
        self.dir.join(&self.config.ledger.path)
    }

    /// The per-environment deployment locks, kept beside the ledger.
    fn lock(&self) -> FileDeployLock {
        let ledger = self.ledger_path();
        let dir = ledger
            .parent()
            .map_or_else(|| self.dir.clone(), Path::to_path_buf);
        FileDeployLock::new(dir.join("locks"))
    }

    /// The test suites of `[tests]`.
    pub(crate) fn test_suites(&self) -> Vec<TestSuite> {
        let tests = &self.config.tests;
        let workdir = self
            .dir
            .join(tests.workdir.as_deref().unwrap_or(Path::new(".")));
        [("unit", &tests.unit), ("integration", &tests.integration)]
            .into_iter()
            .filter_map(|(name, command)| {
                command.as_ref().map(|command| TestSuite {
                    name: name.to_owned(),
                    command: command.clone(),
                    workdir: workdir.clone(),
                })
            })
            .collect()
    }

    /// The webhooks of `[notify]`, each bounded by `notify.budget`.
    pub(crate) fn notifiers(&self) -> Result<Vec<Arc<dyn Notifier>>, CliError> {
        let notify = &self.config.notify;
        notify
            .webhooks
            .iter()
            .map(|url| {
                WebhookNotifier::new(url, notify.attempts, notify.timeout)
                    .map(|n| Arc::new(n.with_budget(notify.budget)) as Arc<dyn Notifier>)
                    .map_err(CliError::from)
            })
            .collect()
    }

    /// The probe verifying `env`: the context's override, else HTTP per `verify` settings.
    pub(crate) fn probe(
        &self,
        ctx: &CliContext,
        env: &Environment,
    ) -> Result<Arc<dyn HealthProbe>, CliError> {
        if let Some(probe) = &ctx.probe {
            return Ok(probe.clone());
        }
        Ok(Arc::new(HttpHealthProbe::new(env.settings.verify.clone())?))
    }

    /// The target of `env`, from the context's factory.
    pub(crate) async fn target(
        &self,
        ctx: &CliContext,
        env: &Environment,
    ) -> Result<Arc<dyn Target>, CliError> {
        ctx.targets
            .create(env, &self.config)
            .await
            .map_err(|error| CliError::Target {
                kind: env.settings.target.clone(),
                error,
            })
    }

    /// The pipeline for `env`, sending events to `events`; with `build`, the Docker engine
    /// builds, scans and pushes the image (unless the context brings prebuilt images).
    /// Configuration problems (probe settings, webhook URLs) are reported before the target
    /// is created.
    pub(crate) async fn pipeline(
        &self,
        ctx: &CliContext,
        env: &Environment,
        events: EventSink,
        build: bool,
    ) -> Result<Pipeline, CliError> {
        let probe = self.probe(ctx, env)?;
        let notifiers = self.notifiers()?;
        let target = self.target(ctx, env).await?;
        let mut pipeline = self
            .pipeline_around(env, target, probe, events, notifiers)
            .await?;
        if build && ctx.build_images {
            let (builder, scanner, registry) = self.image_seams().await?;
            pipeline = pipeline.with_image_pipeline(builder, scanner, Some(registry));
        }
        Ok(pipeline)
    }

    /// A pipeline of `target` with `env`'s record store and lock and `notifiers`, without
    /// the image seams.
    pub(crate) async fn pipeline_around(
        &self,
        env: &Environment,
        target: Arc<dyn Target>,
        probe: Arc<dyn HealthProbe>,
        events: EventSink,
        notifiers: Vec<Arc<dyn Notifier>>,
    ) -> Result<Pipeline, CliError> {
        let state = self.state(env).await?;
        let mut pipeline =
            Pipeline::new(target, probe, state.records, state.lock).with_events(events);
        for notifier in notifiers {
            pipeline = pipeline.with_notifier(notifier);
        }
        Ok(pipeline)
    }

    /// The Docker image builder, the scanner `image.scan` names, and the registry client.
    pub(crate) async fn image_seams(
        &self,
    ) -> Result<
        (
            Arc<dyn ImageBuilder>,
            Option<Arc<dyn Scanner>>,
            Arc<dyn Registry>,
        ),
        CliError,
    > {
        let image = &self.config.image;
        let engine = DockerEngine::connect().await.map_err(CliError::Engine)?;
        let policy = || -> Result<ImagePolicyScanner, CliError> {
            Ok(ImagePolicyScanner::new(
                engine.clone(),
                PolicySettings::from_config(image)?,
            ))
        };
        let scanner: Option<Arc<dyn Scanner>> = match image.scan {
            ScanKind::None => None,
            ScanKind::Policy => Some(Arc::new(policy()?)),
            ScanKind::Trivy => Some(Arc::new(
                ScanChain::new()
                    .then(policy()?)
                    .then(TrivyScanner::new(&image.trivy)?),
            )),
        };
        let mut registry = image.registry.clone();
        // A relative password file belongs to the project, not to the working directory.
        registry.password_file = registry.password_file.map(|p| self.dir.join(p));
        Ok((
            Arc::new(DockerImageBuilder::new(engine.clone())),
            scanner,
            Arc::new(DockerRegistry::new(
                engine,
                // ECR hosts get a fresh token from GetAuthorizationToken.
                CredentialSource::from_config(&registry)
                    .with_login(Arc::new(kyb_deploy_ecs::EcrLogin::from_environment())),
            )),
        ))
    }
}

/// Parses a version given on the command line. Called before anything else, so that an
/// invalid version never reaches a shell, a tag or a path.
pub(crate) fn parse_version(raw: Option<&str>) -> Result<Option<Version>, CliError> {
    raw.map(Version::parse).transpose().map_err(CliError::from)
}

/// Runs `work` unless `cancel` fires first (Ctrl-C while waiting on a target).
pub(crate) async fn cancellable<T>(
    cancel: &kyb_deploy_core::CancellationToken,
    work: impl std::future::Future<Output = T>,
) -> Result<T, CliError> {
    tokio::select! {
        () = cancel.cancelled() => Err(CliError::Interrupted),
        value = work => Ok(value),
    }
}
