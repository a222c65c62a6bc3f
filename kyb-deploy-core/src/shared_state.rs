//! Shared release state: an environment's deployment records and its lock as objects in a
//! store every runner reaches (an S3 bucket, a Kubernetes namespace), written only under
//! conditions, so parallel runners on fresh machines share one history and one lock.
//!
//! Under `<prefix>/<environment>/`:
//! - `records/<newest-first time>_<run id>_<operation>_<status>.json`: one object per state of
//!   a run, written create-only, never overwritten. Keys sort newest first, and name what
//!   the history and unfinished-run lookups need, so those read only the records they show.
//! - `known-good.json`: the newest verified releases and the newest record folded into
//!   them, replaced on its version tag after every record. A known-good lookup reads it and
//!   the records written since, however long the history.
//! - `lock.json`: the environment's lock: holder, host, CI run and expiry. Created only
//!   where there is none, renewed on its version tag, taken over on it once expired.
//! - `lock-events/<newest-first time>_<what>.json`: who took over or broke a lock.
//!
//! Every conditional write whose answer was lost (a 5xx, a dropped connection, a retry that
//! then met its own earlier write) is settled by reading the object back: the write counts
//! as done exactly when the object holds what was written ([`put`]).
//!
//! A store implements [`ObjectStore`]; [`object_state`] makes the [`RecordStore`] and the
//! [`DeployLock`](crate::DeployLock) of an environment on it.

mod keys;
mod lock;
mod objects;
mod store;

use std::sync::Arc;

pub use self::keys::{ObjectKind, key_info};
pub use self::lock::{LockHolder, ObjectDeployLock};
pub use self::objects::{Condition, Listed, Object, ObjectStore, Page, PutAnswer, Written, put};
pub use self::store::ObjectRecordStore;
use crate::config::StateConfig;
#[cfg(doc)]
use crate::record_store::RecordStore;

/// The record store and the lock kept in `objects` under `state`'s prefix, with its lock
/// time to live.
#[must_use]
pub fn object_state(
    objects: Arc<dyn ObjectStore>,
    state: &StateConfig,
) -> (ObjectRecordStore, ObjectDeployLock) {
    let layout = keys::Layout::new(&state.prefix);
    (
        ObjectRecordStore::new(objects.clone(), layout.clone()),
        ObjectDeployLock::new(objects, layout, state.lock_ttl),
    )
}
