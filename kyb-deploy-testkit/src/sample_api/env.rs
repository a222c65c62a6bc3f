//! Reading [`SampleApiConfig`] from environment variables.

use std::net::IpAddr;
use std::time::Duration;

use super::{Faults, SampleApiConfig, build_version};

/// Every variable [`SampleApiConfig::from_env`] reads.
const VARIABLES: [&str; 11] = [
    "PORT",
    "BIND_ADDR",
    "KYB_SAMPLE_VERSION",
    "APP_VERSION",
    "ENVIRONMENT",
    "KYB_SAMPLE_FAULT_UNHEALTHY_AFTER",
    "KYB_SAMPLE_FAULT_NEVER_READY",
    "KYB_SAMPLE_FAULT_READY_AFTER",
    "KYB_SAMPLE_FAULT_CLASSIFY_500",
    "KYB_SAMPLE_FAULT_LATENCY_MS",
    "KYB_SAMPLE_FAULT_EXIT_AFTER",
];

const BOOLEAN: &str = "a boolean: 1, 0, true, false, yes or no";
const SECONDS: &str = "a non-negative number of seconds, such as 5 or 2.5";

/// An environment variable of the sample service holds an unusable value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The value does not parse.
    #[error("invalid {variable}={value:?}: expected {expected}")]
    Invalid {
        /// The variable's name.
        variable: &'static str,
        /// The rejected value.
        value: String,
        /// What an accepted value looks like.
        expected: &'static str,
    },
    /// The value is not valid Unicode.
    #[error("invalid {variable}: the value is not valid Unicode; set it to plain text")]
    NotUnicode {
        /// The variable's name.
        variable: &'static str,
    },
}

impl ConfigError {
    /// The name of the offending variable.
    #[must_use]
    pub fn variable(&self) -> &'static str {
        match self {
            Self::Invalid { variable, .. } | Self::NotUnicode { variable } => variable,
        }
    }
}

impl SampleApiConfig {
    /// Reads the configuration from the process environment; see the [module
    /// documentation](super) for the variables. An empty variable counts as unset.
    ///
    /// # Errors
    ///
    /// Names the first variable whose value is not Unicode or does not parse, with the value
    /// and what is expected.
    pub fn from_env() -> Result<Self, ConfigError> {
        for variable in VARIABLES {
            if let Err(std::env::VarError::NotUnicode(_)) = std::env::var(variable) {
                return Err(ConfigError::NotUnicode { variable });
            }
        }
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration from `lookup`, which maps a variable name to its value, as
    /// [`from_env`](Self::from_env) does from the process environment.
    ///
    /// # Errors
    ///
    /// Names the first variable whose value does not parse, with the value and what is
    /// expected.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let defaults = Self::default();
        Ok(Self {
            bind_addr: parse(
                &get,
                "BIND_ADDR",
                "an IP address such as 0.0.0.0 or 127.0.0.1",
                |v| v.parse::<IpAddr>().ok(),
            )?
            .unwrap_or(defaults.bind_addr),
            port: parse(&get, "PORT", "a TCP port number from 0 to 65535", |v| {
                v.parse::<u16>().ok()
            })?
            .unwrap_or(defaults.port),
            version: get("KYB_SAMPLE_VERSION")
                .or_else(|| get("APP_VERSION"))
                .map_or_else(|| build_version().to_owned(), |v| v.trim().to_owned()),
            environment: get("ENVIRONMENT").map_or(defaults.environment, |v| v.trim().to_owned()),
            faults: Faults {
                unhealthy_after: parse(&get, "KYB_SAMPLE_FAULT_UNHEALTHY_AFTER", SECONDS, seconds)?,
                never_ready: parse(&get, "KYB_SAMPLE_FAULT_NEVER_READY", BOOLEAN, boolean)?
                    .unwrap_or(false),
                ready_after: parse(&get, "KYB_SAMPLE_FAULT_READY_AFTER", SECONDS, seconds)?
                    .unwrap_or(Duration::ZERO),
                classify_500: parse(&get, "KYB_SAMPLE_FAULT_CLASSIFY_500", BOOLEAN, boolean)?
                    .unwrap_or(false),
                latency: parse(
                    &get,
                    "KYB_SAMPLE_FAULT_LATENCY_MS",
                    "a non-negative whole number of milliseconds, such as 250",
                    |v| v.parse::<u64>().ok().map(Duration::from_millis),
                )?
                .unwrap_or(Duration::ZERO),
                exit_after: parse(&get, "KYB_SAMPLE_FAULT_EXIT_AFTER", SECONDS, seconds)?,
            },
        })
    }
}

