//! The deploy run: preflight to notify, with rollback on failure.

use time::OffsetDateTime;

use super::stage::{RunControl, StageError, StageLog};
use super::{DeployRequest, Pipeline, RunReport};
use crate::error::Result;
use crate::event::Stage;
use crate::outcome::Outcome;
use crate::probe::VerifyRequest;
use crate::record::{DeploymentRecord, Operation, RecordStatus};
use crate::release::Release;
use crate::target::RolloutOutcome;

impl Pipeline {
    /// Runs a deployment. The returned report always carries an outcome; `Err` is never
    /// returned for a failed deployment, only the report says how it failed.
    pub async fn deploy(&self, request: &DeployRequest, control: &RunControl) -> RunReport {
        let env = &request.environment;
        let control = control.with_overall(env.settings.timeouts.overall);
        let mut report = self.begin_run(Operation::Deploy, &env.name, request.dry_run);
        let mut stages = StageLog::new(&self.events);
        let mut record = None;
        report.outcome = self
            .deploy_stages(request, &control, &mut stages, &mut report, &mut record)
            .await;
        report.stages = stages.timings().to_vec();
        self.finalize(&mut report, record, request).await;
        self.notify(&report, &request.project.name).await;
        self.finish(&report);
        report
    }

    async fn deploy_stages(
        &self,
        request: &DeployRequest,
        control: &RunControl,
        stages: &mut StageLog<'_>,
        report: &mut RunReport,
        record: &mut Option<DeploymentRecord>,
    ) -> Outcome {
        let env = &request.environment;
        let timeouts = &env.settings.timeouts;
        let before = |stage, reason: String| Outcome::FailedBeforeDeploy { stage, reason };
        // Preflight: every missing piece at once, before anything changes.
        let needs_git = request.version.is_none() && self.versions.is_none();
        if let Err(outcome) = self
            .preflight_stage(env, &request.project_dir, needs_git, true, stages)
            .await
        {
            return outcome;
        }

        // Version and guards.
        let started = stages.begin(Stage::Version);
        let resolved = match control
            .run(timeouts.deploy, self.version_source(request).resolve())
            .await
        {
            Ok(v) => v,
            Err(e) => {
                stages.fail(started, e.message());
                return e.before_deploy(Stage::Version);
            }
        };
        self.events.progress(
            Stage::Version,
            format!(
                "version {}{}",
                resolved.version,
                resolved
                    .commit
                    .as_deref()
                    .map_or(String::new(), |c| format!(" (commit {c})"))
            ),
        );
        report.version = Some(resolved.clone());
        if let Err(reason) = self.check_guards(request, &resolved, report) {
            stages.fail(started, &reason);
            return before(Stage::Version, reason);
        }
        stages.succeed(started);

        // Tests.
        if let Err(outcome) = self.run_tests(request, control, stages, report).await {
            return outcome;
        }

        // Image: build, scan, push; or the prebuilt image.
        let image = match self
            .produce_image(request, &resolved, control, stages, report)
            .await
        {
            Ok(image) => image,
            Err(outcome) => return outcome,
        };
        let release = Release::new(resolved.version.clone(), image);
        report.release = Some(release.clone());

        if request.dry_run {
            let started = stages.begin(Stage::Plan);
            return match control
                .run(timeouts.deploy, self.target.plan(&release))
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
                    report.previous = plan.current.clone();
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
            };
        }

        // Lock the environment for the rest of the run.
        let started = stages.begin(Stage::Lock);
        let _guard = match control
            .run(timeouts.deploy, self.lock.acquire(&env.name))
            .await
        {
            Ok(g) => g,
            Err(e) => {
                stages.fail(started, e.message());
                return e.before_deploy(Stage::Lock);
            }
        };
        stages.succeed(started);

        // Record: resolve runs that died, then write ours before the first mutation.
        let started = stages.begin(Stage::Record);
        report.previous = match self.target.current_release().await {
            Ok(current) => current,
            Err(e) => {
                let reason = format!("reading the current release failed: {e}");
                stages.fail(started, &reason);
                return before(Stage::Record, reason);
            }
        };
        self.resolve_interrupted_runs(&env.name, report).await;
        let mut new_record = DeploymentRecord::start(
            report.run_id.clone(),
            Operation::Deploy,
            env.name.clone(),
            self.target.kind(),
            resolved.version.clone(),
        );
        new_record.release = Some(release.clone());
        new_record.previous = report.previous.clone();
        new_record.commit = resolved.commit.clone();
        new_record.dirty = resolved.dirty;
        new_record.forced = request.force;
        new_record.skipped_tests = request.skip_tests;
        new_record.warnings = report.warnings.clone();
        if let Err(e) = self.store.append(&new_record).await {
            let reason =
                format!("writing the deployment record failed, so nothing was deployed: {e}");
            stages.fail(started, &reason);
            return before(Stage::Record, reason);
        }
        *record = Some(new_record);
        report.recorded = true;
        stages.succeed(started);

