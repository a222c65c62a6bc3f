//! The [`Registry`] seam: pushes a built image, and the image by digest it answers.

use serde::{Deserialize, Serialize};

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use crate::error::Result;
use crate::event::StageProgress;
use crate::image::BuiltImage;
use crate::preflight::Check;

/// An image in a registry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushedImage {
    /// The reference by digest (`repo@sha256:...`): what every later stage deploys.
    pub reference: String,
    /// The manifest digest.
    pub digest: String,
    /// Tags pushed.
    pub tags: Vec<String>,
}

/// Pushes images to a registry.
#[async_trait]
pub trait Registry: Send + Sync {
    /// Checks what the seam needs (an engine, a binary, credentials) without changing
    /// anything.
    async fn preflight(&self) -> Vec<Check> {
        Vec::new()
    }

    /// Pushes every tag of `image` and returns its reference by digest.
    async fn push(
        &self,
        image: &BuiltImage,
        progress: &StageProgress,
        cancel: &CancellationToken,
    ) -> Result<PushedImage>;

    /// Points `tags` of the pushed image's repository at its digest: the mutable tags
    /// (`{environment}-latest`), moved once the release is verified.
    async fn move_tags(
        &self,
        image: &PushedImage,
        tags: &[String],
        progress: &StageProgress,
    ) -> Result<()>;
}
