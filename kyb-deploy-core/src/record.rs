//! Deployment records: the audit trail of every run, and the source of "last known-good".

use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::event::{Stage, StageResult};
use crate::outcome::{Outcome, RollbackSummary};
use crate::release::Release;
use crate::version::Version;

/// What a run did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// Deployed a new release.
    Deploy,
    /// Rolled back to an earlier release on request.
    Rollback,
}

/// Where a record stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordStatus {
    /// The run has not finished (or was killed before it could say so).
    InProgress,
    /// Deployed and verified.
    Succeeded,
    /// Failed before anything was deployed.
    FailedBeforeDeploy,
    /// Failed and was rolled back to a verified release.
    RolledBack,
    /// Failed and could not be rolled back.
    RollbackFailed,
    /// Ran out of time.
    TimedOut,
    /// Was interrupted.
    Cancelled,
    /// Was found `in_progress` by a later run while no run held the environment: the process
    /// died without finalizing it (killed, machine lost).
    Abandoned,
}

impl RecordStatus {
    /// The status a finished run's outcome maps to.
    pub fn from_outcome(outcome: &Outcome) -> Self {
        match outcome {
            Outcome::Succeeded { .. } => Self::Succeeded,
            Outcome::FailedBeforeDeploy { .. } => Self::FailedBeforeDeploy,
            Outcome::RolledBack { .. } => Self::RolledBack,
            Outcome::RollbackFailed { .. } => Self::RollbackFailed,
            Outcome::TimedOut { .. } => Self::TimedOut,
            Outcome::Cancelled { .. } => Self::Cancelled,
        }
    }

    /// The name used in the ledger and in output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "in_progress",
            Self::Succeeded => "succeeded",
            Self::FailedBeforeDeploy => "failed_before_deploy",
            Self::RolledBack => "rolled_back",
            Self::RollbackFailed => "rollback_failed",
            Self::TimedOut => "timed_out",
            Self::Cancelled => "cancelled",
            Self::Abandoned => "abandoned",
        }
    }
}

/// How long one stage took and how it ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageTiming {
    /// The stage.
    pub stage: Stage,
    /// Wall time in milliseconds.
    pub elapsed_ms: u64,
    /// How it ended.
    pub result: StageResult,
}

impl StageTiming {
    /// A timing entry.
    pub fn new(stage: Stage, elapsed: Duration, result: StageResult) -> Self {
        Self {
            stage,
            elapsed_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
            result,
        }
    }
}

/// What a rollback did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackDetails {
    /// The release rolled back to, when one was chosen.
    pub to: Option<Release>,
    /// Id of the record whose release was rolled back to.
    pub to_record: Option<String>,
    /// Whether the platform rolled back on its own.
    pub by_platform: bool,
    /// Whether the rollback was verified.
    pub succeeded: bool,
    /// Why it failed or did not happen.
    pub error: Option<String>,
}

/// One run in the ledger. A record is appended when the run starts (`in_progress`) and
/// appended again, with the same id, when it ends; the last line of an id wins.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentRecord {
    /// Unique id of the run.
    pub id: String,
    /// What the run did.
    pub operation: Operation,
    /// Environment name.
    pub environment: String,
    /// Target kind.
    pub target: String,
    /// The version deployed (or rolled back to).
    pub version: Version,
    /// The release deployed, with the image by digest once known.
    pub release: Option<Release>,
    /// The release that ran before.
    pub previous: Option<Release>,
    /// Full git commit of the source, when known.
    pub commit: Option<String>,
    /// Whether the working tree had uncommitted changes.
    pub dirty: bool,
    /// Who ran it (`GITHUB_ACTOR`, else `USER`).
    pub actor: String,
    /// Process id of the run, to tell a live run from a dead one.
    pub pid: u32,
    /// The platform's rollout id.
    pub rollout_id: Option<String>,
    /// When the run started.
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// When the run ended.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    /// Where the run stands.
    pub status: RecordStatus,
    /// The outcome, once finished.
    pub outcome: Option<Outcome>,
    /// Stage timings.
    pub stages: Vec<StageTiming>,
    /// The rollback, when one ran.
    pub rollback: Option<RollbackDetails>,
    /// Whether `--force` was given.
    pub forced: bool,
    /// Whether `--skip-tests` was given.
    pub skipped_tests: bool,
    /// Warnings raised during the run (forced past failing tests, dirty tree...).
    pub warnings: Vec<String>,
}

impl DeploymentRecord {
    /// A new `in_progress` record of a run by the current actor and process.
    pub fn start(
        id: impl Into<String>,
        operation: Operation,
        environment: impl Into<String>,
        target: impl Into<String>,
        version: Version,
    ) -> Self {
        Self {
            id: id.into(),
            operation,
            environment: environment.into(),
            target: target.into(),
            version,
            release: None,
            previous: None,
            commit: None,
            dirty: false,
            actor: current_actor(),
            pid: std::process::id(),
            rollout_id: None,
            started_at: OffsetDateTime::now_utc(),
            finished_at: None,
            status: RecordStatus::InProgress,
            outcome: None,
            stages: Vec::new(),
            rollback: None,
            forced: false,
            skipped_tests: false,
            warnings: Vec::new(),
        }
    }

    /// Marks the record finished with `outcome`.
    pub fn finish(&mut self, outcome: Outcome) {
        self.status = RecordStatus::from_outcome(&outcome);
        self.rollback = Self::rollback_from_outcome(&outcome);
        self.finished_at = Some(OffsetDateTime::now_utc());
        self.outcome = Some(outcome);
    }

    /// The rollback details implied by an outcome, if any.
    pub fn rollback_from_outcome(outcome: &Outcome) -> Option<RollbackDetails> {
        let done = |to: &Release, by_platform| RollbackDetails {
            to: Some(to.clone()),
            to_record: None,
            by_platform,
            succeeded: true,
            error: None,
        };
        let failed = |error: &str| RollbackDetails {
            to: None,
            to_record: None,
            by_platform: false,
            succeeded: false,
            error: Some(error.to_owned()),
        };
        match outcome {
            Outcome::RolledBack {
                to, by_platform, ..
            } => Some(done(to, *by_platform)),
            Outcome::RollbackFailed { rollback_error, .. } => Some(failed(rollback_error)),
            Outcome::TimedOut { rollback, .. } | Outcome::Cancelled { rollback, .. } => {
                rollback.as_ref().map(|r| match r {
                    RollbackSummary::RolledBack { to } => done(to, false),
                    RollbackSummary::Failed { error } => failed(error),
                })
            }
            Outcome::Succeeded { .. } | Outcome::FailedBeforeDeploy { .. } => None,
        }
    }
}

/// Who is running kyb-deploy: `GITHUB_ACTOR` in GitHub Actions, else `USER`, else `unknown`.
pub fn current_actor() -> String {
    ["GITHUB_ACTOR", "USER", "USERNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// A new run id: UTC time to the millisecond plus random hex, so ids sort by start time.
pub fn new_run_id(now: OffsetDateTime) -> String {
    let suffix: u32 = rand::random();
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}{:03}Z-{suffix:08x}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        now.millisecond()
    )
}
