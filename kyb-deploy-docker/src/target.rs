//! [`DockerTarget`]: the local Docker engine as a deployment target (the development
//! environment).
//!
//! A release first runs as a *candidate* container beside the one serving the environment,
//! published on an ephemeral port of 127.0.0.1. The pipeline verifies it there; only then
//! does [`Target::promote`] move it to the environment's stable port and remove the previous
//! container. A candidate that fails is removed and the previous release keeps serving,
//! untouched.

mod candidate;
mod engine;
mod plan;
mod preflight;
mod promote;
mod spec;

use std::time::Duration;

use async_trait::async_trait;
use bollard::Docker;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use url::Url;

use self::engine::Managed;
use self::spec::{Role, TargetSpec};
use super::DockerEngine;
use kyb_deploy_core::Check;
use kyb_deploy_core::Release;
use kyb_deploy_core::Result;
use kyb_deploy_core::StageProgress;
use kyb_deploy_core::config::Environment;
use kyb_deploy_core::{DeployHandle, Plan, Revision, RolloutOutcome, Target, TargetDescription};

use crate::settings::DockerSettings;

/// How often a rollout is looked at.
const POLL: Duration = Duration::from_millis(250);
/// How many lines of a failed container's output a failure reason quotes.
const LOG_LINES: usize = 10;

/// The local Docker engine as a [`Target`]: each release runs as a container with the
/// environment's variables and secrets, hardened (non-root, read-only root filesystem, all
/// capabilities dropped, `no-new-privileges`) unless the configuration relaxes it, and
/// published on 127.0.0.1 only.
///
/// Containers are named `<container>-<environment>-<version>-<random>` and labelled
/// `io.kyb-deploy.*` (environment, version, image, release, role, started-at); the target
/// reads its current release and history back from those labels.
///
/// ```no_run
/// # async fn example() -> kyb_deploy_core::Result<()> {
/// use kyb_deploy_core::Target;
/// use kyb_deploy_core::config::Config;
/// use kyb_deploy_docker::{DockerEngine, DockerTarget};
///
/// let config = Config::from_toml(r#"
///     [environments.development]
///     target = "docker"
///     [environments.development.docker]
///     host_port = 8080
/// "#)?;
/// let env = config.environment("development")?;
/// let target = DockerTarget::new(DockerEngine::connect().await?, &env)?;
/// println!("{:?}", target.current_release().await?);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct DockerTarget {
    engine: DockerEngine,
    spec: TargetSpec,
}

impl DockerTarget {
    /// The target of `environment`, whose `[environments.<name>.docker]` section says how
    /// its containers run. Fails with a configuration error when the section is missing or
    /// inconsistent.
    pub fn new(engine: DockerEngine, environment: &Environment) -> Result<Self> {
        let name = &environment.name;
        let docker = DockerSettings::of(environment)?;
        let spec = TargetSpec::new(name, docker, environment.settings.env.clone())?;
        Ok(Self { engine, spec })
    }

    /// Where the environment's serving container answers: `http://127.0.0.1:<host_port>/`.
    pub fn endpoint(&self) -> Url {
        local_url(self.spec.docker.host_port)
    }

    fn client(&self) -> &Docker {
        self.engine.client()
    }

    /// The running container that serves the environment, if any.
    async fn serving(&self) -> Result<Option<Managed>> {
        Ok(engine::list_managed(self.client(), &self.spec, false)
            .await?
            .into_iter()
            .find(|m| m.running && m.role == Some(Role::Serving)))
    }
}

#[async_trait]
impl Target for DockerTarget {
    fn kind(&self) -> &str {
        "docker"
    }

    async fn preflight(&self) -> Vec<Check> {
        let engine = self.engine.check().await;
        if !engine.ok {
            return vec![engine];
        }
        let mut checks = vec![engine, self.port_check().await];
        if !self.spec.docker.secrets.is_empty() {
            checks.push(self.secrets_check());
        }
        checks
    }

