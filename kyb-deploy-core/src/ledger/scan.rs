//! Answers read from part of the ledger: newest first from the end for the latest records,
//! one streaming pass for the runs still in progress.

use std::collections::{HashMap, HashSet};
use std::io::{self, BufRead, Read, Seek};

use super::LedgerProblem;
use super::lines::{self, Line};
use super::reverse::{BackLine, ReverseLines};
use crate::record::{DeploymentRecord, RecordStatus};

/// A line that could not be read, found while scanning backwards.
struct Unreadable {
    offset: u64,
    torn: bool,
    reason: String,
}

/// The records of a ledger newest first, each id once in its latest state (its last readable
/// line), optionally of one environment only: the order of [`super::LedgerSnapshot`], reversed.
///
/// With an environment whose name is plain (see [`lines::is_plain`]), a line that does not
/// contain the quoted name cannot be a record of the environment and is not parsed: its id
/// is taken from the line's start and remembered. Should an older line of the environment
/// have the same id, the skipped line is read again, and supersedes it if it is a record.
pub(super) struct BackwardScan<R> {
    lines: ReverseLines<R>,
    environment: Option<String>,
    /// The environment's quoted name, when lines can be skipped by looking for it.
    quoted_environment: Option<String>,
    /// Ids whose latest state has been read.
    seen: HashSet<String>,
    /// Ids of lines skipped as another environment's, with where those lines start.
    skipped: HashMap<String, Vec<u64>>,
    unreadable: Vec<Unreadable>,
}

impl<R: Read + Seek> BackwardScan<R> {
    /// A scan of `lines`, of `environment` or of all.
    pub(super) fn new(lines: ReverseLines<R>, environment: Option<&str>) -> Self {
        Self {
            lines,
            quoted_environment: environment
                .filter(|e| lines::is_plain(e))
                .map(|e| format!("\"{e}\"")),
            environment: environment.map(str::to_owned),
            seen: HashSet::new(),
            skipped: HashMap::new(),
            unreadable: Vec::new(),
        }
    }

    /// The next record, going backwards; `None` at the start of the file.
    pub(super) fn next_record(&mut self) -> io::Result<Option<DeploymentRecord>> {
        loop {
            let Some(line) = self.lines.next_line()? else {
                return Ok(None);
            };
            let BackLine {
                offset,
                bytes,
                torn,
            } = line;
            let text = match lines::text(bytes) {
                Ok(text) => text,
                Err(reason) => {
                    self.unreadable.push(Unreadable {
                        offset,
                        torn,
                        reason,
                    });
                    continue;
                }
            };
            if let Some(quoted) = &self.quoted_environment
                && !torn
                && !text.contains(quoted.as_str())
                && !text.contains("\\u")
                // A line cut short (a crash mid-write, the most common damage) is parsed,
                // to be reported.
                && text.trim_end().ends_with('}')
                && let Some(id) = lines::leading_id(text)
            {
                self.skipped.entry(id.to_owned()).or_default().push(offset);
                continue;
            }
            let record = match lines::read_text(text) {
                Line::Blank => continue,
                Line::Record(record) => record,
                Line::Unreadable(reason) => {
                    self.unreadable.push(Unreadable {
                        offset,
                        torn,
                        reason,
                    });
                    continue;
                }
            };
            if !self.seen.insert(record.id.clone())
                || self
                    .environment
                    .as_deref()
                    .is_some_and(|e| record.environment != e)
                || self.superseded_by_skipped(&record.id)?
            {
                continue;
            }
            return Ok(Some(*record));
        }
    }

    /// Records going backwards until about `budget` bytes were read, `max_records` were
    /// found, or the start of the file; and whether the start was reached.
    pub(super) fn next_batch(
        &mut self,
        budget: u64,
        max_records: usize,
    ) -> io::Result<(Vec<DeploymentRecord>, bool)> {
        let from = self.lines.position();
        let mut records = Vec::new();
        while from - self.lines.position() < budget && records.len() < max_records {
            match self.next_record()? {
                Some(record) => records.push(record),
                None => return Ok((records, true)),
            }
        }
        Ok((records, false))
    }

