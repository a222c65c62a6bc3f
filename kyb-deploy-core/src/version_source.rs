//! The [`VersionSource`] seam: the version a run deploys, with what is known of its source.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::version::Version;

/// Where a resolved version came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionOrigin {
    /// Given explicitly (`--version`).
    Explicit,
    /// The short commit of the working tree.
    GitCommit,
}

/// The version a run deploys, with what is known about the source it was built from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedVersion {
    /// The version (also the image tag).
    pub version: Version,
    /// Where the version came from.
    pub origin: VersionOrigin,
    /// Full commit hash of the working tree, when it is a git repository.
    pub commit: Option<String>,
    /// Whether the working tree has uncommitted changes.
    pub dirty: bool,
    /// The checked-out branch, when not detached.
    pub branch: Option<String>,
}

/// Resolves the version of a run.
#[async_trait]
pub trait VersionSource: Send + Sync {
    /// Resolves the version, failing with a message that says how to fix it.
    async fn resolve(&self) -> Result<ResolvedVersion>;
}