        // Deploy. An error here means the target did not start a rollout.
        let started = stages.begin(Stage::Deploy);
        let handle = match control
            .run(timeouts.deploy, self.target.deploy(&release))
            .await
        {
            Ok(handle) => handle,
            Err(e) => {
                stages.fail(started, e.message());
                return e.before_deploy(Stage::Deploy);
            }
        };
        self.events.progress(
            Stage::Deploy,
            format!("rollout {} started", handle.rollout_id),
        );
        report.rollout_id = Some(handle.rollout_id.clone());
        report.release = Some(handle.release.clone());
        if let Some(r) = record.as_mut() {
            r.rollout_id = Some(handle.rollout_id.clone());
            r.release = Some(handle.release.clone());
        }
        stages.succeed(started);

        // From here on, a failure leaves the environment changed: the rollback policy applies.
        let started = stages.begin(Stage::Wait);
        let progress = self.events.for_stage(Stage::Wait);
        let rollout = control
            .run(
                timeouts.wait,
                self.target.wait(&handle, &progress, control.cancel_token()),
            )
            .await;
        match rollout {
            Ok(RolloutOutcome::Completed) => stages.succeed(started),
            Ok(RolloutOutcome::Failed {
                reason,
                platform_rolled_back_to: Some(to),
            }) => {
                stages.fail(started, &reason);
                return self
                    .verify_platform_rollback(env, Stage::Wait, reason, to, stages, report)
                    .await;
            }
            Ok(RolloutOutcome::Failed {
                reason,
                platform_rolled_back_to: None,
            }) => {
                stages.fail(started, &reason);
                return self
                    .recover(env, Stage::Wait, StageError::Failed(reason), stages, report)
                    .await;
            }
            Err(e) => {
                stages.fail(started, e.message());
                return self.recover(env, Stage::Wait, e, stages, report).await;
            }
        }

        // Verify.
        let started = stages.begin(Stage::Verify);
        let verification = self
            .verify_release(env, &handle.release, control, timeouts.verify)
            .await;
        match verification {
            Ok(v) if v.passed => {
                report.verification = Some(v);
                stages.succeed(started);
                Outcome::Succeeded {
                    release: handle.release.clone(),
                    dry_run: false,
                }
            }
            Ok(v) => {
                let reason = v.failure().unwrap_or_else(|| "verification failed".into());
                report.verification = Some(v);
                stages.fail(started, &reason);
                self.recover(
                    env,
                    Stage::Verify,
                    StageError::Failed(reason),
                    stages,
                    report,
                )
                .await
            }
            Err(e) => {
                stages.fail(started, e.message());
                self.recover(env, Stage::Verify, e, stages, report).await
            }
        }
    }

    /// Marks runs of this environment that are still `in_progress` as abandoned: we hold the
    /// environment's lock, so no live run owns them.
    async fn resolve_interrupted_runs(&self, environment: &str, report: &mut RunReport) {
        let snapshot = match self.store.load().await {
            Ok(s) => s,
            Err(e) => {
                self.warn(
                    report,
                    Stage::Record,
                    format!("reading the ledger failed: {e}"),
                );
                return;
            }
        };
        for problem in &snapshot.problems {
            self.warn(
                report,
                Stage::Record,
                format!("ledger line {}: {}", problem.line, problem.message),
            );
        }
        let stale: Vec<DeploymentRecord> = snapshot.in_progress(environment).cloned().collect();
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
            run.finished_at = Some(OffsetDateTime::now_utc());
            if let Err(e) = self.store.append(&run).await {
                self.warn(
                    report,
                    Stage::Record,
                    format!("marking run {} abandoned failed: {e}", run.id),
                );
            }
        }
    }

    /// Writes the final record. A run that failed before its record was started gets a
    /// single finished record, so every attempt is in the audit trail; dry runs are not
    /// recorded.
    async fn finalize(
        &self,
        report: &mut RunReport,
        record: Option<DeploymentRecord>,
        request: &DeployRequest,
    ) {
        if request.dry_run {
            return;
        }
        let mut record = record.unwrap_or_else(|| {
            let version = report
                .version
                .as_ref()
                .map(|v| v.version.clone())
                .or_else(|| request.version.clone())
                .unwrap_or_else(|| {
                    crate::version::Version::parse("unknown").expect("valid literal")
                });
            let mut r = DeploymentRecord::start(
                report.run_id.clone(),
                Operation::Deploy,
                report.environment.clone(),
                report.target.clone(),
                version,
            );
            r.forced = request.force;
            r.skipped_tests = request.skip_tests;
            r.commit = report.version.as_ref().and_then(|v| v.commit.clone());
            r.dirty = report.version.as_ref().is_some_and(|v| v.dirty);
            r
        });
        self.finalize_record(report, &mut record).await;
    }

    /// Verifies `release` against the environment's base URL.
    pub(super) async fn verify_release(
        &self,
        env: &crate::config::Environment,
        release: &Release,
        control: &RunControl,
        limit: std::time::Duration,
    ) -> Result<crate::probe::VerificationReport, StageError> {
        let progress = self.events.for_stage(Stage::Verify);
        control
            .run(limit, async {
                let request = VerifyRequest {
                    base_url: self.base_url(env).await?,
                    expected_version: release.version.clone(),
                };
                self.probe
                    .verify(&request, &progress, control.cancel_token())
                    .await
            })
            .await
    }
}
