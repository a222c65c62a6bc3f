//! The [`RecordStore`] seam: where deployment records are kept.

use async_trait::async_trait;

use crate::error::Result;
use crate::ledger::LedgerSnapshot;
use crate::record::DeploymentRecord;

/// Keeps deployment records.
///
/// Only [`append`](Self::append) and [`load`](Self::load) are required; the lookups have
/// default implementations on top of `load`, which a store whose history grows large should
/// replace with ones that read only what they need (as [`JsonlRecordStore`](crate::JsonlRecordStore) does).
#[async_trait]
pub trait RecordStore: Send + Sync {
    /// Appends a record. Appending a record whose id is already stored supersedes it.
    /// Returns only once the record is durable.
    async fn append(&self, record: &DeploymentRecord) -> Result<()>;

    /// Reads every record, latest state per id.
    async fn load(&self) -> Result<LedgerSnapshot>;

    /// The newest record of `environment` (in the order of [`LedgerSnapshot::records`]: by
    /// when its latest state was written) that satisfies `matches`. Only the latest state of
    /// each record is offered to `matches`.
    ///
    /// ```
    /// # async fn example(store: &dyn kyb_deploy_core::RecordStore) -> kyb_deploy_core::Result<()> {
    /// let last_known_good = store
    ///     .find_latest("staging", &|r| r.is_known_good())
    ///     .await?;
    /// # Ok(()) }
    /// ```
    async fn find_latest(
        &self,
        environment: &str,
        matches: &(dyn for<'r> Fn(&'r DeploymentRecord) -> bool + Send + Sync),
    ) -> Result<Option<DeploymentRecord>> {
        let snapshot = self.load().await?;
        Ok(snapshot.find_latest(environment, matches).cloned())
    }

    /// The newest record of `environment` that vouches for a verified release
    /// ([`DeploymentRecord::verified_release`]) and satisfies `matches`: where rollbacks
    /// go. A store whose history is long keeps an index of verified releases and answers
    /// this from it, in a bounded number of reads however long the history.
    async fn find_latest_verified(
        &self,
        environment: &str,
        matches: &(dyn for<'r> Fn(&'r DeploymentRecord) -> bool + Send + Sync),
    ) -> Result<Option<DeploymentRecord>> {
        self.find_latest(environment, &|r: &DeploymentRecord| {
            r.verified_release().is_some() && matches(r)
        })
        .await
    }

    /// The newest `limit` records of `environment` (or of every environment), latest state
    /// per id, oldest first like [`load`](Self::load), with the unreadable lines found in the
    /// part of the ledger that was read.
    async fn recent(&self, environment: Option<&str>, limit: usize) -> Result<LedgerSnapshot> {
        Ok(self.load().await?.recent(environment, limit))
    }

    /// The runs of `environment` that never finished and were not resolved since, oldest
    /// first: runs still going, or killed before they could finish. See
    /// [`LedgerSnapshot::unresolved`] for why only runs from the newest deploy on count.
    async fn in_progress(&self, environment: &str) -> Result<Vec<DeploymentRecord>> {
        let snapshot = self.load().await?;
        Ok(snapshot.unresolved(environment))
    }
}
