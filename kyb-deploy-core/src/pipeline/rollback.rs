//! Rolling back: automatically after a failed deployment, and on request.

use super::known_good::{KnownGood, known_good, platform_known_good, requested_release};
use super::run::Run;
use super::stage::{RunControl, StageError};
use super::{Pipeline, RollbackRequest, RunReport};
use crate::config::{Environment, RollbackPolicy};
use crate::outcome::{Outcome, RollbackSummary};
use crate::record::{DeploymentRecord, Operation};
use crate::release::Release;
use crate::stage::Stage;
use crate::target::{DeployHandle, RolloutOutcome};

impl Pipeline {
    /// Turns a failure after the deployment began into an outcome. A release that failed as
    /// a candidate (`unpromoted`: verified beside the old one, never in service) is discarded
    /// and the release that still serves is verified; otherwise the environment rolls back to
    /// the last known-good release when its policy allows.
    pub(super) async fn recover(
        &self,
        env: &Environment,
        stage: Stage,
        error: StageError,
        unpromoted: Option<&DeployHandle>,
        run: &mut Run<'_>,
    ) -> Outcome {
        let rollback = match unpromoted {
            Some(candidate) => self.keep_serving(env, candidate, run).await,
            None => self.rollback_to_known_good(env, run).await,
        };
        match error {
            StageError::Cancelled => Outcome::Cancelled {
                stage,
                rollback: Some(summary(rollback)),
            },
            StageError::TimedOut(_) => Outcome::TimedOut {
                stage,
                rollback: Some(summary(rollback)),
            },
            StageError::Failed(reason) | StageError::MaybeApplied(reason) => match rollback {
                Ok(to) => Outcome::RolledBack {
                    stage,
                    reason,
                    to,
                    by_platform: false,
                },
                Err(rollback_error) => Outcome::RollbackFailed {
                    stage,
                    reason,
                    rollback_error,
                },
            },
        }
    }

    /// A candidate failed before it took over: remove it and verify the release that still
    /// serves. The rollback policy does not matter here: nothing was replaced.
    async fn keep_serving(
        &self,
        env: &Environment,
        candidate: &DeployHandle,
        run: &mut Run<'_>,
    ) -> Result<Release, String> {
        let started = run.stages.begin(Stage::Rollback);
        self.events.progress(
            Stage::Rollback,
            format!("{} never took over; removing it", candidate.release.version),
        );
        let control = RunControl::uncancellable(env.settings.timeouts.rollback);
        if let Err(e) = control
            .run(
                env.settings.timeouts.rollback,
                self.target.discard(candidate),
            )
            .await
        {
            run.warn(
                Stage::Rollback,
                format!(
                    "removing the failed release {} failed: {}",
                    candidate.release.version,
                    e.message()
                ),
            );
        }
        let Some(previous) = run.report.previous.clone() else {
            let reason =
                "nothing served before this deployment; the failed release was removed".to_owned();
            run.stages.fail(started, &reason);
            return Err(reason);
        };
        let result = match self
            .verify_release(env, &previous, None, &control, env.settings.timeouts.verify)
            .await
        {
            Ok(v) => {
                let passed = v.passed;
                let failure = v.failure();
                run.report.rollback_verification = Some(v);
                if passed {
                    Ok(previous)
                } else {
                    Err(format!(
                        "{}, which still serves, failed verification: {}",
                        previous.version,
                        failure.unwrap_or_default()
                    ))
                }
            }
            Err(e) => Err(format!(
                "verifying {}, which still serves, failed: {}",
                previous.version,
                e.message()
            )),
        };
        match &result {
            Ok(release) => {
                self.events
                    .progress(Stage::Rollback, format!("{} still serves", release.version));
                run.stages.succeed(started);
            }
            Err(e) => run.stages.fail(started, e),
        }
        result
    }

