//! Running one stage: events, timings, per-stage and overall time limits, cancellation.

use std::future::Future;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::event::{Event, EventSink};
use crate::outcome::Outcome;
use crate::record::StageTiming;
use crate::stage::{Stage, StageResult};

/// How a run can be stopped: a cancellation token (Ctrl-C) and the overall deadline.
#[derive(Clone, Debug)]
pub struct RunControl {
    cancel: CancellationToken,
    deadline: Option<Instant>,
}

impl RunControl {
    /// A run stopped by `cancel`, with no overall deadline yet (the pipeline sets one from
    /// the environment's `timeouts.overall`).
    pub fn new(cancel: CancellationToken) -> Self {
        Self {
            cancel,
            deadline: None,
        }
    }

    /// The cancellation token.
    pub fn cancel_token(&self) -> &CancellationToken {
        &self.cancel
    }

    /// The same control with the deadline `overall` from now, unless an earlier one is set.
    pub(crate) fn with_overall(&self, overall: Duration) -> Self {
        // A limit too far away to represent is no limit; it never panics.
        let deadline = match (self.deadline, Instant::now().checked_add(overall)) {
            (Some(d), Some(candidate)) => Some(d.min(candidate)),
            (d, candidate) => d.or(candidate),
        };
        Self {
            cancel: self.cancel.clone(),
            deadline,
        }
    }

    /// A control for work that must run to completion even after the run was cancelled
    /// (a rollback): a fresh token, bounded only by `limit`.
    pub(crate) fn uncancellable(limit: Duration) -> Self {
        Self {
            cancel: CancellationToken::new(),
            deadline: Instant::now().checked_add(limit),
        }
    }

    /// Runs `work` within `limit` (and the overall deadline) without stopping it on
    /// cancellation: for a call that must not be abandoned halfway (starting a rollout).
    /// The caller checks the token once it returns.
    pub(crate) async fn run_to_completion<T>(
        &self,
        limit: Duration,
        work: impl Future<Output = Result<T>>,
    ) -> Result<T, StageError> {
        Self::uncancellable(self.limit(limit))
            .run(limit, work)
            .await
    }

    fn limit(&self, limit: Duration) -> Duration {
        match self.deadline {
            Some(deadline) => limit.min(deadline.saturating_duration_since(Instant::now())),
            None => limit,
        }
    }

    /// Runs `work` within `limit` (and the overall deadline), stopping it on cancellation.
    pub(crate) async fn run<T>(
        &self,
        limit: Duration,
        work: impl Future<Output = Result<T>>,
    ) -> Result<T, StageError> {
        let limit = self.limit(limit);
        tokio::select! {
            biased;
            () = self.cancel.cancelled() => Err(StageError::Cancelled),
            result = tokio::time::timeout(limit, work) => match result {
                Err(_) => Err(StageError::TimedOut(limit)),
                Ok(Err(Error::Cancelled)) => Err(StageError::Cancelled),
                Ok(Err(e)) if e.may_have_been_applied() => Err(StageError::MaybeApplied(chain(&e))),
                Ok(Err(e)) => Err(StageError::Failed(chain(&e))),
                Ok(Ok(value)) => Ok(value),
            },
        }
    }
}

/// Why a stage stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum StageError {
    /// It failed, with the error chain as text.
    Failed(String),
    /// A platform write failed in a way that may have been applied, with the error chain.
    MaybeApplied(String),
    /// It ran out of time.
    TimedOut(Duration),
    /// The run was cancelled.
    Cancelled,
}

impl StageError {
    /// The outcome of a run stopped by this error before anything was deployed.
    pub(crate) fn before_deploy(self, stage: Stage) -> Outcome {
        match self {
            Self::Cancelled => Outcome::Cancelled {
                stage,
                rollback: None,
            },
            Self::TimedOut(_) => Outcome::TimedOut {
                stage,
                rollback: None,
            },
            Self::Failed(reason) | Self::MaybeApplied(reason) => {
                Outcome::FailedBeforeDeploy { stage, reason }
            }
        }
    }

    pub(crate) fn message(&self) -> String {
        match self {
            Self::Failed(m) | Self::MaybeApplied(m) => m.clone(),
            Self::TimedOut(d) => {
                format!("timed out after {}", humantime::format_duration(round(*d)))
            }
            Self::Cancelled => "cancelled".to_owned(),
        }
    }
}

/// Durations printed to the second, or the millisecond below a second.
fn round(d: Duration) -> Duration {
    if d >= Duration::from_secs(1) {
        Duration::from_secs(d.as_secs())
    } else {
        Duration::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

pub(crate) use crate::error::chain;

/// Emits stage events and collects stage timings for one run.
#[derive(Debug)]
pub(crate) struct StageLog<'a> {
    events: &'a EventSink,
    timings: Vec<StageTiming>,
}

/// A stage that has started.
#[derive(Debug)]
#[must_use = "a started stage must be ended"]
pub(crate) struct Started {
    stage: Stage,
    at: Instant,
}

impl<'a> StageLog<'a> {
    pub(crate) fn new(events: &'a EventSink) -> Self {
        Self {
            events,
            timings: Vec::new(),
        }
    }

    pub(crate) fn begin(&self, stage: Stage) -> Started {
        self.events.emit(Event::StageStarted { stage });
        Started {
            stage,
            at: Instant::now(),
        }
    }

    pub(crate) fn end(&mut self, started: Started, result: StageResult) {
        let elapsed = started.at.elapsed();
        self.timings
            .push(StageTiming::new(started.stage, elapsed, result.clone()));
        self.events.emit(Event::StageFinished {
            stage: started.stage,
            elapsed,
            result,
        });
    }

    pub(crate) fn succeed(&mut self, started: Started) {
        self.end(started, StageResult::Succeeded);
    }

    pub(crate) fn fail(&mut self, started: Started, message: impl Into<String>) {
        self.end(
            started,
            StageResult::Failed {
                message: message.into(),
            },
        );
    }

    pub(crate) fn skip(&mut self, stage: Stage, reason: impl Into<String>) {
        let started = self.begin(stage);
        self.end(
            started,
            StageResult::Skipped {
                reason: reason.into(),
            },
        );
    }

    /// Where stage events go.
    pub(crate) fn events(&self) -> &'a EventSink {
        self.events
    }

    pub(crate) fn timings(&self) -> &[StageTiming] {
        &self.timings
    }
}
