//! The [`DeployLock`] seam: one deployment per environment at a time.

use std::future::Future;
use std::pin::Pin;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use crate::error::Result;

/// How a shared lock is given back at the end of a run.
type Release = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = Result<()>> + Send>> + Send + Sync>;

/// Held while a run may change an environment; dropping it releases the lock (a shared lock
/// whose release needs a request is better given back with [`release`](Self::release)).
pub struct LockGuard {
    _held: Box<dyn Send + Sync>,
    release: Option<Release>,
    lost: CancellationToken,
    took_over: Option<String>,
}

impl std::fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockGuard")
            .field("lost", &self.lost.is_cancelled())
            .field("took_over", &self.took_over)
            .finish_non_exhaustive()
    }
}

impl LockGuard {
    /// Wraps whatever keeps a lock held until it is dropped (a locked file, a heartbeat
    /// task that stops when dropped).
    pub fn new(held: impl Send + Sync + 'static) -> Self {
        Self {
            _held: Box::new(held),
            release: None,
            lost: CancellationToken::new(),
            took_over: None,
        }
    }

    /// Gives the lock back with `release` when the run ends ([`release`](Self::release)),
    /// before what was held is dropped.
    #[must_use]
    pub fn with_release<F>(mut self, release: impl FnOnce() -> F + Send + Sync + 'static) -> Self
    where
        F: Future<Output = Result<()>> + Send + 'static,
    {
        self.release = Some(Box::new(move || Box::pin(release())));
        self
    }

    /// `lost` fires when the lock stops being held before the run ends: another run took it
    /// over after the heartbeats failed for longer than the lock's time to live.
    #[must_use]
    pub fn with_lost(mut self, lost: CancellationToken) -> Self {
        self.lost = lost;
        self
    }

    /// This acquisition took over an expired lock; `previous` describes its holder.
    #[must_use]
    pub fn with_takeover(mut self, previous: impl Into<String>) -> Self {
        self.took_over = Some(previous.into());
        self
    }

    /// The holder of the expired lock this acquisition took over, if it took one over.
    pub fn took_over(&self) -> Option<&str> {
        self.took_over.as_deref()
    }

    /// Whether the lock was lost before the run ended.
    pub fn is_lost(&self) -> bool {
        self.lost.is_cancelled()
    }

    /// Gives the lock back; a lock that was lost is left to its new holder.
    ///
    /// # Errors
    ///
    /// When the backend could not be told; the lock then expires on its own.
    pub async fn release(mut self) -> Result<()> {
        match self.release.take() {
            Some(release) if !self.is_lost() => release().await,
            _ => Ok(()),
        }
    }
}

/// Serialises deployments to one environment.
#[async_trait]
pub trait DeployLock: Send + Sync {
    /// Takes the environment's lock, or fails with [`Error::Locked`](crate::Error::Locked) naming the holder.
    async fn acquire(&self, environment: &str) -> Result<LockGuard>;

    /// Breaks the environment's lock, whoever holds it, for an operator who knows its
    /// holder is gone (`unlock`). `by` says who breaks it, for the record the backend keeps.
    /// Returns the holder it broke, `None` when nobody held it.
    ///
    /// # Errors
    ///
    /// When the backend cannot be read or written, or cannot break a lock (the default: a
    /// lock the operating system holds for a live process is not breakable).
    async fn break_lock(&self, environment: &str, by: &str) -> Result<Option<String>> {
        let _ = by;
        Err(crate::Error::Seam {
            seam: "lock",
            message: format!(
                "the lock of {environment} cannot be broken: it is held by the operating system for a live process and released when that process ends; stop that process instead"
            ),
        })
    }
}
