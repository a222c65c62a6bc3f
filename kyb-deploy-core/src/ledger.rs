//! The default [`RecordStore`](crate::RecordStore), an append-only JSON-lines ledger file, and
//! [`LedgerSnapshot`], the records as a store reads them.

mod lines;
mod reverse;
mod scan;

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde::Serialize;

use self::lines::Line;
use self::reverse::ReverseLines;
use self::scan::BackwardScan;
use crate::error::{Error, Result};
use crate::record::DeploymentRecord;
use crate::record_store::RecordStore;
use crate::version::Version;

/// A record that could not be read: a line of the ledger file, or an object of a shared
/// store. Reported, never fatal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LedgerProblem {
    /// 1-based line number; 0 when the store keeps no lines (the message names the object).
    pub line: usize,
    /// What is wrong with it.
    pub message: String,
}

impl std::fmt::Display for LedgerProblem {
    /// `line N: message`, or the message alone when there is no line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            f.write_str(&self.message)
        } else {
            write!(f, "line {}: {}", self.line, self.message)
        }
    }
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
        let mut latest = Latest::default();
        for record in appended {
            latest.push(record);
        }
        latest.into_snapshot(Vec::new())
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

    /// The newest record of `environment` that satisfies `matches`: what
    /// [`RecordStore::find_latest`] answers.
    pub fn find_latest(
        &self,
        environment: &str,
        matches: impl Fn(&DeploymentRecord) -> bool,
    ) -> Option<&DeploymentRecord> {
        self.records
            .iter()
            .rev()
            .find(|r| r.environment == environment && matches(r))
    }

    /// The newest `limit` records of `environment` (or of all), oldest first, with every
    /// problem: what [`RecordStore::recent`] answers when it reads the whole ledger.
    pub fn recent(&self, environment: Option<&str>, limit: usize) -> Self {
        let mut records: Vec<DeploymentRecord> = self
            .records
            .iter()
            .rev()
            .filter(|r| environment.is_none_or(|e| r.environment == e))
            .take(limit)
            .cloned()
            .collect();
        records.reverse();
        Self {
            records,
            problems: self.problems.clone(),
        }
    }

    /// The last known-good release of an environment other than `version`: the latest run
    /// that deployed another version and verified it. This is where a failed deployment of
    /// `version` rolls back to, and where `rollback` goes from a running `version`.
    pub fn last_known_good_except(
        &self,
        environment: &str,
        version: &Version,
    ) -> Option<&DeploymentRecord> {
        self.find_latest(environment, |r| r.is_known_good() && &r.version != version)
    }

    /// The last known-good release of an environment: the latest run that deployed a
    /// release and verified it.
    pub fn last_known_good(&self, environment: &str) -> Option<&DeploymentRecord> {
        self.find_latest(environment, DeploymentRecord::is_known_good)
    }

    /// The latest record of `environment` that deployed `version`, preferring verified ones.
    pub fn find_version(&self, environment: &str, version: &Version) -> Option<&DeploymentRecord> {
        let deployed = |r: &DeploymentRecord| &r.version == version && r.release.is_some();
        self.find_latest(environment, |r| deployed(r) && r.is_known_good())
            .or_else(|| self.find_latest(environment, deployed))
    }

    /// The records of `environment` still in progress from its newest deploy run that held
    /// the lock on (that run included), oldest first.
    ///
    /// Older ones need no look: a deploy run, once it holds the environment's lock and before
    /// it writes its own first record, marks every run of the environment still in progress
    /// abandoned (no live run can hold the lock then). So the answer is read from the end of
    /// the ledger up to that deploy ([`DeploymentRecord::resolved_earlier_runs`]), however
    /// long the history. A deploy refused the lock is recorded too, while another run may
    /// hold it: the lookup reads past it.
    pub fn unresolved(&self, environment: &str) -> Vec<DeploymentRecord> {
        let mut unresolved = Vec::new();
        for record in self.for_environment(environment).rev() {
            if !record.status.is_final() {
                unresolved.push(record.clone());
            }
            if record.resolved_earlier_runs() {
                break;
            }
        }
        unresolved.reverse();
        unresolved
    }

    /// Records of `environment` still marked in progress.
    pub fn in_progress<'a>(
        &'a self,
        environment: &'a str,
    ) -> impl Iterator<Item = &'a DeploymentRecord> + 'a {
        self.for_environment(environment)
            .filter(|r| !r.status.is_final())
    }
}

/// The latest state per id of records appended in order.
#[derive(Default)]
struct Latest {
    by_id: HashMap<String, (usize, DeploymentRecord)>,
    position: usize,
}

impl Latest {
    fn push(&mut self, record: DeploymentRecord) {
        self.position += 1;
        self.by_id
            .insert(record.id.clone(), (self.position, record));
    }

    fn into_snapshot(self, problems: Vec<LedgerProblem>) -> LedgerSnapshot {
        let mut records: Vec<_> = self.by_id.into_values().collect();
        records.sort_by_key(|(position, _)| *position);
        LedgerSnapshot {
            records: records.into_iter().map(|(_, r)| r).collect(),
            problems,
        }
    }
}

/// Records found per step of [`JsonlRecordStore::find_latest`] at most, before `matches`
/// sees them: a bound on the memory of a step.
const STEP_RECORDS: usize = 256;
/// Bytes of the ledger read in the first step of [`JsonlRecordStore::find_latest`]; each
/// step reads twice as much as the one before, up to [`MAX_STEP_BYTES`].
const FIRST_STEP_BYTES: u64 = reverse::BLOCK as u64;
const MAX_STEP_BYTES: u64 = 4 << 20;

