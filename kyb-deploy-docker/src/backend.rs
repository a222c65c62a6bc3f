//! [`DockerBackend`]: the local Docker target kind, as the CLI registers it.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use kyb_deploy_core::config::{Config, Environment, Problems};
use kyb_deploy_core::{Check, Result, Target, TargetBackend};

use crate::engine::socket_check;
use crate::settings::DockerSettings;
use crate::{DockerEngine, DockerTarget};

/// The local Docker engine as a target kind: `target = "docker"`, settings in
/// `[environments.<name>.docker]` ([`DockerSettings`]).
///
/// ```
/// use kyb_deploy_core::TargetBackends;
/// use kyb_deploy_core::config::Config;
/// use kyb_deploy_docker::DockerBackend;
///
/// let backends = TargetBackends::new().with(DockerBackend);
/// let config = Config::from_toml(
///     "[environments.dev]\ntarget = \"docker\"\n[environments.dev.docker]\nport = 0\n",
/// )
/// .unwrap();
/// let error = backends.validate(&config).unwrap_err().to_string();
/// assert!(error.contains("environments.dev.docker.port: 0 is not a port"), "{error}");
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct DockerBackend;

#[async_trait]
impl TargetBackend for DockerBackend {
    fn kind(&self) -> &'static str {
        "docker"
    }

    fn validate(&self, env: &Environment, _base: Option<&Path>) -> Result<Problems> {
        Ok(DockerSettings::of(env)?.problems(&env.name, &env.settings.env))
    }

    async fn create(&self, env: &Environment, _config: &Config) -> Result<Arc<dyn Target>> {
        let engine = DockerEngine::connect().await?;
        Ok(Arc::new(DockerTarget::new(engine, env)?))
    }

    async fn prerequisites(&self, _env: &Environment) -> Vec<Check> {
        vec![socket_check()]
    }
}
