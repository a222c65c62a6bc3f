//! The built-in image policy check: [`ImagePolicyScanner`], from the engine's image inspect
//! data and history, with no external tool.

use std::collections::BTreeSet;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use super::{DockerEngine, engine_error};
use kyb_deploy_core::Check;
use kyb_deploy_core::StageProgress;
use kyb_deploy_core::config::ImageConfig;
use kyb_deploy_core::{BuiltImage, Finding, ScanReport, Scanner};
use kyb_deploy_core::{Error, Result};

/// What the built-in policy requires of an image.
///
/// ```
/// use kyb_deploy_core::config::ImageConfig;
/// use kyb_deploy_docker::PolicySettings;
///
/// let settings = PolicySettings::from_config(&ImageConfig::default()).unwrap();
/// assert_eq!(settings.port, 8080);
/// assert_eq!(settings.max_size, 500_000_000);
/// assert!(!settings.allow_root);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicySettings {
    /// The port the service listens on; the image must declare `EXPOSE <port>` (TCP).
    pub port: u16,
    /// The largest acceptable image size, in bytes.
    pub max_size: u64,
    /// Accept an image that runs as root.
    pub allow_root: bool,
}

impl PolicySettings {
    /// The settings of `[image]`: `port`, `policy.max_size` and `policy.allow_root`.
    pub fn from_config(image: &ImageConfig) -> Result<Self> {
        let max_size = image
            .policy
            .max_size_bytes()
            .map_err(|problem| Error::Config {
                message: format!("image.policy.max_size: {problem}"),
            })?;
        Ok(Self {
            port: image.port,
            max_size,
            allow_root: image.policy.allow_root,
        })
    }
}

/// A [`Scanner`] that checks a locally built image against the built-in policy, from the
/// engine's inspect data and the image history:
///
/// | id | severity | rule |
/// |----|----------|------|
/// | `policy/root-user` | HIGH | the image runs as root: `USER` empty, `root` or `0` (any group), unless `allow_root` |
/// | `policy/secret-env` | HIGH | a secret-looking environment variable with a value in the config or in an `ENV` of the history |
/// | `policy/secret-build-arg` | HIGH | a secret-looking build argument with a value recorded in the history (`RUN \|N KEY=value ...`, `ARG KEY=default`) |
/// | `policy/port` | MEDIUM | the image does not declare `EXPOSE <port>/tcp` |
/// | `policy/size` | MEDIUM | the image is larger than `max_size` |
///
/// Every finding fails the scan: each rule is a requirement of the policy, and the severity
/// only says how urgent the fix is. Findings name variables and arguments, never their values.
///
/// A name looks like a secret when, ignoring case, it contains `PASSWORD`, `PASSWD`,
/// `SECRET`, `CREDENTIAL`, `API_KEY`/`APIKEY`, `PRIVATE_KEY` or `ACCESS_KEY`, or has a
/// part (between `_`, `-` or `.`) ending in `TOKEN` or `AUTH` (so `GITHUB_TOKEN` and
/// `OAUTH_CLIENT` match, `TOKENIZERS_PARALLELISM` and `AUTHOR` do not). Names whose last
/// part is `FILE`, `PATH`, `DIR`, `HOST`, `PORT` or `ENABLED` say where a secret lives or
/// whether a feature is on, and are not flagged (`POSTGRES_PASSWORD_FILE=/run/secrets/db`
/// is fine), nor are empty values.
///
/// A multi-platform build is checked platform by platform; findings then start with the
/// platform (`linux/arm64: ...`).
#[derive(Clone, Debug)]
pub struct ImagePolicyScanner {
    engine: DockerEngine,
    settings: PolicySettings,
}

impl ImagePolicyScanner {
    /// A policy scanner that inspects images on `engine`.
    pub fn new(engine: DockerEngine, settings: PolicySettings) -> Self {
        Self { engine, settings }
    }

    /// The policy it checks.
    pub fn settings(&self) -> &PolicySettings {
        &self.settings
    }

    /// Reads what the policy looks at from the engine.
    async fn facts(&self, id: &str) -> Result<ImageFacts> {
        let client = self.engine.client();
        let inspect = client
            .inspect_image(id)
            .await
            .map_err(|e| engine_error(&format!("inspect image {id} with"), e))?;
        let history = client
            .image_history(id)
            .await
            .map_err(|e| engine_error(&format!("read the history of image {id} from"), e))?;
        let config = inspect.config.unwrap_or_default();
        let mut exposed_ports: Vec<String> = config
            .exposed_ports
            .map(|ports| ports.into_keys().collect())
            .unwrap_or_default();
        exposed_ports.sort();
        Ok(ImageFacts {
            user: config.user.unwrap_or_default(),
            env: config.env.unwrap_or_default(),
            exposed_ports,
            size: inspect
                .size
                .and_then(|s| u64::try_from(s).ok())
                .unwrap_or(0),
            history: history.into_iter().map(|item| item.created_by).collect(),
        })
    }
}

