//! One line of the ledger: the record it holds, or why it holds none.

use std::io::{self, BufRead, Read, Seek, SeekFrom};

use super::LedgerProblem;
use crate::record::DeploymentRecord;

/// Bytes read at a time when streaming the file forwards.
pub(super) const READ_BUFFER: usize = 256 * 1024;

/// What a line of the ledger holds.
pub(super) enum Line {
    /// Nothing but whitespace.
    Blank,
    /// A record.
    Record(Box<DeploymentRecord>),
    /// Something that is not a record: why.
    Unreadable(String),
}

/// Reads one line (without its newline).
pub(super) fn read(bytes: &[u8]) -> Line {
    match text(bytes) {
        Ok(text) => read_text(text),
        Err(reason) => Line::Unreadable(reason),
    }
}

/// A line's text, or why it has none: the ledger is UTF-8, and a line that is not cannot
/// hold a record (serde_json would say so too, with a less helpful message).
pub(super) fn text(bytes: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(bytes).map_err(|e| {
        format!(
            "the line is not valid UTF-8 (invalid byte at column {})",
            e.valid_up_to() + 1
        )
    })
}

/// Reads one line's text.
pub(super) fn read_text(text: &str) -> Line {
    if text.trim().is_empty() {
        return Line::Blank;
    }
    match serde_json::from_str::<DeploymentRecord>(text) {
        Ok(record) => Line::Record(Box::new(record)),
        Err(e) => Line::Unreadable(e.to_string()),
    }
}

/// The problem report of an unreadable line: `torn` when it is the last line and has no
/// newline, the mark of a run that stopped while writing it.
pub(super) fn problem(line: usize, torn: bool, reason: &str) -> LedgerProblem {
    let message = if torn {
        format!("incomplete last line ignored (a run stopped while writing it): {reason}")
    } else {
        format!("unreadable record ignored: {reason}")
    };
    LedgerProblem { line, message }
}

/// Calls `visit` with each line of `reader` in order: its 1-based number, its bytes without
/// the newline, and whether it is a torn last line (no newline at the end of the file).
/// Memory is bounded by the longest line.
pub(super) fn for_each(
    mut reader: impl BufRead,
    mut visit: impl FnMut(usize, &[u8], bool),
) -> io::Result<()> {
    let mut buf = Vec::new();
    let mut number = 0;
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
            return Ok(());
        }
        number += 1;
        let torn = buf.last() != Some(&b'\n');
        if !torn {
            buf.pop();
        }
        visit(number, &buf, torn);
    }
}

/// The 1-based line numbers of the lines starting at `offsets` (sorted ascending), counting
/// newlines from the start of the file.
pub(super) fn numbers_at(mut source: impl Read + Seek, offsets: &[u64]) -> io::Result<Vec<usize>> {
    source.seek(SeekFrom::Start(0))?;
    let mut numbers = Vec::with_capacity(offsets.len());
    let mut buf = vec![0; READ_BUFFER];
    let mut position = 0u64;
    let mut newlines = 0usize;
    for &offset in offsets {
        while position < offset {
            let want = usize::try_from(offset - position).map_or(buf.len(), |n| n.min(buf.len()));
            let read = source.read(&mut buf[..want])?;
            if read == 0 {
                break;
            }
            newlines += buf[..read].iter().filter(|&&b| b == b'\n').count();
            position += read as u64;
        }
        numbers.push(newlines + 1);
    }
    Ok(numbers)
}

/// Whether `value` is written the same way in every JSON text that does not use a `\u`
/// escape: nothing in it needs escaping, and it has no `/` (which may be written `\/`).
/// Such a value can be looked for in a line by its quoted form.
pub(super) fn is_plain(value: &str) -> bool {
    !value
        .chars()
        .any(|c| matches!(c, '"' | '\\' | '/') || c.is_control())
}

/// The start of a line as this build writes it, `{"id":"`, followed by the id.
const ID_PREFIX: &str = "{\"id\":\"";

/// The id a line names first, when it starts the way this build writes records and the id
/// is plain. Says nothing about whether the rest of the line is a record.
pub(super) fn leading_id(text: &str) -> Option<&str> {
    let rest = text.strip_prefix(ID_PREFIX)?;
    let id = &rest[..rest.find('"')?];
    (!id.contains('\\')).then_some(id)
}
