//! Platforms as the engine and image indexes name them.

use std::fmt;

/// A platform like `linux/arm64` or `linux/arm/v7`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Platform {
    pub(crate) os: String,
    pub(crate) architecture: String,
    pub(crate) variant: Option<String>,
}

impl Platform {
    pub(crate) fn new(os: &str, architecture: &str, variant: Option<&str>) -> Self {
        let architecture = match architecture {
            "x86_64" | "x86-64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        };
        // `arm64` and `arm64/v8` are the same platform.
        let variant = variant.filter(|v| !v.is_empty() && (architecture != "arm64" || *v != "v8"));
        Self {
            os: os.to_owned(),
            architecture: architecture.to_owned(),
            variant: variant.map(str::to_owned),
        }
    }

    /// Parses `os/arch[/variant]`.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let parts: Vec<&str> = text.split('/').collect();
        let valid =
            |s: &&str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        match parts.as_slice() {
            [os, arch] if valid(os) && valid(arch) => Ok(Self::new(os, arch, None)),
            [os, arch, variant] if [os, arch, variant].iter().all(|s| valid(s)) => {
                Ok(Self::new(os, arch, Some(variant)))
            }
            _ => Err(format!(
                "invalid platform {text:?} in image.platforms; write os/architecture[/variant], like linux/amd64 or linux/arm/v7"
            )),
        }
    }

    /// `linux-arm-v7`, for tags.
    pub(crate) fn tag_suffix(&self) -> String {
        self.to_string().replace('/', "-")
    }

    /// Whether an image of platform `actual` is what was asked for; a request without a
    /// variant accepts any.
    pub(crate) fn accepts(&self, actual: &Self) -> bool {
        self.os == actual.os
            && self.architecture == actual.architecture
            && (self.variant.is_none() || self.variant == actual.variant)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}
