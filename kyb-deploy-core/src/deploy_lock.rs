//! The [`DeployLock`] seam: one deployment per environment at a time.

use async_trait::async_trait;

use crate::error::Result;

/// Held while a run may change an environment; dropping it releases the lock.
pub struct LockGuard {
    _held: Box<dyn Send + Sync>,
}

impl std::fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LockGuard")
    }
}

impl LockGuard {
    /// Wraps whatever keeps a lock held until it is dropped.
    pub fn new(held: impl Send + Sync + 'static) -> Self {
        Self {
            _held: Box::new(held),
        }
    }
}

/// Serialises deployments to one environment.
#[async_trait]
pub trait DeployLock: Send + Sync {
    /// Takes the environment's lock, or fails with [`Error::Locked`](crate::Error::Locked) naming the holder.
    async fn acquire(&self, environment: &str) -> Result<LockGuard>;
}
