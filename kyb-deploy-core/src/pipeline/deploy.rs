//! The deploy run: preflight to notify, with rollback on failure.

use super::run::Run;
use super::stage::{RunControl, StageError};
use super::{DeployRequest, Pipeline, RunReport};
use crate::deploy_lock::LockGuard;
use crate::error::Result;
use crate::outcome::Outcome;
use crate::record::{DeploymentRecord, Operation};
use crate::release::Release;
use crate::stage::Stage;
use crate::target::{DeployHandle, RolloutOutcome};
use crate::verify::PROBE_MARGIN;
use crate::verify::VerifyRequest;
use crate::version::Version;

impl Pipeline {
    /// Runs a deployment. The returned report always carries an outcome; `Err` is never
    /// returned for a failed deployment, only the report says how it failed.
    pub async fn deploy(&self, request: &DeployRequest, control: &RunControl) -> RunReport {
        let env = &request.environment;
        let mut run = self.start_run(Operation::Deploy, env, request.dry_run, control);
        let outcome = self.deploy_stages(request, &mut run).await;
        // A run that stopped before its record stage still gets a record.
        self.end_run(run, outcome, env, &request.project.name, |report| {
            (!request.dry_run).then(|| deploy_record(report, request))
        })
        .await
    }

    async fn deploy_stages(&self, request: &DeployRequest, run: &mut Run<'_>) -> Outcome {
        let env = &request.environment;
        let release = match self.prepare(request, run).await {
            Ok(release) => release,
            Err(outcome) => return outcome,
        };
        if request.dry_run {
            return self.plan_stage(env, release, run).await;
        }
        let handle = match self.start_rollout(request, release, run).await {
            Ok(handle) => handle,
            Err(outcome) => return outcome,
        };
        self.follow_rollout(env, &handle, run).await
    }

