//! Registry credentials, looked up the way `docker push` does, with explicit settings first.
//!
//! The order: `KYB_DEPLOY_REGISTRY_USERNAME`/`KYB_DEPLOY_REGISTRY_PASSWORD` (or
//! `image.registry.username` and `password_file`), then a platform login for the registry
//! ([`RegistryLogin`], like Amazon ECR's), then the Docker config file (a credential helper
//! for the registry, the credentials store, then `auths`), then anonymous.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use kyb_deploy_core::config::RegistryConfig;
use kyb_deploy_core::{Credentials, Error, RegistryLogin, Result};

/// The environment variable that overrides the configured registry user name.
pub const REGISTRY_USERNAME_ENV: &str = "KYB_DEPLOY_REGISTRY_USERNAME";
/// The environment variable that holds the registry password.
pub const REGISTRY_PASSWORD_ENV: &str = "KYB_DEPLOY_REGISTRY_PASSWORD";

/// The key Docker uses for Docker Hub in its config file and with credential helpers.
const DOCKER_HUB_SERVER: &str = "https://index.docker.io/v1/";

type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Where registry credentials come from: the explicit settings, then the Docker config file,
/// then anonymous access.
///
/// The environment is read through a lookup function, so that tests (and embedders) need not
/// change the process environment.
///
/// ```
/// use kyb_deploy_core::config::RegistryConfig;
/// use kyb_deploy_docker::CredentialSource;
///
/// let source = CredentialSource::with_env(&RegistryConfig::default(), |name| match name {
///     "KYB_DEPLOY_REGISTRY_USERNAME" => Some("ci".to_owned()),
///     "KYB_DEPLOY_REGISTRY_PASSWORD" => Some("s3cret".to_owned()),
///     _ => None,
/// });
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let credentials = source.resolve("registry.example.com").await.unwrap().unwrap();
/// assert_eq!(credentials.username(), "ci");
/// # });
/// ```
#[derive(Clone)]
pub struct CredentialSource {
    username: Option<String>,
    password_file: Option<PathBuf>,
    env: EnvLookup,
    logins: Vec<Arc<dyn RegistryLogin>>,
}

impl fmt::Debug for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialSource")
            .field("username", &self.username)
            .field("password_file", &self.password_file)
            .field("logins", &self.logins)
            .finish_non_exhaustive()
    }
}

impl CredentialSource {
    /// Credentials from `config` and the process environment (`KYB_DEPLOY_REGISTRY_*`,
    /// `DOCKER_CONFIG`, `HOME`, and `PATH` for credential helpers). A relative
    /// `password_file` is read relative to the current directory.
    pub fn from_config(config: &RegistryConfig) -> Self {
        Self::with_env(config, |name| std::env::var(name).ok())
    }

    /// Like [`CredentialSource::from_config`], reading environment variables through `env`.
    pub fn with_env(
        config: &RegistryConfig,
        env: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        Self {
            username: config.username.clone(),
            password_file: config.password_file.clone(),
            env: Arc::new(env),
            logins: Vec::new(),
        }
    }

    /// Asks `login` for the registries it handles, when no explicit credentials are set.
    #[must_use]
    pub fn with_login(mut self, login: Arc<dyn RegistryLogin>) -> Self {
        self.logins.push(login);
        self
    }

    /// No credentials at all: every registry is accessed anonymously.
    pub fn anonymous() -> Self {
        Self::with_env(&RegistryConfig::default(), |_| None)
    }

    fn var(&self, name: &str) -> Option<String> {
        (self.env)(name).filter(|v| !v.is_empty())
    }

