//! Deployment records: the audit trail of every run, and the source of "last known-good".

use std::fmt;
use std::time::Duration;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;

use crate::outcome::{Outcome, RollbackSummary};
use crate::release::Release;
use crate::stage::{Stage, StageResult};
use crate::version::Version;

/// What a run did.
///
/// Serialized as its name (`deploy`, `rollback`). A name this build does not know (written by
/// a newer build) reads as [`Operation::Unknown`] and is written back unchanged.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    /// Deployed a new release.
    Deploy,
    /// Rolled back to an earlier release on request.
    Rollback,
    /// An operation this build does not know, as the ledger names it. Never holds the name of
    /// one of the other variants.
    Unknown(String),
}

impl Operation {
    /// The operation called `name` in the ledger.
    pub fn from_name(name: &str) -> Self {
        match name {
            "deploy" => Self::Deploy,
            "rollback" => Self::Rollback,
            other => Self::Unknown(other.to_owned()),
        }
    }

    /// The name used in the ledger and in output.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Deploy => "deploy",
            Self::Rollback => "rollback",
            Self::Unknown(name) => name,
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Operation {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Operation {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_name(deserializer, Self::from_name)
    }
}

/// Where a record stands.
///
/// Serialized as its name (`in_progress`, `succeeded`...). A status this build does not know
/// (written by a newer build) reads as [`RecordStatus::Unknown`]: the record still loads,
/// counts as finished, is never a known-good release, and is written back unchanged.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
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
    /// A status this build does not know, as the ledger names it. Treated as final. Never
    /// holds the name of one of the other variants.
    Unknown(String),
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

    /// The status called `name` in the ledger.
    ///
    /// ```
    /// use kyb_deploy_core::RecordStatus;
    ///
    /// assert_eq!(RecordStatus::from_name("succeeded"), RecordStatus::Succeeded);
    /// let newer = RecordStatus::from_name("awaiting_approval");
    /// assert_eq!(newer.as_str(), "awaiting_approval");
    /// assert!(newer.is_final());
    /// ```
    pub fn from_name(name: &str) -> Self {
        match name {
            "in_progress" => Self::InProgress,
            "succeeded" => Self::Succeeded,
            "failed_before_deploy" => Self::FailedBeforeDeploy,
            "rolled_back" => Self::RolledBack,
            "rollback_failed" => Self::RollbackFailed,
            "timed_out" => Self::TimedOut,
            "cancelled" => Self::Cancelled,
            "abandoned" => Self::Abandoned,
            other => Self::Unknown(other.to_owned()),
        }
    }

    /// The name used in the ledger and in output.
    pub fn as_str(&self) -> &str {
        match self {
            Self::InProgress => "in_progress",
            Self::Succeeded => "succeeded",
            Self::FailedBeforeDeploy => "failed_before_deploy",
            Self::RolledBack => "rolled_back",
            Self::RollbackFailed => "rollback_failed",
            Self::TimedOut => "timed_out",
            Self::Cancelled => "cancelled",
            Self::Abandoned => "abandoned",
            Self::Unknown(name) => name,
        }
    }

    /// Whether the run has ended: every status but `in_progress`, including unknown ones (a
    /// newer build wrote them, and only `in_progress` records are ever taken over).
    pub fn is_final(&self) -> bool {
        *self != Self::InProgress
    }
}

impl fmt::Display for RecordStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for RecordStatus {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for RecordStatus {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_name(deserializer, Self::from_name)
    }
}

/// Reads a string into a value through `from_name`, without copying names it knows.
fn deserialize_name<'de, D: Deserializer<'de>, T>(
    deserializer: D,
    from_name: fn(&str) -> T,
) -> Result<T, D::Error> {
    struct Name<T>(fn(&str) -> T);

    impl<T> Visitor<'_> for Name<T> {
        type Value = T;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a name")
        }

        fn visit_str<E: de::Error>(self, value: &str) -> Result<T, E> {
            Ok((self.0)(value))
        }
    }

    deserializer.deserialize_str(Name(from_name))
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
///
/// Reading is forward compatible: an operation or status this build does not know is kept
/// by name ([`Operation::Unknown`], [`RecordStatus::Unknown`]), and an outcome or stage timing
/// it cannot read is left out (`outcome` is `None`, `stages` holds the readable ones) but kept
/// verbatim, so writing the record back changes none of them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "StoredRecord", into = "StoredRecord")]
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
    /// The CI run it ran in (GitHub Actions: the run's page), when in one.
    pub ci_run_url: Option<String>,
    /// Process id of the run, to tell a live run from a dead one.
    pub pid: u32,
    /// The platform's rollout id.
    pub rollout_id: Option<String>,
    /// When the run started.
    pub started_at: OffsetDateTime,
    /// When the run ended.
    pub finished_at: Option<OffsetDateTime>,
    /// Where the run stands.
    pub status: RecordStatus,
    /// The outcome, once finished (`None` too when this build cannot read it).
    pub outcome: Option<Outcome>,
    /// Stage timings (the ones this build can read).
    pub stages: Vec<StageTiming>,
    /// The rollback, when one ran.
    pub rollback: Option<RollbackDetails>,
    /// Whether `--force` was given.
    pub forced: bool,
    /// Whether `--skip-tests` was given.
    pub skipped_tests: bool,
    /// Warnings raised during the run (forced past failing tests, dirty tree...).
    pub warnings: Vec<String>,
    /// What a newer build wrote that this one cannot read, kept to be written back.
    unrecognized: Unrecognized,
}

