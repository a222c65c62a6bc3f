//! [`Run`], the one value a deploy or rollback run carries through its stages, and how a
//! run starts and ends the same way for both.

use super::image::MutableTags;
use super::stage::{RunControl, StageLog};
use super::{Pipeline, RunReport};
use crate::config::Environment;
use crate::deploy_lock::LockGuard;
use crate::event::Event;
use crate::outcome::Outcome;
use crate::record::{DeploymentRecord, Operation};
use crate::stage::Stage;

/// A run in progress: how it can be stopped, its stages so far, its report, its ledger
/// record and the environment's lock. Every stage works on it.
pub(super) struct Run<'a> {
    pub(super) control: RunControl,
    pub(super) stages: StageLog<'a>,
    pub(super) report: RunReport,
    /// The run's `in_progress` record, once written.
    pub(super) record: Option<DeploymentRecord>,
    /// The environment's lock, held until the final record is written, so that no other
    /// run can mistake this run's `in_progress` record for a dead one.
    pub(super) lock: Option<LockGuard>,
    /// The image's mutable tags, moved once the release is verified.
    pub(super) mutable_tags: Option<MutableTags>,
}

impl Run<'_> {
    /// Records a warning in the report and emits it.
    pub(super) fn warn(&mut self, stage: Stage, message: impl Into<String>) {
        let message = message.into();
        self.stages.events().warn(stage, message.clone());
        self.report.warnings.push(message);
    }
}

impl Pipeline {
    /// Starts a run of `operation` on `environment` and announces it; `control` gets the
    /// environment's overall time limit.
    pub(super) fn start_run(
        &self,
        operation: Operation,
        environment: &Environment,
        dry_run: bool,
        control: &RunControl,
    ) -> Run<'_> {
        let report = RunReport::new(
            crate::record::new_run_id(time::OffsetDateTime::now_utc()),
            operation,
            &environment.name,
            self.target.kind(),
        );
        self.events.emit(Event::RunStarted {
            run_id: report.run_id.clone(),
            environment: environment.name.clone(),
            target: self.target.kind().to_owned(),
            dry_run,
        });
        Run {
            control: control.with_overall(environment.settings.timeouts.overall),
            stages: StageLog::new(&self.events),
            report,
            record: None,
            lock: None,
            mutable_tags: None,
        }
    }

    /// Ends `run` with `outcome`: finishes its record (`unrecorded` gives the record of a
    /// run that stopped before writing one, if it needs one) and only then releases the
    /// lock, records where the service answers, notifies, and announces the end.
    pub(super) async fn end_run(
        &self,
        mut run: Run<'_>,
        outcome: Outcome,
        environment: &Environment,
        project: &str,
        unrecorded: impl FnOnce(&RunReport) -> Option<DeploymentRecord>,
    ) -> RunReport {
        run.report.outcome = outcome;
        run.report.stages = run.stages.timings().to_vec();
        if let Some(mut record) = run.record.take().or_else(|| unrecorded(&run.report)) {
            self.finalize_record(&mut run, &mut record).await;
        }
        // Only now may another run take the environment.
        if let Some(lock) = run.lock.take() {
            if lock.is_lost() {
                run.warn(
                    Stage::Lock,
                    format!(
                        "the lock of {} was lost during this run (its renewals failed for longer than its time to live and another run took it over): another run may have changed the environment since",
                        environment.name
                    ),
                );
            }
            if let Err(e) = lock.release().await {
                run.warn(
                    Stage::Lock,
                    format!(
                        "releasing the lock of {} failed ({}); it expires on its own once its time to live passes, or break it with `kyb-deploy unlock -e {}`",
                        environment.name,
                        e.chain(),
                        environment.name
                    ),
                );
            }
        }
        let mut report = run.report;
        self.locate(environment, &mut report).await;
        self.notify(&mut report, project).await;
        self.events.emit(Event::RunFinished {
            outcome: report.outcome.clone(),
        });
        report
    }
}
