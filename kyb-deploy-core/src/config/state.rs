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
    /// The namespace holding the records (Secrets) and the lock (a Lease)
    /// (`backend = "kubernetes"`); else the Kubernetes target's namespace.
    pub namespace: Option<String>,
    /// The kubeconfig context (`backend = "kubernetes"`); else the Kubernetes target's, or
    /// the kubeconfig's current context.
    pub context: Option<String>,
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
            namespace: None,
            context: None,
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
    /// Secrets and a Lease in a Kubernetes namespace, written on `resourceVersion`: shared.
    Kubernetes,
}

impl StateBackendKind {
    /// The name written in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::S3 => "s3",
            Self::Kubernetes => "kubernetes",
        }
    }

    /// Whether every runner that deploys the environment sees the same records and lock.
    pub fn is_shared(self) -> bool {
        self != Self::File
    }
}

/// The shortest `lock_ttl`: heartbeats come every third of it, and each is one request.
pub(crate) const MIN_LOCK_TTL: Duration = Duration::from_secs(3);

/// The problems of `state` under `key` (`environments.<name>.state`) of an environment
/// deploying to `target`.
pub(super) fn check(key: &str, state: &StateConfig, target: &str, problems: &mut Vec<String>) {
    let owned = [
        ("bucket", StateBackendKind::S3, state.bucket.is_some()),
        ("region", StateBackendKind::S3, state.region.is_some()),
        (
            "endpoint_url",
            StateBackendKind::S3,
            state.endpoint_url.is_some(),
        ),
        (
            "namespace",
            StateBackendKind::Kubernetes,
            state.namespace.is_some(),
        ),
        (
            "context",
            StateBackendKind::Kubernetes,
            state.context.is_some(),
        ),
    ];
    for (name, owner, _) in owned
        .iter()
        .filter(|(_, owner, set)| *set && *owner != state.backend)
    {
        problems.push(format!(
            "{key}.{name}: only read with backend = \"{}\", and this environment's backend is \"{}\"; set backend = \"{}\" or remove {name}",
            owner.as_str(),
            state.backend.as_str(),
            owner.as_str()
        ));
    }
    match state.backend {
        StateBackendKind::File => {}
        StateBackendKind::Kubernetes => match state.namespace.as_deref() {
            None if target != "kubernetes" => problems.push(format!(
                "{key}.namespace: backend = \"kubernetes\" needs the namespace that holds the records and the lock when the target is not kubernetes (this one is {target:?}); set namespace = \"NAME\""
            )),
            Some(namespace) if !valid_namespace(namespace) => problems.push(format!(
                "{key}.namespace: {namespace:?} is not a Kubernetes namespace name; use at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit"
            )),
            _ => {}
        },
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

/// A namespace name as Kubernetes accepts it (an RFC 1123 label).
fn valid_namespace(name: &str) -> bool {
    let bytes = name.as_bytes();
    (1..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
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
        check("environments.staging.state", state, "ecs", &mut problems);
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
    fn kubernetes_needs_a_namespace_unless_the_target_has_one() {
        let kubernetes = |namespace: Option<&str>| StateConfig {
            backend: StateBackendKind::Kubernetes,
            namespace: namespace.map(str::to_owned),
            ..StateConfig::default()
        };
        assert!(problems(&kubernetes(Some("kyb-state"))).is_empty());
        let missing = problems(&kubernetes(None));
        assert_eq!(missing.len(), 1, "{missing:?}");
        assert!(
            missing[0].starts_with(
                "environments.staging.state.namespace: backend = \"kubernetes\" needs"
            ),
            "{missing:?}"
        );
        let mut found = Vec::new();
        check("k", &kubernetes(None), "kubernetes", &mut found);
        assert!(found.is_empty(), "{found:?}");
        for bad in ["Kyb", "-a", "a.b", &"a".repeat(64)] {
            let found = problems(&kubernetes(Some(bad)));
            assert_eq!(found.len(), 1, "{bad}: {found:?}");
            assert!(
                found[0].contains("is not a Kubernetes namespace name"),
                "{found:?}"
            );
        }
        // Each backend's keys only with that backend.
        let mixed = StateConfig {
            bucket: Some("kyb-state".into()),
            context: Some("ci".into()),
            ..kubernetes(Some("kyb"))
        };
        let found = problems(&mixed);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("environments.staging.state.bucket: only read with backend = \"s3\", and this environment's backend is \"kubernetes\""),
            "{found:?}"
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