/// Parts of a stored record this build could not read, verbatim.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Unrecognized {
    /// The stored outcome, when it could not be read.
    outcome: Option<serde_json::Value>,
    /// When a stage timing could not be read: the readable ones as loaded, and every one as
    /// stored. The stored list is written back while `stages` is unchanged.
    stages: Option<(Vec<StageTiming>, Vec<Lenient<StageTiming>>)>,
}

/// A value this build can read, or the JSON it cannot, kept verbatim.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Lenient<T> {
    Known(T),
    Raw(serde_json::Value),
}

impl<T: Serialize> Serialize for Lenient<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Known(value) => value.serialize(serializer),
            Self::Raw(raw) => raw.serialize(serializer),
        }
    }
}

impl<'de, T: de::DeserializeOwned> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = serde_json::Value::deserialize(deserializer)?;
        Ok(match T::deserialize(&raw) {
            Ok(known) => Self::Known(known),
            Err(_) => Self::Raw(raw),
        })
    }
}

/// The stored form of a [`DeploymentRecord`]: the same fields, with the outcome and the
/// stage timings read leniently.
#[derive(Serialize, Deserialize)]
struct StoredRecord {
    id: String,
    operation: Operation,
    environment: String,
    target: String,
    version: Version,
    release: Option<Release>,
    previous: Option<Release>,
    commit: Option<String>,
    dirty: bool,
    actor: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ci_run_url: Option<String>,
    pid: u32,
    rollout_id: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    started_at: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    finished_at: Option<OffsetDateTime>,
    status: RecordStatus,
    outcome: Option<Lenient<Outcome>>,
    stages: Vec<Lenient<StageTiming>>,
    rollback: Option<RollbackDetails>,
    forced: bool,
    skipped_tests: bool,
    warnings: Vec<String>,
}

impl From<StoredRecord> for DeploymentRecord {
    fn from(stored: StoredRecord) -> Self {
        let mut unrecognized = Unrecognized::default();
        let outcome = match stored.outcome {
            None => None,
            Some(Lenient::Known(outcome)) => Some(outcome),
            Some(Lenient::Raw(raw)) => {
                unrecognized.outcome = Some(raw);
                None
            }
        };
        let known: Vec<StageTiming> = stored
            .stages
            .iter()
            .filter_map(|stage| match stage {
                Lenient::Known(timing) => Some(timing.clone()),
                Lenient::Raw(_) => None,
            })
            .collect();
        if known.len() != stored.stages.len() {
            unrecognized.stages = Some((known.clone(), stored.stages));
        }
        Self {
            id: stored.id,
            operation: stored.operation,
            environment: stored.environment,
            target: stored.target,
            version: stored.version,
            release: stored.release,
            previous: stored.previous,
            commit: stored.commit,
            dirty: stored.dirty,
            actor: stored.actor,
            ci_run_url: stored.ci_run_url,
            pid: stored.pid,
            rollout_id: stored.rollout_id,
            started_at: stored.started_at,
            finished_at: stored.finished_at,
            status: stored.status,
            outcome,
            stages: known,
            rollback: stored.rollback,
            forced: stored.forced,
            skipped_tests: stored.skipped_tests,
            warnings: stored.warnings,
            unrecognized,
        }
    }
}

