//! Stages that deploy and rollback runs share, written once so that both end a stage the
//! same way: a plan (dry runs), the environment's lock. Cancellation and time limits become
//! `cancelled` and `timed_out` outcomes in both; only a plain failure is "failed before
//! anything was deployed".

use std::time::Duration;

use super::Pipeline;
use super::run::Run;
use crate::config::Environment;
use crate::error::Error;
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
        run: &mut Run<'_>,
    ) -> Outcome {
        let started = run.stages.begin(Stage::Plan);
        match run
            .control
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
                if run.report.previous.is_none() {
                    run.report.previous = plan.current.clone();
                }
                run.report.plan = Some(plan);
                run.stages.succeed(started);
                Outcome::Succeeded {
                    release,
                    dry_run: true,
                }
            }
            Err(e) => {
                run.stages.fail(started, e.message());
                e.before_deploy(Stage::Plan)
            }
        }
    }

    /// Takes the environment's lock for the rest of the run (held in `run` until the
    /// record is final). While another run holds it, tries again every second for up to
    /// `wait` (saying once whom it waits for), then fails naming the holder.
    pub(super) async fn lock_stage(
        &self,
        env: &Environment,
        run: &mut Run<'_>,
        wait: Duration,
    ) -> Result<(), Outcome> {
        let started = run.stages.begin(Stage::Lock);
        // The run's overall time limit bounds the wait anyway; a year keeps the arithmetic
        // in range whatever was asked.
        let wait = wait.min(Duration::from_secs(365 * 24 * 3600));
        let until = tokio::time::Instant::now() + wait;
        let acquire = async {
            let mut said = false;
            loop {
                match self.lock.acquire(&env.name).await {
                    Err(Error::Locked { holder, .. }) if tokio::time::Instant::now() < until => {
                        if !said {
                            self.events.progress(
                                Stage::Lock,
                                format!(
                                    "{} is locked by another deployment ({holder}); waiting up to {}",
                                    env.name,
                                    humantime::format_duration(wait)
                                ),
                            );
                            said = true;
                        }
                        let left = until.saturating_duration_since(tokio::time::Instant::now());
                        tokio::time::sleep(LOCK_RETRY.min(left)).await;
                    }
                    other => return other,
                }
            }
        };
        match run
            .control
            .run(env.settings.timeouts.deploy.saturating_add(wait), acquire)
            .await
        {
            Ok(guard) => {
                if let Some(previous) = guard.took_over() {
                    run.warn(
                        Stage::Lock,
                        format!(
                            "took over the expired lock of {} ({previous}): its holder stopped renewing it",
                            env.name
                        ),
                    );
                }
                run.lock = Some(guard);
                run.stages.succeed(started);
                Ok(())
            }
            Err(e) => {
                run.stages.fail(started, e.message());
                Err(e.before_deploy(Stage::Lock))
            }
        }
    }
}

/// How often a run waiting for the lock tries again.
const LOCK_RETRY: Duration = Duration::from_secs(1);
