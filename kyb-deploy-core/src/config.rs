//! The configuration model and its loading: built-in defaults < `kyb-deploy.toml` <
//! `KYB_DEPLOY_*` environment variables (< command-line flags, applied by the caller).

pub(crate) mod duration;
mod environment;
mod image;
mod locate;
mod overrides;
mod validate;
mod verify;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Format, Toml};
use serde::{Deserialize, Serialize};

pub use self::environment::{
    ContainerSecurity, DockerSettings, EcsDeployment, EcsPoll, EcsSettings, EnvironmentConfig,
    Guards, KubernetesSettings, RollbackPolicy, SecretSource, TargetKind, Timeouts,
};
pub(crate) use self::image::parse_size;
pub use self::image::{ImageConfig, PolicyConfig, RegistryConfig, ScanKind, TrivyConfig};
use self::locate::{Origin, line_of};
use self::overrides::EnvOverrides;
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
    /// Attempts per webhook before giving up with a warning (1 to
    /// [`WebhookNotifier::MAX_ATTEMPTS`](crate::WebhookNotifier::MAX_ATTEMPTS)).
    pub attempts: u32,
    /// Time limit of one attempt.
    #[serde(with = "duration")]
    pub timeout: Duration,
    /// Time that all attempts of one webhook and the pauses between them share; a run never
    /// waits longer than this for a webhook, whatever `attempts` and `timeout` say.
    #[serde(with = "duration")]
    pub budget: Duration,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            webhooks: Vec::new(),
            attempts: 3,
            timeout: Duration::from_secs(10),
            budget: crate::notify::WebhookNotifier::DEFAULT_BUDGET,
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
        // Read once more for line numbers in messages; figment reads the file itself so
        // that its errors name it.
        let text = std::fs::read_to_string(path).ok();
        Self::from_figment(
            Figment::new()
                .merge(Toml::file_exact(path))
                .merge(EnvOverrides::from_process()),
            path,
            text.as_deref(),
        )
    }

    /// Parses a configuration from TOML text (no environment variables), then validates it.
    pub fn from_toml(text: &str) -> Result<Self> {
        Self::from_figment(
            Figment::new().merge(Toml::string(text)),
            Path::new("<inline>"),
            Some(text),
        )
    }

    /// Extracts and validates; `text` is the file's text, for line numbers in messages.
    fn from_figment(figment: Figment, path: &Path, text: Option<&str>) -> Result<Self> {
        let mut config: Self = figment.extract().map_err(|e| Error::Config {
            message: describe_figment_errors(e, path, text),
        })?;
        config.source = Some(path.to_owned());
        config.check(&Origin {
            file: path.display().to_string(),
            text,
            figment: Some(&figment),
        })?;
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

    /// Checks what serde cannot: cross-field rules, value ranges, URLs and names, and the
    /// files the configuration names (relative to the directory of [`Config::source`] when
    /// that is a file). Every problem names its key and where it was set.
    pub fn validate(&self) -> Result<()> {
        let text = self
            .source
            .as_deref()
            .filter(|p| p.is_file())
            .and_then(|p| std::fs::read_to_string(p).ok());
        self.check(&Origin {
            file: self.source_name(),
            text: text.as_deref(),
            figment: None,
        })
    }

    /// The file the configuration came from, as messages show it.
    fn source_name(&self) -> String {
        self.source
            .as_deref()
            .map_or_else(|| "<inline>".to_owned(), |p| p.display().to_string())
    }

    /// The problems of [`Config::validate`] as one error, each saying where it is.
    fn check(&self, origin: &Origin<'_>) -> Result<()> {
        let problems = self.problems();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Config {
                message: origin.describe(&problems),
            })
        }
    }

    /// Every problem, each as `key: what is wrong; the fix`.
    fn problems(&self) -> Vec<String> {
        // Files named by the configuration are relative to its directory.
        let base = self
            .source
            .as_deref()
            .filter(|p| p.is_file())
            .map(|p| p.parent().unwrap_or(Path::new("")));
        let mut problems = Vec::new();
        validate::config(self, base, &mut problems);
        let max_attempts = crate::notify::WebhookNotifier::MAX_ATTEMPTS;
        if !(1..=max_attempts).contains(&self.notify.attempts) {
            problems.push(format!(
                "notify.attempts: {} is outside 1 to {max_attempts}; retries beyond that only delay the end of a run",
                self.notify.attempts
            ));
        }
        if self.notify.budget.is_zero() {
            problems.push(
                "notify.budget: must be more than 0s; it is the time all attempts of one webhook share, like \"30s\"".to_owned(),
            );
        }
        for (name, env) in &self.environments {
            validate::environment(name, env, base, &mut problems);
        }
        problems
    }
}

/// Turns figment's errors into one message naming each key path and the file (with the
/// line, when `text`, the file's text, shows it).
fn describe_figment_errors(error: figment::Error, path: &Path, text: Option<&str>) -> String {
    error
        .into_iter()
        .map(|e| {
            let key = if e.path.is_empty() {
                "<top level>".to_owned()
            } else {
                e.path.join(".")
            };
            // A value from a KYB_DEPLOY_* variable names the variables, not the file.
            let from_variable = e
                .metadata
                .as_ref()
                .is_some_and(|m| m.name == overrides::METADATA_NAME);
            let mut source = match &e.metadata {
                Some(m) if from_variable => m.name.to_string(),
                Some(m) => m
                    .source
                    .as_ref()
                    .map_or_else(|| path.display().to_string(), ToString::to_string),
                None => path.display().to_string(),
            };
            if !from_variable
                && !e.path.is_empty()
                && let Some(line) = text.and_then(|text| line_of(text, &key))
            {
                source = format!("{source}, line {line}");
            }
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
        // `port = 70000` or `-1`: say the range rather than the Rust type.
        Kind::InvalidValue(actual, expected) if expected.starts_with('u') => {
            let actual = match actual {
                figment::error::Actual::Unsigned(n) => n.to_string(),
                figment::error::Actual::Signed(n) => n.to_string(),
                other => other.to_string(),
            };
            let max = match expected.as_str() {
                "u8" => u64::from(u8::MAX),
                "u16" => u64::from(u16::MAX),
                "u32" => u64::from(u32::MAX),
                _ => u64::MAX,
            };
            format!("{actual} is out of range; write a whole number from 0 to {max}")
        }
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
