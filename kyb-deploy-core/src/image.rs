//! The image seams: [`ImageBuilder`], [`Scanner`] and [`Registry`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::error::Result;
use crate::event::StageProgress;
use crate::preflight::Check;
use crate::version::Version;

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

/// An image built locally.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuiltImage {
    /// The engine's image id (of the first platform's image when several were built).
    pub id: String,
    /// Repository of the image.
    pub repository: String,
    /// Tags to push, without the repository (the version first).
    pub tags: Vec<String>,
    /// One image per platform when several platforms were built; empty for a single-platform
    /// build (then `id` is the image).
    pub platforms: Vec<PlatformImage>,
}

/// One platform's image of a multi-platform build.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformImage {
    /// The platform (`linux/arm64`).
    pub platform: String,
    /// The engine's image id.
    pub id: String,
    /// The local tag this platform's image carries (`<repository>:<version>-linux-arm64`).
    pub local_tag: String,
}

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

/// The checks of the image pipeline's seams (builder, scanner, registry), in that order:
/// what `deploy` needs to build, scan and push, whatever the target. Part of
/// [`crate::Pipeline::preflight`]; `check` also runs it alone when the target cannot be
/// created.
pub async fn preflight_image_seams(
    builder: Option<&dyn ImageBuilder>,
    scanner: Option<&dyn Scanner>,
    registry: Option<&dyn Registry>,
) -> Vec<Check> {
    let mut checks = Vec::new();
    if let Some(builder) = builder {
        checks.extend(builder.preflight().await);
    }
    if let Some(scanner) = scanner {
        checks.extend(scanner.preflight().await);
    }
    if let Some(registry) = registry {
        checks.extend(registry.preflight().await);
    }
    checks
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
}
