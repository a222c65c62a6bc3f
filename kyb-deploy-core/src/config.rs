//! The configuration model and its loading: built-in defaults < `kyb-deploy.toml` <
//! `KYB_DEPLOY_*` environment variables (< command-line flags, applied by the caller).

mod checks;
pub mod duration;
mod environment;
mod image;
mod locate;
mod overrides;
mod state;
mod validate;
mod verify;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use figment::Figment;
use figment::providers::{Format, Toml};
use serde::{Deserialize, Serialize};

pub use self::checks::Problems;
use self::environment::ENVIRONMENT_KEYS;
pub use self::environment::{EnvironmentConfig, Guards, RollbackPolicy, TargetKind, Timeouts};
pub(crate) use self::image::parse_size;
pub use self::image::{ImageConfig, PolicyConfig, RegistryConfig, ScanKind, TrivyConfig};
use self::locate::{Origin, line_of};
use self::overrides::EnvOverrides;
pub use self::state::{StateBackendKind, StateConfig};
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
    /// The merged sources the configuration was read from, for errors found later.
    #[serde(skip)]
    loaded: Loaded,
}

/// The merged sources (file, `KYB_DEPLOY_*` variables) a configuration was extracted from,
/// kept so that errors in a target's settings, read only when its backend asks, name the
/// key, the file and line, or the variable, as errors found while loading do. Not a
/// setting: any two compare equal.
#[derive(Clone, Default)]
struct Loaded(Option<Arc<LoadedFrom>>);

struct LoadedFrom {
    figment: Figment,
    path: PathBuf,
    text: Option<String>,
}

impl PartialEq for Loaded {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Loaded")
    }
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
            budget: crate::webhook::WebhookNotifier::DEFAULT_BUDGET,
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
    /// Where they were read from, for errors in the target's settings.
    loaded: Loaded,
}

impl Environment {
    /// An environment called `name` with `settings`, for programs that build settings
    /// themselves rather than load a file ([`Config::environment`] is the usual way): errors
    /// in its target's settings then name the key without a file.
    pub fn new(name: impl Into<String>, settings: EnvironmentConfig) -> Self {
        Self {
            name: name.into(),
            settings,
            loaded: Loaded::default(),
        }
    }

    /// The key of the target's settings table: `environments.<name>.<kind>`.
    pub fn target_key(&self) -> String {
        format!("environments.{}.{}", self.name, self.settings.target)
    }

    /// The target's settings (`[environments.<name>.<kind>]`), read into the backend's own
    /// type `T` (unknown keys refused when `T` denies them). Errors are configuration errors
    /// naming the key and where it was set, like every error found while loading.
    ///
    /// ```
    /// use kyb_deploy_core::config::Config;
    ///
    /// #[derive(Debug, serde::Deserialize)]
    /// #[serde(deny_unknown_fields)]
    /// struct Local {
    ///     port: u16,
    /// }
    ///
    /// let config = Config::from_toml(
    ///     "[environments.dev]\ntarget = \"local\"\n[environments.dev.local]\nport = 70000\n",
    /// )
    /// .unwrap();
    /// let env = config.environment("dev").unwrap();
    /// let error = env.target_settings::<Local>().unwrap_err().to_string();
    /// assert!(error.contains("environments.dev.local.port: 70000 is out of range"), "{error}");
    /// assert!(error.contains("line 4"), "{error}");
    /// ```
    pub fn target_settings<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        let key = self.target_key();
        let Some(value) = self.settings.sections.get(self.settings.target.as_str()) else {
            return Err(Error::Config {
                message: format!(
                    "{key}: target = \"{}\" needs a [{key}] section",
                    self.settings.target
                ),
            });
        };
        let figment = self.loaded.0.as_ref().map(|from| &from.figment);
        T::deserialize(value).map_err(|errors| {
            // Paths from the section's own root: give them the whole key, and the source
            // (file or variables) the merged layers know for it.
            let errors = errors
                .into_iter()
                .map(|mut e| {
                    let mut path: Vec<String> = key.split('.').map(str::to_owned).collect();
                    path.append(&mut e.path);
                    e.metadata = figment
                        .and_then(|f| f.find_metadata(&path.join(".")))
                        .cloned();
                    e.path = path;
                    e
                })
                .reduce(figment::Error::chain)
                .expect("an error has at least one part");
            let (path, text) = match &self.loaded.0 {
                Some(from) => (from.path.clone(), from.text.clone()),
                None => (PathBuf::from("<inline>"), None),
            };
            Error::Config {
                message: describe_figment_errors(errors, &path, text.as_deref()),
            }
        })
    }
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
        config.loaded = Loaded(Some(Arc::new(LoadedFrom {
            figment: figment.clone(),
            path: path.to_owned(),
            text: text.map(str::to_owned),
        })));
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
                loaded: self.loaded.clone(),
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

    /// The directory of the configuration file: paths written in it are relative to it.
    /// `None` for a configuration that was not read from a file (then files it names are
    /// not checked until used).
    pub fn directory(&self) -> Option<&Path> {
        self.source
            .as_deref()
            .filter(|p| p.is_file())
            .map(|p| p.parent().unwrap_or(Path::new("")))
    }

    /// `problems` (each `key: what is wrong; the fix`) as one message, each followed by
    /// where its key was set (the file and line, or the variables).
    pub(crate) fn describe_problems(&self, problems: &[String]) -> String {
        let read;
        let (text, figment) = match &self.loaded.0 {
            Some(from) => (from.text.as_deref(), Some(&from.figment)),
            None => {
                read = self
                    .directory()
                    .and(self.source.as_deref())
                    .and_then(|p| std::fs::read_to_string(p).ok());
                (read.as_deref(), None)
            }
        };
        Origin {
            file: self.source_name(),
            text,
            figment,
        }
        .describe(problems)
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
        let base = self.directory();
        let mut problems = Vec::new();
        validate::config(self, base, &mut problems);
        let max_attempts = crate::webhook::WebhookNotifier::MAX_ATTEMPTS;
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
            validate::environment(name, env, &mut problems);
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