impl From<DeploymentRecord> for StoredRecord {
    fn from(record: DeploymentRecord) -> Self {
        let Unrecognized {
            outcome: raw_outcome,
            stages: raw_stages,
        } = record.unrecognized;
        let outcome = match (record.outcome, raw_outcome) {
            (Some(outcome), _) => Some(Lenient::Known(outcome)),
            (None, raw) => raw.map(Lenient::Raw),
        };
        let stages = match raw_stages {
            Some((loaded, stored)) if loaded == record.stages => stored,
            _ => record.stages.into_iter().map(Lenient::Known).collect(),
        };
        Self {
            id: record.id,
            operation: record.operation,
            environment: record.environment,
            target: record.target,
            version: record.version,
            release: record.release,
            previous: record.previous,
            commit: record.commit,
            dirty: record.dirty,
            actor: record.actor,
            ci_run_url: record.ci_run_url,
            pid: record.pid,
            rollout_id: record.rollout_id,
            started_at: record.started_at,
            finished_at: record.finished_at,
            status: record.status,
            outcome,
            stages,
            rollback: record.rollback,
            forced: record.forced,
            skipped_tests: record.skipped_tests,
            warnings: record.warnings,
        }
    }
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
            ci_run_url: ci_run_url(),
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
            unrecognized: Unrecognized::default(),
        }
    }

    /// The newest finished run of `records` that deployed `release` (by
    /// [`Release::is_same_as`]): which run put a release the platform lists there.
    pub fn latest_deployment_of<'a>(
        records: &'a [DeploymentRecord],
        release: &Release,
    ) -> Option<&'a DeploymentRecord> {
        records
            .iter()
            .filter(|r| r.status.is_final())
            .filter(|r| r.release.as_ref().is_some_and(|r| r.is_same_as(release)))
            .max_by_key(|r| r.started_at)
    }

    /// Whether the runs of this environment left unfinished before this one were resolved
    /// by the time it was recorded: it is a deploy run that held the environment's lock
    /// (which resolves every unfinished run before it writes its own first record). A deploy
    /// that failed before deploying may have been refused the lock, recorded while another
    /// run held it, so it bounds nothing; looking further back is only slower.
    pub fn resolved_earlier_runs(&self) -> bool {
        self.operation == Operation::Deploy && self.status != RecordStatus::FailedBeforeDeploy
    }

    /// Whether this run put a release in service and verified it: a candidate to roll back
    /// to. Runs whose status this build does not know never are.
    pub fn is_known_good(&self) -> bool {
        self.status == RecordStatus::Succeeded && self.release.is_some()
    }

    /// The release this run put in service and verified, which a rollback may go back to:
    /// the one it deployed, when it succeeded; else the one it (or the platform) rolled back
    /// to and verified. Runs whose status this build does not know vouch for none.
    ///
    /// ```
    /// use kyb_deploy_core::{DeploymentRecord, Operation, Outcome, Release, Stage, Version};
    ///
    /// let v1 = Release::new(Version::parse("v1").unwrap(), "repo@sha256:1");
    /// let v2 = Release::new(Version::parse("v2").unwrap(), "repo@sha256:2");
    /// let mut run =
    ///     DeploymentRecord::start("r3", Operation::Deploy, "staging", "ecs", v2.version.clone());
    /// run.release = Some(v2);
    /// run.finish(Outcome::RolledBack {
    ///     stage: Stage::Verify,
    ///     reason: "GET /ready answered 503".into(),
    ///     to: v1.clone(),
    ///     by_platform: true,
    /// });
    /// assert!(!run.is_known_good());
    /// assert_eq!(run.verified_release(), Some(&v1));
    /// ```
    pub fn verified_release(&self) -> Option<&Release> {
        match &self.status {
            RecordStatus::Succeeded => self.release.as_ref(),
            RecordStatus::Unknown(_) => None,
            _ => self
                .rollback
                .as_ref()
                .filter(|r| r.succeeded)
                .and_then(|r| r.to.as_ref()),
        }
    }

    /// Marks the record finished with `outcome`.
    pub fn finish(&mut self, outcome: Outcome) {
        self.status = RecordStatus::from_outcome(&outcome);
        self.rollback = Self::rollback_from_outcome(&outcome);
        self.finished_at = Some(OffsetDateTime::now_utc());
        self.outcome = Some(outcome);
        self.unrecognized.outcome = None;
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

/// The name of this machine: the kernel's host name, else `HOSTNAME`, else `unknown host`.
pub fn current_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown host".to_owned())
}

/// The CI run this process belongs to, as a link: GitHub Actions'
/// `$GITHUB_SERVER_URL/$GITHUB_REPOSITORY/actions/runs/$GITHUB_RUN_ID`.
pub fn ci_run_url() -> Option<String> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    Some(format!(
        "{}/{}/actions/runs/{}",
        var("GITHUB_SERVER_URL")?,
        var("GITHUB_REPOSITORY")?,
        var("GITHUB_RUN_ID")?
    ))
}

