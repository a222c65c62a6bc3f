//! Output handles: a cloneable, thread-safe writer, and stdout's broken-pipe policy.

use std::io::{self, Write};
use std::sync::{Arc, Mutex, PoisonError};

/// A writer shared by the command and the event renderer (which runs inside the pipeline's
/// event callbacks). Each `write` call holds the lock, so lines written with one `write_all`
/// never interleave.
#[derive(Clone)]
pub(crate) struct SharedWriter {
    inner: Arc<Mutex<Box<dyn Write + Send>>>,
}

impl SharedWriter {
    pub(crate) fn new(writer: impl Write + Send + 'static) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Box::new(writer))),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Box<dyn Write + Send>> {
        // A panic while writing leaves the writer usable; output is best effort then.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes `text` in one piece.
    pub(crate) fn write_text(&self, text: &str) -> io::Result<()> {
        let mut writer = self.lock();
        writer.write_all(text.as_bytes())?;
        writer.flush()
    }
}

impl std::fmt::Debug for SharedWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedWriter")
    }
}

impl Write for SharedWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.lock().write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.lock().write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.lock().flush()
    }
}

/// Standard output that treats a closed reader (`kyb-deploy history | head`) as the end of
/// output rather than an error: once the pipe is broken, further writes are dropped, and the
/// command exits with the code it would have had anyway.
pub(crate) struct PipeSafe<W> {
    inner: W,
    closed: bool,
}

impl<W> PipeSafe<W> {
    pub(crate) fn new(inner: W) -> Self {
        Self {
            inner,
            closed: false,
        }
    }
}

impl<W: Write> Write for PipeSafe<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.closed {
            return Ok(buf.len());
        }
        match self.inner.write(buf) {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(buf.len())
            }
            other => other,
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.closed {
            return Ok(());
        }
        match self.inner.flush() {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Broken;

    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::ErrorKind::BrokenPipe.into())
        }

        fn flush(&mut self) -> io::Result<()> {
            Err(io::ErrorKind::BrokenPipe.into())
        }
    }

    #[test]
    fn a_broken_pipe_ends_output_without_an_error() {
        let mut out = PipeSafe::new(Broken);
        assert!(writeln!(out, "one").is_ok());
        assert!(out.flush().is_ok());
        assert!(writeln!(out, "two").is_ok());
    }

    #[test]
    fn other_errors_still_fail() {
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::other("disk full"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        assert!(writeln!(PipeSafe::new(Full), "x").is_err());
    }
}