/// The default [`RecordStore`]: one JSON record per line, appended and fsynced under an
/// exclusive file lock, so concurrent writers never interleave. Readers hold a shared lock.
///
/// A line that cannot be read (a torn last line after a crash, bytes that are not UTF-8, text
/// that is not a record) is skipped and reported as a [`LedgerProblem`], never fatal; the
/// next append starts on a fresh line.
///
/// [`load`](RecordStore::load) streams the file line by line. The lookups read only the end
/// they need: [`find_latest`](RecordStore::find_latest) and [`recent`](RecordStore::recent)
/// read backwards a block at a time, newest line first, and stop as soon as the answer is
/// known; a line that cannot belong to the environment asked for is recognised without
/// being parsed. [`in_progress`](RecordStore::in_progress) reads the whole file once, parsing
/// only the lines that may start or end a run of the environment.
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

    /// Runs `work` on the blocking pool.
    async fn blocking<T: Send + 'static>(
        &self,
        what: &str,
        work: impl FnOnce(Self) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || work(store))
            .await
            .map_err(|e| self.err(what)(std::io::Error::other(e)))?
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

    /// The ledger open for reading under a shared lock, and its length; `None` when there is
    /// no ledger yet. The lock lasts as long as the file.
    fn open_shared(&self) -> Result<Option<(File, u64)>> {
        let file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.err("open")(e)),
        };
        file.lock_shared().map_err(self.err("lock"))?;
        let len = file.metadata().map_err(self.err("read"))?.len();
        Ok(Some((file, len)))
    }

    fn load_blocking(&self) -> Result<LedgerSnapshot> {
        let Some((file, _)) = self.open_shared()? else {
            return Ok(LedgerSnapshot::default());
        };
        let mut latest = Latest::default();
        let mut problems = Vec::new();
        lines::for_each(
            BufReader::with_capacity(lines::READ_BUFFER, &file),
            |number, bytes, torn| match lines::read(bytes) {
                Line::Blank => {}
                Line::Record(record) => latest.push(*record),
                Line::Unreadable(reason) => problems.push(lines::problem(number, torn, &reason)),
            },
        )
        .map_err(self.err("read"))?;
        Ok(latest.into_snapshot(problems))
    }

    /// A backward scan of the ledger under a shared lock; `None` when there is no ledger.
    fn scan_backward(&self, environment: Option<&str>) -> Result<Option<BackwardScan<File>>> {
        let Some((file, len)) = self.open_shared()? else {
            return Ok(None);
        };
        let lines = ReverseLines::new(file, len, reverse::BLOCK).map_err(self.err("read"))?;
        Ok(Some(BackwardScan::new(lines, environment)))
    }

    fn recent_blocking(&self, environment: Option<&str>, limit: usize) -> Result<LedgerSnapshot> {
        let Some(mut scan) = self.scan_backward(environment)? else {
            return Ok(LedgerSnapshot::default());
        };
        let records = scan.newest(limit).map_err(self.err("read"))?;
        let problems = scan.problems().map_err(self.err("read"))?;
        Ok(LedgerSnapshot { records, problems })
    }

    fn in_progress_blocking(&self, environment: &str) -> Result<Vec<DeploymentRecord>> {
        let Some(mut scan) = self.scan_backward(Some(environment))? else {
            return Ok(Vec::new());
        };
        scan::unresolved(&mut scan).map_err(self.err("read"))
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

#[async_trait]
impl RecordStore for JsonlRecordStore {
    async fn append(&self, record: &DeploymentRecord) -> Result<()> {
        let line = serde_json::to_vec(record)
            .map_err(|e| self.err("serialize a record for")(std::io::Error::other(e)))?;
        self.blocking("append to", move |store| store.append_blocking(&line))
            .await
    }

    async fn load(&self) -> Result<LedgerSnapshot> {
        self.blocking("read", |store| store.load_blocking()).await
    }

    async fn find_latest(
        &self,
        environment: &str,
        matches: &(dyn for<'r> Fn(&'r DeploymentRecord) -> bool + Send + Sync),
    ) -> Result<Option<DeploymentRecord>> {
        let environment = environment.to_owned();
        let Some(mut scan) = self
            .blocking("read", move |store| store.scan_backward(Some(&environment)))
            .await?
        else {
            return Ok(None);
        };
        // `matches` is borrowed, so it cannot go to the blocking pool: the scan goes there in
        // steps, and `matches` sees each step's records here. The scan (and its shared lock)
        // lives until the answer is known.
        let mut budget = FIRST_STEP_BYTES;
        loop {
            let (returned, step) = tokio::task::spawn_blocking(move || {
                let step = scan.next_batch(budget, STEP_RECORDS);
                (scan, step)
            })
            .await
            .map_err(|e| self.err("read")(std::io::Error::other(e)))?;
            scan = returned;
            let (records, exhausted) = step.map_err(self.err("read"))?;
            if let Some(found) = records.into_iter().find(|r| matches(r)) {
                return Ok(Some(found));
            }
            if exhausted {
                return Ok(None);
            }
            budget = (budget * 2).min(MAX_STEP_BYTES);
        }
    }

    async fn recent(&self, environment: Option<&str>, limit: usize) -> Result<LedgerSnapshot> {
        let environment = environment.map(str::to_owned);
        self.blocking("read", move |store| {
            store.recent_blocking(environment.as_deref(), limit)
        })
        .await
    }

    async fn in_progress(&self, environment: &str) -> Result<Vec<DeploymentRecord>> {
        let environment = environment.to_owned();
        self.blocking("read", move |store| {
            store.in_progress_blocking(&environment)
        })
        .await
    }
}

#[cfg(test)]
mod tests;
