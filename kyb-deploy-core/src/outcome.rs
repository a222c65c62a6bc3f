//! How a run ends.

use serde::{Deserialize, Serialize};

use crate::release::Release;
use crate::stage::Stage;

/// The outcome of a pipeline run. Each has its own exit code in the CLI.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Deployed and verified (or, in a dry run, planned).
    Succeeded {
        /// The release that runs now.
        release: Release,
        /// Whether nothing was changed.
        dry_run: bool,
    },
    /// Failed before anything was deployed; the environment is unchanged.
    FailedBeforeDeploy {
        /// The stage that failed.
        stage: Stage,
        /// Why.
        reason: String,
    },
    /// Failed after the deployment began, and the environment was rolled back to a release
    /// that then passed verification.
    RolledBack {
        /// The stage that failed.
        stage: Stage,
        /// Why.
        reason: String,
        /// The release that runs now.
        to: Release,
        /// Whether the platform (for example the ECS circuit breaker) rolled back on its own.
        by_platform: bool,
    },
    /// Failed after the deployment began, and rolling back failed, was impossible (no
    /// known-good release) or is disabled by policy. The environment needs attention.
    RollbackFailed {
        /// The stage that failed.
        stage: Stage,
        /// Why the deployment failed.
        reason: String,
        /// Why the rollback failed or did not happen.
        rollback_error: String,
    },
    /// A time limit ran out.
    TimedOut {
        /// The stage that ran out of time.
        stage: Stage,
        /// Where the environment was left, when a rollback ran.
        rollback: Option<RollbackSummary>,
    },
    /// The run was interrupted.
    Cancelled {
        /// The stage that was interrupted.
        stage: Stage,
        /// Where the environment was left, when a rollback ran.
        rollback: Option<RollbackSummary>,
    },
}

/// What a rollback after a timeout or cancellation achieved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum RollbackSummary {
    /// Rolled back to this release, verified.
    RolledBack {
        /// The release that runs now.
        to: Release,
    },
    /// Rolling back failed or was impossible.
    Failed {
        /// Why.
        error: String,
    },
}

impl Outcome {
    /// Whether the run succeeded.
    pub fn is_success(&self) -> bool {
        matches!(self, Self::Succeeded { .. })
    }

    /// A one-line summary for people.
    pub fn summary(&self) -> String {
        match self {
            Self::Succeeded {
                release,
                dry_run: false,
            } => {
                format!("deployed {} ({})", release.version, release.image)
            }
            Self::Succeeded {
                release,
                dry_run: true,
            } => {
                format!(
                    "dry run: would deploy {} ({}); nothing was changed",
                    release.version, release.image
                )
            }
            Self::FailedBeforeDeploy { stage, reason } => {
                format!("failed at {stage} before anything was deployed: {reason}")
            }
            Self::RolledBack {
                stage,
                reason,
                to,
                by_platform,
            } => format!(
                "failed at {stage}: {reason}; rolled back to {}{}",
                to.version,
                if *by_platform {
                    " (by the platform)"
                } else {
                    ""
                }
            ),
            Self::RollbackFailed {
                stage,
                reason,
                rollback_error,
            } => format!("failed at {stage}: {reason}; NOT rolled back: {rollback_error}"),
            Self::TimedOut { stage, rollback } => {
                format!("timed out at {stage}{}", rollback_suffix(rollback.as_ref()))
            }
            Self::Cancelled { stage, rollback } => {
                format!("cancelled at {stage}{}", rollback_suffix(rollback.as_ref()))
            }
        }
    }
}

fn rollback_suffix(rollback: Option<&RollbackSummary>) -> String {
    match rollback {
        None => String::new(),
        Some(RollbackSummary::RolledBack { to }) => format!("; rolled back to {}", to.version),
        Some(RollbackSummary::Failed { error }) => format!("; NOT rolled back: {error}"),
    }
}
