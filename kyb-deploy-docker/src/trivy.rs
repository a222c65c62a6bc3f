//! The Trivy adapter: [`TrivyScanner`] runs `trivy image --format json` and reads its
//! report (SchemaVersion 2).

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use kyb_deploy_core::Check;
use kyb_deploy_core::StageProgress;
use kyb_deploy_core::config::TrivyConfig;
use kyb_deploy_core::{BuiltImage, Finding, ScanReport, Scanner};
use kyb_deploy_core::{Error, Result};

/// What to do when trivy is missing, for the preflight check and the error.
const FIX: &str = "install trivy (https://trivy.dev), or set image.scan = \"policy\"";

/// How much of trivy's standard error an error message keeps.
const STDERR_TAIL_LINES: usize = 10;

/// A [`Scanner`] that runs [Trivy](https://trivy.dev) on the built image:
/// `<binary> image --format json --quiet [--ignore-unfixed] <image>`.
///
/// The image is named by its local tag `<repository>:<first tag>` (the builder applies the
/// tags locally), which trivy finds in the Docker engine; without tags, by its image id.
/// A multi-platform build is scanned platform by platform, each by its local tag, and its
/// findings then start with the platform.
///
/// Vulnerabilities, failed misconfiguration checks and secrets of the report all become
/// findings (a secret finding names the rule and the file, never the matched text). The
/// image passes when no finding is at or above `fail_on`; severities rank
/// `UNKNOWN < LOW < MEDIUM < HIGH < CRITICAL`.
///
/// ```
/// use kyb_deploy_core::config::TrivyConfig;
/// use kyb_deploy_docker::TrivyScanner;
///
/// let config = TrivyConfig { fail_on: "CRITICAL".into(), ..TrivyConfig::default() };
/// let scanner = TrivyScanner::new(&config).unwrap();
/// assert_eq!(scanner.binary().to_str(), Some("trivy"));
///
/// let wrong = TrivyConfig { fail_on: "SEVERE".into(), ..TrivyConfig::default() };
/// assert!(TrivyScanner::new(&wrong).is_err());
/// ```
#[derive(Clone, Debug)]
pub struct TrivyScanner {
    binary: PathBuf,
    fail_on: Severity,
    ignore_unfixed: bool,
}

impl TrivyScanner {
    /// A scanner with the settings of `[image.trivy]`; fails when `fail_on` is not one of
    /// `LOW`, `MEDIUM`, `HIGH` or `CRITICAL`.
    pub fn new(config: &TrivyConfig) -> Result<Self> {
        let fail_on = Severity::parse(&config.fail_on)
            .filter(|s| *s != Severity::Unknown)
            .ok_or_else(|| Error::Config {
                message: format!(
                    "image.trivy.fail_on: {:?} is not a severity; use LOW, MEDIUM, HIGH or CRITICAL",
                    config.fail_on
                ),
            })?;
        Ok(Self {
            binary: config.binary.clone(),
            fail_on,
            ignore_unfixed: config.ignore_unfixed,
        })
    }

    /// The trivy executable it runs.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// The preflight check: the binary is on `PATH` (or at its configured path) and answers
    /// `--version`.
    pub async fn check(&self) -> Check {
        let Some(path) = locate(&self.binary) else {
            let detail = if is_bare_name(&self.binary) {
                format!("no {:?} binary on PATH", self.binary.display().to_string())
            } else {
                format!("no executable trivy at {}", self.binary.display())
            };
            return Check::fail("trivy", detail, FIX);
        };
        let version = Command::new(&path)
            .arg("--version")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output();
        match tokio::time::timeout(Duration::from_secs(20), version).await {
            Ok(Ok(out)) if out.status.success() => {
                let stdout = String::from_utf8_lossy(&out.stdout);
                let version = stdout.lines().next().unwrap_or_default().trim();
                Check::pass("trivy", format!("{} ({version})", path.display()))
            }
            Ok(Ok(out)) => Check::fail(
                "trivy",
                format!(
                    "{} --version failed ({}): {}",
                    path.display(),
                    out.status,
                    stderr_tail(&out.stderr)
                ),
                FIX,
            ),
            Ok(Err(e)) => Check::fail("trivy", format!("cannot run {}: {e}", path.display()), FIX),
            Err(_) => Check::fail(
                "trivy",
                format!("{} --version did not answer within 20s", path.display()),
                FIX,
            ),
        }
    }

