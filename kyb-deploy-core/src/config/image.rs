//! How the image is built, tagged, scanned and pushed.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// How the image is built and named (`[image]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImageConfig {
    /// Repository the image is pushed to, like `ghcr.io/acme/kyb-platform-api`.
    pub repository: String,
    /// Build context directory, relative to the project directory.
    pub context: PathBuf,
    /// Dockerfile, relative to the context.
    pub dockerfile: PathBuf,
    /// Build arguments (`--build-arg KEY=VALUE` adds to them).
    pub build_args: BTreeMap<String, String>,
    /// Build stage to stop at.
    pub target: Option<String>,
    /// Tags pushed besides the digest. Placeholders: `{version}`, `{commit}` (the full git
    /// commit; skipped when unknown), `{environment}`.
    pub tags: Vec<String>,
    /// Platforms to build (`linux/amd64`, `linux/arm64`); several are pushed as one OCI
    /// image index. Empty: the engine's own platform.
    pub platforms: Vec<String>,
    /// A command run (`sh -c`, in the project directory) at the start of the build stage,
    /// before the image build: for example the static build of the binary the Dockerfile
    /// copies.
    pub prebuild: Option<String>,
    /// The port the service listens on, checked against the image's `EXPOSE`.
    pub port: u16,
    /// Which scanner checks the built image.
    pub scan: ScanKind,
    /// Settings of the built-in policy check.
    pub policy: PolicyConfig,
    /// Settings of the Trivy scanner.
    pub trivy: TrivyConfig,
    /// Registry credentials. The password is never in the file: it comes from
    /// `KYB_DEPLOY_REGISTRY_PASSWORD` or `password_file`.
    pub registry: RegistryConfig,
}

impl Default for ImageConfig {
    fn default() -> Self {
        Self {
            repository: "kyb-platform-api".into(),
            context: ".".into(),
            dockerfile: "Dockerfile".into(),
            build_args: BTreeMap::new(),
            target: None,
            tags: vec![
                "{version}".into(),
                "{commit}".into(),
                "{environment}-latest".into(),
            ],
            platforms: Vec::new(),
            prebuild: None,
            port: 8080,
            scan: ScanKind::Policy,
            policy: PolicyConfig::default(),
            trivy: TrivyConfig::default(),
            registry: RegistryConfig::default(),
        }
    }
}

/// Which scanner checks the built image.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScanKind {
    /// The built-in policy check (needs no external tool).
    #[default]
    Policy,
    /// Trivy (`trivy image --format json`), after the policy check.
    Trivy,
    /// No scan.
    None,
}

/// The built-in image policy (`[image.policy]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Largest acceptable image size, like `"200MB"`.
    pub max_size: String,
    /// Accept an image that runs as root.
    pub allow_root: bool,
}

impl PolicyConfig {
    /// `max_size` in bytes; the error names the problem and how to write a size.
    pub fn max_size_bytes(&self) -> Result<u64, String> {
        parse_size(&self.max_size)
    }
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            max_size: "500MB".into(),
            allow_root: false,
        }
    }
}

/// The Trivy scanner (`[image.trivy]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrivyConfig {
    /// The lowest severity that fails the scan: `LOW`, `MEDIUM`, `HIGH` or `CRITICAL`.
    pub fail_on: String,
    /// The trivy executable.
    pub binary: PathBuf,
    /// Ignore vulnerabilities without a fixed version.
    pub ignore_unfixed: bool,
}

impl Default for TrivyConfig {
    fn default() -> Self {
        Self {
            fail_on: "HIGH".into(),
            binary: "trivy".into(),
            ignore_unfixed: false,
        }
    }
}

/// Registry credentials (`[image.registry]`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistryConfig {
    /// User name; `KYB_DEPLOY_REGISTRY_USERNAME` overrides it.
    pub username: Option<String>,
    /// A file holding the password; `KYB_DEPLOY_REGISTRY_PASSWORD` overrides it.
    pub password_file: Option<PathBuf>,
}

/// Parses a size like `"200MB"`, `"1.5GiB"` or `"4096"` (bytes).
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let factor: f64 = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1.0,
        "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "KIB" => 1024.0,
        "MIB" => 1024.0 * 1024.0,
        "GIB" => 1024.0 * 1024.0 * 1024.0,
        _ => f64::NAN,
    };
    match number.parse::<f64>() {
        Ok(n) if factor.is_finite() && n >= 0.0 => Ok((n * factor) as u64),
        _ => Err(format!(
            "invalid size {text:?}; write a number with a unit, like \"200MB\" or \"1GiB\""
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("200MB").unwrap(), 200_000_000);
        assert_eq!(parse_size("1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("big").unwrap_err().contains("200MB"));
        assert!(parse_size("5 parsecs").is_err());
    }
}
