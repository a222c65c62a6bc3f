//! The local Docker target's settings: `[environments.<name>.docker]`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use kyb_deploy_core::Result;
use kyb_deploy_core::config::{Environment, Problems};
use serde::{Deserialize, Serialize};

/// Settings of the local Docker target (`[environments.<name>.docker]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerSettings {
    /// Container name prefix.
    #[serde(default = "default_container")]
    pub container: String,
    /// Port the service listens on inside the container.
    #[serde(default = "default_port")]
    pub port: u16,
    /// Port published on 127.0.0.1: the environment's stable address.
    #[serde(default = "default_port")]
    pub host_port: u16,
    /// Secrets passed to the container as environment variables, each read from an
    /// environment variable or a file of the machine running kyb-deploy. Never logged.
    #[serde(default)]
    pub secrets: BTreeMap<String, SecretSource>,
    /// Container security settings; all on by default.
    #[serde(default)]
    pub security: ContainerSecurity,
}

/// Where a secret's value comes from: exactly one of `env` and `file`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretSource {
    /// An environment variable of the machine running kyb-deploy.
    #[serde(default)]
    pub env: Option<String>,
    /// A file of the machine running kyb-deploy (trailing newline trimmed).
    #[serde(default)]
    pub file: Option<PathBuf>,
}

/// Security settings of the local Docker target's containers (`[....docker.security]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContainerSecurity {
    /// Refuse to run an image whose user is root.
    pub non_root: bool,
    /// Read-only root filesystem.
    pub read_only_root_filesystem: bool,
    /// Drop all Linux capabilities.
    pub drop_all_capabilities: bool,
    /// Set `no-new-privileges`.
    pub no_new_privileges: bool,
}

impl Default for ContainerSecurity {
    fn default() -> Self {
        Self {
            non_root: true,
            read_only_root_filesystem: true,
            drop_all_capabilities: true,
            no_new_privileges: true,
        }
    }
}

fn default_container() -> String {
    "kyb-platform-api".into()
}

fn default_port() -> u16 {
    8080
}

impl DockerSettings {
    /// The settings of `environment`'s `[docker]` section: a configuration error, naming the
    /// key and the line, when it is missing or does not parse.
    pub fn of(environment: &Environment) -> Result<Self> {
        environment.target_settings()
    }

    /// What serde cannot check, for environment `name` whose service gets `env`: ports,
    /// secrets (exactly one source, a variable name, not also a plain variable) and `PORT`,
    /// which the target sets itself. Each problem names its key and its fix.
    pub fn problems(&self, name: &str, env: &BTreeMap<String, String>) -> Problems {
        let key = format!("environments.{name}.docker");
        let mut problems = Problems::default();
        problems.port(&format!("{key}.port"), self.port);
        problems.port(&format!("{key}.host_port"), self.host_port);
        if let Some(value) = env.get("PORT")
            && value.trim() != self.port.to_string()
        {
            problems.push(format!(
                "environments.{name}.env.PORT: the Docker target sets PORT to docker.port ({}); remove PORT from env or change docker.port",
                self.port
            ));
        }
        for (secret, source) in &self.secrets {
            let skey = format!("{key}.secrets.{secret}");
            if source.env.is_some() == source.file.is_some() {
                problems.push(format!(
                    "{skey}: give exactly one of env = \"VARIABLE\" or file = \"path\""
                ));
            }
            problems.env_name(&skey, secret, "like DATABASE_URL");
            if env.contains_key(secret) || secret == "PORT" {
                problems.push(format!(
                    "{skey}: {secret} is also set as a plain variable; keep one of them"
                ));
            }
            if let Some(variable) = &source.env
                && (variable.is_empty() || variable.contains(['=', '\0']))
            {
                problems.push(format!(
                    "{skey}.env: {variable:?} is not an environment variable name; name the variable that holds the secret"
                ));
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use crate::DockerBackend;

    fn refused(docker_extra: &str, env_extra: &str) -> String {
        let text = format!(
            "[environments.x]\ntarget = \"docker\"\n{env_extra}\n[environments.x.docker]\n{docker_extra}\n"
        );
        let err = kyb_deploy_testkit::refusal(DockerBackend, &text);
        assert!(err.is_usage(), "{err:?}");
        err.to_string()
    }

    #[test]
    fn every_case_is_refused_naming_the_key() {
        let cases = [
            (
                "port = 0",
                "",
                "environments.x.docker.port: 0 is not a port",
            ),
            (
                "host_port = -1",
                "",
                "environments.x.docker.host_port: -1 is out of range",
            ),
            (
                "[environments.x.docker.secrets.TOKEN]\nenv = \"A\"\nfile = \"b\"",
                "",
                "environments.x.docker.secrets.TOKEN: give exactly one of env",
            ),
            (
                "[environments.x.docker.secrets.\"A-B\"]\nenv = \"A\"",
                "",
                "environments.x.docker.secrets.A-B: \"A-B\" is not an environment variable name",
            ),
            (
                "[environments.x.docker.secrets.TOKEN]\nenv = \"A=B\"",
                "",
                "environments.x.docker.secrets.TOKEN.env: \"A=B\" is not an environment variable name",
            ),
            (
                "[environments.x.docker.secrets.TOKEN]\nenv = \"A\"",
                "[environments.x.env]\nTOKEN = \"plain\"",
                "environments.x.docker.secrets.TOKEN: TOKEN is also set as a plain variable",
            ),
            (
                "port = 8080",
                "[environments.x.env]\nPORT = \"9000\"",
                "environments.x.env.PORT: the Docker target sets PORT to docker.port (8080)",
            ),
            (
                "prot = 8080",
                "",
                "environments.x.docker.prot: unknown key \"prot\"; did you mean \"port\"?",
            ),
        ];
        for (docker, env, expected) in cases {
            let err = refused(docker, env);
            assert!(err.contains(expected), "{docker} / {env}\n=> {err}");
        }
    }
}
