//! The target kinds this build deploys to, and creating the [`Target`] an environment names.

use std::sync::Arc;

use kyb_deploy_core::config::{Config, Environment};
use kyb_deploy_core::{Check, Error, Release, Target, TargetBackends, async_trait};
use kyb_deploy_docker::DockerBackend;
use kyb_deploy_ecs::EcsBackend;
use kyb_deploy_k8s::KubernetesBackend;

/// The target kinds of this build: one registration line per kind. Configuration loading
/// checks every environment's target settings with its kind's backend, and the built-in
/// factory creates targets with it; nothing else in the CLI knows a kind.
pub fn registered_backends() -> TargetBackends {
    TargetBackends::new()
        .with(DockerBackend)
        .with(EcsBackend)
        .with(KubernetesBackend)
}

/// Creates the deployment target of an environment.
///
/// The CLI asks its factory for a target whenever a command needs one (`deploy`, `plan`,
/// `rollback`, `status`, `check`, and `verify` when no `verify.base_url` is set). Programs and
/// tests embedding the CLI pass their own factory to [`crate::CliContext::with_targets`], for
/// example one returning a fake target from `kyb-deploy-testkit`.
#[async_trait]
pub trait TargetFactory: Send + Sync {
    /// The target of `env`. An error says why the environment cannot be deployed to from this
    /// machine; the CLI reports it as a failure before anything was deployed.
    /// Asynchronous because a backend may load its platform configuration (credential
    /// chains, kubeconfig) while creating the target.
    async fn create(&self, env: &Environment, config: &Config) -> Result<Arc<dyn Target>, Error>;

    /// What `env`'s target needs on this machine before it can be created, each missing
    /// piece with its fix (`check` lists them). A factory whose targets need nothing here (a
    /// fake) keeps the default: none.
    async fn prerequisites(&self, env: &Environment) -> Vec<Check> {
        let _ = env;
        Vec::new()
    }

    /// What deploying `release` to `env` would write, as text (`render`); `None` when the
    /// target kind renders nothing (the default).
    fn render(
        &self,
        env: &Environment,
        config: &Config,
        release: &Release,
    ) -> Result<Option<String>, Error> {
        let _ = (env, config, release);
        Ok(None)
    }
}

/// The production [`TargetFactory`]: the [`registered_backends`] create the targets.
#[derive(Clone, Debug)]
pub struct BuiltinTargets {
    backends: TargetBackends,
}

impl Default for BuiltinTargets {
    fn default() -> Self {
        Self {
            backends: registered_backends(),
        }
    }
}

#[async_trait]
impl TargetFactory for BuiltinTargets {
    async fn create(&self, env: &Environment, config: &Config) -> Result<Arc<dyn Target>, Error> {
        self.backends.create(env, config).await
    }

    async fn prerequisites(&self, env: &Environment) -> Vec<Check> {
        match self.backends.backend_of(env) {
            Ok(backend) => backend.prerequisites(env).await,
            Err(_) => Vec::new(),
        }
    }

    fn render(
        &self,
        env: &Environment,
        config: &Config,
        release: &Release,
    ) -> Result<Option<String>, Error> {
        self.backends.render(env, config, release)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn kinds_this_build_lacks_are_configuration_errors_naming_the_key_and_the_kinds() {
        let config = Config::from_toml(
            "[environments.staging]\ntarget = \"nomad\"\n[environments.staging.nomad]\njob = \"n\"\n",
        )
        .unwrap();
        let err = registered_backends().validate(&config).unwrap_err();
        assert!(err.is_usage());
        let message = err.to_string();
        assert!(
            message.contains(
                "environments.staging.target: \"nomad\" is not a target kind of this build; it deploys to: docker, ecs, kubernetes"
            ),
            "{message}"
        );
        let env = config.environment("staging").unwrap();
        let Err(err) = BuiltinTargets::default().create(&env, &config).await else {
            panic!("this build has no Nomad target");
        };
        assert!(err.is_usage(), "{err}");
    }

    #[tokio::test]
    async fn prerequisites_come_from_the_environments_backend() {
        let config = Config::from_toml(
            "[environments.dev]\ntarget = \"docker\"\n[environments.dev.docker]\n[environments.staging]\ntarget = \"ecs\"\n[environments.staging.ecs]\ncluster = \"c\"\nservice = \"s\"\n",
        )
        .unwrap();
        let builtin = BuiltinTargets::default();
        let docker = builtin
            .prerequisites(&config.environment("dev").unwrap())
            .await;
        let names: Vec<&str> = docker.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["docker engine socket"]);
        // ECS needs nothing on this machine before its target exists.
        let ecs = builtin
            .prerequisites(&config.environment("staging").unwrap())
            .await;
        assert!(ecs.is_empty(), "{ecs:?}");
    }
}