    /// The newest `limit` records, oldest first.
    pub(super) fn newest(&mut self, limit: usize) -> io::Result<Vec<DeploymentRecord>> {
        let mut records = Vec::new();
        while records.len() < limit {
            match self.next_record()? {
                Some(record) => records.push(record),
                None => break,
            }
        }
        records.reverse();
        Ok(records)
    }

    /// The lines found unreadable so far, with their line numbers (which takes counting the
    /// newlines before them, so only when there are any).
    pub(super) fn problems(&mut self) -> io::Result<Vec<LedgerProblem>> {
        if self.unreadable.is_empty() {
            return Ok(Vec::new());
        }
        self.unreadable.sort_by_key(|u| u.offset);
        let offsets: Vec<u64> = self.unreadable.iter().map(|u| u.offset).collect();
        let numbers = lines::numbers_at(self.lines.source_mut(), &offsets)?;
        Ok(self
            .unreadable
            .iter()
            .zip(numbers)
            .map(|(u, number)| lines::problem(number, u.torn, &u.reason))
            .collect())
    }

    /// Whether a line skipped as another environment's, newer than the record of `id` just
    /// read, is a record of the same id (an id seen in two environments: never written by
    /// kyb-deploy, but the answer must be the snapshot's all the same).
    fn superseded_by_skipped(&mut self, id: &str) -> io::Result<bool> {
        let Some(offsets) = self.skipped.remove(id) else {
            return Ok(false);
        };
        for offset in offsets {
            let bytes = self.lines.line_at(offset)?;
            match lines::read(&bytes) {
                Line::Record(record) if record.id == id => return Ok(true),
                Line::Record(_) | Line::Blank => {}
                Line::Unreadable(reason) => self.unreadable.push(Unreadable {
                    offset,
                    torn: false,
                    reason,
                }),
            }
        }
        Ok(false)
    }
}

/// The records of `environment` whose latest state is `in_progress`, in ledger order, read in
/// one pass with memory bounded by the longest line and the runs in progress.
///
/// With plain names a line is parsed only when it may matter: when it contains
/// `"in_progress"` and the quoted environment (it may start a run of the environment), or the
/// quoted id of a run in progress (it may end that run), or a `\u` escape.
pub(super) fn in_progress(
    reader: impl BufRead,
    environment: &str,
) -> io::Result<Vec<DeploymentRecord>> {
    let quoted_environment = lines::is_plain(environment).then(|| format!("\"{environment}\""));
    // Id -> (line number of its latest state, quoted id when plain, record).
    let mut running: HashMap<String, (usize, Option<String>, DeploymentRecord)> = HashMap::new();
    lines::for_each(reader, |number, bytes, _torn| {
        let Ok(text) = lines::text(bytes) else {
            return;
        };
        let may_matter = match &quoted_environment {
            None => true,
            Some(quoted) => {
                text.contains("\\u")
                    || (text.contains("\"in_progress\"") && text.contains(quoted.as_str()))
                    || running.values().any(|(_, quoted_id, _)| {
                        quoted_id.as_deref().is_none_or(|q| text.contains(q))
                    })
            }
        };
        if !may_matter {
            return;
        }
        let Line::Record(record) = lines::read_text(text) else {
            return;
        };
        if record.status == RecordStatus::InProgress && record.environment == environment {
            let quoted_id = lines::is_plain(&record.id).then(|| format!("\"{}\"", record.id));
            running.insert(record.id.clone(), (number, quoted_id, *record));
        } else {
            running.remove(&record.id);
        }
    })?;
    let mut running: Vec<_> = running.into_values().collect();
    running.sort_by_key(|(number, _, _)| *number);
    Ok(running.into_iter().map(|(_, _, record)| record).collect())
}
