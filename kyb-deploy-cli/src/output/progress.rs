//! Live rendering of pipeline events on stderr: spinners with elapsed time on a terminal,
//! plain lines otherwise, JSON lines with `--output json`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use kyb_deploy_core::{Event, EventSink, Stage, StageResult};

use super::format;
use super::style::Style;
use super::writer::SharedWriter;
use crate::args::OutputFormat;
use crate::context::CliContext;

/// Renders the events of one run. Cloning shares the renderer.
#[derive(Clone, Debug)]
pub(crate) struct Progress {
    state: Arc<Mutex<State>>,
}

#[derive(Debug)]
enum Mode {
    /// One line per finished stage, progress lines indented under a stage header.
    Plain,
    /// A spinner per running stage; lines are printed above the spinners.
    Tty {
        multi: MultiProgress,
        bars: HashMap<Stage, ProgressBar>,
    },
    /// Each event as one JSON line.
    Json,
}

#[derive(Debug)]
struct State {
    out: SharedWriter,
    style: Style,
    mode: Mode,
    /// What the run does, for the first line (`deploy to`, `dry run of a deploy to`).
    title: String,
    /// The stage running now (plain mode).
    running: Option<Stage>,
    /// Stages whose header line was printed (plain mode).
    headers: HashSet<Stage>,
}

