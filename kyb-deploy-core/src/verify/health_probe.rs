//! The [`HealthProbe`] seam: verifying that a deployed release serves correctly.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::error::Result;
use crate::event::StageProgress;
use crate::version::Version;

/// What to verify: the service at `base_url` should run `expected_version`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyRequest {
    /// Where the service answers.
    pub base_url: Url,
    /// The version that should be running.
    pub expected_version: Version,
    /// How long verification may take. A probe that runs out of it stops and returns a
    /// report with [`VerificationReport::timed_out`] set and what it saw so far, instead
    /// of nothing. `None`: no limit of its own (the caller's cancellation still applies).
    pub time_limit: Option<Duration>,
}

impl VerifyRequest {
    /// A request to verify `expected_version` at `base_url`, with no time limit.
    pub fn new(base_url: Url, expected_version: Version) -> Self {
        Self {
            base_url,
            expected_version,
            time_limit: None,
        }
    }

    /// The same request, limited to `limit`.
    pub fn with_time_limit(mut self, limit: Duration) -> Self {
        self.time_limit = Some(limit);
        self
    }
}

/// What to soak: keep probing the verified release at `base_url` for `duration`, and fail
/// when more than `max_failure_ratio` of the probes fail.
#[derive(Clone, Debug, PartialEq)]
pub struct SoakRequest {
    /// Where the service answers.
    pub base_url: Url,
    /// The version that should keep running.
    pub expected_version: Version,
    /// How long to keep probing.
    pub duration: Duration,
    /// The largest share of failed probes (0.0 to 1.0) that still passes.
    pub max_failure_ratio: f64,
}

/// Whether a soak with `failures` failed probes out of `probes` passes under
/// `max_failure_ratio`. A soak that sent no probe at all proves nothing and fails.
pub(crate) fn soak_passes(probes: u32, failures: u32, max_failure_ratio: f64) -> bool {
    probes > 0 && f64::from(failures) <= f64::from(probes) * max_failure_ratio
}

/// Verifies a deployed release: readiness gate, liveness, `/status`, `/metrics`, smoke tests.
///
/// The HTTP implementation is [`crate::verify::HttpHealthProbe`]; tests script outcomes with the
/// testkit's fakes.
#[async_trait]
pub trait HealthProbe: Send + Sync {
    /// Runs every check and returns the report. `Err` means verification could not run at
    /// all; a failed check is a report with `passed == false`. Returns
    /// [`crate::Error::Cancelled`] promptly when `cancel` fires.
    async fn verify(
        &self,
        request: &VerifyRequest,
        progress: &StageProgress,
        cancel: &CancellationToken,
    ) -> Result<VerificationReport>;

    /// Keeps probing a release that passed [`HealthProbe::verify`] for the request's
    /// duration and returns one check named `soak`: passed when the share of failed probes
    /// stays within the request's `max_failure_ratio`. Its detail names the failures it
    /// saw. Returns [`crate::Error::Cancelled`] promptly when `cancel` fires.
    async fn soak(
        &self,
        request: &SoakRequest,
        progress: &StageProgress,
        cancel: &CancellationToken,
    ) -> Result<CheckReport>;
}

/// The result of a verification.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VerificationReport {
    /// Whether every check passed.
    pub passed: bool,
    /// Each check, in the order it ran.
    pub checks: Vec<CheckReport>,
    /// The version the service reported on `/status`, when it did.
    pub reported_version: Option<String>,
    /// Latency over every request sent during verification.
    pub latency: LatencySummary,
    /// Whether verification ran out of time before every check reached a verdict; the
    /// checks then say what was seen until then.
    #[serde(default)]
    pub timed_out: bool,
}

impl VerificationReport {
    /// The first failed check's name and detail, for messages.
    pub fn failure(&self) -> Option<String> {
        self.checks
            .iter()
            .find(|c| !c.passed)
            .map(|c| format!("{} check failed: {}", c.name, c.detail))
    }
}

/// One check of a verification.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckReport {
    /// Name (`readiness`, `liveness`, `status`, `metrics`, `smoke: classify`).
    pub name: String,
    /// Whether it passed.
    pub passed: bool,
    /// What was seen (last status, the mismatch, the parse error...).
    pub detail: String,
    /// Requests sent.
    pub attempts: u32,
    /// Latency of this check's requests.
    pub latency: LatencySummary,
}

/// Latency percentiles over a set of samples, in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Number of samples.
    pub samples: u32,
    /// Median.
    pub p50_ms: Option<f64>,
    /// 95th percentile.
    pub p95_ms: Option<f64>,
    /// Slowest.
    pub max_ms: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::soak_passes;

    #[test]
    fn a_soak_passes_within_its_failure_ratio_and_never_without_probes() {
        assert!(soak_passes(30, 3, 0.1));
        assert!(!soak_passes(30, 4, 0.1));
        assert!(!soak_passes(0, 0, 0.1));
    }
}
