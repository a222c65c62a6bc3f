//! [`DockerEngine`]: the connection to the local Docker engine every part of this crate uses.

use std::path::PathBuf;
use std::sync::Arc;

use bollard::Docker;
use kyb_deploy_core::{Check, Error, Result};

/// A connection to the local Docker engine, with the API version negotiated (Debian's engine
/// speaks API 1.41; the client's default is newer). Cheap to clone.
#[derive(Clone, Debug)]
pub struct DockerEngine {
    pub(crate) client: Arc<Docker>,
}

impl DockerEngine {
    /// Connects to the engine named by `DOCKER_HOST`, else the default local socket, and
    /// negotiates the API version.
    pub async fn connect() -> Result<Self> {
        let client =
            Docker::connect_with_local_defaults().map_err(|e| engine_error("connect to", e))?;
        let client = client
            .negotiate_version()
            .await
            .map_err(|e| engine_error("negotiate the API version with", e))?;
        Ok(Self {
            client: Arc::new(client),
        })
    }

    /// The bollard client, for the modules of this crate.
    pub(crate) fn client(&self) -> &Docker {
        &self.client
    }

    /// A preflight check: the engine answers a ping.
    pub async fn check(&self) -> Check {
        match self.client.ping().await {
            Ok(_) => Check::pass(
                "docker engine",
                format!("answers (API {})", self.client.client_version()),
            ),
            Err(e) => Check::fail(
                "docker engine",
                format!("does not answer: {e}"),
                "start the engine (dockerd, or scripts/setup.sh on Debian) or set DOCKER_HOST",
            ),
        }
    }
}

/// Whether an engine can be reached without talking to it: `DOCKER_HOST` names a remote
/// one, or the local socket exists. What a target or an image build needs before it can
/// connect at all.
pub(crate) fn socket_check() -> Check {
    let host = std::env::var("DOCKER_HOST").ok();
    match host.as_deref() {
        Some(h) if !h.starts_with("unix://") => {
            Check::pass("docker engine socket", format!("DOCKER_HOST={h}"))
        }
        _ => {
            let socket = host
                .as_deref()
                .and_then(|h| h.strip_prefix("unix://"))
                .map_or_else(|| PathBuf::from("/var/run/docker.sock"), PathBuf::from);
            if socket.exists() {
                Check::pass("docker engine socket", format!("{}", socket.display()))
            } else {
                Check::fail(
                    "docker engine socket",
                    format!("no Docker engine socket at {}", socket.display()),
                    "start the engine (dockerd, or scripts/setup.sh on Debian) or set DOCKER_HOST",
                )
            }
        }
    }
}

/// An error talking to the engine.
pub(crate) fn engine_error(what: &str, source: bollard::errors::Error) -> Error {
    Error::Target {
        target: "docker".into(),
        message: format!("failed to {what} the Docker engine"),
        source: Some(Box::new(source)),
    }
}

/// Splits a reference into what the engine's pull takes: the name and a tag or digest
/// (`latest` when there is neither). An empty tag would pull every tag of the repository.
pub(crate) fn split_reference(reference: &str) -> (&str, &str) {
    if let Some((name, digest)) = reference.split_once('@') {
        return (name, digest);
    }
    let last_slash = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[last_slash..].rfind(':') {
        Some(i) => (
            &reference[..last_slash + i],
            &reference[last_slash + i + 1..],
        ),
        None => (reference, "latest"),
    }
}

/// Whether an image's configured user runs as root: empty (the default), `root` or uid 0,
/// with or without a group.
pub(crate) fn runs_as_root(user: Option<&str>) -> bool {
    let user = user.unwrap_or_default().trim();
    let name = user.split(':').next().unwrap_or_default();
    name.is_empty() || name == "root" || name.parse::<u32>().is_ok_and(|uid| uid == 0)
}