    /// The credentials for `registry` (a host like `ghcr.io` or `127.0.0.1:5000`; `docker.io`
    /// for Docker Hub), or `None` for anonymous access.
    pub async fn resolve(&self, registry: &str) -> Result<Option<Credentials>> {
        if let Some(explicit) = self.explicit()? {
            return Ok(Some(explicit));
        }
        if let Some(login) = self.logins.iter().find(|l| l.handles(registry)) {
            return login.login(registry).await.map(Some);
        }
        let Some(config_path) = self.docker_config_path() else {
            return Ok(None);
        };
        let text = match std::fs::read_to_string(&config_path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(Error::Io {
                    what: "read the Docker config file".into(),
                    path: config_path,
                    source,
                });
            }
        };
        let config: DockerConfigFile = serde_json::from_str(&text).map_err(|e| {
            // Only the position: serde's message can quote a value of the file (an `auth`
            // entry of the wrong type is base64 `user:password`).
            Error::seam(
                "registry",
                format!(
                    "the Docker config file {} is not a valid Docker config (line {}, column {})",
                    config_path.display(),
                    e.line(),
                    e.column()
                ),
            )
        })?;
        let key = registry_key(registry);
        let helper = config
            .cred_helpers
            .iter()
            .find(|(k, _)| registry_key(k) == key)
            .map(|(_, helper)| helper)
            .or(config.creds_store.as_ref())
            .filter(|h| !h.is_empty());
        if let Some(helper) = helper {
            let server = if key == registry_key(DOCKER_HUB_SERVER) {
                DOCKER_HUB_SERVER.to_owned()
            } else {
                registry.to_owned()
            };
            if let Some(found) = self.run_helper(helper, &server).await? {
                return Ok(Some(found));
            }
        }
        let entry = config.auths.iter().find(|(k, _)| registry_key(k) == key);
        match entry {
            Some((k, entry)) => entry.credentials(k, &config_path),
            None => Ok(None),
        }
    }

    fn explicit(&self) -> Result<Option<Credentials>> {
        let (username, user_origin) = match self.var(REGISTRY_USERNAME_ENV) {
            Some(u) => (Some(u), REGISTRY_USERNAME_ENV),
            None => (self.username.clone(), "image.registry.username"),
        };
        let password = match self.var(REGISTRY_PASSWORD_ENV) {
            Some(p) => Some((p, REGISTRY_PASSWORD_ENV.to_owned())),
            None => match &self.password_file {
                Some(file) => {
                    let text = std::fs::read_to_string(file).map_err(|source| Error::Io {
                        what: "read the registry password file".into(),
                        path: file.clone(),
                        source,
                    })?;
                    let password = text.trim_end_matches(['\n', '\r']).to_owned();
                    Some((password, format!("password file {}", file.display())))
                }
                None => None,
            },
        };
        match (username, password) {
            (Some(user), Some((password, password_origin))) => Ok(Some(Credentials::from_origin(
                user,
                password,
                format!("{user_origin} and {password_origin}"),
            ))),
            (None, None) => Ok(None),
            (Some(user), None) => Err(Error::Config {
                message: format!(
                    "the registry user name {user:?} ({user_origin}) has no password: set \
                     {REGISTRY_PASSWORD_ENV} or image.registry.password_file"
                ),
            }),
            (None, Some((_, password_origin))) => Err(Error::Config {
                message: format!(
                    "a registry password is set ({password_origin}) but no user name: set \
                     {REGISTRY_USERNAME_ENV} or image.registry.username"
                ),
            }),
        }
    }

    fn docker_config_path(&self) -> Option<PathBuf> {
        match self.var("DOCKER_CONFIG") {
            Some(dir) => Some(Path::new(&dir).join("config.json")),
            None => self
                .var("HOME")
                .map(|home| Path::new(&home).join(".docker/config.json")),
        }
    }

    /// Runs `docker-credential-<helper> get` for `server`. A helper that knows nothing about
    /// the server is not an error: the lookup goes on.
    async fn run_helper(&self, helper: &str, server: &str) -> Result<Option<Credentials>> {
        let program = format!("docker-credential-{helper}");
        let valid = helper
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        let path = self.var("PATH").unwrap_or_default();
        let found = valid
            .then(|| {
                std::env::split_paths(&path)
                    .map(|dir| dir.join(&program))
                    .find(|candidate| candidate.is_file())
            })
            .flatten();
        let Some(executable) = found else {
            return Err(Error::seam(
                "registry",
                format!(
                    "the Docker config file names the credential helper {helper:?}, but \
                     {program} is not on PATH; install it, or set {REGISTRY_USERNAME_ENV} \
                     and {REGISTRY_PASSWORD_ENV}"
                ),
            ));
        };
        let helper_error = |detail: String| {
            Error::seam(
                "registry",
                format!("credential helper {program} failed for {server}: {detail}"),
            )
        };
        let mut child = Command::new(&executable)
            .arg("get")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| helper_error(format!("cannot be run: {e}")))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(server.as_bytes())
                .await
                .map_err(|e| helper_error(format!("cannot be given the server: {e}")))?;
        }
        let output = child
            .wait_with_output()
            .await
            .map_err(|e| helper_error(e.to_string()))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            if stdout.contains("credentials not found") {
                return Ok(None);
            }
            // Only the failure output is shown: a failing helper prints a message, never a
            // secret.
            let stderr = String::from_utf8_lossy(&output.stderr);
            let said = [stdout.trim(), stderr.trim()]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join("; ");
            return Err(helper_error(format!("{} ({said})", output.status)));
        }
        let reply: HelperReply = serde_json::from_str(&stdout).map_err(|_| {
            helper_error("its answer is not the expected JSON with Username and Secret".into())
        })?;
        if reply.username.is_empty() && reply.secret.is_empty() {
            return Ok(None);
        }
        Ok(Some(Credentials::from_origin(
            reply.username,
            reply.secret,
            format!("credential helper {program}"),
        )))
    }
}

#[derive(Deserialize)]
struct HelperReply {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

#[derive(Default, Deserialize)]
struct DockerConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(rename = "credHelpers", default)]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Default, Deserialize)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    identitytoken: Option<String>,
}

impl AuthEntry {
    fn credentials(&self, key: &str, file: &Path) -> Result<Option<Credentials>> {
        let origin = format!("auths[{key:?}] of {}", file.display());
        if let Some(token) = self.identitytoken.as_deref().filter(|t| !t.is_empty()) {
            return Ok(Some(Credentials::from_origin("<token>", token, origin)));
        }
        if let Some(auth) = self.auth.as_deref().filter(|a| !a.is_empty()) {
            let invalid = || {
                Error::seam(
                    "registry",
                    format!("the entry {origin} is not base64 of user:password"),
                )
            };
            let decoded = base64_decode(auth).ok_or_else(invalid)?;
            let decoded = String::from_utf8(decoded).map_err(|_| invalid())?;
            let (user, password) = decoded.split_once(':').ok_or_else(invalid)?;
            return Ok(Some(Credentials::from_origin(user, password, origin)));
        }
        match (&self.username, &self.password) {
            (Some(user), Some(password)) => Ok(Some(Credentials::from_origin(
                user.as_str(),
                password.as_str(),
                origin,
            ))),
            _ => Ok(None),
        }
    }
}

/// The form under which a registry is compared with the keys of the Docker config file:
/// no scheme, no path, and one name for Docker Hub.
fn registry_key(name: &str) -> String {
    let name = name
        .strip_prefix("https://")
        .or_else(|| name.strip_prefix("http://"))
        .unwrap_or(name);
    let host = name.split('/').next().unwrap_or(name).to_ascii_lowercase();
    match host.as_str() {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => "index.docker.io".into(),
        _ => host,
    }
}

/// Decodes standard base64, with or without padding (Docker config files have both).
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    LENIENT.decode(text.trim()).ok()
}

#[cfg(test)]
mod tests;
