//! Settings of post-deployment verification: probes, `/status`, `/metrics`, smoke tests.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;

/// How the deployed service is verified.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VerifyConfig {
    /// Base URL of the service. When unset, the target's endpoint is used.
    pub base_url: Option<Url>,
    /// Accept invalid TLS certificates. Off unless an environment explicitly opts out.
    pub insecure_skip_tls_verify: bool,
    /// Readiness probe (`/ready`): the gate before anything else is checked.
    #[serde(deserialize_with = "readiness")]
    pub readiness: ProbeSettings,
    /// Liveness probe (`/health`).
    #[serde(deserialize_with = "liveness")]
    pub liveness: ProbeSettings,
    /// The `/status` check.
    pub status: StatusCheck,
    /// The `/metrics` check.
    pub metrics: MetricsCheck,
    /// Smoke tests run after the probes pass.
    pub smoke: Vec<SmokeTest>,
    /// How long the new release is watched after it passed verification, before the run
    /// counts as a success. `None` means the environment's default
    /// ([`EnvironmentConfig::soak`](super::EnvironmentConfig::soak)); `"0s"` means no soak.
    #[serde(
        default,
        with = "crate::config::duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub soak: Option<Duration>,
    /// The largest share of failed requests verification tolerates (a fraction from 0.0,
    /// none, to 1.0, all); 0.1 by default.
    pub max_failure_ratio: f64,
}

impl Default for VerifyConfig {
    fn default() -> Self {
        Self {
            base_url: None,
            insecure_skip_tls_verify: false,
            readiness: ProbeSettings::readiness(),
            liveness: ProbeSettings::liveness(),
            status: StatusCheck::default(),
            metrics: MetricsCheck::default(),
            smoke: Vec::new(),
            soak: None,
            max_failure_ratio: 0.1,
        }
    }
}

/// The keys of a probe table; each one given overrides that probe's own default, so a
/// `[verify.readiness]` table that sets only `period` keeps the `/ready` path.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProbeOverrides {
    enabled: Option<bool>,
    path: Option<String>,
    #[serde(default, with = "crate::config::duration::option")]
    initial_delay: Option<Duration>,
    #[serde(default, with = "crate::config::duration::option")]
    period: Option<Duration>,
    #[serde(default, with = "crate::config::duration::option")]
    timeout: Option<Duration>,
    failure_threshold: Option<u32>,
    success_threshold: Option<u32>,
}

impl ProbeOverrides {
    fn apply(self, mut probe: ProbeSettings) -> ProbeSettings {
        probe.enabled = self.enabled.unwrap_or(probe.enabled);
        probe.path = self.path.unwrap_or(probe.path);
        probe.initial_delay = self.initial_delay.unwrap_or(probe.initial_delay);
        probe.period = self.period.unwrap_or(probe.period);
        probe.timeout = self.timeout.unwrap_or(probe.timeout);
        probe.failure_threshold = self.failure_threshold.unwrap_or(probe.failure_threshold);
        probe.success_threshold = self.success_threshold.unwrap_or(probe.success_threshold);
        probe
    }
}

fn readiness<'de, D: serde::Deserializer<'de>>(d: D) -> Result<ProbeSettings, D::Error> {
    Ok(ProbeOverrides::deserialize(d)?.apply(ProbeSettings::readiness()))
}

fn liveness<'de, D: serde::Deserializer<'de>>(d: D) -> Result<ProbeSettings, D::Error> {
    Ok(ProbeOverrides::deserialize(d)?.apply(ProbeSettings::liveness()))
}

/// A probe with Kubernetes probe semantics.
///
/// After `initial_delay`, the probe runs every `period`; each attempt must answer 2xx or 3xx
/// within `timeout`. It passes after `success_threshold` consecutive successes and fails after
/// `failure_threshold` consecutive failures. (Kubernetes requires a liveness success threshold
/// of 1; as a deployment gate kyb-deploy allows more, to see the service stay healthy.)
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProbeSettings {
    /// Whether the probe runs at all.
    pub enabled: bool,
    /// Path requested with GET.
    pub path: String,
    /// Wait before the first attempt.
    #[serde(with = "crate::config::duration")]
    pub initial_delay: Duration,
    /// Time between attempts.
    #[serde(with = "crate::config::duration")]
    pub period: Duration,
    /// Time limit of one attempt.
    #[serde(with = "crate::config::duration")]
    pub timeout: Duration,
    /// Consecutive failures that fail the probe.
    pub failure_threshold: u32,
    /// Consecutive successes that pass the probe.
    pub success_threshold: u32,
}

impl ProbeSettings {
    /// The default readiness probe: `GET /ready` every 2 s, up to 30 failures (a minute).
    pub fn readiness() -> Self {
        Self {
            path: "/ready".into(),
            failure_threshold: 30,
            ..Self::default()
        }
    }

    /// The default liveness probe: `GET /health` every 2 s, 3 successes in a row to pass.
    pub fn liveness() -> Self {
        Self {
            path: "/health".into(),
            success_threshold: 3,
            ..Self::default()
        }
    }
}

impl Default for ProbeSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            path: "/health".into(),
            initial_delay: Duration::ZERO,
            period: Duration::from_secs(2),
            timeout: Duration::from_secs(5),
            failure_threshold: 3,
            success_threshold: 1,
        }
    }
}

/// The `/status` check: a JSON document whose version must equal the deployed version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StatusCheck {
    /// Whether the check runs.
    pub enabled: bool,
    /// Path requested with GET.
    pub path: String,
    /// JSON pointer of the version field (RFC 6901), like `/version`.
    pub version_pointer: String,
}

impl Default for StatusCheck {
    fn default() -> Self {
        Self {
            enabled: true,
            path: "/status".into(),
            version_pointer: "/version".into(),
        }
    }
}

/// The `/metrics` check: the body must be valid Prometheus text exposition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsCheck {
    /// Whether the check runs.
    pub enabled: bool,
    /// Path requested with GET.
    pub path: String,
}

impl Default for MetricsCheck {
    fn default() -> Self {
        Self {
            enabled: true,
            path: "/metrics".into(),
        }
    }
}

/// One smoke test: a request and what its answer must look like.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmokeTest {
    /// Name shown in reports.
    pub name: String,
    /// HTTP method.
    #[serde(default = "default_method")]
    pub method: String,
    /// Path (and query) relative to the base URL.
    pub path: String,
    /// Request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// JSON request body.
    #[serde(default)]
    pub json: Option<serde_json::Value>,
    /// Expected HTTP status.
    #[serde(default = "default_status")]
    pub expect_status: u16,
    /// Expected JSON values, keyed by JSON pointer (`"/industry" = "technology"`).
    #[serde(default)]
    pub expect_json: BTreeMap<String, serde_json::Value>,
    /// Largest acceptable p95 latency over the samples.
    #[serde(default, with = "crate::config::duration::option")]
    pub latency_budget: Option<Duration>,
    /// How many times the request is sent (latency samples).
    #[serde(default = "default_samples")]
    pub samples: u32,
}

fn default_method() -> String {
    "GET".into()
}

fn default_status() -> u16 {
    200
}

fn default_samples() -> u32 {
    5
}
