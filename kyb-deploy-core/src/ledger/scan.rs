//! Answers read from part of the ledger, newest first from its end: the latest records, and
//! the runs still in progress since the newest deploy.

use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Seek};

use super::LedgerProblem;
use super::lines::{self, Line};
use super::reverse::{BackLine, ReverseLines};
use crate::record::DeploymentRecord;

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

/// The records still in progress from the newest deploy run on, oldest first, read
/// backwards: the answer of [`super::LedgerSnapshot::unresolved`].
pub(super) fn unresolved<R: Read + Seek>(
    scan: &mut BackwardScan<R>,
) -> io::Result<Vec<DeploymentRecord>> {
    let mut unresolved = Vec::new();
    while let Some(record) = scan.next_record()? {
        let bound = record.resolved_earlier_runs();
        if !record.status.is_final() {
            unresolved.push(record);
        }
        if bound {
            break;
        }
    }
    unresolved.reverse();
    Ok(unresolved)
}
