//! [`Stage`]: the stages of a run, and [`StageResult`]: how one ended. Events, outcomes and
//! records all name them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The stages of the pipeline, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Checks that every prerequisite of the environment is present.
    Preflight,
    /// Resolves the version and applies the environment's guards.
    Version,
    /// Takes the environment's deployment lock (before any work a concurrent run would
    /// waste or race: tests, build, push).
    Lock,
    /// Runs the configured test commands.
    Tests,
    /// Builds the image.
    Build,
    /// Scans the image.
    Scan,
    /// Pushes the image.
    Push,
    /// Computes what would change (dry-run).
    Plan,
    /// Writes the in-progress record.
    Record,
    /// Starts the deployment on the target.
    Deploy,
    /// Finds out from the platform whether a deploy call that failed without a clear answer
    /// (no answer, a server error, a dropped connection) started a rollout.
    Reconcile,
    /// Waits for the rollout to finish.
    Wait,
    /// Probes and smoke-tests the deployed service.
    Verify,
    /// Keeps probing a verified release for a while, and watches for restarts.
    Soak,
    /// Moves a release verified beside the old one into service (targets that verify
    /// before cutting over).
    Promote,
    /// Moves the image's mutable tags (`{environment}-latest`) to the verified release.
    Tag,
    /// Rolls back to the last known-good release.
    Rollback,
    /// Finalizes the record.
    Finalize,
    /// Sends notifications.
    Notify,
}

impl Stage {
    /// The stage's name as shown to users.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Preflight => "preflight",
            Self::Version => "version",
            Self::Tests => "tests",
            Self::Build => "build",
            Self::Scan => "scan",
            Self::Push => "push",
            Self::Lock => "lock",
            Self::Plan => "plan",
            Self::Record => "record",
            Self::Deploy => "deploy",
            Self::Reconcile => "reconcile",
            Self::Wait => "wait",
            Self::Verify => "verify",
            Self::Soak => "soak",
            Self::Promote => "promote",
            Self::Tag => "tag",
            Self::Rollback => "rollback",
            Self::Finalize => "finalize",
            Self::Notify => "notify",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a stage ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum StageResult {
    /// The stage did its work.
    Succeeded,
    /// The stage failed.
    Failed {
        /// Why.
        message: String,
    },
    /// The stage did not run.
    Skipped {
        /// Why.
        reason: String,
    },
}
