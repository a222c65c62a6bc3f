//! The [`Target`] trait: where releases run.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::error::Result;
use crate::event::StageProgress;
use crate::preflight::Check;
use crate::release::Release;

/// A deployment target: a local Docker engine, an ECS service, a Kubernetes Deployment, or a
/// fake in tests. Implementations never print; they report through [`StageProgress`].
#[async_trait]
pub trait Target: Send + Sync {
    /// The kind of target (`docker`, `ecs`, `kubernetes`, `fake`...), for records and output.
    fn kind(&self) -> &str;

    /// Checks that the target is usable (credentials, reachability) without changing it.
    /// Every failed [`Check`] carries its fix.
    async fn preflight(&self) -> Vec<Check> {
        Vec::new()
    }

    /// Describes the target: its name, where the service answers, and platform details.
    async fn describe(&self) -> Result<TargetDescription>;

    /// The release running now, if any.
    async fn current_release(&self) -> Result<Option<Release>>;

    /// What deploying `desired` would change. Read-only.
    async fn plan(&self, desired: &Release) -> Result<Plan>;

    /// Starts deploying `desired` and returns at once with the platform's rollout id.
    async fn deploy(&self, desired: &Release) -> Result<DeployHandle>;

    /// After a [`Target::deploy`] of `desired` that may have been applied although it failed
    /// ([`crate::Error::MaybeApplied`], or no answer in time): asks the platform whether it
    /// started that rollout. `Ok(Some)` is the rollout, to be followed like any other;
    /// `Ok(None)` means the platform certainly runs no rollout of `desired` (nothing was
    /// deployed); `Err` means the platform could not tell, and the run must say the
    /// environment needs attention. The default cannot tell.
    async fn find_rollout(&self, desired: &Release) -> Result<Option<DeployHandle>> {
        Err(crate::Error::target(
            self.kind(),
            format!(
                "cannot tell whether a rollout of {} was started: this target does not look rollouts up",
                desired.version
            ),
        ))
    }

    /// Follows the rollout of `handle` until it ends, reporting progress as it happens.
    /// Returns [`crate::Error::Cancelled`] promptly when `cancel` fires.
    async fn wait(
        &self,
        handle: &DeployHandle,
        progress: &StageProgress,
        cancel: &CancellationToken,
    ) -> Result<RolloutOutcome>;

    /// Makes a verified release the one serving the environment. Called only after the
    /// release at [`DeployHandle::candidate_endpoint`] passed verification; targets whose
    /// rollout already serves the environment (ECS, Kubernetes) keep the default, which does
    /// nothing. The local Docker target moves the release to the environment's port and
    /// removes the previous container here.
    async fn promote(&self, handle: &DeployHandle, progress: &StageProgress) -> Result<()> {
        let _ = (handle, progress);
        Ok(())
    }

    /// Abandons a rollout that was never promoted (its release failed before taking over):
    /// candidate targets remove the candidate. The release serving before is untouched.
    /// Targets without candidates keep the default, which does nothing.
    async fn discard(&self, handle: &DeployHandle) -> Result<()> {
        let _ = handle;
        Ok(())
    }

    /// How many times the containers of the release of `handle` have restarted or been
    /// replaced since its rollout started (Docker restart counts, ECS stopped tasks, pod
    /// restarts). The soak after verification fails when this grows. `None` when the
    /// target cannot tell (the default).
    async fn restarts(&self, handle: &DeployHandle) -> Result<Option<u64>> {
        let _ = handle;
        Ok(None)
    }

    /// What serves now, per release: several during a rollout, none when nothing runs. The
    /// default reports [`Target::current_release`] with unknown task counts; targets that
    /// know counts say which release really has running tasks.
    async fn serving(&self) -> Result<Vec<Serving>> {
        Ok(self
            .current_release()
            .await?
            .map(|release| Serving {
                release,
                running: None,
                desired: None,
                primary: true,
                state: None,
            })
            .into_iter()
            .collect())
    }

