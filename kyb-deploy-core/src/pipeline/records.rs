//! The run's records: resolving runs that died, and finalizing this run's record.

use super::{Pipeline, RunReport};
use crate::event::{Event, Stage};
use crate::record::{DeploymentRecord, RecordStatus};

/// Waits before each further attempt to write a run's final record.
const FINAL_RECORD_RETRIES: [std::time::Duration; 2] = [
    std::time::Duration::from_millis(200),
    std::time::Duration::from_secs(1),
];

impl Pipeline {
    /// Marks runs of this environment that are still `in_progress` as abandoned: the caller
    /// holds the environment's lock, so no live run owns them. Deploy and rollback runs both
    /// do this once they hold the lock.
    pub(super) async fn resolve_interrupted_runs(&self, environment: &str, report: &mut RunReport) {
        let stale = match self.store.in_progress(environment).await {
            Ok(stale) => stale,
            Err(e) => {
                self.warn(
                    report,
                    Stage::Record,
                    format!("reading the ledger failed: {e}"),
                );
                return;
            }
        };
        for mut run in stale {
            self.warn(
                report,
                Stage::Record,
                format!(
                    "an earlier run never finished: {} deploying {} by {} (pid {}) started {}; marking it abandoned",
                    run.id, run.version, run.actor, run.pid, run.started_at
                ),
            );
            report.interrupted_runs.push(run.clone());
            run.status = RecordStatus::Abandoned;
            run.finished_at = Some(time::OffsetDateTime::now_utc());
            if let Err(e) = self.store.append(&run).await {
                self.warn(
                    report,
                    Stage::Record,
                    format!("marking run {} abandoned failed: {e}", run.id),
                );
            }
        }
    }

    /// Finishes `record` with the report's outcome and appends it.
    pub(super) async fn finalize_record(
        &self,
        report: &mut RunReport,
        record: &mut DeploymentRecord,
    ) {
        let started = std::time::Instant::now();
        self.events.emit(Event::StageStarted {
            stage: Stage::Finalize,
        });
        record.finish(report.outcome.clone());
        record.stages = report.stages.clone();
        record.warnings = report.warnings.clone();
        if record.previous.is_none() {
            record.previous = report.previous.clone();
        }
        // The record is the run's promise: a passing disk hiccup is retried before the run
        // is reported unrecorded.
        let mut written = self.store.append(record).await;
        for delay in FINAL_RECORD_RETRIES {
            if written.is_ok() {
                break;
            }
            tokio::time::sleep(delay).await;
            written = self.store.append(record).await;
        }
        let result = match written {
            Ok(()) => {
                report.recorded = true;
                crate::event::StageResult::Succeeded
            }
            Err(e) => {
                let message = format!(
                    "writing the final deployment record failed after {} attempts, so the ledger still shows run {} in progress: {}",
                    FINAL_RECORD_RETRIES.len() + 1,
                    record.id,
                    super::stage::chain(&e)
                );
                self.warn(report, Stage::Finalize, message.clone());
                report.recorded = false;
                crate::event::StageResult::Failed { message }
            }
        };
        self.events.emit(Event::StageFinished {
            stage: Stage::Finalize,
            elapsed: started.elapsed(),
            result,
        });
    }
}