    fn args<'a>(&self, image: &'a str) -> Vec<&'a str> {
        let mut args = vec!["image", "--format", "json", "--quiet"];
        if self.ignore_unfixed {
            args.push("--ignore-unfixed");
        }
        args.push(image);
        args
    }

    /// Runs trivy on `image` and returns its output; a non-zero exit is an error.
    async fn run(&self, image: &str, cancel: &CancellationToken) -> Result<Output> {
        let child = Command::new(&self.binary)
            .args(self.args(image))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Cancellation and stage timeouts drop the future below, which kills trivy.
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                Error::seam(
                    "trivy",
                    format!("cannot run {}: {e}; {FIX}", self.binary.display()),
                )
            })?;
        let output = tokio::select! {
            () = cancel.cancelled() => return Err(Error::Cancelled),
            output = child.wait_with_output() => output.map_err(|e| {
                Error::seam("trivy", format!("waiting for trivy on image {image} failed: {e}"))
            })?,
        };
        if !output.status.success() {
            return Err(Error::seam(
                "trivy",
                format!(
                    "trivy image {image} failed ({}): {}",
                    output.status,
                    stderr_tail(&output.stderr)
                ),
            ));
        }
        Ok(output)
    }
}

#[async_trait]
impl Scanner for TrivyScanner {
    async fn preflight(&self) -> Vec<Check> {
        vec![self.check().await]
    }

    async fn scan(
        &self,
        image: &BuiltImage,
        progress: &StageProgress,
        cancel: &CancellationToken,
    ) -> Result<ScanReport> {
        let mut findings = Vec::new();
        for (platform, reference) in image_refs(image) {
            progress.progress(format!("trivy image {reference}"));
            let output = self.run(&reference, cancel).await?;
            for line in String::from_utf8_lossy(&output.stderr).lines() {
                if !line.trim().is_empty() {
                    progress.log(line);
                }
            }
            let found = parse_report(&output.stdout).map_err(|problem| {
                Error::seam(
                    "trivy",
                    format!("cannot read the trivy report of image {reference}: {problem}"),
                )
            })?;
            findings.extend(found.into_iter().map(|mut finding| {
                if let Some(p) = platform {
                    finding.title = format!("{p}: {}", finding.title);
                }
                finding
            }));
        }
        Ok(ScanReport {
            passed: passes(&findings, self.fail_on),
            findings,
        })
    }
}

/// Trivy's severities, in rank order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Severity {
    Unknown,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    fn parse(text: &str) -> Option<Self> {
        Some(match text.trim().to_ascii_uppercase().as_str() {
            "UNKNOWN" => Self::Unknown,
            "LOW" => Self::Low,
            "MEDIUM" => Self::Medium,
            "HIGH" => Self::High,
            "CRITICAL" => Self::Critical,
            _ => return None,
        })
    }

    /// A finding's severity; anything trivy did not rate counts as `UNKNOWN`.
    fn of(finding: &Finding) -> Self {
        Self::parse(&finding.severity).unwrap_or(Self::Unknown)
    }
}

/// Whether no finding is at or above `fail_on`.
fn passes(findings: &[Finding], fail_on: Severity) -> bool {
    findings.iter().all(|f| Severity::of(f) < fail_on)
}

/// The images to scan, each with its platform when the build has several.
fn image_refs(image: &BuiltImage) -> Vec<(Option<&str>, String)> {
    if !image.platforms.is_empty() {
        return image
            .platforms
            .iter()
            .map(|p| (Some(p.platform.as_str()), p.local_tag.clone()))
            .collect();
    }
    let reference = match image.tags.first() {
        Some(tag) => format!("{}:{tag}", image.repository),
        None => image.id.clone(),
    };
    vec![(None, reference)]
}

/// The last lines of a process's standard error, for error messages.
fn stderr_tail(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return "no error output".to_owned();
    }
    lines[lines.len().saturating_sub(STDERR_TAIL_LINES)..].join("\n")
}

/// Whether `binary` is a bare name to look up on `PATH` rather than a path.
fn is_bare_name(binary: &Path) -> bool {
    binary.components().count() == 1 && !binary.to_string_lossy().contains('/')
}

/// Where `binary` is: itself when it is a path, else the first match on `PATH`.
fn locate(binary: &Path) -> Option<PathBuf> {
    if !is_bare_name(binary) {
        return is_executable(binary).then(|| binary.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(binary))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.is_file() && meta.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        meta.is_file()
    }
}

