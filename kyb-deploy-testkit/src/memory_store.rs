//! In-memory [`RecordStore`] and [`DeployLock`].

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use kyb_deploy_core::{
    DeployLock, DeploymentRecord, Error, LedgerSnapshot, LockGuard, RecordStore, Result,
    async_trait,
};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A [`RecordStore`] in memory. Keeps every appended version of every record, and can be
/// told to fail appends.
#[derive(Clone, Debug, Default)]
pub struct InMemoryRecordStore {
    appended: Arc<Mutex<Vec<DeploymentRecord>>>,
    /// How many more appends succeed before every later one fails; `None`: all succeed.
    appends_left: Arc<Mutex<Option<usize>>>,
}

impl InMemoryRecordStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store holding `records` already.
    pub fn with_records(records: impl IntoIterator<Item = DeploymentRecord>) -> Self {
        let store = Self::new();
        lock(&store.appended).extend(records);
        store
    }

    /// Every record version appended, in order.
    pub fn appended(&self) -> Vec<DeploymentRecord> {
        lock(&self.appended).clone()
    }

    /// Latest state per id.
    pub fn records(&self) -> Vec<DeploymentRecord> {
        LedgerSnapshot::from_appended(self.appended()).records
    }

    /// Makes later appends fail (or succeed again).
    pub fn set_fail_appends(&self, fail: bool) {
        *lock(&self.appends_left) = fail.then_some(0);
    }

    /// Lets the next `count` appends succeed and fails every one after them, as a ledger
    /// that becomes unwritable in the middle of a run (after its `in_progress` record).
    pub fn fail_appends_after(&self, count: usize) {
        *lock(&self.appends_left) = Some(count);
    }
}

#[async_trait]
impl RecordStore for InMemoryRecordStore {
    async fn append(&self, record: &DeploymentRecord) -> Result<()> {
        {
            let mut left = lock(&self.appends_left);
            match *left {
                Some(0) => {
                    return Err(Error::Ledger {
                        path: "<memory>".into(),
                        what: "append a record to".into(),
                        source: std::io::Error::other("appends are set to fail"),
                    });
                }
                Some(n) => *left = Some(n - 1),
                None => {}
            }
        }
        lock(&self.appended).push(record.clone());
        Ok(())
    }

    async fn load(&self) -> Result<LedgerSnapshot> {
        Ok(LedgerSnapshot::from_appended(self.appended()))
    }
}

/// A [`DeployLock`] within one process.
#[derive(Clone, Debug, Default)]
pub struct InMemoryLock {
    held: Arc<Mutex<HashSet<String>>>,
}

impl InMemoryLock {
    /// No environment locked.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `environment` is locked now.
    pub fn is_held(&self, environment: &str) -> bool {
        lock(&self.held).contains(environment)
    }
}

struct Release {
    held: Arc<Mutex<HashSet<String>>>,
    environment: String,
}

impl Drop for Release {
    fn drop(&mut self) {
        lock(&self.held).remove(&self.environment);
    }
}

#[async_trait]
impl DeployLock for InMemoryLock {
    async fn acquire(&self, environment: &str) -> Result<LockGuard> {
        if !lock(&self.held).insert(environment.to_owned()) {
            return Err(Error::Locked {
                environment: environment.to_owned(),
                holder: "another run in this process".into(),
            });
        }
        Ok(LockGuard::new(Release {
            held: self.held.clone(),
            environment: environment.to_owned(),
        }))
    }
}
