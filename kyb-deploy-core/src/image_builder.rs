//! The [`ImageBuilder`] seam: builds a release's image, and what it is asked to build.

use std::collections::BTreeMap;
use std::path::PathBuf;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use crate::error::Result;
use crate::event::StageProgress;
use crate::image::BuiltImage;
use crate::preflight::Check;
use crate::version::Version;
use serde::{Deserialize, Serialize};

/// What to build.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildRequest {
    /// Repository of the image, like `ghcr.io/acme/kyb-platform-api`.
    pub repository: String,
    /// The version being built; it is one of the tags.
    pub version: Version,
    /// Full commit of the source, when known.
    pub commit: Option<String>,
    /// Build context directory.
    pub context: PathBuf,
    /// Dockerfile, relative to the context.
    pub dockerfile: PathBuf,
    /// Build arguments.
    pub build_args: BTreeMap<String, String>,
    /// Build stage to stop at.
    pub target: Option<String>,
    /// Every tag to apply, without the repository (the version first).
    pub tags: Vec<String>,
    /// Image labels (OCI annotations).
    pub labels: BTreeMap<String, String>,
    /// Platforms to build (`linux/amd64`...); empty builds the engine's own platform only.
    pub platforms: Vec<String>,
}

/// Builds images.
#[async_trait]
pub trait ImageBuilder: Send + Sync {
    /// Checks what the seam needs (an engine, a binary, credentials) without changing
    /// anything.
    async fn preflight(&self) -> Vec<Check> {
        Vec::new()
    }

    /// Builds `request`, streaming build output through `progress`.
    async fn build(
        &self,
        request: &BuildRequest,
        progress: &StageProgress,
        cancel: &CancellationToken,
    ) -> Result<BuiltImage>;

    /// Tags the built `image` locally with `tags` of its repository: the mutable tags
    /// (`{environment}-latest`) of an image that is not pushed, moved once the release is
    /// verified.
    async fn tag(&self, image: &BuiltImage, tags: &[String]) -> Result<()>;
}