#[async_trait]
impl Scanner for ImagePolicyScanner {
    async fn preflight(&self) -> Vec<Check> {
        vec![self.engine.check().await]
    }

    async fn scan(
        &self,
        image: &BuiltImage,
        progress: &StageProgress,
        cancel: &CancellationToken,
    ) -> Result<ScanReport> {
        // The image id is the first platform's image of a multi-platform build; it is
        // checked on its own only when it is not one of the platform images.
        let mut targets: Vec<(Option<&str>, &str)> = image
            .platforms
            .iter()
            .map(|p| (Some(p.platform.as_str()), p.id.as_str()))
            .collect();
        if !targets.iter().any(|(_, id)| *id == image.id) {
            targets.insert(0, (None, image.id.as_str()));
        }
        let mut findings = Vec::new();
        for (platform, id) in targets {
            progress.progress(match platform {
                Some(p) => format!("checking the image policy of {id} ({p})"),
                None => format!("checking the image policy of {id}"),
            });
            let facts = tokio::select! {
                () = cancel.cancelled() => return Err(Error::Cancelled),
                facts = self.facts(id) => facts?,
            };
            let found = evaluate(&self.settings, &facts);
            findings.extend(found.into_iter().map(|mut finding| {
                if let Some(p) = platform {
                    finding.title = format!("{p}: {}", finding.title);
                }
                finding
            }));
        }
        Ok(ScanReport {
            passed: findings.is_empty(),
            findings,
        })
    }
}

/// What the policy looks at, read from the engine's image inspect and history.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ImageFacts {
    /// `Config.User`.
    pub(crate) user: String,
    /// `Config.Env`, as `KEY=value` entries.
    pub(crate) env: Vec<String>,
    /// The keys of `Config.ExposedPorts` (`8080/tcp`).
    pub(crate) exposed_ports: Vec<String>,
    /// The image size in bytes.
    pub(crate) size: u64,
    /// The `CreatedBy` of each history entry.
    pub(crate) history: Vec<String>,
}

/// Checks `facts` against the policy; every finding fails the image.
pub(crate) fn evaluate(settings: &PolicySettings, facts: &ImageFacts) -> Vec<Finding> {
    let mut findings = Vec::new();
    if !settings.allow_root && runs_as_root(&facts.user) {
        let user = facts.user.trim();
        let what = if user.is_empty() {
            "no USER instruction".to_owned()
        } else {
            format!("USER {user}")
        };
        findings.push(finding(
            "HIGH",
            "policy/root-user",
            format!(
                "image runs as root ({what}); add a non-root USER (like USER 10001) to the \
                 Dockerfile, or set image.policy.allow_root = true"
            ),
        ));
    }

    let mut env_names = BTreeSet::new();
    for (name, value) in facts.env.iter().filter_map(|e| e.split_once('=')) {
        if is_secret(name, value) && env_names.insert(name.to_owned()) {
            findings.push(secret_env(name, "the image config"));
        }
    }
    let mut arg_names = BTreeSet::new();
    for line in &facts.history {
        for (kind, name) in secrets_in_history(line) {
            match kind {
                Recorded::Env if env_names.insert(name.to_owned()) => {
                    findings.push(secret_env(name, "the image history"));
                }
                Recorded::BuildArg if arg_names.insert(name.to_owned()) => {
                    findings.push(finding(
                        "HIGH",
                        "policy/secret-build-arg",
                        format!(
                            "build argument {name} looks like a secret and its value is recorded \
                             in the image history; pass it as a build secret \
                             (RUN --mount=type=secret) instead"
                        ),
                    ));
                }
                _ => {}
            }
        }
    }

    let expected = format!("{}/tcp", settings.port);
    let port = settings.port.to_string();
    if !facts
        .exposed_ports
        .iter()
        .any(|p| *p == expected || *p == port)
    {
        let declared = if facts.exposed_ports.is_empty() {
            "declares no EXPOSE".to_owned()
        } else {
            format!("declares EXPOSE {}", facts.exposed_ports.join(", "))
        };
        findings.push(finding(
            "MEDIUM",
            "policy/port",
            format!(
                "image {declared} but the service listens on {expected} (image.port); add \
                 EXPOSE {} to the Dockerfile or correct image.port",
                settings.port
            ),
        ));
    }

    if facts.size > settings.max_size {
        let (size, budget) = (human_size(facts.size), human_size(settings.max_size));
        let sizes = if size == budget {
            format!(
                "{} bytes, over the size budget of {} bytes",
                facts.size, settings.max_size
            )
        } else {
            format!("{size}, over the size budget of {budget}")
        };
        findings.push(finding(
            "MEDIUM",
            "policy/size",
            format!("image is {sizes} (image.policy.max_size)"),
        ));
    }
    findings
}