/// A trivy JSON report, SchemaVersion 2; only what becomes findings.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Report {
    #[serde(default)]
    results: Option<Vec<TrivyResult>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TrivyResult {
    #[serde(default)]
    target: String,
    #[serde(default)]
    vulnerabilities: Option<Vec<Vulnerability>>,
    #[serde(default)]
    misconfigurations: Option<Vec<Misconfiguration>>,
    #[serde(default)]
    secrets: Option<Vec<Secret>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Vulnerability {
    #[serde(rename = "VulnerabilityID")]
    vulnerability_id: String,
    #[serde(default)]
    pkg_name: String,
    #[serde(default)]
    installed_version: String,
    #[serde(default)]
    fixed_version: String,
    #[serde(default)]
    severity: String,
    #[serde(default)]
    title: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Misconfiguration {
    #[serde(rename = "ID")]
    id: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    severity: String,
    #[serde(default)]
    status: String,
}

/// A secret trivy found. Its `Match` and `Code` (the secret's text, masked by trivy) are
/// deliberately not read.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Secret {
    #[serde(rename = "RuleID")]
    rule_id: String,
    #[serde(default)]
    severity: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    start_line: u64,
}

/// The findings of a trivy JSON report, or what is wrong with it.
fn parse_report(json: &[u8]) -> Result<Vec<Finding>, String> {
    let value: serde_json::Value =
        serde_json::from_slice(json).map_err(|e| format!("it is not JSON ({e})"))?;
    let version = match &value {
        serde_json::Value::Array(_) => {
            return Err(
                "it is a bare list of results, the format of trivy before 0.20 without \
                 a SchemaVersion; kyb-deploy reads SchemaVersion 2: upgrade trivy"
                    .to_owned(),
            );
        }
        serde_json::Value::Object(report) => report.get("SchemaVersion").cloned(),
        _ => return Err("it is not a trivy JSON report (not an object)".to_owned()),
    };
    match version.as_ref().and_then(serde_json::Value::as_u64) {
        Some(2) => {}
        Some(other) => {
            return Err(format!(
                "its SchemaVersion is {other}; kyb-deploy reads SchemaVersion 2: use a trivy \
                 release that writes it"
            ));
        }
        None => {
            return Err("it has no SchemaVersion; kyb-deploy reads SchemaVersion 2".to_owned());
        }
    }
    let report: Report =
        serde_json::from_value(value).map_err(|e| format!("unexpected report layout ({e})"))?;

    let mut findings = Vec::new();
    for result in report.results.unwrap_or_default() {
        let target = &result.target;
        for v in result.vulnerabilities.unwrap_or_default() {
            let what = if v.title.is_empty() {
                &v.vulnerability_id
            } else {
                &v.title
            };
            let fix = if v.fixed_version.is_empty() {
                "no fixed version yet".to_owned()
            } else {
                format!("fixed in {}", v.fixed_version)
            };
            let title = format!(
                "{} {} ({target}): {what}; {fix}",
                v.pkg_name, v.installed_version
            );
            findings.push(Finding {
                severity: severity_name(&v.severity),
                id: v.vulnerability_id,
                title,
            });
        }
        for m in result.misconfigurations.unwrap_or_default() {
            // With --include-non-failures trivy also lists the checks that passed.
            if matches!(m.status.as_str(), "PASS" | "EXCEPTION") {
                continue;
            }
            let title = if m.message.is_empty() {
                format!("{target}: {}", m.title)
            } else {
                format!("{target}: {}: {}", m.title, m.message)
            };
            findings.push(Finding {
                severity: severity_name(&m.severity),
                id: m.id,
                title,
            });
        }
        for s in result.secrets.unwrap_or_default() {
            let at = if s.start_line > 0 {
                format!("{target} line {}", s.start_line)
            } else {
                target.clone()
            };
            findings.push(Finding {
                severity: severity_name(&s.severity),
                id: s.rule_id,
                title: format!("{} in {at}", s.title),
            });
        }
    }
    Ok(findings)
}

/// Trivy's severity, upper case; `UNKNOWN` when trivy gave none.
fn severity_name(severity: &str) -> String {
    let name = severity.trim().to_ascii_uppercase();
    if name.is_empty() {
        "UNKNOWN".to_owned()
    } else {
        name
    }
}

#[cfg(test)]
mod tests;
