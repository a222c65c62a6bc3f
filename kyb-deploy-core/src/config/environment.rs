//! Per-environment settings: target, rollback policy, guards, timeouts, verification.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use figment::value::Value;
use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use super::state::StateConfig;
use super::verify::VerifyConfig;

/// Settings of one environment, as written under `[environments.<name>]`.
///
/// Besides the keys below, the table named after the target kind
/// (`[environments.<name>.<kind>]`) holds the target's own settings; core keeps it as
/// written, and the kind's [`TargetBackend`](crate::TargetBackend) reads it
/// ([`Environment::target_settings`](crate::config::Environment::target_settings)).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EnvironmentConfig {
    /// Which kind of target this environment deploys to.
    pub target: TargetKind,
    /// What happens when a deployment fails after it began.
    pub rollback: RollbackPolicy,
    /// Conditions a deployment must meet.
    pub guards: Guards,
    /// Per-stage and overall time limits.
    pub timeouts: Timeouts,
    /// Post-deployment verification.
    pub verify: VerifyConfig,
    /// Environment variables for the service.
    pub env: BTreeMap<String, String>,
    /// Where the environment's records and lock are kept.
    pub state: StateConfig,
    /// The tables of this environment that are not core keys, by name, as written: the
    /// target's settings under its kind's name. Validation refuses any other.
    #[serde(flatten)]
    pub sections: BTreeMap<String, Value>,
}

/// The keys of `[environments.<name>]` that core reads; any other key must be a table, the
/// target kind's settings.
pub(crate) const ENVIRONMENT_KEYS: &[&str] = &[
    "target", "rollback", "guards", "timeouts", "verify", "env", "state",
];

impl<'de> Deserialize<'de> for EnvironmentConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields;

        impl<'de> Visitor<'de> for Fields {
            type Value = EnvironmentConfig;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an environment's settings")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut target = None;
                let mut config = EnvironmentConfig {
                    target: TargetKind::new("docker"),
                    rollback: RollbackPolicy::default(),
                    guards: Guards::default(),
                    timeouts: Timeouts::default(),
                    verify: VerifyConfig::default(),
                    env: BTreeMap::new(),
                    state: StateConfig::default(),
                    sections: BTreeMap::new(),
                };
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "target" => target = Some(map.next_value()?),
                        "rollback" => config.rollback = map.next_value()?,
                        "guards" => config.guards = map.next_value()?,
                        "timeouts" => config.timeouts = map.next_value()?,
                        "verify" => config.verify = map.next_value()?,
                        "env" => config.env = map.next_value()?,
                        "state" => config.state = map.next_value()?,
                        _ => {
                            let value = map.next_value_seed(Section(&key))?;
                            config.sections.insert(key, value);
                        }
                    }
                }
                config.target = target.ok_or_else(|| de::Error::missing_field("target"))?;
                Ok(config)
            }
        }

        deserializer.deserialize_map(Fields)
    }
}

/// A key of `[environments.<name>]` that is not a core key: a table (a target's settings),
/// else an unknown key, refused while its value is read so that the error's path names it.
struct Section<'a>(&'a str);

impl<'de> DeserializeSeed<'de> for Section<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        let value = <Value as Deserialize>::deserialize(deserializer)?;
        if value.as_dict().is_none() {
            return Err(de::Error::unknown_field(self.0, ENVIRONMENT_KEYS));
        }
        Ok(value)
    }
}

impl EnvironmentConfig {
    /// How long a release that passed verification is watched before its run counts as a
    /// success: `verify.soak` when set, else 10 s for the environment named `development`
    /// and 60 s for any other.
    ///
    /// ```
    /// use std::time::Duration;
    /// use kyb_deploy_core::config::Config;
    ///
    /// let config = Config::from_toml(
    ///     "[environments.development]\ntarget = \"docker\"\n[environments.development.docker]\n",
    /// )
    /// .unwrap();
    /// let settings = config.environment("development").unwrap().settings;
    /// assert_eq!(settings.soak("development"), Duration::from_secs(10));
    /// assert_eq!(settings.soak("staging"), Duration::from_secs(60));
    /// ```
    pub fn soak(&self, environment: &str) -> Duration {
        self.verify.soak.unwrap_or(if environment == "development" {
            Duration::from_secs(10)
        } else {
            Duration::from_secs(60)
        })
    }
}

/// The kind of target an environment deploys to (`docker`, `ecs`, `kubernetes`...): the
/// name a [`TargetBackend`](crate::TargetBackend) registers, and the name of the table that
/// holds the target's settings.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TargetKind(String);

impl TargetKind {
    /// The kind called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self(name.into())
    }

    /// The name used in configuration and records.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TargetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for TargetKind {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for TargetKind {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// What to do when a deployment fails after it began.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RollbackPolicy {
    /// Roll back to the last known-good release and verify it.
    #[default]
    Auto,
    /// Leave the failed release in place.
    Never,
}

/// Conditions an environment puts on a deployment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Guards {
    /// Ask for confirmation (or `--yes`) before changing anything.
    pub confirm: bool,
    /// Branches a deployment may come from; empty allows any.
    pub branches: Vec<String>,
    /// Refuse a working tree with uncommitted changes unless forced.
    pub require_clean_tree: bool,
}

/// Time limits. A stage that runs out of time ends the run as timed out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    /// The whole run.
    #[serde(with = "super::duration")]
    pub overall: Duration,
    /// The test stage.
    #[serde(with = "super::duration")]
    pub tests: Duration,
    /// The image build.
    #[serde(with = "super::duration")]
    pub build: Duration,
    /// The image push.
    #[serde(with = "super::duration")]
    pub push: Duration,
    /// Starting the deployment on the target.
    #[serde(with = "super::duration")]
    pub deploy: Duration,
    /// Waiting for the rollout.
    #[serde(with = "super::duration")]
    pub wait: Duration,
    /// Verification (probes and smoke tests).
    #[serde(with = "super::duration")]
    pub verify: Duration,
    /// A rollback, including its wait and verification.
    #[serde(with = "super::duration")]
    pub rollback: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        let min = |m: u64| Duration::from_secs(60 * m);
        Self {
            overall: min(60),
            tests: min(20),
            build: min(20),
            push: min(10),
            deploy: min(2),
            wait: min(15),
            verify: min(5),
            rollback: min(20),
        }
    }
}