    async fn describe(&self) -> Result<TargetDescription> {
        let env = &self.spec.environment;
        let mut details = vec![("environment".to_owned(), env.clone())];
        let name = match self.serving().await? {
            Some(serving) => {
                let ports = serving
                    .ports
                    .iter()
                    .map(|(ip, host, port)| format!("{ip}:{host}->{port}/tcp"))
                    .collect::<Vec<_>>()
                    .join(", ");
                details.extend([
                    ("container".to_owned(), serving.name.clone()),
                    ("container id".to_owned(), serving.short_id().to_owned()),
                    (
                        "image".to_owned(),
                        serving.image.clone().unwrap_or_default(),
                    ),
                    ("state".to_owned(), serving.state.clone()),
                    ("ports".to_owned(), ports),
                ]);
                if let Some(release) = &serving.release {
                    details.push(("version".to_owned(), release.version.to_string()));
                }
                format!("container {} on the local Docker engine", serving.name)
            }
            None => {
                details.push((
                    "host port".to_owned(),
                    self.spec.docker.host_port.to_string(),
                ));
                format!("environment {env} on the local Docker engine (no serving container)")
            }
        };
        Ok(TargetDescription {
            kind: "docker".into(),
            name,
            endpoint: Some(self.endpoint()),
            details,
        })
    }

    async fn current_release(&self) -> Result<Option<Release>> {
        Ok(self.serving().await?.and_then(|s| s.release))
    }

    async fn plan(&self, desired: &Release) -> Result<Plan> {
        let serving = self.serving().await?;
        let facts = match &serving {
            Some(s) => self.serving_facts(s).await?,
            None => None,
        };
        Ok(Plan {
            current: serving.and_then(|s| s.release),
            changes: plan::plan_changes(&self.spec, facts.as_ref(), desired),
        })
    }

    async fn deploy(&self, desired: &Release) -> Result<DeployHandle> {
        self.start_candidate(desired).await
    }

    async fn wait(
        &self,
        handle: &DeployHandle,
        progress: &StageProgress,
        cancel: &CancellationToken,
    ) -> Result<RolloutOutcome> {
        self.wait_candidate(handle, progress, cancel).await
    }

    async fn promote(&self, handle: &DeployHandle, progress: &StageProgress) -> Result<()> {
        self.promote_candidate(handle, progress).await
    }

    async fn restarts(&self, handle: &DeployHandle) -> Result<Option<u64>> {
        // A candidate runs with restart policy "no": a crash leaves it exited (or removed),
        // which counts as one restart on top of any the engine counted.
        let info = engine::inspect(self.client(), &handle.rollout_id).await?;
        Ok(Some(match info {
            None => 1,
            Some(info) => {
                let counted = u64::try_from(info.restart_count.unwrap_or(0)).unwrap_or(0);
                counted + u64::from(!engine::is_running(&info))
            }
        }))
    }

    async fn discard(&self, _handle: &DeployHandle) -> Result<()> {
        // The pipeline holds the environment's lock: every candidate is this run's.
        self.remove_stale_candidates().await
    }

    async fn rollback(&self, to: &Release) -> Result<DeployHandle> {
        // Going back to the release that still serves (a deployment failed before its
        // promotion) keeps that container: the pipeline waits for it, verifies it at the
        // stable address, and `promote` leaves it in place.
        if let Some(serving) = self.serving().await?
            && serving.release.as_ref() == Some(to)
        {
            self.remove_stale_candidates().await?;
            return Ok(DeployHandle {
                rollout_id: serving.short_id().to_owned(),
                release: to.clone(),
                started_at: serving.started_at.unwrap_or_else(OffsetDateTime::now_utc),
                candidate_endpoint: Some(self.endpoint()),
                cursor: None,
            });
        }
        self.start_candidate(to).await
    }

    async fn history(&self) -> Result<Vec<Revision>> {
        Ok(engine::list_managed(self.client(), &self.spec, true)
            .await?
            .into_iter()
            .filter_map(|m| {
                Some(Revision {
                    active: m.running && m.role == Some(Role::Serving),
                    deployed_at: m.started_at,
                    release: m.release?,
                })
            })
            .collect())
    }
}

fn local_url(port: u16) -> Url {
    Url::parse(&format!("http://127.0.0.1:{port}/")).expect("a loopback URL with a port parses")
}
