//! The configuration model and its loading: built-in defaults < `kyb-deploy.toml` <
//! `KYB_DEPLOY_*` environment variables (< command-line flags, applied by the caller).

pub(crate) mod duration;
mod environment;
mod image;
mod verify;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::{Deserialize, Serialize};

pub use self::environment::{
    ContainerSecurity, DockerSettings, EcsDeployment, EcsPoll, EcsSettings, EnvironmentConfig,
    Guards, KubernetesSettings, RollbackPolicy, SecretSource, TargetKind, Timeouts,
};
pub(crate) use self::image::parse_size;
pub use self::image::{ImageConfig, PolicyConfig, RegistryConfig, ScanKind, TrivyConfig};
pub use self::verify::{MetricsCheck, ProbeSettings, SmokeTest, StatusCheck, VerifyConfig};
use crate::error::{Error, Result};

/// The default configuration file name.
pub const DEFAULT_CONFIG_FILE: &str = "kyb-deploy.toml";

/// Prefix of environment variables that override configuration keys. Nested keys are
/// separated by a double underscore: `KYB_DEPLOY_ENVIRONMENTS__STAGING__ROLLBACK=never`.
/// Variables without a double underscore (such as credentials) are not configuration keys.
pub const ENV_PREFIX: &str = "KYB_DEPLOY_";

/// The whole configuration of a project.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The service being deployed.
    #[serde(default)]
    pub project: ProjectConfig,
    /// How the image is built and named.
    #[serde(default)]
    pub image: ImageConfig,
    /// Tests run before the build.
    #[serde(default)]
    pub tests: TestsConfig,
    /// Where deployment records are kept.
    #[serde(default)]
    pub ledger: LedgerConfig,
    /// Who is told about deployments.
    #[serde(default)]
    pub notify: NotifyConfig,
    /// The environments, by name.
    pub environments: BTreeMap<String, EnvironmentConfig>,
    /// Where the configuration was read from (not a key).
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

/// The service being deployed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProjectConfig {
    /// Service name, used in records and notifications.
    pub name: String,
    /// Source repository URL, recorded in image labels.
    pub source: Option<String>,
}

impl Default for ProjectConfig {
    fn default() -> Self {
        Self {
            name: "kyb-platform-api".into(),
            source: None,
        }
    }
}

/// Tests run before the build. Each command runs with `sh -c` in `workdir`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TestsConfig {
    /// Unit test command.
    pub unit: Option<String>,
    /// Integration test command.
    pub integration: Option<String>,
    /// Working directory of the commands (the project directory when unset).
    pub workdir: Option<PathBuf>,
}

/// Where deployment records are kept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LedgerConfig {
    /// The JSON-lines ledger file, relative to the project directory.
    pub path: PathBuf,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        Self {
            path: ".kyb-deploy/ledger.jsonl".into(),
        }
    }
}

/// Who is told about deployments.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// Webhooks that receive a JSON POST with a Slack-compatible `text` field.
    pub webhooks: Vec<String>,
    /// Attempts per webhook before giving up with a warning.
    pub attempts: u32,
    /// Time limit of one attempt.
    #[serde(with = "duration")]
    pub timeout: Duration,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            webhooks: Vec::new(),
            attempts: 3,
            timeout: Duration::from_secs(10),
        }
    }
}

/// One named environment with its settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Environment {
    /// The environment's name (`development`, `staging`, `production`, ...).
    pub name: String,
    /// Its settings.
    pub settings: EnvironmentConfig,
}

impl Config {
    /// Loads the configuration from `path` (default [`DEFAULT_CONFIG_FILE`] in the current
    /// directory) and `KYB_DEPLOY_*` environment variables, then validates it.
    pub fn load(path: Option<&Path>) -> Result<Self> {
        let path = path.unwrap_or(Path::new(DEFAULT_CONFIG_FILE));
        if !path.is_file() {
            return Err(Error::Config {
                message: format!(
                    "config file {} not found; create it (see docs/configuration.md) or pass --config PATH",
                    path.display()
                ),
            });
        }
        let env = Env::prefixed(ENV_PREFIX)
            .filter(|key| key.as_str().contains("__"))
            .split("__");
        Self::from_figment(
            Figment::new().merge(Toml::file_exact(path)).merge(env),
            path,
        )
    }

