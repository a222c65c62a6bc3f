//! [`EcsTargetSpec`]: what an ECS environment deploys to, read and checked from its
//! configuration before anything talks to AWS.

use std::path::Path;

use kyb_deploy_core::config::Environment;
use kyb_deploy_core::{Error, Result};

use crate::settings::{EcsDeployment, EcsSettings};

use crate::task_definition::TaskDefinitionSpec;

/// What an [`EcsTarget`](super::EcsTarget) deploys to and how, from an environment's `[ecs]` section.
#[derive(Clone, Debug, PartialEq)]
pub struct EcsTargetSpec {
    /// The environment's name.
    pub environment: String,
    /// Cluster name or ARN.
    pub cluster: String,
    /// Service name.
    pub service: String,
    /// The container that runs the service's image (optional with one container).
    pub container: Option<String>,
    /// The task definition template; `None` reuses the service's current task definition.
    pub template: Option<TaskDefinitionSpec>,
    /// Environment variables for the service's container.
    pub env: Vec<(String, String)>,
    /// The deployment configuration applied with every deployment.
    pub deployment: EcsDeployment,
}

impl EcsTargetSpec {
    /// The spec of `environment`, reading its template relative to `base` (the
    /// configuration file's directory). Checks the template, Fargate sizes included,
    /// before anything talks to AWS.
    ///
    /// # Errors
    ///
    /// When the environment has no `[ecs]` section, or its template cannot be read or
    /// would be refused by ECS.
    pub fn from_environment(environment: &Environment, base: &Path) -> Result<Self> {
        let settings = EcsSettings::of(environment)?;
        let template = match &settings.task_definition {
            None => None,
            Some(written) => {
                let path = base.join(written);
                let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
                    what: format!(
                        "read the task definition template of environments.{}",
                        environment.name
                    ),
                    path: path.clone(),
                    source,
                })?;
                let origin = format!(
                    "{} (environments.{}.ecs.task_definition)",
                    written.display(),
                    environment.name
                );
                let spec = TaskDefinitionSpec::from_template(&text, &origin)?;
                check_spec(&spec, settings.container.as_deref(), &origin)?;
                Some(spec)
            }
        };
        Ok(Self {
            environment: environment.name.clone(),
            cluster: settings.cluster,
            service: settings.service,
            container: settings.container,
            template,
            env: environment
                .settings
                .env
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            deployment: settings.deployment,
        })
    }
}

/// Problems ECS would refuse the task definition for, as one configuration error.
pub(super) fn check_spec(
    spec: &TaskDefinitionSpec,
    container: Option<&str>,
    origin: &str,
) -> Result<()> {
    let mut problems = spec.check();
    if let Err(e) = spec.service_container(container) {
        problems.push(e.to_string());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Config {
            message: format!("task definition {origin}: {}", problems.join("; ")),
        })
    }
}
