//! [`ObjectRecordStore`]: deployment records as create-only objects, and the known-good
//! pointer.

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::keys::{Layout, RecordKey};
use super::objects::{Condition, Listed, Object, ObjectStore, Written, put};
use crate::error::{Error, Result};
use crate::ledger::{LedgerProblem, LedgerSnapshot};
use crate::record::DeploymentRecord;
use crate::record_store::RecordStore;

/// Most keys listed per request (S3's own limit; Kubernetes lists take the same).
const PAGE: usize = 1000;
/// Records read at once.
const READS_AT_ONCE: usize = 16;
/// Verified records the pointer keeps, newest first.
const POINTER_RECORDS: usize = 50;
/// Attempts to replace the pointer when other writers keep replacing it first.
const POINTER_ATTEMPTS: u32 = 5;

/// The records of every environment in an [`ObjectStore`]: each state of a run an object
/// written once, create-only, never replaced; a known-good pointer per environment. See
/// docs/state.md for the layout.
#[derive(Clone, Debug)]
pub struct ObjectRecordStore {
    objects: Arc<dyn ObjectStore>,
    layout: Layout,
}

/// `known-good.json`: the newest verified records of an environment (latest state per id,
/// newest first) as of the record `watermark`, the newest key folded in.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Pointer {
    watermark: Option<String>,
    /// Microseconds of the watermark record.
    #[serde(default)]
    watermark_at: u64,
    verified: Vec<DeploymentRecord>,
    /// No verified record was ever dropped from `verified` to keep it short.
    complete: bool,
}

/// The pointer and its ETag (`None`: there is no pointer yet).
type ReadPointer = (Pointer, Option<String>);

/// A record key, with its object when the listing carried it.
type ListedRecord = (RecordKey, Option<Object>);

/// The record keys of an environment, newest first, a page at a time: the first page lists
/// the number asked for, each next one four times as many (up to 1000), so a lookup that
/// ends early lists little.
struct Pages {
    environment: String,
    prefix: String,
    continuation: Option<String>,
    page: usize,
    done: bool,
}

impl Pages {
    /// The next page of record keys; `None` once every key was listed.
    async fn next(&mut self, store: &ObjectRecordStore) -> Result<Option<Vec<ListedRecord>>> {
        if self.done {
            return Ok(None);
        }
        let page = store
            .objects
            .list(&self.prefix, self.continuation.take(), self.page)
            .await?;
        self.page = self.page.saturating_mul(4).min(PAGE);
        self.done = page.next.is_none();
        self.continuation = page.next;
        Ok(Some(
            page.objects
                .into_iter()
                .filter_map(|Listed { key, object }| {
                    let key = store.layout.parse_record(&self.environment, &key)?;
                    Some((key, object))
                })
                .collect(),
        ))
    }
}

impl ObjectRecordStore {
    pub(crate) fn new(objects: Arc<dyn ObjectStore>, layout: Layout) -> Self {
        Self { objects, layout }
    }

    fn error(&self, message: String) -> Error {
        Error::Seam {
            seam: self.objects.seam(),
            message,
        }
    }

    async fn read_pointer(&self, environment: &str) -> Result<ReadPointer> {
        let key = self.layout.pointer(environment);
        match self.objects.get(&key).await? {
            None => Ok((
                Pointer {
                    complete: true,
                    ..Pointer::default()
                },
                None,
            )),
            Some(object) => {
                // An unreadable pointer is rebuilt from the records: it is only an index.
                let pointer = serde_json::from_slice(&object.body).unwrap_or_default();
                Ok((pointer, Some(object.etag)))
            }
        }
    }

