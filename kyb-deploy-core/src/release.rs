//! Releases: what runs (or ran) in an environment.

use serde::{Deserialize, Serialize};

use crate::version::Version;

/// A deployable release: a version and the exact image that carries it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    /// The version.
    pub version: Version,
    /// The image reference, by digest once pushed (`repo@sha256:...`).
    pub image: String,
    /// The platform's own name for the release, when it has one (an ECS task definition
    /// ARN, a Kubernetes revision). Rollback uses it when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_ref: Option<String>,
    /// The id of the run (ledger record) that first deployed this release, when known.
    /// Targets that label what they run (Docker containers) record it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_id: Option<String>,
}

impl Release {
    /// A release of `version` carried by `image`.
    pub fn new(version: Version, image: impl Into<String>) -> Self {
        Self {
            version,
            image: image.into(),
            platform_ref: None,
            record_id: None,
        }
    }
}
