//! The checks before anything is built: guards and tests.

use std::path::Path;

use super::run::Run;
use super::stage::{StageError, Started};
use super::{DeployRequest, Pipeline};
use crate::config::Environment;
use crate::outcome::Outcome;
use crate::preflight::{Check, check_prerequisites};
use crate::stage::{Stage, StageResult};
use crate::version_source::ResolvedVersion;

impl Pipeline {
    /// Applies the environment's guards; a refusal says how to proceed.
    pub(super) fn check_guards(
        &self,
        request: &DeployRequest,
        resolved: &ResolvedVersion,
        run: &mut Run<'_>,
    ) -> Result<(), String> {
        let env = &request.environment;
        let guards = &env.settings.guards;
        let guarded_source = !guards.branches.is_empty() || guards.require_clean_tree;
        if guarded_source && resolved.commit.is_none() {
            // Without a working tree the branch and clean-tree guards cannot be checked; a
            // silent pass would let any artefact through.
            if !request.force {
                return Err(format!(
                    "{} allows deployments only from a checked branch and clean tree, but {} is not a git working tree; run from the repository, or pass --force",
                    env.name,
                    request.project_dir.display()
                ));
            }
            run.warn(
                Stage::Version,
                "FORCED without a git working tree: the branch and clean-tree guards were not checked",
            );
        }
        if !guards.branches.is_empty() && resolved.commit.is_some() {
            let branch = resolved.branch.as_deref().unwrap_or("(detached HEAD)");
            if !guards.branches.iter().any(|b| b == branch) {
                return Err(format!(
                    "{} deploys only from branch {}; the working tree is on {branch}",
                    env.name,
                    guards.branches.join(" or ")
                ));
            }
        }
        if resolved.dirty {
            if guards.require_clean_tree && !request.force {
                return Err(format!(
                    "the working tree has uncommitted changes and {} requires a clean tree; commit them, or pass --force",
                    env.name
                ));
            }
            run.warn(
                Stage::Version,
                "the working tree has uncommitted changes; the image may not match any commit",
            );
        }
        if guards.confirm && !request.confirmed && !request.dry_run {
            return Err(format!(
                "{} requires confirmation; answer the prompt, or pass --yes",
                env.name
            ));
        }
        Ok(())
    }

    pub(super) async fn run_tests(
        &self,
        request: &DeployRequest,
        run: &mut Run<'_>,
    ) -> Result<(), Outcome> {
        if request.skip_tests {
            run.stages.skip(Stage::Tests, "--skip-tests");
            run.warn(Stage::Tests, "tests were skipped (--skip-tests)");
            return Ok(());
        }
        if request.dry_run {
            run.stages.skip(Stage::Tests, "dry run");
            return Ok(());
        }
        if request.tests.is_empty() {
            run.stages.skip(Stage::Tests, "no test commands configured");
            return Ok(());
        }
        let started = run.stages.begin(Stage::Tests);
        let progress = self.events.for_stage(Stage::Tests);
        let limit = request.environment.settings.timeouts.tests;
        let mut failed = Vec::new();
        for suite in &request.tests {
            match run
                .control
                .run(
                    limit,
                    self.tests.run(suite, &progress, run.control.cancel_token()),
                )
                .await
            {
                Ok(result) => {
                    if !result.passed {
                        failed.push(format!(
                            "{} tests failed (exit code {})",
                            suite.name,
                            result.exit_code.map_or("none".into(), |c| c.to_string())
                        ));
                    }
                    run.report.tests.push(result);
                }
                Err(StageError::Failed(message)) => failed.push(message),
                Err(e) => {
                    run.stages.fail(started, e.message());
                    return Err(e.before_deploy(Stage::Tests));
                }
            }
        }
        if failed.is_empty() {
            run.stages.succeed(started);
            return Ok(());
        }
        self.forced_or_stop(
            request.force,
            Stage::Tests,
            started,
            &failed.join("; "),
            run,
        )
    }

    /// Every prerequisite of a run, each missing one with its fix: git (when the version
    /// comes from it), the target's own checks (platform, credentials), and, when
    /// `image_seams` (a deployment that builds and pushes), the image builder's, scanner's
    /// and registry's. A check several seams make (the Docker engine) is reported once. Never
    /// changes anything; `deploy` runs it as its first stage, and `check` shows it.
    pub async fn preflight(
        &self,
        project_dir: &Path,
        needs_git: bool,
        image_seams: bool,
    ) -> Vec<Check> {
        let mut checks = check_prerequisites(project_dir, needs_git).await;
        checks.extend(self.target.preflight().await);
        if image_seams {
            checks.extend(
                crate::image::preflight_image_seams(
                    self.builder.as_deref(),
                    self.scanner.as_deref(),
                    self.registry.as_deref(),
                )
                .await,
            );
        }
        crate::preflight::once_each(checks)
    }

    /// Checks every prerequisite at once (git when the version comes from it, what the target
    /// kind implies, and each seam's own checks) and fails with all missing pieces.
    pub(super) async fn preflight_stage(
        &self,
        env: &Environment,
        project_dir: &Path,
        needs_git: bool,
        image_seams: bool,
        run: &mut Run<'_>,
    ) -> Result<(), Outcome> {
        let started = run.stages.begin(Stage::Preflight);
        let collect = async { Ok(self.preflight(project_dir, needs_git, image_seams).await) };
        let checks = match run.control.run(env.settings.timeouts.deploy, collect).await {
            Ok(checks) => checks,
            Err(e) => {
                run.stages.fail(started, e.message());
                return Err(e.before_deploy(Stage::Preflight));
            }
        };
        for check in &checks {
            self.events.progress(Stage::Preflight, check.describe());
        }
        let missing: Vec<_> = checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| c.describe())
            .collect();
        if missing.is_empty() {
            run.stages.succeed(started);
            return Ok(());
        }
        let reason = format!(
            "{} prerequisite(s) missing: {}",
            missing.len(),
            missing.join("; ")
        );
        run.stages.fail(started, &reason);
        Err(Outcome::FailedBeforeDeploy {
            stage: Stage::Preflight,
            reason,
        })
    }

    /// Ends a failed check stage: with `--force` the run goes on with a loud warning that the
    /// record keeps; without it the run stops before anything is deployed.
    #[expect(
        clippy::result_large_err,
        reason = "an Outcome ends the run: it is built once, so boxing it saves nothing"
    )]
    pub(super) fn forced_or_stop(
        &self,
        force: bool,
        stage: Stage,
        started: Started,
        reason: &str,
        run: &mut Run<'_>,
    ) -> Result<(), Outcome> {
        if force {
            run.stages.end(
                started,
                StageResult::Failed {
                    message: reason.to_owned(),
                },
            );
            run.warn(
                stage,
                format!("FORCED past the failed {stage} stage (--force): {reason}"),
            );
            Ok(())
        } else {
            run.stages.fail(started, reason);
            Err(Outcome::FailedBeforeDeploy {
                stage,
                reason: format!("{reason}; fix this, or pass --force to deploy anyway"),
            })
        }
    }
}