    /// Everything before the environment is touched: preflight, the version and its
    /// guards, the environment's lock (not for a dry run), the tests, and the image (built,
    /// scanned and pushed, or prebuilt). The release to deploy, or the outcome of a run that
    /// stopped here.
    async fn prepare(
        &self,
        request: &DeployRequest,
        run: &mut Run<'_>,
    ) -> Result<Release, Outcome> {
        let env = &request.environment;
        let timeouts = &env.settings.timeouts;
        let before = |stage, reason: String| Outcome::FailedBeforeDeploy { stage, reason };
        // Preflight: every missing piece at once, before anything changes.
        let needs_git = request.version.is_none() && self.versions.is_none();
        self.preflight_stage(env, &request.project_dir, needs_git, true, run)
            .await?;

        // Version and guards.
        let started = run.stages.begin(Stage::Version);
        let resolved = match run
            .control
            .run(timeouts.deploy, self.version_source(request).resolve())
            .await
        {
            Ok(v) => v,
            Err(e) => {
                run.stages.fail(started, e.message());
                return Err(e.before_deploy(Stage::Version));
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
        run.report.version = Some(resolved.clone());
        if let Err(reason) = self.check_guards(request, &resolved, run) {
            run.stages.fail(started, &reason);
            return Err(before(Stage::Version, reason));
        }
        run.stages.succeed(started);

        // The environment is this run's from here to its end: a run that cannot have it
        // stops before its tests, build and push.
        if !request.dry_run {
            self.lock_stage(env, run, request.wait_for_lock).await?;
        }

        // Tests.
        self.run_tests(request, run).await?;

        // Image: build, scan, push; or the prebuilt image.
        let image = match self.produce_image(request, &resolved, run).await {
            Ok(image) => image,
            Err(outcome) => return Err(outcome),
        };
        let mut release = Release::new(resolved.version.clone(), image);
        release.record_id = Some(run.report.run_id.clone());
        run.report.release = Some(release.clone());
        Ok(release)
    }

    /// Writes the run's record (after resolving runs that died) and starts the rollout,
    /// finding out from the platform when the start may have been applied unanswered. The
    /// rollout, or the outcome of a run that stopped here (Ctrl-C right after the start
    /// applies the rollback policy).
    async fn start_rollout(
        &self,
        request: &DeployRequest,
        release: Release,
        run: &mut Run<'_>,
    ) -> Result<DeployHandle, Outcome> {
        let env = &request.environment;
        let timeouts = &env.settings.timeouts;
        let before = |stage, reason: String| Outcome::FailedBeforeDeploy { stage, reason };
        // Record: resolve runs that died, then write ours before the first mutation.
        let started = run.stages.begin(Stage::Record);
        // A run whose lock was taken over (its renewals failed for longer than the lock's time
        // to live) must not change an environment another run may now be deploying.
        if run.lock.as_ref().is_some_and(LockGuard::is_lost) {
            let reason = format!(
                "the lock of {} was lost before the deployment began (its renewals failed for longer than its time to live, and another run took it over), so nothing was deployed",
                env.name
            );
            run.stages.fail(started, &reason);
            return Err(before(Stage::Record, reason));
        }
        run.report.previous = match run
            .control
            .run(timeouts.deploy, self.target.current_release())
            .await
        {
            Ok(current) => current,
            Err(e) => {
                let message = format!("reading the current release failed: {}", e.message());
                run.stages.fail(started, &message);
                return Err(match e {
                    StageError::Failed(_) => before(Stage::Record, message),
                    other => other.before_deploy(Stage::Record),
                });
            }
        };
        self.resolve_interrupted_runs(&env.name, run).await;
        let new_record = deploy_record(&run.report, request);
        if let Err(e) = self.store.append(&new_record).await {
            let reason = format!(
                "writing the deployment record failed, so nothing was deployed: {}",
                e.chain()
            );
            run.stages.fail(started, &reason);
            return Err(before(Stage::Record, reason));
        }
        run.record = Some(new_record);
        run.report.recorded = true;
        run.stages.succeed(started);

        // Deploy. The call is not raced against Ctrl-C: dropped halfway, it could leave a
        // change the run knows nothing about. A plain error means the target started nothing;
        // no answer in time or an answer lost on the way means it may have: the platform is
        // asked before anything is claimed.
        let started = run.stages.begin(Stage::Deploy);
        let handle = match run
            .control
            .run_to_completion(timeouts.deploy, self.target.deploy(&release))
            .await
        {
            Ok(handle) => {
                self.events.progress(
                    Stage::Deploy,
                    format!("rollout {} started", handle.rollout_id),
                );
                run.stages.succeed(started);
                handle
            }
            Err(e @ (StageError::TimedOut(_) | StageError::MaybeApplied(_))) => {
                run.stages.fail(started, e.message());
                match self.reconcile(env, &release, e, &mut run.stages).await {
                    Ok(handle) => handle,
                    Err(outcome) => return Err(outcome),
                }
            }
            Err(e) => {
                run.stages.fail(started, e.message());
                return Err(e.before_deploy(Stage::Deploy));
            }
        };
        run.report.rollout_id = Some(handle.rollout_id.clone());
        run.report.release = Some(handle.release.clone());
        if let Some(r) = run.record.as_mut() {
            r.rollout_id = Some(handle.rollout_id.clone());
            r.release = Some(handle.release.clone());
        }
        // A candidate (verified beside the old release) that fails is discarded; nothing
        // serving was replaced.
        let unpromoted = handle.candidate_endpoint.is_some().then_some(&handle);
        if run.control.cancel_token().is_cancelled() {
            return Err(self
                .recover(env, Stage::Deploy, StageError::Cancelled, unpromoted, run)
                .await);
        }
        Ok(handle)
    }

    /// Follows the rollout of `handle` to its verdict, verifies the release and soaks it,
    /// and promotes a candidate that passed; any failure applies the rollback policy.
    async fn follow_rollout(
        &self,
        env: &crate::config::Environment,
        handle: &DeployHandle,
        run: &mut Run<'_>,
    ) -> Outcome {
        let timeouts = &env.settings.timeouts;
        // A candidate (verified beside the old release) that fails is discarded; nothing
        // serving was replaced.
        let unpromoted = handle.candidate_endpoint.is_some().then_some(handle);
        // From here on, a failure leaves the environment changed: the rollback policy applies.
        let started = run.stages.begin(Stage::Wait);
        let progress = self.events.for_stage(Stage::Wait);
        let rollout = run
            .control
            .run(
                timeouts.wait,
                self.target
                    .wait(handle, &progress, run.control.cancel_token()),
            )
            .await;
        match rollout {
            Ok(RolloutOutcome::Completed) => run.stages.succeed(started),
            Ok(RolloutOutcome::Failed {
                reason,
                platform_rolled_back_to: Some(to),
            }) => {
                run.stages.fail(started, &reason);
                return self
                    .verify_platform_rollback(env, Stage::Wait, reason, to, run)
                    .await;
            }
            Ok(RolloutOutcome::Failed {
                reason,
                platform_rolled_back_to: None,
            }) => {
                run.stages.fail(started, &reason);
                return self
                    .recover(
                        env,
                        Stage::Wait,
                        StageError::Failed(reason),
                        unpromoted,
                        run,
                    )
                    .await;
            }
            Err(e) => {
                run.stages.fail(started, e.message());
                return self.recover(env, Stage::Wait, e, unpromoted, run).await;
            }
        }

        // Verify.
        let started = run.stages.begin(Stage::Verify);
        let candidate = handle.candidate_endpoint.as_ref();
        let verification = self
            .verify_release(
                env,
                &handle.release,
                candidate,
                &run.control,
                timeouts.verify,
            )
            .await;
        match verification {
            Ok(v) if v.passed => {
                run.report.verification = Some(v);
                run.stages.succeed(started);
                if let Err(e) = self.soak(env, handle, candidate, run).await {
                    return self.recover(env, Stage::Soak, e, unpromoted, run).await;
                }
                if candidate.is_some() {
                    // Verified beside the old release: now it takes over. Neither Ctrl-C nor the
                    // overall time limit stops it halfway (a half-done switch would serve
                    // neither release); it has the rollback's own time limit.
                    let started = run.stages.begin(Stage::Promote);
                    let progress = self.events.for_stage(Stage::Promote);
                    if let Err(e) = RunControl::uncancellable(timeouts.rollback)
                        .run(timeouts.rollback, self.target.promote(handle, &progress))
                        .await
                    {
                        run.stages.fail(started, e.message());
                        return self.recover(env, Stage::Promote, e, None, run).await;
                    }
                    run.stages.succeed(started);
                }
                self.move_mutable_tags(env, run).await;
                Outcome::Succeeded {
                    release: handle.release.clone(),
                    dry_run: false,
                }
            }
            Ok(v) => {
                let reason = v.failure().unwrap_or_else(|| "verification failed".into());
                // Out of time before a verdict is a timeout, with what was seen kept.
                let error = if v.timed_out {
                    StageError::TimedOut(timeouts.verify)
                } else {
                    StageError::Failed(reason.clone())
                };
                run.report.verification = Some(v);
                run.stages.fail(started, &reason);
                self.recover(env, Stage::Verify, error, unpromoted, run)
                    .await
            }
            Err(e) => {
                run.stages.fail(started, e.message());
                self.recover(env, Stage::Verify, e, unpromoted, run).await
            }
        }
    }

    /// Verifies `release` at `candidate` (a release running beside the old one), else at the
    /// environment's base URL.
    pub(super) async fn verify_release(
        &self,
        env: &crate::config::Environment,
        release: &Release,
        candidate: Option<&url::Url>,
        control: &RunControl,
        limit: std::time::Duration,
    ) -> Result<crate::verify::VerificationReport, StageError> {
        let progress = self.events.for_stage(Stage::Verify);
        // The probe stops at `limit` itself and reports what it saw; the margin lets it.
        control
            .run(limit.saturating_add(PROBE_MARGIN), async {
                let base_url = match candidate {
                    Some(url) => url.clone(),
                    None => self.base_url(env).await?,
                };
                let request =
                    VerifyRequest::new(base_url, release.version.clone()).with_time_limit(limit);
                self.probe
                    .verify(&request, &progress, control.cancel_token())
                    .await
            })
            .await
    }
}

/// The record of a deploy run, from what the report knows so far. A run that fails before
/// its record stage still gets one (finished at once), so every attempt is in the audit trail.
fn deploy_record(report: &RunReport, request: &DeployRequest) -> DeploymentRecord {
    let resolved = report.version.as_ref();
    let version = resolved
        .map(|v| v.version.clone())
        .or_else(|| request.version.clone())
        .unwrap_or_else(|| Version::parse("unknown").expect("a valid literal version"));
    let mut record = DeploymentRecord::start(
        report.run_id.clone(),
        Operation::Deploy,
        report.environment.clone(),
        report.target.clone(),
        version,
    );
    record.started_at = report.started_at;
    record.release = report.release.clone();
    record.previous = report.previous.clone();
    record.commit = resolved.and_then(|v| v.commit.clone());
    record.dirty = resolved.is_some_and(|v| v.dirty);
    record.forced = request.force;
    record.skipped_tests = request.skip_tests;
    record.warnings = report.warnings.clone();
    record
}
