//! The image pipeline's values: an image built locally ([`BuiltImage`], per platform
//! [`PlatformImage`]) and the checks of its three seams ([`preflight_image_seams`]): the
//! [`ImageBuilder`](crate::ImageBuilder), the [`Scanner`](crate::Scanner) and the
//! [`Registry`](crate::Registry), each in a file of its own.

use serde::{Deserialize, Serialize};

use crate::image_builder::ImageBuilder;
use crate::preflight::Check;
use crate::registry::Registry;
use crate::scanner::Scanner;

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

/// The checks of the image pipeline's seams (builder, scanner, registry), in that order and
/// each result once: what `deploy` needs to build, scan and push, whatever the target. Part
/// of [`crate::Pipeline::preflight`]; `check` also runs it alone when the target cannot be
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
    crate::preflight::once_each(checks)
}
