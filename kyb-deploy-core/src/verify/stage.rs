//! [`verify_stage`]: one verification of what answers now, as a `verify` stage of its own:
//! what `kyb-deploy verify` runs, with the same events, time limit and cancellation as the
//! verify stage of a deployment.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::event::{Event, EventSink};
use crate::stage::{Stage, StageResult};
use crate::verify::{HealthProbe, VerificationReport, VerifyRequest};

/// Time a probe gets past its own time limit to hand in what it saw, before the stage's
/// limit cuts it off.
pub(crate) const PROBE_MARGIN: Duration = Duration::from_secs(5);

/// How a [`verify_stage`] ended.
#[derive(Debug)]
pub enum VerifyOutcome {
    /// Every check passed.
    Passed(VerificationReport),
    /// A check failed; the report says which.
    Failed(VerificationReport),
    /// Out of time before a verdict, with what was seen when the probe could say.
    TimedOut {
        /// The time limit.
        limit: Duration,
        /// The checks seen until then.
        report: Option<VerificationReport>,
    },
    /// Cancelled (Ctrl-C, SIGTERM).
    Cancelled,
    /// The probe could not run at all (settings, transport).
    Error(Error),
}

/// Verifies `request` with `probe` as one `verify` stage on `events` (started, progress,
/// finished with its result), within `request.time_limit` (the probe reports what it saw
/// when it runs out), stopping at once when `cancel` fires.
pub async fn verify_stage(
    probe: &dyn HealthProbe,
    request: &VerifyRequest,
    events: &EventSink,
    cancel: &CancellationToken,
) -> VerifyOutcome {
    events.emit(Event::StageStarted {
        stage: Stage::Verify,
    });
    let started = Instant::now();
    let progress = events.for_stage(Stage::Verify);
    let verify = probe.verify(request, &progress, cancel);
    let outcome = tokio::select! {
        () = cancel.cancelled() => VerifyOutcome::Cancelled,
        answer = backstop(request.time_limit, verify) => match answer {
            None => VerifyOutcome::TimedOut {
                limit: request.time_limit.unwrap_or_default(),
                report: None,
            },
            Some(Err(Error::Cancelled)) => VerifyOutcome::Cancelled,
            Some(Err(e)) => VerifyOutcome::Error(e),
            Some(Ok(report)) if report.timed_out => VerifyOutcome::TimedOut {
                limit: request.time_limit.unwrap_or_default(),
                report: Some(report),
            },
            Some(Ok(report)) if report.passed => VerifyOutcome::Passed(report),
            Some(Ok(report)) => VerifyOutcome::Failed(report),
        },
    };
    let result = match &outcome {
        VerifyOutcome::Passed(_) => StageResult::Succeeded,
        VerifyOutcome::Failed(report) => StageResult::Failed {
            message: report
                .failure()
                .unwrap_or_else(|| "verification failed".to_owned()),
        },
        VerifyOutcome::TimedOut { limit, report } => StageResult::Failed {
            message: format!(
                "timed out after {}{}",
                humantime::format_duration(*limit),
                report
                    .as_ref()
                    .and_then(VerificationReport::failure)
                    .map_or_else(String::new, |f| format!(": {f}"))
            ),
        },
        VerifyOutcome::Cancelled => StageResult::Failed {
            message: "interrupted".to_owned(),
        },
        VerifyOutcome::Error(e) => StageResult::Failed {
            message: e.to_string(),
        },
    };
    events.emit(Event::StageFinished {
        stage: Stage::Verify,
        elapsed: started.elapsed(),
        result,
    });
    outcome
}

/// `work`, cut off [`PROBE_MARGIN`] after `limit` (`None` when it was); no limit without one.
async fn backstop<T>(limit: Option<Duration>, work: impl Future<Output = T>) -> Option<T> {
    match limit {
        Some(limit) => tokio::time::timeout(limit.saturating_add(PROBE_MARGIN), work)
            .await
            .ok(),
        None => Some(work.await),
    }
}
