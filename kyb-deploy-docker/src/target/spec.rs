//! What a container of the local Docker target looks like: its name, labels, environment
//! variables and security settings, all derived from the environment's configuration. Pure
//! functions, except for reading secret values at deploy time.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use bollard::models::{
    ContainerCreateBody, HostConfig, PortBinding, RestartPolicy, RestartPolicyNameEnum,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::settings::{DockerSettings, SecretSource};
use kyb_deploy_core::Release;
use kyb_deploy_core::{Error, Result};

/// The environment a container belongs to.
pub(super) const LABEL_ENVIRONMENT: &str = "io.kyb-deploy.environment";
/// The configured container name prefix; with the environment it scopes the containers a
/// target manages, so two projects may both have a `development` environment on one engine.
pub(super) const LABEL_CONTAINER: &str = "io.kyb-deploy.container";
/// The version the container runs.
pub(super) const LABEL_VERSION: &str = "io.kyb-deploy.version";
/// The image reference as the release gave it.
pub(super) const LABEL_IMAGE: &str = "io.kyb-deploy.image";
/// The whole [`Release`] as JSON.
pub(super) const LABEL_RELEASE: &str = "io.kyb-deploy.release";
/// `candidate` or `serving`.
pub(super) const LABEL_ROLE: &str = "io.kyb-deploy.role";
/// When the container was created by kyb-deploy (RFC 3339).
pub(super) const LABEL_STARTED_AT: &str = "io.kyb-deploy.started-at";
/// The ledger record of the run that deployed the release.
pub(super) const LABEL_RECORD_ID: &str = "io.kyb-deploy.record-id";
/// Names (never values) of the plain environment variables kyb-deploy set, comma-separated.
pub(super) const LABEL_ENV_KEYS: &str = "io.kyb-deploy.env-keys";
/// Names (never values) of the secrets kyb-deploy set, comma-separated.
pub(super) const LABEL_SECRET_KEYS: &str = "io.kyb-deploy.secret-keys";
/// The OCI annotation for the version.
pub(super) const LABEL_OCI_VERSION: &str = "org.opencontainers.image.version";

/// The tmpfs mounted at `/tmp`: applications with a read-only root filesystem often need a
/// writable scratch directory, and a tmpfs keeps it off the image's layers.
const TMPFS_OPTIONS: &str = "rw,nosuid,nodev,mode=1777";

/// What a container does for its environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Role {
    /// Started beside the serving container on an ephemeral port, to be verified.
    Candidate,
    /// Publishes the environment's stable port.
    Serving,
}

impl Role {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::Candidate => "candidate",
            Self::Serving => "serving",
        }
    }
}

/// The settings of one environment's Docker target, checked once at construction.
#[derive(Clone, Debug)]
pub(super) struct TargetSpec {
    pub(super) environment: String,
    pub(super) docker: DockerSettings,
    /// Plain environment variables of the service (`environments.<name>.env`).
    pub(super) env: BTreeMap<String, String>,
}

impl TargetSpec {
    /// Checks the settings (see [`DockerSettings::problems`]); all problems at once, as
    /// one configuration error.
    pub(super) fn new(
        environment: &str,
        docker: DockerSettings,
        env: BTreeMap<String, String>,
    ) -> Result<Self> {
        let problems = docker.problems(environment, &env);
        if !problems.is_empty() {
            return Err(Error::Config {
                message: problems.into_vec().join("; "),
            });
        }
        Ok(Self {
            environment: environment.to_owned(),
            docker,
            env,
        })
    }

    /// The label filters that select this environment's containers.
    pub(super) fn scope_filters(&self) -> Vec<String> {
        vec![
            format!("{LABEL_ENVIRONMENT}={}", self.environment),
            format!("{LABEL_CONTAINER}={}", self.docker.container),
        ]
    }

    /// `<container>-<environment>-<version>-<random>`.
    pub(super) fn container_name(&self, release: &Release) -> String {
        let suffix: u32 = rand::random();
        format!("{}-{suffix:08x}", self.container_name_stem(release))
    }

    /// The name without its random suffix, for plans.
    pub(super) fn container_name_stem(&self, release: &Release) -> String {
        format!(
            "{}-{}-{}",
            name_part(&self.docker.container),
            name_part(&self.environment),
            name_part(release.version.as_str())
        )
    }

    /// The plain variables of the service: `environments.<name>.env` plus `PORT`.
    pub(super) fn plain_env(&self) -> BTreeMap<String, String> {
        let mut env = self.env.clone();
        env.insert("PORT".into(), self.docker.port.to_string());
        env
    }

