//! The run's records: resolving runs that died, and finalizing this run's record.

use super::Pipeline;
use super::run::Run;
use crate::event::Event;
use crate::outcome::Outcome;
use crate::record::{DeploymentRecord, RecordStatus};
use crate::release::Release;
use crate::stage::Stage;

/// How long a verification note on the platform may take to write or read: it is a
/// single small call, and the run does not wait on a platform that cannot answer it.
const NOTE_TIME_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Waits before each further attempt to write a run's final record.
const FINAL_RECORD_RETRIES: [std::time::Duration; 2] = [
    std::time::Duration::from_millis(200),
    std::time::Duration::from_secs(1),
];

impl Pipeline {
    /// Resolves runs of this environment that are still `in_progress`: the caller holds the
    /// environment's lock, so no live run owns them. A run whose verification note the
    /// platform holds ([`crate::Target::verified_by`]) verified its release and only lost its
    /// final record: it is recorded as succeeded, so its release stays a known-good one. Any
    /// other is marked abandoned. Deploy and rollback runs both do this once they hold the
    /// lock.
    pub(super) async fn resolve_interrupted_runs(&self, environment: &str, run: &mut Run<'_>) {
        let stale = match self.store.in_progress(environment).await {
            Ok(stale) => stale,
            Err(e) => {
                run.warn(
                    Stage::Record,
                    format!("reading the ledger failed: {}", e.chain()),
                );
                return;
            }
        };
        for mut earlier in stale {
            run.report.interrupted_runs.push(earlier.clone());
            let unfinished = format!(
                "an earlier run never finished its record: {} deploying {} by {} (pid {}) started {}",
                earlier.id, earlier.version, earlier.actor, earlier.pid, earlier.started_at
            );
            let verified = self
                .within_note_limit(self.target.verified_by(&earlier.id))
                .await;
            let abandoned_because = match verified {
                Ok(Some(release)) => {
                    let note = format!(
                        "the platform holds its note that it verified {} ({}), so it is recorded as succeeded",
                        release.version, release.image
                    );
                    run.warn(Stage::Record, format!("{unfinished}; {note}"));
                    earlier
                        .warnings
                        .push(format!("recorded by a later run: {note}"));
                    earlier.release = Some(release.clone());
                    earlier.finish(Outcome::Succeeded {
                        release,
                        dry_run: false,
                    });
                    None
                }
                Ok(None) => Some("marking it abandoned".to_owned()),
                Err(e) => Some(format!(
                    "reading the platform's verification note failed ({}), so it is marked abandoned",
                    e.chain()
                )),
            };
            let resolution = match abandoned_because {
                None => "succeeded",
                Some(why) => {
                    run.warn(Stage::Record, format!("{unfinished}; {why}"));
                    earlier.status = RecordStatus::Abandoned;
                    earlier.finished_at = Some(time::OffsetDateTime::now_utc());
                    "abandoned"
                }
            };
            if let Err(e) = self.store.append(&earlier).await {
                run.warn(
                    Stage::Record,
                    format!(
                        "marking run {} {resolution} failed: {}",
                        earlier.id,
                        e.chain()
                    ),
                );
            }
        }
    }

    /// A call about a verification note (writing or reading it), within the note's time
    /// limit: no answer in time is an error of the target.
    async fn within_note_limit<T>(
        &self,
        call: impl std::future::Future<Output = crate::Result<T>>,
    ) -> crate::Result<T> {
        tokio::time::timeout(NOTE_TIME_LIMIT, call)
            .await
            .unwrap_or_else(|_| {
                Err(crate::Error::target(
                    self.target.kind(),
                    format!("no answer in {}s", NOTE_TIME_LIMIT.as_secs()),
                ))
            })
    }

    /// Leaves the target's note that this run verified `release`, before its final record
    /// is written: should the record be lost, a later run still finds the release verified.
    /// A note that cannot be written is a warning; the record still holds the truth.
    async fn mark_verified(&self, run: &mut Run<'_>, release: &Release) {
        let marked = self
            .within_note_limit(self.target.mark_verified(release, &run.report.run_id))
            .await;
        match marked {
            Ok(true) => self.events.progress(
                Stage::Finalize,
                format!(
                    "noted on the {} target that {} is verified",
                    self.target.kind(),
                    release.version
                ),
            ),
            Ok(false) => {}
            Err(e) => run.warn(
                Stage::Finalize,
                format!(
                    "leaving the verification note on the target failed: {}",
                    super::stage::chain(&e)
                ),
            ),
        }
    }

    /// Finishes `record` with the report's outcome and appends it.
    pub(super) async fn finalize_record(&self, run: &mut Run<'_>, record: &mut DeploymentRecord) {
        let started = std::time::Instant::now();
        self.events.emit(Event::StageStarted {
            stage: Stage::Finalize,
        });
        if let Outcome::Succeeded {
            release,
            dry_run: false,
        } = &run.report.outcome
        {
            let release = release.clone();
            self.mark_verified(run, &release).await;
        }
        record.finish(run.report.outcome.clone());
        record.stages = run.report.stages.clone();
        record.warnings = run.report.warnings.clone();
        if record.previous.is_none() {
            record.previous = run.report.previous.clone();
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
                run.report.recorded = true;
                crate::stage::StageResult::Succeeded
            }
            Err(e) => {
                let message = format!(
                    "writing the final deployment record failed after {} attempts, so the ledger still shows run {} in progress: {}",
                    FINAL_RECORD_RETRIES.len() + 1,
                    record.id,
                    super::stage::chain(&e)
                );
                run.warn(Stage::Finalize, message.clone());
                run.report.recorded = false;
                crate::stage::StageResult::Failed { message }
            }
        };
        self.events.emit(Event::StageFinished {
            stage: Stage::Finalize,
            elapsed: started.elapsed(),
            result,
        });
    }
}
