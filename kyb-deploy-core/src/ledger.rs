//! The [`RecordStore`] seam and the default store: an append-only JSON-lines ledger file.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::record::{DeploymentRecord, RecordStatus};
use crate::version::Version;

/// Keeps deployment records.
#[async_trait]
pub trait RecordStore: Send + Sync {
    /// Appends a record. Appending a record whose id is already stored supersedes it.
    /// Returns only once the record is durable.
    async fn append(&self, record: &DeploymentRecord) -> Result<()>;

    /// Reads every record, latest state per id.
    async fn load(&self) -> Result<LedgerSnapshot>;
}

/// A line of the ledger that could not be read. Reported, never fatal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LedgerProblem {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong with it.
    pub message: String,
}

/// The records of a ledger, latest state per id, ordered by when that state was written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LedgerSnapshot {
    /// The records.
    pub records: Vec<DeploymentRecord>,
    /// Lines that could not be read.
    pub problems: Vec<LedgerProblem>,
}

impl LedgerSnapshot {
    /// Folds appended record versions into their latest state per id.
    pub fn from_appended(appended: impl IntoIterator<Item = DeploymentRecord>) -> Self {
        let mut latest: HashMap<String, (usize, DeploymentRecord)> = HashMap::new();
        for (position, record) in appended.into_iter().enumerate() {
            latest.insert(record.id.clone(), (position, record));
        }
        let mut records: Vec<_> = latest.into_values().collect();
        records.sort_by_key(|(position, _)| *position);
        Self {
            records: records.into_iter().map(|(_, r)| r).collect(),
            problems: Vec::new(),
        }
    }

    /// The records of one environment, oldest first.
    pub fn for_environment<'a>(
        &'a self,
        environment: &'a str,
    ) -> impl DoubleEndedIterator<Item = &'a DeploymentRecord> + 'a {
        self.records
            .iter()
            .filter(move |r| r.environment == environment)
    }

    /// The last known-good release of an environment other than `version`: the latest run
    /// that deployed another version and verified it. This is where a failed deployment of
    /// `version` rolls back to, and where `rollback` goes from a running `version`.
    pub fn last_known_good_except(
        &self,
        environment: &str,
        version: &Version,
    ) -> Option<&DeploymentRecord> {
        self.records.iter().rev().find(|r| {
            r.environment == environment
                && r.status == RecordStatus::Succeeded
                && r.release.is_some()
                && &r.version != version
        })
    }

    /// The last known-good release of an environment: the latest run that deployed a
    /// release and verified it.
    pub fn last_known_good(&self, environment: &str) -> Option<&DeploymentRecord> {
        self.records.iter().rev().find(|r| {
            r.environment == environment
                && r.status == RecordStatus::Succeeded
                && r.release.is_some()
        })
    }

    /// The latest record of `environment` that deployed `version`, preferring verified ones.
    pub fn find_version(&self, environment: &str, version: &Version) -> Option<&DeploymentRecord> {
        let candidates = || {
            self.records.iter().rev().filter(|r| {
                r.environment == environment && &r.version == version && r.release.is_some()
            })
        };
        candidates()
            .find(|r| r.status == RecordStatus::Succeeded)
            .or_else(|| candidates().next())
    }

    /// Records of `environment` still marked in progress.
    pub fn in_progress<'a>(
        &'a self,
        environment: &'a str,
    ) -> impl Iterator<Item = &'a DeploymentRecord> + 'a {
        self.for_environment(environment)
            .filter(|r| r.status == RecordStatus::InProgress)
    }
}

/// The default [`RecordStore`]: one JSON record per line, appended and fsynced under an
/// exclusive file lock, so concurrent writers never interleave. A torn last line (a crash
/// mid-write) is skipped and reported by [`RecordStore::load`], and the next append starts on
/// a fresh line.
#[derive(Clone, Debug)]
pub struct JsonlRecordStore {
    path: PathBuf,
}

impl JsonlRecordStore {
    /// A store at `path`; the file and its directory are created on first append.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The ledger file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, what: &str) -> impl FnOnce(std::io::Error) -> Error + '_ {
        let what = what.to_owned();
        move |source| Error::Ledger {
            path: self.path.clone(),
            what,
            source,
        }
    }

    fn append_blocking(&self, line: &[u8]) -> Result<()> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(self.err("create the ledger directory"))?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&self.path)
            .map_err(self.err("open"))?;
        file.lock().map_err(self.err("lock"))?;
        let result = (|| {
            let mut buf = Vec::with_capacity(line.len() + 1);
            if ends_torn(&mut file)? {
                buf.push(b'\n');
            }
            buf.extend_from_slice(line);
            buf.push(b'\n');
            file.write_all(&buf)?;
            file.sync_data()
        })();
        // Closing the file releases the lock as well; unlocking first keeps the window short.
        let _ = file.unlock();
        result.map_err(self.err("append a record to"))
    }

    fn load_blocking(&self) -> Result<LedgerSnapshot> {
        let mut file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(LedgerSnapshot::default());
            }
            Err(e) => return Err(self.err("open")(e)),
        };
        file.lock_shared().map_err(self.err("lock"))?;
        let mut text = String::new();
        let read = file.read_to_string(&mut text);
        let _ = file.unlock();
        read.map_err(self.err("read"))?;
        Ok(parse_ledger(&text))
    }
}

/// Whether a non-empty file's last byte is not a newline (a torn write).
fn ends_torn(file: &mut File) -> std::io::Result<bool> {
    let len = file.seek(SeekFrom::End(0))?;
    if len == 0 {
        return Ok(false);
    }
    file.seek(SeekFrom::End(-1))?;
    let mut last = [0u8];
    file.read_exact(&mut last)?;
    Ok(last[0] != b'\n')
}

/// Parses ledger text, collecting unreadable lines as problems.
fn parse_ledger(text: &str) -> LedgerSnapshot {
    let mut appended = Vec::new();
    let mut problems = Vec::new();
    let complete = text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    for (index, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<DeploymentRecord>(line) {
            Ok(record) => appended.push(record),
            Err(e) => {
                let torn = index + 1 == lines.len() && !complete;
                let message = if torn {
                    format!("incomplete last line ignored (a run stopped while writing it): {e}")
                } else {
                    format!("unreadable record ignored: {e}")
                };
                problems.push(LedgerProblem {
                    line: index + 1,
                    message,
                });
            }
        }
    }
    let mut snapshot = LedgerSnapshot::from_appended(appended);
    snapshot.problems = problems;
    snapshot
}

#[async_trait]
impl RecordStore for JsonlRecordStore {
    async fn append(&self, record: &DeploymentRecord) -> Result<()> {
        let line = serde_json::to_vec(record)
            .map_err(|e| self.err("serialize a record for")(std::io::Error::other(e)))?;
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.append_blocking(&line))
            .await
            .map_err(|e| self.err("append to")(std::io::Error::other(e)))?
    }

    async fn load(&self) -> Result<LedgerSnapshot> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.load_blocking())
            .await
            .map_err(|e| self.err("read")(std::io::Error::other(e)))?
    }
}

#[cfg(test)]
mod tests;
