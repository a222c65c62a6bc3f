//! Stages that deploy and rollback runs share, written once so that both end a stage the
//! same way: a plan (dry runs), the environment's lock. Cancellation and time limits become
//! `cancelled` and `timed_out` outcomes in both; only a plain failure is "failed before
//! anything was deployed".

use super::stage::{RunControl, StageLog};
use super::{Pipeline, RunReport, RunState};
use crate::config::Environment;
use crate::outcome::Outcome;
use crate::release::Release;
use crate::stage::Stage;

impl Pipeline {
    /// A dry run's plan of `release`: every change it would make, as progress and in the
    /// report, and nothing changed.
    pub(super) async fn plan_stage(
        &self,
        env: &Environment,
        release: Release,
        control: &RunControl,
        stages: &mut StageLog<'_>,
        report: &mut RunReport,
    ) -> Outcome {
        let started = stages.begin(Stage::Plan);
        match control
            .run(env.settings.timeouts.deploy, self.target.plan(&release))
            .await
        {
            Ok(plan) => {
                for change in &plan.changes {
                    self.events.progress(
                        Stage::Plan,
                        format!(
                            "{} {}: {} -> {}",
                            change.resource,
                            change.field,
                            change.from.as_deref().unwrap_or("(none)"),
                            change.to.as_deref().unwrap_or("(none)")
                        ),
                    );
                }
                if report.previous.is_none() {
                    report.previous = plan.current.clone();
                }
                report.plan = Some(plan);
                stages.succeed(started);
                Outcome::Succeeded {
                    release,
                    dry_run: true,
                }
            }
            Err(e) => {
                stages.fail(started, e.message());
                e.before_deploy(Stage::Plan)
            }
        }
    }

    /// Takes the environment's lock for the rest of the run (held in `state` until the
    /// final record is written).
    pub(super) async fn lock_stage(
        &self,
        env: &Environment,
        control: &RunControl,
        stages: &mut StageLog<'_>,
        state: &mut RunState,
    ) -> Result<(), Outcome> {
        let started = stages.begin(Stage::Lock);
        match control
            .run(env.settings.timeouts.deploy, self.lock.acquire(&env.name))
            .await
        {
            Ok(guard) => {
                state.lock = Some(guard);
                stages.succeed(started);
                Ok(())
            }
            Err(e) => {
                stages.fail(started, e.message());
                Err(e.before_deploy(Stage::Lock))
            }
        }
    }
}