/// Parses the variable `variable` when it is set.
fn parse<T>(
    get: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    expected: &'static str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Option<T>, ConfigError> {
    let Some(value) = get(variable) else {
        return Ok(None);
    };
    match parse(value.trim()) {
        Some(parsed) => Ok(Some(parsed)),
        None => Err(ConfigError::Invalid {
            variable,
            value,
            expected,
        }),
    }
}

fn boolean(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" => Some(true),
        "0" | "false" | "no" => Some(false),
        _ => None,
    }
}

fn seconds(value: &str) -> Option<Duration> {
    // Plain decimal numbers only: `f64::from_str` also takes "inf", "NaN" and "1e3".
    if !value.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    Duration::try_from_secs_f64(value.parse::<f64>().ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<SampleApiConfig, ConfigError> {
        SampleApiConfig::from_lookup(|name| {
            vars.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        })
    }

    #[test]
    fn defaults_when_nothing_is_set() {
        assert_eq!(config(&[]), Ok(SampleApiConfig::default()));
    }

    #[test]
    fn reads_every_variable() {
        let parsed = config(&[
            ("PORT", "0"),
            ("BIND_ADDR", "127.0.0.1"),
            ("APP_VERSION", "v1"),
            ("ENVIRONMENT", "staging"),
            ("KYB_SAMPLE_FAULT_UNHEALTHY_AFTER", "2.5"),
            ("KYB_SAMPLE_FAULT_NEVER_READY", "yes"),
            ("KYB_SAMPLE_FAULT_READY_AFTER", "3"),
            ("KYB_SAMPLE_FAULT_CLASSIFY_500", "TRUE"),
            ("KYB_SAMPLE_FAULT_LATENCY_MS", "250"),
            ("KYB_SAMPLE_FAULT_EXIT_AFTER", "0"),
        ]);
        let expected = SampleApiConfig {
            bind_addr: IpAddr::from([127, 0, 0, 1]),
            port: 0,
            version: "v1".to_owned(),
            environment: "staging".to_owned(),
            faults: Faults {
                unhealthy_after: Some(Duration::from_millis(2500)),
                never_ready: true,
                ready_after: Duration::from_secs(3),
                classify_500: true,
                latency: Duration::from_millis(250),
                exit_after: Some(Duration::ZERO),
            },
        };
        assert_eq!(parsed, Ok(expected));
    }

    #[test]
    fn sample_version_wins_over_app_version_and_empty_is_unset() {
        let both = config(&[("KYB_SAMPLE_VERSION", "v2"), ("APP_VERSION", "v1")]);
        assert_eq!(both.map(|c| c.version), Ok("v2".to_owned()));
        let empty = config(&[("KYB_SAMPLE_VERSION", " "), ("APP_VERSION", "v1")]);
        assert_eq!(empty.map(|c| c.version), Ok("v1".to_owned()));
    }

    #[test]
    fn rejects_bad_values_naming_the_variable() {
        for (variable, value) in [
            ("PORT", "abc"),
            ("PORT", "65536"),
            ("BIND_ADDR", "localhost"),
            ("KYB_SAMPLE_FAULT_NEVER_READY", "on"),
            ("KYB_SAMPLE_FAULT_CLASSIFY_500", "2"),
            ("KYB_SAMPLE_FAULT_UNHEALTHY_AFTER", "-1"),
            ("KYB_SAMPLE_FAULT_READY_AFTER", "inf"),
            ("KYB_SAMPLE_FAULT_EXIT_AFTER", "5s"),
            ("KYB_SAMPLE_FAULT_LATENCY_MS", "1.5"),
        ] {
            let error = config(&[(variable, value)]).expect_err(variable);
            assert_eq!(error.variable(), variable);
            let message = error.to_string();
            assert!(message.contains(variable), "{message}");
            assert!(message.contains(value), "{message}");
            assert!(message.contains("expected"), "{message}");
        }
    }
}