    /// Parses a configuration from TOML text (no environment variables), then validates it.
    pub fn from_toml(text: &str) -> Result<Self> {
        Self::from_figment(
            Figment::new().merge(Toml::string(text)),
            Path::new("<inline>"),
        )
    }

    fn from_figment(figment: Figment, path: &Path) -> Result<Self> {
        let mut config: Self = figment.extract().map_err(|e| Error::Config {
            message: describe_figment_errors(e, path),
        })?;
        config.source = Some(path.to_owned());
        config.validate()?;
        Ok(config)
    }

    /// The names of the configured environments.
    pub fn environment_names(&self) -> Vec<String> {
        self.environments.keys().cloned().collect()
    }

    /// Looks up an environment by name; an unknown name lists the valid ones.
    pub fn environment(&self, name: &str) -> Result<Environment> {
        self.environments
            .get(name)
            .map(|settings| Environment {
                name: name.to_owned(),
                settings: settings.clone(),
            })
            .ok_or_else(|| Error::UnknownEnvironment {
                name: name.to_owned(),
                valid: self.environment_names(),
            })
    }

    /// Checks what serde cannot: cross-field rules and value ranges.
    pub fn validate(&self) -> Result<()> {
        let file = self
            .source
            .as_deref()
            .map_or_else(|| "<inline>".to_owned(), |p| p.display().to_string());
        let mut problems = Vec::new();
        if self.environments.is_empty() {
            problems.push("environments: no environment is defined; add [environments.development] or another".to_owned());
        }
        if let Err(e) = parse_size(&self.image.policy.max_size) {
            problems.push(format!("image.policy.max_size: {e}"));
        }
        if !["LOW", "MEDIUM", "HIGH", "CRITICAL"].contains(&self.image.trivy.fail_on.as_str()) {
            problems.push(format!(
                "image.trivy.fail_on: {:?} is not a severity; use LOW, MEDIUM, HIGH or CRITICAL",
                self.image.trivy.fail_on
            ));
        }
        for platform in &self.image.platforms {
            let parts: Vec<&str> = platform.split('/').collect();
            if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.is_empty()) {
                problems.push(format!(
                    "image.platforms: {platform:?} is not a platform; write os/arch[/variant], like \"linux/arm64\""
                ));
            }
        }
        if self.notify.attempts == 0 {
            problems.push("notify.attempts: must be at least 1".to_owned());
        }
        for (name, env) in &self.environments {
            validate_environment(name, env, &mut problems);
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Config {
                message: format!("{} (in {file})", problems.join("; ")),
            })
        }
    }
}

fn validate_environment(name: &str, env: &EnvironmentConfig, problems: &mut Vec<String>) {
    let key = format!("environments.{name}");
    let valid_name = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric());
    if !valid_name {
        problems.push(format!(
            "{key}: environment names use lowercase letters, digits, '-' and '_' and start with a letter or digit"
        ));
    }
    let section = match env.target {
        TargetKind::Docker => env.docker.is_some(),
        TargetKind::Ecs => env.ecs.is_some(),
        TargetKind::Kubernetes => env.kubernetes.is_some(),
    };
    if !section {
        problems.push(format!(
            "{key}.{kind}: target = \"{kind}\" needs a [{key}.{kind}] section",
            kind = env.target
        ));
    }
    if let Some(docker) = &env.docker {
        for (name, source) in &docker.secrets {
            if source.env.is_some() == source.file.is_some() {
                problems.push(format!(
                    "{key}.docker.secrets.{name}: give exactly one of env = \"VARIABLE\" or file = \"path\""
                ));
            }
        }
    }
    if let Some(ecs) = &env.ecs {
        validate_ecs(&key, ecs, problems);
    }
    for (probe, settings) in [
        ("readiness", &env.verify.readiness),
        ("liveness", &env.verify.liveness),
    ] {
        let pkey = format!("{key}.verify.{probe}");
        if settings.failure_threshold == 0 || settings.success_threshold == 0 {
            problems.push(format!(
                "{pkey}: failure_threshold and success_threshold must be at least 1"
            ));
        }
        if settings.period.is_zero() || settings.timeout.is_zero() {
            problems.push(format!("{pkey}: period and timeout must be longer than 0s"));
        }
        if !settings.path.starts_with('/') {
            problems.push(format!("{pkey}.path: must start with '/'"));
        }
    }
    if !env.verify.status.version_pointer.is_empty()
        && !env.verify.status.version_pointer.starts_with('/')
    {
        problems.push(format!(
            "{key}.verify.status.version_pointer: a JSON pointer starts with '/', like \"/version\""
        ));
    }
    for (i, smoke) in env.verify.smoke.iter().enumerate() {
        let skey = format!("{key}.verify.smoke[{i}] ({:?})", smoke.name);
        if reqwest::Method::from_bytes(smoke.method.as_bytes()).is_err()
            || smoke.method.chars().any(|c| c.is_ascii_lowercase())
        {
            problems.push(format!(
                "{skey}.method: {:?} is not an HTTP method; use GET, POST, PUT, PATCH, DELETE or HEAD",
                smoke.method
            ));
        }
        if !(100..=599).contains(&smoke.expect_status) {
            problems.push(format!(
                "{skey}.expect_status: {} is not an HTTP status (100-599)",
                smoke.expect_status
            ));
        }
        if !smoke.path.starts_with('/') {
            problems.push(format!("{skey}.path: must start with '/'"));
        }
        if smoke.samples == 0 {
            problems.push(format!("{skey}.samples: must be at least 1"));
        }
        if let Some(bad) = smoke.expect_json.keys().find(|k| !k.starts_with('/')) {
            problems.push(format!(
                "{skey}.expect_json: key {bad:?} is not a JSON pointer; write \"/field\""
            ));
        }
    }
}