    /// The container's labels.
    pub(super) fn labels(
        &self,
        release: &Release,
        role: Role,
        now: OffsetDateTime,
    ) -> HashMap<String, String> {
        let release_json =
            serde_json::to_string(release).expect("a release always serializes to JSON");
        let started_at = now
            .format(&Rfc3339)
            .expect("a current time formats as RFC 3339");
        let env_keys: Vec<String> = self.plain_env().into_keys().collect();
        let secret_keys: Vec<&str> = self.docker.secrets.keys().map(String::as_str).collect();
        let mut labels = HashMap::from([
            (LABEL_ENVIRONMENT.into(), self.environment.clone()),
            (LABEL_CONTAINER.into(), self.docker.container.clone()),
            (LABEL_VERSION.into(), release.version.to_string()),
            (LABEL_IMAGE.into(), release.image.clone()),
            (LABEL_RELEASE.into(), release_json),
            (LABEL_ROLE.into(), role.as_str().into()),
            (LABEL_STARTED_AT.into(), started_at),
            (LABEL_ENV_KEYS.into(), env_keys.join(",")),
            (LABEL_SECRET_KEYS.into(), secret_keys.join(",")),
            (LABEL_OCI_VERSION.into(), release.version.to_string()),
        ]);
        if let Some(record) = &release.record_id {
            labels.insert(LABEL_RECORD_ID.into(), record.clone());
        }
        labels
    }

    /// The container's `KEY=value` list: plain variables, `PORT`, then the secrets.
    pub(super) fn container_env(&self, secrets: &[(String, SecretValue)]) -> Vec<String> {
        let mut env: Vec<String> = self
            .plain_env()
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        env.extend(secrets.iter().map(|(k, v)| format!("{k}={}", v.0)));
        env
    }

    /// The host side of the container: published port, restart policy, security settings.
    /// `host_port` `None` lets the engine pick an ephemeral port.
    pub(super) fn host_config(&self, role: Role, host_port: Option<u16>) -> HostConfig {
        let security = &self.docker.security;
        let binding = PortBinding {
            host_ip: Some("127.0.0.1".into()),
            host_port: Some(host_port.map(|p| p.to_string()).unwrap_or_default()),
        };
        let restart = match role {
            // A crashing candidate must stay down so that `wait` sees it fail.
            Role::Candidate => RestartPolicyNameEnum::NO,
            Role::Serving => RestartPolicyNameEnum::UNLESS_STOPPED,
        };
        HostConfig {
            port_bindings: Some(HashMap::from([(self.port_key(), Some(vec![binding]))])),
            restart_policy: Some(RestartPolicy {
                name: Some(restart),
                maximum_retry_count: None,
            }),
            readonly_rootfs: Some(security.read_only_root_filesystem),
            cap_drop: security
                .drop_all_capabilities
                .then(|| vec!["ALL".to_owned()]),
            security_opt: security
                .no_new_privileges
                .then(|| vec!["no-new-privileges".to_owned()]),
            tmpfs: Some(HashMap::from([("/tmp".into(), TMPFS_OPTIONS.into())])),
            ..HostConfig::default()
        }
    }

    /// The whole creation request of a container.
    pub(super) fn create_body(
        &self,
        image: &str,
        env: Vec<String>,
        labels: HashMap<String, String>,
        host_config: HostConfig,
    ) -> ContainerCreateBody {
        ContainerCreateBody {
            image: Some(image.to_owned()),
            env: Some(env),
            labels: Some(labels),
            exposed_ports: Some(HashMap::from([(self.port_key(), HashMap::new())])),
            host_config: Some(host_config),
            ..ContainerCreateBody::default()
        }
    }

    /// `<port>/tcp`, the engine's key of the service's port.
    pub(super) fn port_key(&self) -> String {
        format!("{}/tcp", self.docker.port)
    }

    /// Reads every secret's value. A missing one is an error that names the secret and its
    /// source, never a value.
    pub(super) fn resolve_secrets(&self) -> Result<Vec<(String, SecretValue)>> {
        self.docker
            .secrets
            .iter()
            .map(|(name, source)| Ok((name.clone(), self.read_secret(name, source)?)))
            .collect()
    }

