//! Prerequisite checks: everything the chosen environment needs, each missing piece with its fix.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::process::Command;

use crate::config::TargetKind;

/// The result of one prerequisite check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// What was checked (`git`, `docker engine`, `ecs service`...).
    pub name: String,
    /// Whether it is present.
    pub ok: bool,
    /// What was found.
    pub detail: String,
    /// How to fix it, when it is missing.
    pub fix: Option<String>,
}

impl Check {
    /// A passed check.
    pub fn pass(name: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ok: true,
            detail: detail.into(),
            fix: None,
        }
    }

    /// A failed check with its fix.
    pub fn fail(
        name: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            ok: false,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    /// `name: detail (fix: ...)` for messages.
    pub fn describe(&self) -> String {
        match &self.fix {
            Some(fix) => format!("{}: {} (fix: {fix})", self.name, self.detail),
            None => format!("{}: {}", self.name, self.detail),
        }
    }
}

/// What a run needs besides the target's own checks.
#[derive(Clone, Debug)]
pub struct PreflightRequest<'a> {
    /// The project directory (git working tree).
    pub project_dir: &'a Path,
    /// Whether the version comes from git (no explicit version).
    pub needs_git: bool,
    /// The kind of target whose platform prerequisites to check (Docker engine, AWS
    /// credentials, Kubernetes config); `None` for a target outside the built-in kinds,
    /// such as a fake, which checks itself in [`crate::Target::preflight`].
    pub target_kind: Option<TargetKind>,
}

/// Checks git (when the version comes from it) and what the target kind implies (Docker
/// engine, Kubernetes config). Seams add their own checks through their
/// `preflight` methods. Never changes anything.
pub async fn check_prerequisites(request: &PreflightRequest<'_>) -> Vec<Check> {
    let mut checks = Vec::new();
    if request.needs_git {
        checks.push(check_git(request.project_dir).await);
    }
    let target = request.target_kind;
    match target {
        Some(TargetKind::Docker) => checks.push(check_docker()),
        // The ECS target checks its credentials itself, through the whole AWS chain
        // (instance and task roles included), with a real call in its preflight.
        Some(TargetKind::Ecs) => {}
        Some(TargetKind::Kubernetes) => checks.push(check_kube_config()),
        None => {}
    }
    checks
}

async fn check_git(dir: &Path) -> Check {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "--verify", "HEAD"])
        .output()
        .await;
    match output {
        Err(e) => Check::fail(
            "git",
            format!("git cannot be run: {e}"),
            "install git (apt-get install git), or pass --version to deploy an explicit version",
        ),
        Ok(out) if !out.status.success() => Check::fail(
            "git",
            format!("{} is not a git working tree with a commit", dir.display()),
            "run from the project's repository, or pass --version",
        ),
        Ok(_) => Check::pass("git", "working tree with a commit"),
    }
}

pub(crate) fn check_docker() -> Check {
    let host = std::env::var("DOCKER_HOST").ok();
    match host.as_deref() {
        Some(h) if !h.starts_with("unix://") => {
            Check::pass("docker engine", format!("DOCKER_HOST={h}"))
        }
        _ => {
            let socket = host
                .as_deref()
                .and_then(|h| h.strip_prefix("unix://"))
                .map_or_else(|| PathBuf::from("/var/run/docker.sock"), PathBuf::from);
            if socket.exists() {
                Check::pass("docker engine", format!("socket {}", socket.display()))
            } else {
                Check::fail(
                    "docker engine",
                    format!("no Docker engine socket at {}", socket.display()),
                    "start the engine (dockerd, or scripts/setup.sh on Debian) or set DOCKER_HOST",
                )
            }
        }
    }
}

fn check_kube_config() -> Check {
    let path = std::env::var("KUBECONFIG")
        .ok()
        .and_then(|k| k.split(':').next().map(PathBuf::from))
        .or_else(|| {
            std::env::var("HOME")
                .ok()
                .map(|h| Path::new(&h).join(".kube/config"))
        });
    match path {
        Some(p) if p.is_file() => Check::pass("kubernetes config", format!("{}", p.display())),
        Some(p) => Check::fail(
            "kubernetes config",
            format!("no kubeconfig at {}", p.display()),
            "set KUBECONFIG or create ~/.kube/config with a context for the cluster",
        ),
        None => Check::fail(
            "kubernetes config",
            "neither KUBECONFIG nor HOME is set",
            "set KUBECONFIG to the cluster's kubeconfig",
        ),
    }
}
