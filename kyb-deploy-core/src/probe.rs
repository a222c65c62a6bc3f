//! The [`HealthProbe`] seam: verifying that a deployed release serves correctly.

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
}

/// Verifies a deployed release: readiness gate, liveness, `/status`, `/metrics`, smoke tests.
///
/// The HTTP implementation is [`crate::HttpHealthProbe`]; tests script outcomes with the
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