/// A new run id: UTC time to the millisecond plus random hex, so ids sort by start time.
pub(crate) fn new_run_id(now: OffsetDateTime) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stage::Stage;

    #[test]
    fn the_latest_finished_run_of_a_release_is_the_one_that_deployed_it() {
        let run = |id: &str, minute: i64, status: RecordStatus, reference: &str| {
            let mut r = DeploymentRecord::start(
                id,
                Operation::Deploy,
                "staging",
                "ecs",
                Version::parse("v1").unwrap(),
            );
            r.started_at = OffsetDateTime::UNIX_EPOCH + time::Duration::minutes(minute);
            r.status = status;
            r.release = Some(Release {
                platform_ref: Some(reference.to_owned()),
                ..Release::new(Version::parse("v1").unwrap(), "repo@sha256:1")
            });
            r
        };
        let records = [
            run("r1", 1, RecordStatus::Succeeded, "td:1"),
            run("r2", 2, RecordStatus::RolledBack, "td:1"),
            run("r3", 3, RecordStatus::InProgress, "td:1"),
            run("r4", 4, RecordStatus::Succeeded, "td:2"),
        ];
        let td1 = records[0].release.clone().unwrap();
        let found = DeploymentRecord::latest_deployment_of(&records, &td1).map(|r| r.id.as_str());
        assert_eq!(found, Some("r2"));
        let unknown = Release {
            platform_ref: Some("td:9".into()),
            ..td1
        };
        assert!(DeploymentRecord::latest_deployment_of(&records, &unknown).is_none());
    }

    fn record() -> DeploymentRecord {
        let version = Version::parse("v1").unwrap();
        let mut r = DeploymentRecord::start("r1", Operation::Deploy, "staging", "fake", version);
        r.stages.push(StageTiming::new(
            Stage::Build,
            Duration::from_millis(3),
            StageResult::Succeeded,
        ));
        r
    }

    #[test]
    fn known_names_read_as_variants_and_others_are_kept() {
        for status in [
            RecordStatus::InProgress,
            RecordStatus::Succeeded,
            RecordStatus::FailedBeforeDeploy,
            RecordStatus::RolledBack,
            RecordStatus::RollbackFailed,
            RecordStatus::TimedOut,
            RecordStatus::Cancelled,
            RecordStatus::Abandoned,
        ] {
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
            assert_eq!(serde_json::from_str::<RecordStatus>(&json).unwrap(), status);
        }
        let newer: RecordStatus = serde_json::from_str("\"paused\"").unwrap();
        assert_eq!(newer, RecordStatus::Unknown("paused".into()));
        assert!(newer.is_final());
        assert!(!RecordStatus::InProgress.is_final());
        assert_eq!(serde_json::to_string(&newer).unwrap(), "\"paused\"");
        let operation: Operation = serde_json::from_str("\"promote\"").unwrap();
        assert_eq!(operation.as_str(), "promote");
        assert_eq!(
            serde_json::from_str::<Operation>("\"rollback\"").unwrap(),
            Operation::Rollback
        );
        assert!(serde_json::from_str::<RecordStatus>("3").is_err());
    }

    #[test]
    fn the_stored_form_is_unchanged_for_records_this_build_writes() {
        let mut r = record();
        r.finish(Outcome::FailedBeforeDeploy {
            stage: Stage::Preflight,
            reason: "tests failed".into(),
        });
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["status"], "failed_before_deploy");
        assert_eq!(json["outcome"]["outcome"], "failed_before_deploy");
        assert_eq!(json["stages"][0]["stage"], "build");
        assert_eq!(serde_json::from_value::<DeploymentRecord>(json).unwrap(), r);
        let started = serde_json::to_value(record()).unwrap();
        assert!(started["outcome"].is_null());
        assert!(started["finished_at"].is_null());
    }

    #[test]
    fn an_unreadable_outcome_is_kept_until_the_run_is_finished_again() {
        let mut json = serde_json::to_value(record()).unwrap();
        json["outcome"] = serde_json::json!({"outcome": "quarantined"});
        json["stages"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"stage": "sign", "elapsed_ms": 1, "result": {"status": "succeeded"}}));
        let mut r: DeploymentRecord = serde_json::from_value(json.clone()).unwrap();
        assert!(r.outcome.is_none());
        assert_eq!(r.stages.len(), 1);
        assert_eq!(serde_json::to_value(&r).unwrap(), json);

        // A change to the stages writes this build's list.
        r.stages.clear();
        assert_eq!(
            serde_json::to_value(&r).unwrap()["stages"],
            serde_json::json!([])
        );
        let release = Release::new(Version::parse("v1").unwrap(), "repo@sha256:1");
        r.finish(Outcome::Succeeded {
            release,
            dry_run: false,
        });
        let written = serde_json::to_value(&r).unwrap();
        assert_eq!(written["outcome"]["outcome"], "succeeded");
    }
}