    /// Rolls back to the environment's known-good release: the one that served before this
    /// run began, when the ledger shows it verified; otherwise the last verified release
    /// other than the one that failed ([`known_good`]).
    async fn rollback_to_known_good(
        &self,
        env: &Environment,
        run: &mut Run<'_>,
    ) -> Result<Release, String> {
        if env.settings.rollback == RollbackPolicy::Never {
            let reason = format!("the rollback policy of {} is \"never\"", env.name);
            run.stages.skip(Stage::Rollback, &reason);
            return Err(reason);
        }
        let failed = run.report.release.clone();
        let chosen = known_good(
            self.store.as_ref(),
            &env.name,
            run.report.previous.as_ref(),
            failed.as_ref(),
        )
        .await;
        let release = match chosen {
            Ok(Some(choice)) => {
                self.events.progress(Stage::Rollback, choice.why);
                choice.release
            }
            Ok(None) => match self.platform_known_good(env, failed.as_ref(), run).await {
                Some(choice) => {
                    self.events.progress(Stage::Rollback, choice.why);
                    choice.release
                }
                None => {
                    let reason = format!(
                        "no known-good release of {} in the ledger or on the platform to roll back to; roll back by hand with `kyb-deploy rollback -e {} --to VERSION` (`kyb-deploy history -e {}` lists what there is)",
                        env.name, env.name, env.name
                    );
                    run.stages.skip(Stage::Rollback, &reason);
                    return Err(reason);
                }
            },
            Err(e) => {
                let reason = format!("reading the ledger failed: {}", e.chain());
                run.stages.skip(Stage::Rollback, &reason);
                return Err(reason);
            }
        };
        self.roll_to(env, &release, run).await
    }

    /// [`platform_known_good`]: the platform's history is read only when what served
    /// before this run does not do; a failure to read it is a warning, and no choice.
    async fn platform_known_good(
        &self,
        env: &Environment,
        failed: Option<&Release>,
        run: &mut Run<'_>,
    ) -> Option<KnownGood> {
        let previous = run.report.previous.clone();
        if let Some(choice) = platform_known_good(&env.name, previous.as_ref(), &[], failed) {
            return Some(choice);
        }
        let control = RunControl::uncancellable(env.settings.timeouts.rollback);
        match control
            .run(env.settings.timeouts.rollback, self.target.history())
            .await
        {
            Ok(history) => platform_known_good(&env.name, None, &history, failed),
            Err(e) => {
                run.warn(
                    Stage::Rollback,
                    format!(
                        "reading the platform's revisions for a release to go back to failed: {}",
                        e.message()
                    ),
                );
                None
            }
        }
    }

    /// Rolls back to `release`, waits for it and verifies it, within the environment's
    /// rollback time limit. It runs to the end even if the run was cancelled: stopping halfway
    /// would leave the environment worse off.
    async fn roll_to(
        &self,
        env: &Environment,
        release: &Release,
        run: &mut Run<'_>,
    ) -> Result<Release, String> {
        let started = run.stages.begin(Stage::Rollback);
        self.events.progress(
            Stage::Rollback,
            format!("rolling back to {} ({})", release.version, release.image),
        );
        let control = RunControl::uncancellable(env.settings.timeouts.rollback);
        let limit = env.settings.timeouts.rollback;
        let result = async {
            let handle = control
                .run(limit, self.target.rollback(release))
                .await
                .map_err(|e| format!("starting the rollback failed: {}", e.message()))?;
            let progress = self.events.for_stage(Stage::Rollback);
            match control
                .run(
                    limit,
                    self.target.wait(&handle, &progress, control.cancel_token()),
                )
                .await
            {
                Ok(RolloutOutcome::Completed) => {}
                Ok(RolloutOutcome::Failed { reason, .. }) => {
                    return Err(format!("the rollback's rollout failed: {reason}"));
                }
                Err(e) => return Err(format!("waiting for the rollback failed: {}", e.message())),
            }
            let candidate = handle.candidate_endpoint.as_ref();
            let verification = self
                .verify_release(
                    env,
                    &handle.release,
                    candidate,
                    &control,
                    env.settings.timeouts.verify,
                )
                .await
                .map_err(|e| format!("verifying the rollback failed: {}", e.message()))?;
            let passed = verification.passed;
            let failure = verification.failure();
            run.report.rollback_verification = Some(verification);
            if !passed {
                return Err(format!(
                    "the release rolled back to failed verification: {}",
                    failure.unwrap_or_default()
                ));
            }
            if candidate.is_some() {
                control
                    .run(limit, self.target.promote(&handle, &progress))
                    .await
                    .map_err(|e| {
                        format!(
                            "putting the rolled-back release in service failed: {}",
                            e.message()
                        )
                    })?;
            }
            Ok(handle.release)
        }
        .await;
        match &result {
            Ok(to) => {
                self.events
                    .progress(Stage::Rollback, format!("rolled back to {}", to.version));
                run.stages.succeed(started);
            }
            Err(e) => run.stages.fail(started, e),
        }
        result
    }