    /// The record keys of `environment` newest first, page by page, until `visit` says
    /// stop (`false`) or `until` (exclusive) is reached. The first page lists `first` keys
    /// ([`Pages`]).
    async fn walk(
        &self,
        environment: &str,
        until: Option<&str>,
        first: usize,
        mut visit: impl FnMut(ListedRecord) -> bool,
    ) -> Result<()> {
        let mut pages = self.pages(environment, first);
        while let Some(keys) = pages.next(self).await? {
            for listed in keys {
                if until.is_some_and(|until| listed.0.key.as_str() >= until) {
                    return Ok(());
                }
                if !visit(listed) {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    fn pages(&self, environment: &str, first: usize) -> Pages {
        Pages {
            environment: environment.to_owned(),
            prefix: self.layout.records(environment),
            continuation: None,
            page: first.clamp(1, PAGE),
            done: false,
        }
    }

    /// The newest key of each run among `keys` (newest first), in that order.
    fn newest_per_run(keys: Vec<ListedRecord>) -> Vec<ListedRecord> {
        let mut seen = HashSet::new();
        keys.into_iter()
            .filter(|(k, _)| seen.insert(k.id.clone()))
            .collect()
    }

    /// The object of a listed record: the one the listing carried, else read.
    async fn object_of(&self, key: &RecordKey, listed: Option<Object>) -> Result<Option<Object>> {
        match listed {
            Some(object) => Ok(Some(object)),
            None => self.objects.get(&key.key).await,
        }
    }

    /// Reads the records at `keys`, in their order; the unreadable ones become problems.
    async fn read(
        &self,
        keys: Vec<ListedRecord>,
    ) -> Result<(Vec<(RecordKey, DeploymentRecord)>, Vec<LedgerProblem>)> {
        let mut records = Vec::with_capacity(keys.len());
        let mut problems = Vec::new();
        let mut rest = keys.into_iter().peekable();
        while rest.peek().is_some() {
            let chunk: Vec<ListedRecord> = rest.by_ref().take(READS_AT_ONCE).collect();
            let (keys, listed): (Vec<RecordKey>, Vec<Option<Object>>) = chunk.into_iter().unzip();
            let read = futures::future::join_all(
                keys.iter()
                    .zip(listed)
                    .map(|(key, object)| self.object_of(key, object)),
            )
            .await;
            for (key, object) in keys.into_iter().zip(read) {
                let Some(object) = object? else {
                    continue;
                };
                match serde_json::from_slice::<DeploymentRecord>(&object.body) {
                    Ok(record) => records.push((key, record)),
                    Err(e) => problems.push(LedgerProblem {
                        line: 0,
                        message: format!(
                            "{} is not a deployment record ({e}); it is skipped",
                            self.objects.url(&key.key)
                        ),
                    }),
                }
            }
        }
        Ok((records, problems))
    }

    /// The records of `environment` written after `pointer`'s watermark, newest first,
    /// latest state per run.
    async fn since(
        &self,
        environment: &str,
        pointer: &Pointer,
    ) -> Result<(Vec<(RecordKey, DeploymentRecord)>, Vec<LedgerProblem>)> {
        let mut keys = Vec::new();
        // Usually a few records: those of the run since the pointer last moved.
        self.walk(environment, pointer.watermark.as_deref(), 16, |k| {
            keys.push(k);
            true
        })
        .await?;
        self.read(Self::newest_per_run(keys)).await
    }

    /// Folds the records written since the pointer into it and replaces it, with
    /// `If-Match` on the ETag read; read again and retried while others replace it first.
    /// A pointer that cannot be replaced stays behind: lookups read the records written
    /// since its watermark, so no answer is wrong, only slower.
    async fn advance_pointer(&self, environment: &str, mut read: ReadPointer) -> Result<()> {
        let key = self.layout.pointer(environment);
        for _ in 0..POINTER_ATTEMPTS {
            let (mut pointer, etag) = read;
            let (newer, _) = self.since(environment, &pointer).await?;
            if newer.is_empty() && etag.is_some() {
                return Ok(());
            }
            fold(&mut pointer, newer);
            let body = serde_json::to_vec(&pointer).map_err(|e| {
                self.error(format!(
                    "serializing {} failed: {e}",
                    self.objects.url(&key)
                ))
            })?;
            let condition = etag
                .as_deref()
                .map_or(Condition::Absent, Condition::Matches);
            match put(self.objects.as_ref(), &key, &body, condition).await? {
                Written::Done(_) => return Ok(()),
                Written::Refused => read = self.read_pointer(environment).await?,
            }
        }
        Ok(())
    }

    /// Every record of `environment`, latest state per run, newest first.
    async fn all_of(
        &self,
        environment: &str,
    ) -> Result<(Vec<(RecordKey, DeploymentRecord)>, Vec<LedgerProblem>)> {
        let mut keys = Vec::new();
        self.walk(environment, None, PAGE, |k| {
            keys.push(k);
            true
        })
        .await?;
        self.read(Self::newest_per_run(keys)).await
    }

    /// The environments that have a directory in the store.
    async fn environments(&self) -> Result<Vec<String>> {
        Ok(self
            .objects
            .directories(&self.layout.root())
            .await?
            .iter()
            .filter_map(|d| self.layout.environment_of(d))
            .collect())
    }

    /// The newest `limit` runs of `environment` (latest state each), newest first.
    async fn newest(
        &self,
        environment: &str,
        limit: usize,
    ) -> Result<(Vec<(RecordKey, DeploymentRecord)>, Vec<LedgerProblem>)> {
        if limit == 0 {
            return Ok((Vec::new(), Vec::new()));
        }
        let mut seen = HashSet::new();
        let mut keys = Vec::new();
        // A run has two states, usually: its in_progress one and its final one.
        self.walk(
            environment,
            None,
            limit.saturating_mul(2).saturating_add(2),
            |k| {
                if seen.insert(k.0.id.clone()) {
                    keys.push(k);
                }
                keys.len() < limit
            },
        )
        .await?;
        self.read(keys).await
    }
}

/// Folds `newer` (newest first, latest state per run) into `pointer`.
fn fold(pointer: &mut Pointer, newer: Vec<(RecordKey, DeploymentRecord)>) {
    let Some((newest, _)) = newer.first() else {
        return;
    };
    pointer.watermark = Some(newest.key.clone());
    pointer.watermark_at = newest.at;
    for (_, record) in newer.into_iter().rev() {
        pointer.verified.retain(|r| r.id != record.id);
        if record.verified_release().is_some() {
            pointer.verified.insert(0, record);
        }
    }
    if pointer.verified.len() > POINTER_RECORDS {
        pointer.verified.truncate(POINTER_RECORDS);
        pointer.complete = false;
    }
}

/// Orders records of several environments oldest first by when they were written.
fn oldest_first(mut records: Vec<(RecordKey, DeploymentRecord)>) -> Vec<DeploymentRecord> {
    records.sort_by(|a, b| a.0.at.cmp(&b.0.at).then_with(|| b.0.key.cmp(&a.0.key)));
    records.into_iter().map(|(_, r)| r).collect()
}

/// The current time in microseconds since the Unix epoch.
pub(crate) fn now_micros() -> u64 {
    u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000).unwrap_or(0)
}

#[async_trait]
impl RecordStore for ObjectRecordStore {
    /// Writes the record as a new object, create-only, its key after every record of the
    /// environment the pointer knows, then advances the pointer.
    async fn append(&self, record: &DeploymentRecord) -> Result<()> {
        let read = self.read_pointer(&record.environment).await?;
        let at = now_micros().max(read.0.watermark_at.saturating_add(1));
        let key = self.layout.record(at, record);
        let body = serde_json::to_vec(record)
            .map_err(|e| self.error(format!("serializing record {} failed: {e}", record.id)))?;
        match put(self.objects.as_ref(), &key.key, &body, Condition::Absent).await? {
            Written::Done(_) => {}
            Written::Refused => {
                return Err(Error::Seam {
                    seam: self.objects.seam(),
                    message: format!(
                        "{} already holds another record: two writers chose the same key; nothing was overwritten, run again",
                        self.objects.url(&key.key)
                    ),
                });
            }
        }
        // The record is durable; the pointer is an index that lookups can do without.
        let _ = self.advance_pointer(&record.environment, read).await;
        Ok(())
    }

    async fn load(&self) -> Result<LedgerSnapshot> {
        let mut records = Vec::new();
        let mut problems = Vec::new();
        for environment in self.environments().await? {
            let (found, unreadable) = self.all_of(&environment).await?;
            records.extend(found);
            problems.extend(unreadable);
        }
        Ok(LedgerSnapshot {
            records: oldest_first(records),
            problems,
        })
    }

    async fn find_latest(
        &self,
        environment: &str,
        matches: &(dyn for<'r> Fn(&'r DeploymentRecord) -> bool + Send + Sync),
    ) -> Result<Option<DeploymentRecord>> {
        // Page by page, newest first, each page's runs read before the next page is listed:
        // most lookups end on the first page.
        let mut seen = HashSet::new();
        let mut pages = self.pages(environment, 64);
        while let Some(keys) = pages.next(self).await? {
            let fresh: Vec<ListedRecord> = keys
                .into_iter()
                .filter(|(k, _)| seen.insert(k.id.clone()))
                .collect();
            let (records, _) = self.read(fresh).await?;
            if let Some((_, found)) = records.into_iter().find(|(_, r)| matches(r)) {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// From the pointer and the records written since it: a bounded number of requests
    /// however long the history (the whole history is read only when the pointer dropped
    /// verified records and none of those it kept matches).
    async fn find_latest_verified(
        &self,
        environment: &str,
        matches: &(dyn for<'r> Fn(&'r DeploymentRecord) -> bool + Send + Sync),
    ) -> Result<Option<DeploymentRecord>> {
        let (pointer, _) = self.read_pointer(environment).await?;
        let (newer, _) = self.since(environment, &pointer).await?;
        let newer_ids: HashSet<&str> = newer.iter().map(|(_, r)| r.id.as_str()).collect();
        let candidates = newer.iter().map(|(_, r)| r).chain(
            pointer
                .verified
                .iter()
                .filter(|r| !newer_ids.contains(r.id.as_str())),
        );
        for record in candidates {
            if record.verified_release().is_some() && matches(record) {
                return Ok(Some(record.clone()));
            }
        }
        if pointer.complete {
            return Ok(None);
        }
        self.find_latest(environment, &|r: &DeploymentRecord| {
            r.verified_release().is_some() && matches(r)
        })
        .await
    }

    async fn recent(&self, environment: Option<&str>, limit: usize) -> Result<LedgerSnapshot> {
        let environments = match environment {
            Some(environment) => vec![environment.to_owned()],
            None => self.environments().await?,
        };
        let mut records = Vec::new();
        let mut problems = Vec::new();
        for environment in environments {
            let (found, unreadable) = self.newest(&environment, limit).await?;
            records.extend(found);
            problems.extend(unreadable);
        }
        let mut records = oldest_first(records);
        let excess = records.len().saturating_sub(limit);
        records.drain(..excess);
        Ok(LedgerSnapshot { records, problems })
    }

    /// Reads only the unfinished runs' records: the keys say which they are, back to the
    /// newest deploy run that held the lock (see [`LedgerSnapshot::unresolved`]).
    async fn in_progress(&self, environment: &str) -> Result<Vec<DeploymentRecord>> {
        let mut seen = HashSet::new();
        let mut unfinished = Vec::new();
        self.walk(environment, None, 16, |k| {
            if !seen.insert(k.0.id.clone()) {
                return true;
            }
            let bound = k.0.resolved_earlier_runs();
            if !k.0.is_final() {
                unfinished.push(k);
            }
            !bound
        })
        .await?;
        let (records, _) = self.read(unfinished).await?;
        let mut records: Vec<DeploymentRecord> = records.into_iter().map(|(_, r)| r).collect();
        records.reverse();
        Ok(records)
    }
}