fn finding(severity: &str, id: &str, title: String) -> Finding {
    Finding {
        severity: severity.to_owned(),
        id: id.to_owned(),
        title,
    }
}

fn secret_env(name: &str, place: &str) -> Finding {
    finding(
        "HIGH",
        "policy/secret-env",
        format!(
            "environment variable {name} looks like a secret and its value is baked into \
             {place}; pass it to the container at run time instead"
        ),
    )
}

/// Whether `user` (`Config.User`, `user[:group]`) is root: empty (the default), `root` or
/// `0`, whatever the group.
fn runs_as_root(user: &str) -> bool {
    super::runs_as_root(Some(user))
}

/// Whether `name=value` looks like a secret with a value (see [`ImagePolicyScanner`]).
fn is_secret(name: &str, value: &str) -> bool {
    !value.trim().is_empty() && is_secret_name(name)
}

fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    let parts: Vec<&str> = upper
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|p| !p.is_empty())
        .collect();
    if parts
        .last()
        .is_some_and(|last| ["FILE", "PATH", "DIR", "HOST", "PORT", "ENABLED"].contains(last))
    {
        return false;
    }
    // The long words cannot hide inside innocent words, so they match anywhere, also across
    // separators (`API_KEY` and `APIKEY` alike).
    let joined = parts.concat();
    let anywhere = [
        "PASSWORD",
        "PASSWD",
        "SECRET",
        "CREDENTIAL",
        "APIKEY",
        "PRIVATEKEY",
        "ACCESSKEY",
    ];
    anywhere.iter().any(|word| joined.contains(word))
        || parts
            .iter()
            .any(|p| p.ends_with("TOKEN") || p.ends_with("TOKENS") || p.ends_with("AUTH"))
}

/// Where a history entry records a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Recorded {
    /// An `ENV`.
    Env,
    /// A build argument: the `|N KEY=value ...` prefix of a `RUN`, or an `ARG` default.
    BuildArg,
}

/// The secret-looking names with a value in one history entry's `CreatedBy`, in both the
/// classic builder's form (`/bin/sh -c #(nop)  ENV K=v`, `|1 K=v /bin/sh -c make`) and
/// BuildKit's (`ENV K=v`, `RUN |1 K=v /bin/sh -c make # buildkit`).
fn secrets_in_history(created_by: &str) -> Vec<(Recorded, &str)> {
    let line = created_by.trim();
    let line = line
        .strip_prefix("/bin/sh -c #(nop)")
        .unwrap_or(line)
        .trim_start();
    let line = line.strip_suffix("# buildkit").unwrap_or(line).trim_end();
    let line = line.strip_prefix("RUN ").map_or(line, str::trim_start);

    let pairs: Vec<(Recorded, &str, &str)> = if let Some(rest) = line.strip_prefix('|') {
        // `|N` then N `KEY=value` words, then the command. A value with spaces spreads over
        // several words; only names are needed, and a word without `=` is no name.
        let mut words = rest.split_whitespace();
        let count: usize = words.next().and_then(|n| n.parse().ok()).unwrap_or(0);
        words
            .take(count)
            .filter_map(|w| w.split_once('='))
            .map(|(k, v)| (Recorded::BuildArg, k, v))
            .collect()
    } else if let Some(rest) = line.strip_prefix("ARG ") {
        rest.split_whitespace()
            .filter_map(|w| w.split_once('='))
            .map(|(k, v)| (Recorded::BuildArg, k, v))
            .collect()
    } else if let Some(rest) = line.strip_prefix("ENV ") {
        let rest = rest.trim();
        match rest.split_once(char::is_whitespace) {
            // The legacy `ENV KEY value` form.
            Some((key, value)) if !key.contains('=') => vec![(Recorded::Env, key, value)],
            _ => rest
                .split_whitespace()
                .filter_map(|w| w.split_once('='))
                .map(|(k, v)| (Recorded::Env, k, v))
                .collect(),
        }
    } else {
        Vec::new()
    };
    pairs
        .into_iter()
        .map(|(kind, key, value)| (kind, key, value.trim_matches('"')))
        .filter(|(_, key, value)| is_secret(key, value))
        .map(|(kind, key, _)| (kind, key))
        .collect()
}

/// `612.4 MB`: decimal units, like the sizes of `image.policy.max_size` and `docker images`.
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 999.95 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests;