    fn read_secret(&self, name: &str, source: &SecretSource) -> Result<SecretValue> {
        let key = format!("environments.{}.docker.secrets.{name}", self.environment);
        let missing = |what: String, source: Option<Box<dyn std::error::Error + Send + Sync>>| {
            Error::Target {
                target: "docker".into(),
                message: format!("secret {name} ({key}) is not available: {what}"),
                source,
            }
        };
        match (&source.env, &source.file) {
            (Some(var), None) => match std::env::var(var) {
                Ok(value) if !value.is_empty() => Ok(SecretValue(value)),
                Ok(_) => Err(missing(
                    format!("environment variable {var} is empty; set it before deploying"),
                    None,
                )),
                Err(std::env::VarError::NotPresent) => Err(missing(
                    format!("environment variable {var} is not set; set it before deploying"),
                    None,
                )),
                Err(std::env::VarError::NotUnicode(_)) => Err(missing(
                    format!("environment variable {var} is not valid UTF-8"),
                    None,
                )),
            },
            (None, Some(path)) => {
                let text = std::fs::read(path).map_err(|e| {
                    missing(
                        format!("file {} cannot be read", path.display()),
                        Some(Box::new(e)),
                    )
                })?;
                // The value itself must not reach the error, so the UTF-8 error is not kept.
                let text = String::from_utf8(text).map_err(|_| {
                    missing(format!("file {} is not valid UTF-8", path.display()), None)
                })?;
                let value = text.strip_suffix('\n').unwrap_or(&text);
                let value = value.strip_suffix('\r').unwrap_or(value);
                if value.is_empty() {
                    return Err(missing(format!("file {} is empty", path.display()), None));
                }
                Ok(SecretValue(value.to_owned()))
            }
            _ => Err(Error::Config {
                message: format!(
                    "{key}: give exactly one of env = \"VARIABLE\" or file = \"path\""
                ),
            }),
        }
    }

    /// Where each secret comes from, for plans and checks (`env VAR`, `file PATH`).
    pub(super) fn secret_source(source: &SecretSource) -> String {
        match (&source.env, &source.file) {
            (Some(var), _) => format!("env {var}"),
            (None, Some(path)) => format!("file {}", path.display()),
            (None, None) => "nowhere".into(),
        }
    }
}

/// A secret's value. Its `Debug` never shows it.
#[derive(Clone)]
pub(super) struct SecretValue(pub(super) String);

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(<redacted>)")
    }
}

/// Replaces every secret value in `text`, so that container output shown to users cannot
/// leak one.
pub(super) fn redact(text: &str, secrets: &[String]) -> String {
    let mut text = text.to_owned();
    for value in secrets.iter().filter(|v| !v.is_empty()) {
        text = text.replace(value.as_str(), "<redacted>");
    }
    text
}

pub(super) use crate::runs_as_root;

/// A piece of a container name: Docker allows `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
fn name_part(text: &str) -> String {
    let part: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    if part.is_empty() { "x".into() } else { part }
}

