//! The [`TestRunner`] seam and the default runner of shell commands.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::event::StageProgress;

/// A test suite to run before building.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestSuite {
    /// Name (`unit`, `integration`).
    pub name: String,
    /// Shell command.
    pub command: String,
    /// Working directory.
    pub workdir: PathBuf,
}

/// How a suite ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestReport {
    /// The suite's name.
    pub suite: String,
    /// Whether it passed.
    pub passed: bool,
    /// The command's exit code, when it exited normally.
    pub exit_code: Option<i32>,
    /// Wall time in milliseconds.
    pub elapsed_ms: u64,
}

/// Runs test suites.
#[async_trait]
pub trait TestRunner: Send + Sync {
    /// Runs `suite`, streaming its output through `progress`. A failing suite is a report with
    /// `passed == false`; `Err` means it could not be run at all.
    async fn run(
        &self,
        suite: &TestSuite,
        progress: &StageProgress,
        cancel: &CancellationToken,
    ) -> Result<TestReport>;
}

/// The default [`TestRunner`]: runs each suite with `sh -c` and streams stdout and stderr
/// line by line. Cancellation kills the command.
#[derive(Clone, Copy, Debug, Default)]
pub struct CommandTestRunner;

#[async_trait]
impl TestRunner for CommandTestRunner {
    async fn run(
        &self,
        suite: &TestSuite,
        progress: &StageProgress,
        cancel: &CancellationToken,
    ) -> Result<TestReport> {
        let started = Instant::now();
        progress.progress(format!("{} tests: {}", suite.name, suite.command));
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(&suite.command)
            .current_dir(&suite.workdir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                Error::seam(
                    "test runner",
                    format!(
                        "cannot start {} tests {:?} in {}: {e}",
                        suite.name,
                        suite.command,
                        suite.workdir.display()
                    ),
                )
            })?;
        let out = forward_lines(child.stdout.take(), progress.clone());
        let err = forward_lines(child.stderr.take(), progress.clone());
        let status = tokio::select! {
            () = cancel.cancelled() => {
                let _ = child.kill().await;
                return Err(Error::Cancelled);
            }
            (status, (), ()) = async { tokio::join!(child.wait(), out, err) } => status,
        };
        let status = status.map_err(|e| {
            Error::seam(
                "test runner",
                format!("waiting for {} tests failed: {e}", suite.name),
            )
        })?;
        Ok(TestReport {
            suite: suite.name.clone(),
            passed: status.success(),
            exit_code: status.code(),
            elapsed_ms: elapsed_ms(started.elapsed()),
        })
    }
}

/// Sends each line of `stream` as a log event until it closes.
async fn forward_lines(stream: Option<impl AsyncRead + Unpin>, progress: StageProgress) {
    if let Some(stream) = stream {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            progress.log(line);
        }
    }
}

fn elapsed_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Event, EventSink, Stage};

    fn suite(command: &str) -> TestSuite {
        TestSuite {
            name: "unit".into(),
            command: command.into(),
            workdir: std::env::temp_dir(),
        }
    }

    #[tokio::test]
    async fn streams_output_and_reports_exit_code() {
        let (sink, mut rx) = EventSink::new().channel();
        let progress = sink.for_stage(Stage::Tests);
        let cancel = CancellationToken::new();
        let report = CommandTestRunner
            .run(&suite("echo one; echo two >&2; exit 3"), &progress, &cancel)
            .await
            .unwrap();
        assert!(!report.passed);
        assert_eq!(report.exit_code, Some(3));
        let mut lines = Vec::new();
        while let Ok(event) = rx.try_recv() {
            if let Event::Log { line, .. } = event {
                lines.push(line);
            }
        }
        lines.sort();
        assert_eq!(lines, ["one", "two"]);
        let ok = CommandTestRunner
            .run(&suite("true"), &progress, &cancel)
            .await
            .unwrap();
        assert!(ok.passed);
    }

    #[tokio::test]
    async fn cancellation_kills_the_command() {
        let cancel = CancellationToken::new();
        let progress = StageProgress::discard(Stage::Tests);
        let trigger = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            trigger.cancel();
        });
        let err = CommandTestRunner
            .run(&suite("sleep 30"), &progress, &cancel)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Cancelled));
    }
}