    /// The platform already rolled back (ECS circuit breaker): verify what runs, never roll
    /// back a second time.
    pub(super) async fn verify_platform_rollback(
        &self,
        env: &Environment,
        stage: Stage,
        reason: String,
        to: Release,
        run: &mut Run<'_>,
    ) -> Outcome {
        let started = run.stages.begin(Stage::Rollback);
        self.events.progress(
            Stage::Rollback,
            format!("the platform rolled back to {}; verifying it", to.version),
        );
        let control = RunControl::uncancellable(env.settings.timeouts.rollback);
        let verification = self
            .verify_release(env, &to, None, &control, env.settings.timeouts.verify)
            .await;
        match verification {
            Ok(v) if v.passed => {
                run.report.rollback_verification = Some(v);
                run.stages.succeed(started);
                Outcome::RolledBack {
                    stage,
                    reason,
                    to,
                    by_platform: true,
                }
            }
            Ok(v) => {
                let rollback_error = format!(
                    "the platform rolled back to {}, which failed verification: {}",
                    to.version,
                    v.failure().unwrap_or_default()
                );
                run.report.rollback_verification = Some(v);
                run.stages.fail(started, &rollback_error);
                Outcome::RollbackFailed {
                    stage,
                    reason,
                    rollback_error,
                }
            }
            Err(e) => {
                let rollback_error = format!(
                    "verifying the platform's rollback to {} failed: {}",
                    to.version,
                    e.message()
                );
                run.stages.fail(started, &rollback_error);
                Outcome::RollbackFailed {
                    stage,
                    reason,
                    rollback_error,
                }
            }
        }
    }

    /// Rolls an environment back on request: to `request.to`, or to the last known-good
    /// release other than the one running now. Waits for it and verifies it.
    pub async fn rollback(&self, request: &RollbackRequest, control: &RunControl) -> RunReport {
        let env = &request.environment;
        let mut run = self.start_run(Operation::Rollback, env, request.dry_run, control);
        let outcome = self.rollback_stages(request, &mut run).await;
        // A rollback that stopped before its record stage changed nothing: no record.
        self.end_run(run, outcome, env, &request.project.name, |_| None)
            .await
    }

    async fn rollback_stages(&self, request: &RollbackRequest, run: &mut Run<'_>) -> Outcome {
        let env = &request.environment;
        if let Err(outcome) = self
            .preflight_stage(env, &request.project_dir, false, false, run)
            .await
        {
            return outcome;
        }
        let release = match self.choose_release(request, run).await {
            Ok(release) => release,
            Err(outcome) => return outcome,
        };
        if request.dry_run {
            return self.plan_stage(env, release, run).await;
        }
        if let Err(outcome) = self.lock_stage(env, run, std::time::Duration::ZERO).await {
            return outcome;
        }
        if let Err(outcome) = self.record_rollback(env, &release, run).await {
            return outcome;
        }
        match self.roll_to(env, &release, run).await {
            Ok(to) => Outcome::Succeeded {
                release: to,
                dry_run: false,
            },
            Err(rollback_error) => Outcome::RollbackFailed {
                stage: Stage::Rollback,
                reason: format!("rolling back to {} failed", release.version),
                rollback_error,
            },
        }
    }