/// Splits `KEY=value` lines into a map; the last one of a key wins, as in the engine.
pub(super) fn parse_env(lines: &[String]) -> BTreeMap<String, String> {
    lines
        .iter()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Splits a comma-separated key label.
pub(super) fn parse_keys(label: Option<&String>) -> BTreeSet<String> {
    label
        .map(|l| {
            l.split(',')
                .filter(|k| !k.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
pub(super) mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::settings::ContainerSecurity;
    use kyb_deploy_core::Version;

    pub(in crate::target) fn spec() -> TargetSpec {
        let mut docker: DockerSettings =
            serde_json::from_str(r#"{"container": "kyb-api", "host_port": 18080}"#).unwrap();
        docker.secrets.insert(
            "API_TOKEN".into(),
            SecretSource {
                env: Some("KYB_TEST_UNSET_SECRET_VAR".into()),
                file: None,
            },
        );
        let env = BTreeMap::from([("LOG_LEVEL".to_owned(), "debug".to_owned())]);
        TargetSpec::new("development", docker, env).unwrap()
    }

    pub(in crate::target) fn release(v: &str) -> Release {
        Release::new(Version::parse(v).unwrap(), format!("registry/kyb:{v}"))
    }

    #[test]
    fn names_containers_after_prefix_environment_and_version() {
        let name = spec().container_name(&release("v1.2.3"));
        let (stem, suffix) = name.rsplit_once('-').unwrap();
        assert_eq!(stem, "kyb-api-development-v1.2.3");
        assert_eq!(suffix.len(), 8);
    }

    #[test]
    fn labels_carry_the_release_and_role() {
        let labels = spec().labels(&release("v1"), Role::Candidate, OffsetDateTime::UNIX_EPOCH);
        assert_eq!(labels[LABEL_ROLE], "candidate");
        assert_eq!(labels[LABEL_VERSION], "v1");
        assert_eq!(labels[LABEL_OCI_VERSION], "v1");
        assert_eq!(labels[LABEL_STARTED_AT], "1970-01-01T00:00:00Z");
        assert_eq!(labels[LABEL_ENV_KEYS], "LOG_LEVEL,PORT");
        assert_eq!(labels[LABEL_SECRET_KEYS], "API_TOKEN");
        let parsed: Release = serde_json::from_str(&labels[LABEL_RELEASE]).unwrap();
        assert_eq!(parsed, release("v1"));
    }

    #[test]
    fn hardens_containers_unless_relaxed() {
        let mut spec = spec();
        let host = spec.host_config(Role::Candidate, None);
        assert_eq!(host.readonly_rootfs, Some(true));
        assert_eq!(host.cap_drop, Some(vec!["ALL".to_owned()]));
        assert_eq!(
            host.security_opt,
            Some(vec!["no-new-privileges".to_owned()])
        );
        assert!(host.tmpfs.unwrap().contains_key("/tmp"));
        let binding = &host.port_bindings.unwrap()["8080/tcp"].clone().unwrap()[0];
        assert_eq!(binding.host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(binding.host_port.as_deref(), Some(""));
        assert_eq!(
            host.restart_policy.unwrap().name,
            Some(RestartPolicyNameEnum::NO)
        );

        spec.docker.security = ContainerSecurity {
            non_root: false,
            read_only_root_filesystem: false,
            drop_all_capabilities: false,
            no_new_privileges: false,
        };
        let host = spec.host_config(Role::Serving, Some(18080));
        assert_eq!(host.readonly_rootfs, Some(false));
        assert_eq!(host.cap_drop, None);
        assert_eq!(host.security_opt, None);
        assert_eq!(
            host.restart_policy.unwrap().name,
            Some(RestartPolicyNameEnum::UNLESS_STOPPED)
        );
        let binding = &host.port_bindings.unwrap()["8080/tcp"].clone().unwrap()[0];
        assert_eq!(binding.host_port.as_deref(), Some("18080"));
    }

    #[test]
    fn detects_root_users() {
        for user in [
            None,
            Some(""),
            Some("root"),
            Some("0"),
            Some("0:0"),
            Some("root:staff"),
        ] {
            assert!(runs_as_root(user), "{user:?}");
        }
        for user in [Some("10001:10001"), Some("app"), Some("nobody:nogroup")] {
            assert!(!runs_as_root(user), "{user:?}");
        }
    }

    #[test]
    fn a_missing_secret_names_its_source_and_no_value() {
        let err = spec().resolve_secrets().unwrap_err().to_string();
        assert!(err.contains("API_TOKEN"), "{err}");
        assert!(err.contains("KYB_TEST_UNSET_SECRET_VAR"), "{err}");
    }

    #[test]
    fn reads_secret_files_without_the_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "s3cr3t-value\n").unwrap();
        let mut spec = spec();
        spec.docker.secrets.insert(
            "API_TOKEN".into(),
            SecretSource {
                env: None,
                file: Some(path),
            },
        );
        let secrets = spec.resolve_secrets().unwrap();
        assert_eq!(secrets[0].1.0, "s3cr3t-value");
        assert!(!format!("{secrets:?}").contains("s3cr3t"));
        let env = spec.container_env(&secrets);
        assert_eq!(
            env,
            ["LOG_LEVEL=debug", "PORT=8080", "API_TOKEN=s3cr3t-value"]
        );

        spec.docker.secrets.insert(
            "API_TOKEN".into(),
            SecretSource {
                env: None,
                file: Some(PathBuf::from("/nonexistent/kyb-secret")),
            },
        );
        let err = spec.resolve_secrets().unwrap_err().to_string();
        assert!(err.contains("/nonexistent/kyb-secret"), "{err}");
    }

    #[test]
    fn rejects_conflicting_settings() {
        let docker: DockerSettings = serde_json::from_str("{}").unwrap();
        let env = BTreeMap::from([("PORT".to_owned(), "9000".to_owned())]);
        let err = TargetSpec::new("dev", docker.clone(), env).unwrap_err();
        assert!(
            err.to_string().contains("environments.dev.env.PORT"),
            "{err}"
        );

        let mut with_secret = docker;
        with_secret.secrets.insert(
            "TOKEN".into(),
            SecretSource {
                env: Some("X".into()),
                file: None,
            },
        );
        let env = BTreeMap::from([("TOKEN".to_owned(), "plain".to_owned())]);
        let err = TargetSpec::new("dev", with_secret, env).unwrap_err();
        assert!(err.to_string().contains("docker.secrets.TOKEN"), "{err}");
    }

    #[test]
    fn redacts_secret_values() {
        let text = redact("token=abc123 and abc123", &["abc123".into(), String::new()]);
        assert_eq!(text, "token=<redacted> and <redacted>");
    }
}
