//! `[environments.<name>.state]`: where an environment's deployment records and its lock
//! live. `file` (the default) keeps them in the project directory, for one machine; a
//! shared backend keeps them with the platform, for every runner that deploys the
//! environment.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Where an environment's records and lock are kept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StateConfig {
    /// The backend.
    pub backend: StateBackendKind,
    /// The S3 bucket (`backend = "s3"`).
    pub bucket: Option<String>,
    /// The key prefix of every object kyb-deploy writes in the bucket (`backend = "s3"`).
    pub prefix: String,
    /// The bucket's region (`backend = "s3"`); else `AWS_REGION` or the profile's.
    pub region: Option<String>,
    /// The S3 endpoint (`backend = "s3"`); else `AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL`.
    pub endpoint_url: Option<String>,
    /// How long a shared lock stays valid without a heartbeat: a killed run's lock is taken
    /// over this long after its last heartbeat. Heartbeats come every third of it.
    #[serde(with = "super::duration")]
    pub lock_ttl: Duration,
}

impl Default for StateConfig {
    fn default() -> Self {
        Self {
            backend: StateBackendKind::File,
            bucket: None,
            prefix: "kyb-deploy".to_owned(),
            region: None,
            endpoint_url: None,
            lock_ttl: Duration::from_secs(60),
        }
    }
}

/// The kinds of state backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StateBackendKind {
    /// The project's JSON-lines ledger and lock files: one machine only.
    File,
    /// Objects in an S3 bucket, written with conditional requests: shared.
    S3,
}

impl StateBackendKind {
    /// The name written in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::S3 => "s3",
        }
    }

    /// Whether every runner that deploys the environment sees the same records and lock.
    pub fn is_shared(self) -> bool {
        self != Self::File
    }
}

/// The shortest `lock_ttl`: heartbeats come every third of it, and each is one request.
pub(crate) const MIN_LOCK_TTL: Duration = Duration::from_secs(3);

/// The problems of `state` under `key` (`environments.<name>.state`).
pub(super) fn check(key: &str, state: &StateConfig, problems: &mut Vec<String>) {
    let s3_only = [
        ("bucket", state.bucket.is_some()),
        ("region", state.region.is_some()),
        ("endpoint_url", state.endpoint_url.is_some()),
    ];
    match state.backend {
        StateBackendKind::File => {
            for (name, _) in s3_only.iter().filter(|(_, set)| *set) {
                problems.push(format!(
                    "{key}.{name}: only read with backend = \"s3\", and this environment's backend is \"file\"; set backend = \"s3\" or remove {name}"
                ));
            }
        }
        StateBackendKind::S3 => match state.bucket.as_deref() {
            None => problems.push(format!(
                "{key}.bucket: backend = \"s3\" needs the bucket that holds the records and the lock; set bucket = \"NAME\""
            )),
            Some(bucket) if !valid_bucket(bucket) => problems.push(format!(
                "{key}.bucket: {bucket:?} is not an S3 bucket name; use 3 to 63 lowercase letters, digits, '-' and '.', starting and ending with a letter or digit"
            )),
            Some(_) => {}
        },
    }
    let prefix = state.prefix.trim_matches('/');
    if prefix.is_empty()
        || prefix.contains("//")
        || prefix.chars().any(|c| c.is_control() || c == '\\')
    {
        problems.push(format!(
            "{key}.prefix: {:?} is not a key prefix; use path segments like \"kyb-deploy\" or \"teams/kyb/deploy\"",
            state.prefix
        ));
    }
    if state.lock_ttl < MIN_LOCK_TTL {
        problems.push(format!(
            "{key}.lock_ttl: {} is too short: the lock is renewed every third of it; use at least {}",
            humantime::format_duration(state.lock_ttl),
            humantime::format_duration(MIN_LOCK_TTL)
        ));
    }
}

/// An S3 bucket name as AWS accepts it for new buckets.
fn valid_bucket(name: &str) -> bool {
    let bytes = name.as_bytes();
    (3..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-' || *b == b'.')
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && !name.contains("..")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(state: &StateConfig) -> Vec<String> {
        let mut problems = Vec::new();
        check("environments.staging.state", state, &mut problems);
        problems
    }

    #[test]
    fn file_is_the_default_and_needs_nothing() {
        assert!(problems(&StateConfig::default()).is_empty());
        assert!(!StateBackendKind::File.is_shared());
        assert!(StateBackendKind::S3.is_shared());
    }

    #[test]
    fn s3_needs_a_valid_bucket() {
        let s3 = |bucket: Option<&str>| StateConfig {
            backend: StateBackendKind::S3,
            bucket: bucket.map(str::to_owned),
            ..StateConfig::default()
        };
        assert!(problems(&s3(Some("kyb-deploy-state"))).is_empty());
        let missing = problems(&s3(None));
        assert!(
            missing[0].starts_with("environments.staging.state.bucket: backend = \"s3\" needs"),
            "{missing:?}"
        );
        for bad in ["Upper", "ab", "-dash", "dot..dot", "a_b"] {
            let found = problems(&s3(Some(bad)));
            assert_eq!(found.len(), 1, "{bad}: {found:?}");
            assert!(found[0].contains("is not an S3 bucket name"), "{found:?}");
        }
    }

    #[test]
    fn s3_keys_with_the_file_backend_are_refused() {
        let state = StateConfig {
            bucket: Some("kyb".into()),
            endpoint_url: Some("http://127.0.0.1:1".into()),
            ..StateConfig::default()
        };
        let found = problems(&state);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found[0]
                .starts_with("environments.staging.state.bucket: only read with backend = \"s3\"")
        );
    }

    #[test]
    fn prefix_and_lock_ttl_are_checked() {
        let state = StateConfig {
            prefix: "/".into(),
            lock_ttl: Duration::from_secs(2),
            ..StateConfig::default()
        };
        let found = problems(&state);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].contains("prefix"), "{found:?}");
        assert!(found[1].contains("lock_ttl: 2s is too short"), "{found:?}");
    }
}
