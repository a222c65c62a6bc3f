//! [`EcsBackend`]: the ECS target kind, as the CLI registers it.

use std::path::Path;
use std::sync::Arc;

use kyb_deploy_core::config::{Config, Environment, Problems};
use kyb_deploy_core::{Check, Error, Result, Target, TargetBackend, async_trait};

use crate::settings::EcsSettings;
use crate::target::{EcsTarget, EcsTargetSpec};

/// AWS ECS as a target kind: `target = "ecs"`, settings in `[environments.<name>.ecs]`
/// ([`EcsSettings`]). Validation reads and checks the task definition template (Fargate
/// sizes included) without calling AWS.
///
/// ```
/// use kyb_deploy_core::TargetBackends;
/// use kyb_deploy_core::config::Config;
/// use kyb_deploy_ecs::EcsBackend;
///
/// let backends = TargetBackends::new().with(EcsBackend);
/// let config = Config::from_toml(
///     "[environments.staging]\ntarget = \"ecs\"\n[environments.staging.ecs]\ncluster = \"c\"\nservice = \"s\"\nregion = \"US_EAST_1\"\n",
/// )
/// .unwrap();
/// let error = backends.validate(&config).unwrap_err().to_string();
/// assert!(error.contains("environments.staging.ecs.region: \"US_EAST_1\" is not an AWS region"), "{error}");
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct EcsBackend;

#[async_trait]
impl TargetBackend for EcsBackend {
    fn kind(&self) -> &'static str {
        "ecs"
    }

    fn validate(&self, env: &Environment, base: Option<&Path>) -> Result<Problems> {
        let settings = EcsSettings::of(env)?;
        let mut problems = settings.problems(&env.name, base);
        // The template's content, once the file itself is fine: what ECS would refuse.
        if problems.is_empty()
            && let Some(base) = base
            && let Err(e) = EcsTargetSpec::from_environment(env, base)
        {
            let message = match e {
                Error::Config { message } => message,
                other => other.to_string(),
            };
            problems.push(format!("{}.task_definition: {message}", env.target_key()));
        }
        Ok(problems)
    }

    async fn create(&self, env: &Environment, config: &Config) -> Result<Arc<dyn Target>> {
        Ok(Arc::new(EcsTarget::from_config(env, config).await?))
    }

    async fn prerequisites(&self, _env: &Environment) -> Vec<Check> {
        // Nothing on this machine: credentials come from the whole AWS chain (instance and
        // task roles included), which the target's preflight checks with a real call.
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use kyb_deploy_core::TargetBackends;

    use super::*;

    fn ecs_config(ecs_extra: &str) -> String {
        format!(
            "[environments.x]\ntarget = \"ecs\"\n[environments.x.ecs]\ncluster = \"c\"\nservice = \"s\"\n{ecs_extra}\n"
        )
    }

    fn refused(text: &str) -> String {
        let err = kyb_deploy_testkit::refusal(EcsBackend, text);
        assert!(err.is_usage(), "{err:?}");
        err.to_string()
    }

    #[test]
    fn every_case_is_refused_naming_the_key() {
        let cases = [
            (
                ecs_config("endpoint_url = \"ftp://ecs.example.com\""),
                "environments.x.ecs.endpoint_url: \"ftp://ecs.example.com/\" has the scheme \"ftp\"",
            ),
            (
                ecs_config("endpoint_url = \"ecs endpoint\""),
                "environments.x.ecs.endpoint_url: \"ecs endpoint\" is not a URL",
            ),
            (
                ecs_config("region = \"US_EAST_1\""),
                "environments.x.ecs.region: \"US_EAST_1\" is not an AWS region",
            ),
            (
                ecs_config("region = \"us-east\""),
                "environments.x.ecs.region: \"us-east\" is not an AWS region",
            ),
            (
                ecs_config("[environments.x.ecs.poll]\nmax_calls_per_second = 1000"),
                "environments.x.ecs.poll.max_calls_per_second: 1000 is above ECS's read budget",
            ),
            (
                ecs_config("[environments.x.ecs.poll]\ninterval = \"0s\""),
                "environments.x.ecs.poll: interval must be longer than 0s",
            ),
            (
                ecs_config("[environments.x.ecs.deployment]\nmaximum_percent = 300"),
                "environments.x.ecs.deployment.maximum_percent: 300 is outside 100-200",
            ),
            (
                ecs_config("task_definition = \"\""),
                "environments.x.ecs.task_definition: must not be empty",
            ),
            (
                "[environments.x]\ntarget = \"ecs\"\n[environments.x.ecs]\ncluster = \"c\"\nservise = \"s\"\n"
                    .to_owned(),
                "environments.x.ecs.servise: unknown key \"servise\"; did you mean \"service\"?",
            ),
            (
                "[environments.x]\ntarget = \"ecs\"\n[environments.x.ecs]\ncluster = \"c\"\n"
                    .to_owned(),
                "environments.x.ecs: missing required key \"service\"",
            ),
        ];
        for (text, expected) in cases {
            let err = refused(&text);
            assert!(err.contains(expected), "{text}\n=> {err}");
        }
    }

    #[test]
    fn templates_are_checked_relative_to_the_configuration_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kyb-deploy.toml");
        let load = |text: &str| {
            std::fs::write(&path, text).unwrap();
            let config = Config::load(Some(&path)).unwrap();
            TargetBackends::new().with(EcsBackend).validate(&config)
        };
        let with_template =
            |template: &str| ecs_config(&format!("task_definition = \"{template}\""));

        let err = load(&with_template("deploy/missing.json")).unwrap_err();
        assert!(err.is_usage());
        assert!(
            err.to_string().contains(
                "environments.x.ecs.task_definition: template deploy/missing.json does not exist"
            ),
            "{err}"
        );

        std::fs::create_dir_all(dir.path().join("deploy")).unwrap();
        let err = load(&with_template("deploy")).unwrap_err().to_string();
        assert!(
            err.contains("environments.x.ecs.task_definition: deploy is a directory"),
            "{err}"
        );

        std::fs::write(
            dir.path().join("deploy/latin1.json"),
            b"{\"family\": \"caf\xe9\"}",
        )
        .unwrap();
        let err = load(&with_template("deploy/latin1.json"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(
                "environments.x.ecs.task_definition: template deploy/latin1.json is not UTF-8 text"
            ),
            "{err}"
        );
        assert!(err.contains("kyb-deploy.toml, line 6"), "{err}");

        // A readable file whose content ECS would refuse: named with the key, before AWS.
        std::fs::write(dir.path().join("deploy/td.json"), "{}").unwrap();
        let err = load(&with_template("deploy/td.json"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(
                "environments.x.ecs.task_definition: task definition template deploy/td.json"
            ) && err.contains("missing field `family`"),
            "{err}"
        );
    }
}
