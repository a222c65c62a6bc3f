//! The documented exit codes of `kyb-deploy` (docs/cli.md, "Exit codes").

use kyb_deploy_core::{Outcome, RunReport};

/// The exit codes of the `kyb-deploy` binary.
///
/// Scripts and CI pipelines branch on these, so each value is part of the CLI's contract and
/// never changes meaning. A deployment's code depends only on its [`Outcome`]:
///
/// ```
/// use kyb_deploy_cli::ExitCodes;
/// use kyb_deploy_core::{Outcome, Stage};
///
/// let outcome = Outcome::FailedBeforeDeploy { stage: Stage::Tests, reason: "unit tests failed".into() };
/// assert_eq!(ExitCodes::for_outcome(&outcome), ExitCodes::FAILED_BEFORE_DEPLOY);
/// ```
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct ExitCodes;

impl ExitCodes {
    /// The command did what it was asked (a dry run planned, a deployment verified, every
    /// check passed).
    pub const SUCCESS: i32 = 0;

    /// An unexpected error: a bug, or the machine failed underneath (disk, runtime).
    pub const INTERNAL_ERROR: i32 = 1;

    /// Bad usage or configuration: an unknown flag or environment, an invalid version, a
    /// configuration file that is missing or invalid. Nothing was attempted.
    pub const USAGE: i32 = 2;

    /// The run failed before anything was deployed (prerequisites, guards, tests, scan, lock,
    /// a target that is not available): the environment is unchanged.
    pub const FAILED_BEFORE_DEPLOY: i32 = 3;

    /// The deployment failed after it began and the environment was rolled back to an earlier
    /// release that then passed verification.
    pub const ROLLED_BACK: i32 = 4;

    /// The deployment failed after it began and rolling back failed, was impossible (no
    /// known-good release) or is disabled by policy: the environment needs attention.
    pub const ROLLBACK_FAILED: i32 = 5;

    /// A time limit ran out (`--timeout`, or the environment's `timeouts`).
    pub const TIMED_OUT: i32 = 6;

    /// The release was deployed and verified, but its final record could not be written to
    /// the ledger (after retries): the ledger still shows the run in progress, and the next
    /// run marks it abandoned instead of knowing the release as good. Failed runs keep their
    /// own code and say so in their warnings.
    pub const NOT_RECORDED: i32 = 7;

    /// `kyb-deploy verify`: the service answered, and failed verification.
    pub const VERIFICATION_FAILED: i32 = 8;

    /// Interrupted (SIGINT/Ctrl-C, SIGTERM or SIGHUP): the run stopped at a safe point,
    /// applied the rollback policy and finalized its record. 128 + SIGINT, as shells report
    /// it, whichever of the three signals arrived: scripts test one code.
    pub const INTERRUPTED: i32 = 130;

    /// The exit code of a finished run: its outcome's, except that a verified deployment
    /// whose final record was lost is [`ExitCodes::NOT_RECORDED`].
    pub fn for_report(report: &RunReport) -> i32 {
        match report.outcome {
            Outcome::Succeeded { dry_run: false, .. } if !report.recorded => Self::NOT_RECORDED,
            ref outcome => Self::for_outcome(outcome),
        }
    }

    /// The exit code of a run that ended with `outcome`.
    pub fn for_outcome(outcome: &Outcome) -> i32 {
        match outcome {
            Outcome::Succeeded { .. } => Self::SUCCESS,
            Outcome::FailedBeforeDeploy { .. } => Self::FAILED_BEFORE_DEPLOY,
            Outcome::RolledBack { .. } => Self::ROLLED_BACK,
            Outcome::RollbackFailed { .. } => Self::ROLLBACK_FAILED,
            Outcome::TimedOut { .. } => Self::TIMED_OUT,
            Outcome::Cancelled { .. } => Self::INTERRUPTED,
        }
    }
}

#[cfg(test)]
mod tests {
    use kyb_deploy_core::{Release, RollbackSummary, Stage, Version};

    use super::*;

    #[test]
    fn every_outcome_has_its_own_code() {
        let release = Release::new(Version::parse("v1").unwrap(), "img:v1");
        let outcomes = [
            Outcome::Succeeded {
                release: release.clone(),
                dry_run: false,
            },
            Outcome::FailedBeforeDeploy {
                stage: Stage::Tests,
                reason: "x".into(),
            },
            Outcome::RolledBack {
                stage: Stage::Verify,
                reason: "x".into(),
                to: release.clone(),
                by_platform: false,
            },
            Outcome::RollbackFailed {
                stage: Stage::Verify,
                reason: "x".into(),
                rollback_error: "y".into(),
            },
            // A timeout that was rolled back is still a timeout: scripts must be able to tell.
            Outcome::TimedOut {
                stage: Stage::Wait,
                rollback: Some(RollbackSummary::RolledBack { to: release }),
            },
            Outcome::Cancelled {
                stage: Stage::Wait,
                rollback: None,
            },
        ];
        let codes: Vec<i32> = outcomes.iter().map(ExitCodes::for_outcome).collect();
        assert_eq!(codes, [0, 3, 4, 5, 6, 130]);
    }
}
