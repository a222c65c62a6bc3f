//! [`FileDeployLock`], the default [`DeployLock`](crate::DeployLock): a lock file per
//! environment.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

use async_trait::async_trait;

use crate::deploy_lock::{DeployLock, LockGuard};
use crate::error::{Error, Result};
use crate::record::{ci_run_url, current_actor, current_host};

/// The default [`DeployLock`]: an exclusive lock on `<dir>/<environment>.lock`. The operating
/// system releases it when the process dies, so a killed run never leaves a stale lock.
#[derive(Clone, Debug)]
pub struct FileDeployLock {
    dir: PathBuf,
}

impl FileDeployLock {
    /// Locks kept in `dir` (created when needed).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }
}

#[async_trait]
impl DeployLock for FileDeployLock {
    async fn acquire(&self, environment: &str) -> Result<LockGuard> {
        let path = self.dir.join(format!("{environment}.lock"));
        let io = |what: &str| {
            let (what, path) = (what.to_owned(), path.clone());
            move |source| Error::Io { what, path, source }
        };
        std::fs::create_dir_all(&self.dir).map_err(io("create the lock directory for"))?;
        let mut file: File = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io("open the lock file"))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                return Err(Error::Locked {
                    environment: environment.to_owned(),
                    holder: if holder.trim().is_empty() {
                        "unknown holder".to_owned()
                    } else {
                        holder.trim().to_owned()
                    },
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io("lock")(e)),
        }
        let holder = format!(
            "pid {} on {} by {} since {}{}",
            std::process::id(),
            current_host(),
            current_actor(),
            time::OffsetDateTime::now_utc(),
            ci_run_url().map_or_else(String::new, |url| format!(", CI run {url}"))
        );
        // The holder text is informational; failing to write it must not fail the run.
        let _ = file
            .set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(holder.as_bytes()));
        Ok(LockGuard::new(file))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn second_holder_is_refused_until_the_first_drops() {
        let dir = tempfile::tempdir().unwrap();
        let lock = FileDeployLock::new(dir.path());
        let guard = lock.acquire("staging").await.unwrap();
        let err = lock.acquire("staging").await.unwrap_err().to_string();
        assert!(err.contains("staging is locked"), "{err}");
        assert!(
            err.contains(&format!("pid {} on {}", std::process::id(), current_host())),
            "{err}"
        );
        lock.acquire("production").await.unwrap();
        drop(guard);
        lock.acquire("staging").await.unwrap();
    }
}
