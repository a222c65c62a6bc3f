//! [`GitVersionSource`], the default [`VersionSource`](crate::VersionSource): an explicit
//! version, or the git commit of the working tree.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use tokio::process::Command;

use crate::error::{Error, Result};
use crate::version::Version;
use crate::version_source::{ResolvedVersion, VersionOrigin, VersionSource};

/// The default [`VersionSource`]: an explicit version when given, otherwise the short commit of
/// the git working tree at `dir`. The commit, branch and dirty state are recorded either way
/// when `dir` is a git repository.
#[derive(Clone, Debug)]
pub struct GitVersionSource {
    dir: PathBuf,
    explicit: Option<Version>,
}

impl GitVersionSource {
    /// A source for the working tree at `dir`, using `explicit` instead of the commit when set.
    pub fn new(dir: impl Into<PathBuf>, explicit: Option<Version>) -> Self {
        Self {
            dir: dir.into(),
            explicit,
        }
    }
}

#[async_trait]
impl VersionSource for GitVersionSource {
    async fn resolve(&self) -> Result<ResolvedVersion> {
        let commit = git(&self.dir, &["rev-parse", "HEAD"]).await;
        match (&self.explicit, commit) {
            (Some(version), Err(_)) => Ok(ResolvedVersion {
                version: version.clone(),
                origin: VersionOrigin::Explicit,
                commit: None,
                dirty: false,
                branch: None,
            }),
            (None, Err(err)) => Err(Error::Git {
                what: "rev-parse HEAD (to take the version from the commit)".into(),
                dir: self.dir.clone(),
                message: format!(
                    "{err}; run inside a git repository with at least one commit, or pass --version"
                ),
            }),
            (explicit, Ok(commit)) => {
                let status = git(
                    &self.dir,
                    &["status", "--porcelain", "--untracked-files=no"],
                )
                .await
                .map_err(|message| Error::Git {
                    what: "status".into(),
                    dir: self.dir.clone(),
                    message,
                })?;
                let branch = git(&self.dir, &["symbolic-ref", "--quiet", "--short", "HEAD"])
                    .await
                    .ok();
                let (version, origin) = match explicit {
                    Some(v) => (v.clone(), VersionOrigin::Explicit),
                    None => (
                        Version::parse(&commit[..commit.len().min(7)])?,
                        VersionOrigin::GitCommit,
                    ),
                };
                Ok(ResolvedVersion {
                    version,
                    origin,
                    commit: Some(commit),
                    dirty: !status.is_empty(),
                    branch,
                })
            }
        }
    }
}

/// Runs git in `dir` and returns its trimmed stdout, or its trimmed stderr as the error.
async fn git(dir: &Path, args: &[&str]) -> Result<String, String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .await
        .map_err(|e| format!("cannot run git: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).trim().to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(dir: &Path, args: &[&str]) {
        let ok = std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .status()
            .unwrap()
            .success();
        assert!(ok, "git {args:?}");
    }

    #[tokio::test]
    async fn takes_short_commit_and_reports_dirty_tree() {
        let dir = tempfile::tempdir().unwrap();
        sh(dir.path(), &["init", "-q", "-b", "main"]);
        std::fs::write(dir.path().join("a"), "1").unwrap();
        sh(dir.path(), &["add", "a"]);
        sh(dir.path(), &["commit", "-q", "-m", "one"]);
        let source = GitVersionSource::new(dir.path(), None);
        let clean = source.resolve().await.unwrap();
        let commit = clean.commit.clone().unwrap();
        assert_eq!(clean.version.as_str(), &commit[..7]);
        assert_eq!(clean.origin, VersionOrigin::GitCommit);
        assert!(!clean.dirty);
        assert_eq!(clean.branch.as_deref(), Some("main"));

        std::fs::write(dir.path().join("a"), "2").unwrap();
        assert!(source.resolve().await.unwrap().dirty);
    }

    #[tokio::test]
    async fn explicit_version_outside_git_and_clear_error_without_either() {
        let dir = tempfile::tempdir().unwrap();
        let v = Version::parse("v1.2.3").unwrap();
        let got = GitVersionSource::new(dir.path(), Some(v.clone()))
            .resolve()
            .await
            .unwrap();
        assert_eq!(got.version, v);
        assert_eq!(got.commit, None);
        let err = GitVersionSource::new(dir.path(), None)
            .resolve()
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("pass --version"), "{err}");
    }
}
