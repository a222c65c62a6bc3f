//! Creating the [`Target`] an environment names.

use std::sync::Arc;

use kyb_deploy_core::{Config, Environment, Error, Target, TargetKind, async_trait};
use kyb_deploy_docker::{DockerEngine, DockerTarget};
use kyb_deploy_ecs::EcsTarget;

/// Creates the deployment target of an environment.
///
/// The CLI asks its factory for a target whenever a command needs one (`deploy`, `plan`,
/// `rollback`, `status`, `check`, and `verify` when no `verify.base_url` is set). Programs and
/// tests embedding the CLI pass their own factory to [`crate::CliContext::with_targets`], for
/// example one returning a fake target from `kyb-deploy-testkit`.
#[async_trait]
pub trait TargetFactory: Send + Sync {
    /// The target of `env`. An error says why the environment cannot be deployed to from this
    /// build or machine; the CLI reports it as a failure before anything was deployed.
    /// Asynchronous because a backend may load its platform configuration (credential
    /// chains, kubeconfig) while creating the target.
    async fn create(&self, env: &Environment, config: &Config) -> Result<Arc<dyn Target>, Error>;
}

/// The production [`TargetFactory`]: the target kinds built into this build of kyb-deploy.
///
/// The local Docker and the ECS targets are built in; the Kubernetes backend arrives in later
/// work. Until then its environments get an error naming the kind and the configuration
/// key, so that commands fail before changing anything. Adding a kind is one arm in
/// [`BuiltinTargets::create`] plus its entry in [`BuiltinTargets::AVAILABLE`].
#[derive(Clone, Copy, Debug, Default)]
pub struct BuiltinTargets;

impl BuiltinTargets {
    /// The target kinds this build can deploy to.
    pub const AVAILABLE: &'static [TargetKind] = &[TargetKind::Docker, TargetKind::Ecs];
}

#[async_trait]
impl TargetFactory for BuiltinTargets {
    async fn create(&self, env: &Environment, config: &Config) -> Result<Arc<dyn Target>, Error> {
        match env.settings.target {
            TargetKind::Docker => {
                let engine = DockerEngine::connect().await?;
                Ok(Arc::new(DockerTarget::new(engine, env)?))
            }
            TargetKind::Ecs => Ok(Arc::new(EcsTarget::from_config(env, config).await?)),
            kind @ TargetKind::Kubernetes => Err(unavailable(kind, &env.name)),
        }
    }
}

fn unavailable(kind: TargetKind, environment: &str) -> Error {
    Error::target(
        kind.as_str(),
        format!(
            "not available in this build of kyb-deploy yet; environments.{environment} uses target = \"{kind}\""
        ),
    )
}

/// A hint for a target that could not be created because this build lacks its kind.
pub(crate) fn unavailable_hint(kind: TargetKind) -> Option<String> {
    if BuiltinTargets::AVAILABLE.contains(&kind) {
        return None;
    }
    Some(if BuiltinTargets::AVAILABLE.is_empty() {
        "this build of kyb-deploy has no deployment target yet; `history`, `config validate` and `verify` (with verify.base_url set) work without one".to_owned()
    } else {
        let names: Vec<&str> = BuiltinTargets::AVAILABLE
            .iter()
            .map(|k| k.as_str())
            .collect();
        format!("this build of kyb-deploy deploys to: {}", names.join(", "))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unavailable_kinds_name_the_kind_and_the_key() {
        let config = Config::from_toml(
            "[environments.staging]\ntarget = \"kubernetes\"\n[environments.staging.kubernetes]\nnamespace = \"n\"\ndeployment = \"d\"\n",
        )
        .unwrap();
        let env = config.environment("staging").unwrap();
        let Err(err) = BuiltinTargets.create(&env, &config).await else {
            panic!("this build has no Kubernetes target yet");
        };
        let message = err.to_string();
        assert!(
            message.starts_with("kubernetes target: not available in this build"),
            "{message}"
        );
        assert!(
            message.contains("environments.staging uses target = \"kubernetes\""),
            "{message}"
        );
        assert!(!err.is_usage());
        assert!(unavailable_hint(TargetKind::Kubernetes).is_some());
        assert!(unavailable_hint(TargetKind::Ecs).is_none());
    }
}
