//! Prerequisite checks: everything the chosen environment needs, each missing piece with its fix.

use std::path::Path;

use serde::{Deserialize, Serialize};
use tokio::process::Command;

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

/// Checks git, when the version comes from it: what every run needs whatever its target.
/// The target's platform, the image pipeline's engine and every other seam check
/// themselves (their `preflight` methods; [`crate::Pipeline::preflight`] asks them all).
/// Never changes anything.
pub async fn check_prerequisites(project_dir: &Path, needs_git: bool) -> Vec<Check> {
    let mut checks = Vec::new();
    if needs_git {
        checks.push(check_git(project_dir).await);
    }
    checks
}

/// `checks` with each result reported once: several seams check the same thing (the image
/// builder, scanner and registry each ask the Docker engine).
pub(crate) fn once_each(mut checks: Vec<Check>) -> Vec<Check> {
    let mut seen = std::collections::HashSet::new();
    checks.retain(|c| seen.insert((c.name.clone(), c.ok)));
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
