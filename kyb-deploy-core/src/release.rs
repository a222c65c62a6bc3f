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
    /// Whether `other` is the same release on the platform: the same platform reference
    /// (task definition ARN, revision) when both have one, else the same image.
    ///
    /// ```
    /// use kyb_deploy_core::{Release, Version};
    ///
    /// let v1 = Release::new(Version::parse("v1").unwrap(), "repo@sha256:1");
    /// let again = Release::new(Version::parse("v1-again").unwrap(), "repo@sha256:1");
    /// assert!(v1.is_same_as(&again));
    /// let registered = Release { platform_ref: Some("td:3".into()), ..v1.clone() };
    /// let other = Release { platform_ref: Some("td:4".into()), ..v1.clone() };
    /// assert!(!registered.is_same_as(&other));
    /// ```
    pub fn is_same_as(&self, other: &Release) -> bool {
        match (&self.platform_ref, &other.platform_ref) {
            (Some(a), Some(b)) => a == b,
            _ => self.image == other.image,
        }
    }

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