    /// The release a rollback on request goes to, from the ledger (`request.to`, else the
    /// last known-good release other than the one running; a `request.to` the ledger does
    /// not know, from the platform's revisions), once the environment's
    /// confirmation guard is met. Records what runs now as the run's previous release.
    async fn choose_release(
        &self,
        request: &RollbackRequest,
        run: &mut Run<'_>,
    ) -> Result<Release, Outcome> {
        let env = &request.environment;
        let before = |stage, reason: String| Outcome::FailedBeforeDeploy { stage, reason };
        // Choose the release from the ledger.
        let started = run.stages.begin(Stage::Version);
        let current = match run
            .control
            .run(env.settings.timeouts.deploy, self.target.current_release())
            .await
        {
            Ok(c) => c,
            Err(e) => {
                let message = format!("reading the current release failed: {}", e.message());
                run.stages.fail(started, &message);
                return Err(match e {
                    StageError::Failed(_) => before(Stage::Version, message),
                    other => other.before_deploy(Stage::Version),
                });
            }
        };
        run.report.previous = current.clone();
        let chosen = match requested_release(
            self.store.as_ref(),
            &env.name,
            request.to.as_ref(),
            current.as_ref(),
        )
        .await
        {
            Ok((release, record)) => Ok((release, format!("run {}", record.id))),
            Err(reason) => match &request.to {
                // A version the ledger does not know may still be on the platform (deployed
                // from another runner, or before the ledger was kept).
                Some(version) => match run
                    .control
                    .run(env.settings.timeouts.deploy, self.target.history())
                    .await
                {
                    Ok(history) => history
                        .into_iter()
                        .find(|r| &r.release.version == version)
                        .map(|r| (r.release, "the platform's revisions".to_owned()))
                        .ok_or_else(|| {
                            format!(
                                "{version} was never deployed to {} according to the ledger or the platform; `kyb-deploy history -e {}` lists what was",
                                env.name, env.name
                            )
                        }),
                    Err(e) => Err(format!(
                        "{reason}; reading the platform's revisions failed too: {}",
                        e.message()
                    )),
                },
                None => Err(reason),
            },
        };
        let (release, source) = match chosen {
            Ok(chosen) => chosen,
            Err(reason) => {
                run.stages.fail(started, &reason);
                return Err(before(Stage::Version, reason));
            }
        };
        run.report.release = Some(release.clone());
        if env.settings.guards.confirm && !request.confirmed && !request.dry_run {
            let reason = format!(
                "{} requires confirmation; answer the prompt, or pass --yes",
                env.name
            );
            run.stages.fail(started, &reason);
            return Err(before(Stage::Version, reason));
        }
        self.events.progress(
            Stage::Version,
            format!("rolling back to {} from {source}", release.version),
        );
        run.stages.succeed(started);
        Ok(release)
    }

    /// Resolves runs that died and writes this rollback's record, before the first change.
    async fn record_rollback(
        &self,
        env: &Environment,
        release: &Release,
        run: &mut Run<'_>,
    ) -> Result<(), Outcome> {
        let before = |stage, reason: String| Outcome::FailedBeforeDeploy { stage, reason };
        let started = run.stages.begin(Stage::Record);
        self.resolve_interrupted_runs(&env.name, run).await;
        let mut new_record = DeploymentRecord::start(
            run.report.run_id.clone(),
            Operation::Rollback,
            env.name.clone(),
            self.target.kind(),
            release.version.clone(),
        );
        new_record.started_at = run.report.started_at;
        new_record.release = Some(release.clone());
        new_record.previous = run.report.previous.clone();
        if let Err(e) = self.store.append(&new_record).await {
            let reason = format!(
                "writing the deployment record failed, so nothing was changed: {}",
                e.chain()
            );
            run.stages.fail(started, &reason);
            return Err(before(Stage::Record, reason));
        }
        run.record = Some(new_record);
        run.stages.succeed(started);
        Ok(())
    }
}

fn summary(rollback: Result<Release, String>) -> RollbackSummary {
    match rollback {
        Ok(to) => RollbackSummary::RolledBack { to },
        Err(error) => RollbackSummary::Failed { error },
    }
}
