//! The [`Scanner`] seam: checks a built image against a security policy, and what it found.

use serde::{Deserialize, Serialize};

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use crate::error::Result;
use crate::event::StageProgress;
use crate::image::BuiltImage;
use crate::preflight::Check;

/// A finding of a scan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Severity as the scanner names it (`CRITICAL`, `HIGH`...).
    pub severity: String,
    /// Identifier (a CVE id, a policy rule).
    pub id: String,
    /// What was found.
    pub title: String,
}

/// The result of a scan.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanReport {
    /// Whether the image meets the policy.
    pub passed: bool,
    /// Everything found, including findings below the failing severity.
    pub findings: Vec<Finding>,
}

/// Checks built images against a security policy.
#[async_trait]
pub trait Scanner: Send + Sync {
    /// Checks what the seam needs (an engine, a binary, credentials) without changing
    /// anything.
    async fn preflight(&self) -> Vec<Check> {
        Vec::new()
    }

    /// Scans `image`. A policy violation is a report with `passed == false`, not an error.
    async fn scan(
        &self,
        image: &BuiltImage,
        progress: &StageProgress,
        cancel: &CancellationToken,
    ) -> Result<ScanReport>;
}
