//! [`CommandTestRunner`], the default [`TestRunner`](crate::TestRunner): suites run as shell
//! commands.

use std::process::Stdio;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::event::StageProgress;
use crate::test_runner::{TestReport, TestRunner, TestSuite};

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
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(&suite.command)
            .current_dir(&suite.workdir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // Its own process group, so that stopping the suite stops everything it started
        // (`sh -c "cargo test"` runs test binaries as grandchildren).
        #[cfg(unix)]
        command.process_group(0);
        let mut child = command.spawn().map_err(|e| {
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
        // Dropping this future (a stage timeout) must stop the whole group too.
        let group = ProcessGroup(child.id());
        let status = tokio::select! {
            () = cancel.cancelled() => {
                drop(group);
                let _ = child.kill().await;
                return Err(Error::Cancelled);
            }
            (status, (), ()) = async { tokio::join!(child.wait(), out, err) } => status,
        };
        group.disarm();
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

/// Kills a test command's whole process group when dropped, unless disarmed after the
/// command ended by itself.
struct ProcessGroup(Option<u32>);

impl ProcessGroup {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Some(pid) = self.0.and_then(|p| i32::try_from(p).ok()) {
            // The group may already be gone; nothing else to do then.
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
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
    use crate::event::{Event, EventSink};
    use crate::stage::Stage;

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
    async fn cancellation_kills_the_command_and_what_it_started() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("grandchild.pid");
        let cancel = CancellationToken::new();
        let progress = StageProgress::discard(Stage::Tests);
        let trigger = cancel.clone();
        let watched = pid_file.clone();
        tokio::spawn(async move {
            // Cancel once the grandchild has started.
            while std::fs::read_to_string(&watched).map_or(true, |t| !t.ends_with('\n')) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            trigger.cancel();
        });
        let command = format!("sleep 30 & echo $! > {}; wait", pid_file.display());
        let err = CommandTestRunner
            .run(&suite(&command), &progress, &cancel)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Cancelled));
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // Killed: gone, or a zombie (state Z) waiting for its new parent to reap it.
        std::thread::sleep(Duration::from_millis(50));
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .chars()
            .next();
        assert!(
            matches!(state, None | Some('Z')),
            "grandchild {pid} still runs: {stat}"
        );
    }
}