impl Progress {
    /// A renderer writing to `out`. `tty` selects spinners for human output.
    pub(crate) fn new(
        out: SharedWriter,
        format: OutputFormat,
        tty: bool,
        style: Style,
        title: impl Into<String>,
    ) -> Self {
        let mode = match format {
            OutputFormat::Json => Mode::Json,
            OutputFormat::Human if tty => Mode::Tty {
                multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
                bars: HashMap::new(),
            },
            OutputFormat::Human => Mode::Plain,
        };
        Self {
            state: Arc::new(Mutex::new(State {
                out,
                style,
                mode,
                title: title.into(),
                running: None,
                headers: HashSet::new(),
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A renderer for a run of the command in `ctx`, registered as the context's active
    /// renderer so that notes written while it runs (Ctrl-C) appear above its spinners.
    pub(crate) fn start(ctx: &CliContext, format: OutputFormat, title: impl Into<String>) -> Self {
        let progress = Self::new(
            ctx.stderr.clone(),
            format,
            ctx.stderr_is_tty,
            ctx.style,
            title,
        );
        *ctx.active_progress
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(progress.clone());
        progress
    }

    /// Prints a line on stderr, above any spinner.
    pub(crate) fn line(&self, text: &str) {
        self.lock().print(text);
    }

    /// `sink` with this renderer subscribed.
    pub(crate) fn subscribe(&self, sink: EventSink) -> EventSink {
        let this = self.clone();
        sink.subscribe(move |event| this.lock().handle(event))
    }

    /// A sink that only this renderer listens to.
    pub(crate) fn sink(&self) -> EventSink {
        self.subscribe(EventSink::new())
    }

    /// Removes any spinner left; call before printing the result.
    pub(crate) fn finish(&self) {
        let mut state = self.lock();
        if let Mode::Tty { multi, bars } = &mut state.mode {
            for (_, bar) in bars.drain() {
                bar.finish_and_clear();
                multi.remove(&bar);
            }
            let _ = multi.clear();
        }
    }
}

/// `event` as one JSON line, with `at`: when it was rendered, RFC 3339 in UTC to the
/// millisecond (`2026-12-08T03:50:01.123Z`).
fn json_line(event: &Event, at: time::OffsetDateTime) -> Option<String> {
    let mut value = serde_json::to_value(event).ok()?;
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    let at = at.to_offset(time::UtcOffset::UTC).format(&format).ok()?;
    value.as_object_mut()?.insert("at".to_owned(), at.into());
    serde_json::to_string(&value).ok()
}

impl State {
    fn handle(&mut self, event: &Event) {
        if let Mode::Json = self.mode {
            if let Some(line) = json_line(event, time::OffsetDateTime::now_utc()) {
                self.print(&line);
            }
            return;
        }
        match event {
            Event::RunStarted {
                run_id,
                environment,
                target,
                ..
            } => {
                let line = format!(
                    "{} {environment} with the {target} target {}",
                    self.title,
                    self.style.dim(&format!("(run {run_id})"))
                );
                self.print(&self.style.bold(&line));
            }
            Event::StageStarted { stage } => self.stage_started(*stage),
            Event::StageFinished {
                stage,
                elapsed,
                result,
            } => self.stage_finished(*stage, *elapsed, result),
            Event::Progress { stage, message } => {
                self.header(*stage);
                self.print(&format!("    {message}"));
            }
            Event::Log { stage, line } => {
                self.header(*stage);
                self.print(&self.style.dim(&format!("    │ {line}")));
            }
            Event::Warning { message, .. } => {
                self.print(&format!("{} {message}", self.style.warn("warning:")));
            }
            // The command prints the outcome itself, with its details.
            Event::RunFinished { .. } => {}
            // Events added to core later are rendered once the CLI knows them.
            _ => {}
        }
    }

    fn stage_started(&mut self, stage: Stage) {
        self.running = Some(stage);
        if let Mode::Tty { multi, bars } = &mut self.mode {
            let template = if self.style.color() {
                "{spinner:.cyan} {prefix:.bold} {elapsed:.dim} {wide_msg:.dim}"
            } else {
                "{spinner} {prefix} {elapsed} {wide_msg}"
            };
            let style = ProgressStyle::with_template(template)
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
            let bar = multi.add(ProgressBar::new_spinner().with_style(style));
            bar.set_prefix(stage.as_str());
            bar.enable_steady_tick(Duration::from_millis(120));
            bars.insert(stage, bar);
        }
    }

    /// In plain mode, the first line printed within a running stage is preceded by the
    /// stage's name, so that progress and log lines read under their stage.
    fn header(&mut self, stage: Stage) {
        if matches!(self.mode, Mode::Plain)
            && self.running == Some(stage)
            && self.headers.insert(stage)
        {
            self.print(&format!("{} {stage}", self.style.bold("▸")));
        }
    }

    fn stage_finished(&mut self, stage: Stage, elapsed: Duration, result: &StageResult) {
        if self.running == Some(stage) {
            self.running = None;
        }
        self.headers.remove(&stage);
        if let Mode::Tty { multi, bars } = &mut self.mode {
            remove_bar(multi, bars, stage);
        }
        let took = format::elapsed(elapsed);
        let line = match result {
            StageResult::Succeeded => format!(
                "{} {stage} ... {} ({took})",
                self.style.bold("▸"),
                self.style.good("ok")
            ),
            StageResult::Failed { message } => format!(
                "{} {stage} {} ({took}): {message}",
                self.style.bad("✗"),
                self.style.bad("failed")
            ),
            StageResult::Skipped { reason } => {
                self.style.dim(&format!("- {stage} skipped: {reason}"))
            }
        };
        self.print(&line);
    }

    /// Prints a line above any spinner. Failing to write progress must not fail the run.
    fn print(&self, line: &str) {
        let text = format!("{line}\n");
        match &self.mode {
            Mode::Tty { multi, .. } => multi.suspend(|| {
                let _ = self.out.write_text(&text);
            }),
            Mode::Plain | Mode::Json => {
                let _ = self.out.write_text(&text);
            }
        }
    }
}

/// Removes the spinner of `stage`, if it has one.
fn remove_bar(multi: &MultiProgress, bars: &mut HashMap<Stage, ProgressBar>, stage: Stage) {
    if let Some(bar) = bars.remove(&stage) {
        bar.finish_and_clear();
        multi.remove(&bar);
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Buffer {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    fn render(format: OutputFormat, events: &[Event]) -> String {
        let buffer = Buffer::default();
        let progress = Progress::new(
            SharedWriter::new(buffer.clone()),
            format,
            false,
            Style::new(false),
            "deploy to",
        );
        let sink = progress.sink();
        for event in events {
            sink.emit(event.clone());
        }
        progress.finish();
        buffer.text()
    }

    fn finished(stage: Stage, ms: u64, result: StageResult) -> Event {
        Event::StageFinished {
            stage,
            elapsed: Duration::from_millis(ms),
            result,
        }
    }

    #[test]
    fn plain_lines_show_each_stage_with_its_time_and_messages_under_it() {
        let text = render(
            OutputFormat::Human,
            &[
                Event::StageStarted {
                    stage: Stage::Tests,
                },
                Event::Progress {
                    stage: Stage::Tests,
                    message: "unit tests: cargo test".into(),
                },
                Event::Log {
                    stage: Stage::Tests,
                    line: "running 3 tests".into(),
                },
                finished(Stage::Tests, 1234, StageResult::Succeeded),
                Event::StageStarted {
                    stage: Stage::Build,
                },
                finished(
                    Stage::Build,
                    0,
                    StageResult::Skipped {
                        reason: "no image builder".into(),
                    },
                ),
                Event::Warning {
                    stage: Stage::Tests,
                    message: "tests were skipped".into(),
                },
                Event::StageStarted {
                    stage: Stage::Verify,
                },
                finished(
                    Stage::Verify,
                    3400,
                    StageResult::Failed {
                        message: "liveness check failed: HTTP 503".into(),
                    },
                ),
            ],
        );
        assert_eq!(
            text,
            "▸ tests\n    unit tests: cargo test\n    │ running 3 tests\n▸ tests ... ok (1.2s)\n\
             - build skipped: no image builder\nwarning: tests were skipped\n\
             ✗ verify failed (3.4s): liveness check failed: HTTP 503\n"
        );
    }

    #[test]
    fn json_mode_writes_one_event_per_line() {
        let text = render(
            OutputFormat::Json,
            &[
                Event::StageStarted {
                    stage: Stage::Tests,
                },
                finished(Stage::Tests, 5, StageResult::Succeeded),
            ],
        );
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["event"], "stage_started");
        // Each event says when, in RFC 3339.
        for line in &lines {
            let at = line["at"].as_str().unwrap();
            time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
                .unwrap_or_else(|e| panic!("{at}: {e}"));
            assert!(at.ends_with('Z') && at.len() == 24, "{at}");
        }
        assert_eq!(lines[1]["elapsed_ms"], 5);
        assert_eq!(lines[1]["result"]["status"], "succeeded");
    }
}