    /// Leaves a note on the platform that run `run_id` verified `release`, so the release
    /// stays findable as known-good when that run's final record is lost (an unwritable
    /// ledger, a process killed between verification and record). The pipeline calls it once
    /// a release passed verification and soak, before the final record is written; a later
    /// run reads the note back through [`Target::verified_by`] when it finds the run still
    /// `in_progress`. Only the newest note needs to be kept. `Ok(false)`: the target keeps no
    /// notes (the default).
    async fn mark_verified(&self, release: &Release, run_id: &str) -> Result<bool> {
        let _ = (release, run_id);
        Ok(false)
    }

    /// The release that run `run_id` verified, when the platform holds that run's note (see
    /// [`Target::mark_verified`]); `Ok(None)` when it holds none (the default).
    async fn verified_by(&self, run_id: &str) -> Result<Option<Release>> {
        let _ = run_id;
        Ok(None)
    }

    /// Starts rolling back to `to` (a release that ran before) and returns its handle.
    async fn rollback(&self, to: &Release) -> Result<DeployHandle>;

    /// Releases the target knows about, newest first.
    async fn history(&self) -> Result<Vec<Revision>>;
}

/// What a target says about itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetDescription {
    /// The target kind.
    pub kind: String,
    /// A human name (`service kyb-api in cluster kyb-staging`).
    pub name: String,
    /// Where the service answers, when the target knows.
    pub endpoint: Option<Url>,
    /// Platform details as key/value pairs, for `status`.
    pub details: Vec<(String, String)>,
}

/// A rollout that a target started.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployHandle {
    /// The platform's id of the rollout (ECS deployment id, ReplicaSet revision...).
    pub rollout_id: String,
    /// The release being rolled out.
    pub release: Release,
    /// When the rollout was started.
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// Where the new release answers while the previous one still serves, for targets that
    /// verify a release beside the old one before it takes over (then [`Target::promote`]
    /// follows a passed verification). `None` when the rollout itself replaces the old
    /// release; verification then uses the environment's URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate_endpoint: Option<Url>,
    /// Where the platform's event stream stood when the rollout started (ECS: the id of the
    /// service's newest event), so that following the rollout reports only what came after.
    /// `None` when the target keeps no such stream or the position is unknown (a rollout
    /// found again after a lost answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// How a rollout ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum RolloutOutcome {
    /// The new release runs everywhere it should.
    Completed,
    /// The rollout failed.
    Failed {
        /// Why, in the platform's words (stopped reasons, events).
        reason: String,
        /// When the platform itself rolled back (ECS circuit breaker), the release it went
        /// back to. kyb-deploy then verifies it instead of rolling back a second time.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        platform_rolled_back_to: Option<Release>,
    },
}

/// One release that the platform runs (or is rolling out) now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Serving {
    /// The release.
    pub release: Release,
    /// Its running tasks, pods or containers, when the target knows.
    pub running: Option<u32>,
    /// How many it should have, when the target knows.
    pub desired: Option<u32>,
    /// Whether the platform considers it the release it is moving to (the ECS PRIMARY
    /// deployment, the newest ReplicaSet). It may have nothing running yet.
    pub primary: bool,
    /// The platform's word for the rollout's state (`COMPLETED`, `IN_PROGRESS`...).
    pub state: Option<String>,
}

impl Serving {
    /// Whether it answers requests now: it has running tasks, or the target cannot count
    /// them.
    pub fn answers(&self) -> bool {
        self.running.is_none_or(|n| n > 0)
    }
}

/// A read-only preview of a deployment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// The release running now, if any.
    pub current: Option<Release>,
    /// Every change the deployment would make.
    pub changes: Vec<PlannedChange>,
}

/// One change in a [`Plan`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedChange {
    /// What changes (`task definition`, `container kyb-api`...).
    pub resource: String,
    /// Which field.
    pub field: String,
    /// Value now, if any.
    pub from: Option<String>,
    /// Value after the deployment, if any.
    pub to: Option<String>,
}

/// A release the target knows about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revision {
    /// The release.
    pub release: Release,
    /// When it was deployed, when known.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub deployed_at: Option<OffsetDateTime>,
    /// Whether it is running now.
    pub active: bool,
}