fn validate_ecs(key: &str, ecs: &EcsSettings, problems: &mut Vec<String>) {
    let d = &ecs.deployment;
    if d.minimum_healthy_percent > 100 {
        problems.push(format!(
            "{key}.ecs.deployment.minimum_healthy_percent: {} is above 100; use 0-100",
            d.minimum_healthy_percent
        ));
    }
    if !(100..=200).contains(&d.maximum_percent) {
        problems.push(format!(
            "{key}.ecs.deployment.maximum_percent: {} is outside 100-200 (Fargate replica services)",
            d.maximum_percent
        ));
    }
    if d.maximum_percent <= d.minimum_healthy_percent && d.maximum_percent == 100 {
        problems.push(format!(
            "{key}.ecs.deployment: maximum_percent = 100 with minimum_healthy_percent = 100 leaves ECS no room to start a new task; lower minimum_healthy_percent or raise maximum_percent"
        ));
    }
    let p = &ecs.poll;
    if p.interval.is_zero() || p.max_interval < p.interval {
        problems.push(format!(
            "{key}.ecs.poll: interval must be longer than 0s and max_interval at least interval"
        ));
    }
    if p.max_calls_per_second == 0 {
        problems.push(format!(
            "{key}.ecs.poll.max_calls_per_second: must be at least 1"
        ));
    }
    if ecs.cluster.is_empty() || ecs.service.is_empty() {
        problems.push(format!("{key}.ecs: cluster and service must not be empty"));
    }
}

/// Turns figment's errors into one message naming each key path and the file.
fn describe_figment_errors(error: figment::Error, path: &Path) -> String {
    error
        .into_iter()
        .map(|e| {
            let key = if e.path.is_empty() {
                "<top level>".to_owned()
            } else {
                e.path.join(".")
            };
            // A value from a KYB_DEPLOY_* variable has metadata without a source file.
            let source = match &e.metadata {
                Some(m) => m
                    .source
                    .as_ref()
                    .map_or_else(|| m.name.to_string(), ToString::to_string),
                None => path.display().to_string(),
            };
            format!("{key}: {} (in {source})", describe_kind(&e.kind))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Figment's wording, except for unknown and missing keys, which get the valid keys and the
/// closest one.
fn describe_kind(kind: &figment::error::Kind) -> String {
    use figment::error::Kind;
    match kind {
        Kind::UnknownField(name, expected) => {
            let suggestion = expected
                .iter()
                .map(|candidate| (edit_distance(name, candidate), candidate))
                .filter(|(distance, _)| *distance <= 2.max(name.len() / 3))
                .min_by_key(|(distance, _)| *distance)
                .map_or_else(String::new, |(_, c)| format!("; did you mean \"{c}\"?"));
            format!(
                "unknown key \"{name}\"{suggestion} (valid keys here: {})",
                expected.join(", ")
            )
        }
        Kind::MissingField(name) => format!("missing required key \"{name}\""),
        other => other.to_string(),
    }
}

/// Levenshtein distance, for "did you mean" suggestions.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests;
