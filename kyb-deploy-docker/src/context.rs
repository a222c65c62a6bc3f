//! The build context: the context directory as an uncompressed tar, without what its
//! `.dockerignore` excludes.
//!
//! Patterns follow Docker's rules: they are relative to the context root (a leading `/` is
//! dropped), `*` and `?` match within one path segment, `[...]` is a character class, `**`
//! matches any number of directories, `!` re-includes, and the last matching line wins. A
//! pattern that matches a directory applies to everything below it.
//!
//! The walk is lazy: an excluded directory is not even listed unless an exception could match
//! something inside it, so a `target/` of many gigabytes costs nothing when only one binary
//! below it is re-included. Excluded files are never opened.

use std::fs::{self, Metadata};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use kyb_deploy_core::{Error, Result};

mod ignore;

pub(crate) use self::ignore::DockerIgnore;

/// The name of the ignore file at the context root.
const IGNORE_FILE: &str = ".dockerignore";

/// What went into a context.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ContextSummary {
    /// Regular files sent.
    pub(crate) files: u64,
    /// Their total size in bytes.
    pub(crate) bytes: u64,
}

/// Writes the context `root` as an uncompressed tar into `out` and returns `out`.
///
/// `dockerfile` (relative to `root`) and `.dockerignore` are always sent, as Docker does.
/// Entries are sorted by name and owned by root, so that the same tree gives the same tar.
pub(crate) fn write_context<W: Write>(
    root: &Path,
    dockerfile: &Path,
    out: W,
) -> Result<(W, ContextSummary)> {
    let ignore_path = root.join(IGNORE_FILE);
    let ignore = match fs::read_to_string(&ignore_path) {
        Ok(text) => DockerIgnore::parse(&text).map_err(|message| {
            Error::seam(
                "image build",
                format!("invalid {}: {message}", ignore_path.display()),
            )
        })?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => DockerIgnore::default(),
        Err(source) => {
            return Err(Error::Io {
                what: "read".into(),
                path: ignore_path,
                source,
            });
        }
    };
    let dockerfile = dockerfile.to_string_lossy().replace('\\', "/");
    let ignore = ignore
        .always_include(&dockerfile)
        .always_include(IGNORE_FILE);

    let mut tar = tar::Builder::new(out);
    let mut summary = ContextSummary::default();
    visit(
        &ignore,
        "",
        &mut |dir| list_dir(root, dir),
        &mut |entry: &FsEntry| append(&mut tar, entry, &mut summary),
    )?;
    let out = tar.into_inner().map_err(|source| Error::Io {
        what: "write the build context of".into(),
        path: root.to_owned(),
        source,
    })?;
    Ok((out, summary))
}

/// A directory entry as the walk sees it.
pub(super) trait WalkEntry {
    /// The path relative to the context root, with `/` separators.
    fn rel(&self) -> &str;
    /// Whether it is a directory (not a symlink to one).
    fn is_dir(&self) -> bool;
}

/// Walks the directory `dir` (relative, `""` for the root): `list` returns a directory's
/// entries, `emit` receives every entry that belongs in the context, in order. An excluded
/// directory is listed only when an exception may re-include something below it.
pub(super) fn visit<E: WalkEntry>(
    ignore: &DockerIgnore,
    dir: &str,
    list: &mut impl FnMut(&str) -> Result<Vec<E>>,
    emit: &mut impl FnMut(&E) -> Result<()>,
) -> Result<()> {
    for entry in list(dir)? {
        let excluded = ignore.excludes(entry.rel());
        if !excluded {
            emit(&entry)?;
        }
        if entry.is_dir() && (!excluded || ignore.may_include_below(entry.rel())) {
            visit(ignore, entry.rel(), list, emit)?;
        }
    }
    Ok(())
}

struct FsEntry {
    rel: String,
    /// The relative path as the file system spells it (names need not be UTF-8).
    name: PathBuf,
    path: PathBuf,
    meta: Metadata,
}

impl WalkEntry for FsEntry {
    fn rel(&self) -> &str {
        &self.rel
    }

    fn is_dir(&self) -> bool {
        self.meta.is_dir()
    }
}

fn io_error(what: &str, path: &Path, source: io::Error) -> Error {
    Error::Io {
        what: what.into(),
        path: path.to_owned(),
        source,
    }
}

fn list_dir(root: &Path, dir: &str) -> Result<Vec<FsEntry>> {
    let dir_path = if dir.is_empty() {
        root.to_owned()
    } else {
        root.join(dir)
    };
    let read = fs::read_dir(&dir_path).map_err(|e| io_error("list", &dir_path, e))?;
    let mut entries = Vec::new();
    for entry in read {
        let entry = entry.map_err(|e| io_error("list", &dir_path, e))?;
        let path = entry.path();
        let meta = fs::symlink_metadata(&path).map_err(|e| io_error("inspect", &path, e))?;
        let file_name = entry.file_name();
        let name_text = file_name.to_string_lossy();
        let (rel, name) = if dir.is_empty() {
            (name_text.into_owned(), PathBuf::from(&file_name))
        } else {
            (
                format!("{dir}/{name_text}"),
                Path::new(dir).join(&file_name),
            )
        };
        entries.push(FsEntry {
            rel,
            name,
            path,
            meta,
        });
    }
    entries.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(entries)
}

fn append<W: Write>(
    tar: &mut tar::Builder<W>,
    entry: &FsEntry,
    summary: &mut ContextSummary,
) -> Result<()> {
    let kind = entry.meta.file_type();
    let mut header = tar::Header::new_gnu();
    header.set_metadata_in_mode(&entry.meta, tar::HeaderMode::Complete);
    // Like `docker build`, the context belongs to root: the image must not depend on who
    // ran the build.
    header.set_uid(0);
    header.set_gid(0);
    let written = if kind.is_dir() {
        header.set_size(0);
        tar.append_data(&mut header, &entry.name, io::empty())
    } else if kind.is_symlink() {
        let target = fs::read_link(&entry.path).map_err(|e| io_error("read", &entry.path, e))?;
        header.set_size(0);
        tar.append_link(&mut header, &entry.name, target)
    } else if kind.is_file() {
        let file = fs::File::open(&entry.path).map_err(|e| io_error("open", &entry.path, e))?;
        let size = entry.meta.len();
        summary.files += 1;
        summary.bytes += size;
        tar.append_data(&mut header, &entry.name, ExactSize::new(file, size))
    } else {
        // Sockets, pipes and devices have no place in an image build.
        return Ok(());
    };
    written.map_err(|e| io_error("add to the build context", &entry.path, e))
}

/// Reads exactly `size` bytes, failing if the file shrank after it was inspected: a tar
/// whose entry is shorter than its header says is corrupt.
struct ExactSize<R> {
    inner: io::Take<R>,
}

impl<R: Read> ExactSize<R> {
    fn new(inner: R, size: u64) -> Self {
        Self {
            inner: inner.take(size),
        }
    }
}

impl<R: Read> Read for ExactSize<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() && self.inner.limit() > 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file changed while the build context was written",
            ));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests;
