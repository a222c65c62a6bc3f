//! The pipeline's typed event stream.
//!
//! Every stage reports through one [`EventSink`]. The CLI renders the events; records,
//! metrics and notifications can subscribe to the same stream.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;

use crate::outcome::Outcome;
use crate::stage::{Stage, StageResult};

/// One event of a run.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// The run began.
    RunStarted {
        /// Id of the run (and of its record).
        run_id: String,
        /// Environment name.
        environment: String,
        /// Target kind.
        target: String,
        /// Whether nothing will be changed.
        dry_run: bool,
    },
    /// A stage began.
    StageStarted {
        /// The stage.
        stage: Stage,
    },
    /// A stage ended.
    StageFinished {
        /// The stage.
        stage: Stage,
        /// How long it took.
        #[serde(rename = "elapsed_ms", serialize_with = "as_millis")]
        elapsed: Duration,
        /// How it ended.
        result: StageResult,
    },
    /// Something happened within a stage (rollout progress, a probe attempt...).
    Progress {
        /// The stage.
        stage: Stage,
        /// What happened.
        message: String,
    },
    /// A line of output from a tool the stage runs (tests, build).
    Log {
        /// The stage.
        stage: Stage,
        /// The line, without its newline.
        line: String,
    },
    /// Something the user must know, that does not stop the run.
    Warning {
        /// The stage.
        stage: Stage,
        /// What to know.
        message: String,
    },
    /// The run ended.
    RunFinished {
        /// How it ended.
        outcome: Outcome,
    },
}

fn as_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

type Subscriber = Arc<dyn Fn(&Event) + Send + Sync>;

/// Where events go: a cheap-to-clone fan-out to subscribers.
///
/// ```
/// use kyb_deploy_core::{Event, EventSink, Stage};
///
/// let (sink, mut rx) = EventSink::new().channel();
/// sink.progress(Stage::Wait, "2/3 tasks running");
/// assert!(matches!(rx.try_recv().unwrap(), Event::Progress { .. }));
/// ```
#[derive(Clone, Default)]
pub struct EventSink {
    subscribers: Vec<Subscriber>,
}

impl fmt::Debug for EventSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventSink")
            .field("subscribers", &self.subscribers.len())
            .finish()
    }
}

impl EventSink {
    /// A sink with no subscribers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a subscriber; it is called for every event, in order, and must not block.
    pub fn subscribe(mut self, subscriber: impl Fn(&Event) + Send + Sync + 'static) -> Self {
        self.subscribers.push(Arc::new(subscriber));
        self
    }

    /// Adds a subscriber that forwards every event into a channel.
    pub fn channel(self) -> (Self, mpsc::UnboundedReceiver<Event>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let sink = self.subscribe(move |event| {
            // A dropped receiver only means nobody listens any more.
            let _ = tx.send(event.clone());
        });
        (sink, rx)
    }

    /// Sends an event to every subscriber.
    pub fn emit(&self, event: Event) {
        for subscriber in &self.subscribers {
            subscriber(&event);
        }
    }

    /// Emits [`Event::Progress`].
    pub fn progress(&self, stage: Stage, message: impl Into<String>) {
        self.emit(Event::Progress {
            stage,
            message: message.into(),
        });
    }

    /// Emits [`Event::Log`].
    pub fn log(&self, stage: Stage, line: impl Into<String>) {
        self.emit(Event::Log {
            stage,
            line: line.into(),
        });
    }

    /// Emits [`Event::Warning`].
    pub fn warn(&self, stage: Stage, message: impl Into<String>) {
        self.emit(Event::Warning {
            stage,
            message: message.into(),
        });
    }

    /// A handle that reports progress of one stage, for seams that do not know stages.
    pub fn for_stage(&self, stage: Stage) -> StageProgress {
        StageProgress {
            sink: self.clone(),
            stage,
        }
    }
}

/// Reports progress, log lines and warnings of one stage. Targets, probes and test runners
/// receive one of these.
#[derive(Clone, Debug)]
pub struct StageProgress {
    sink: EventSink,
    stage: Stage,
}

impl StageProgress {
    /// A progress handle that reports nowhere.
    pub fn discard(stage: Stage) -> Self {
        EventSink::new().for_stage(stage)
    }

    /// The stage this handle reports for.
    pub fn stage(&self) -> Stage {
        self.stage
    }

    /// Reports progress.
    pub fn progress(&self, message: impl Into<String>) {
        self.sink.progress(self.stage, message);
    }

    /// Reports a line of tool output.
    pub fn log(&self, line: impl Into<String>) {
        self.sink.log(self.stage, line);
    }

    /// Reports a warning.
    pub fn warn(&self, message: impl Into<String>) {
        self.sink.warn(self.stage, message);
    }
}
