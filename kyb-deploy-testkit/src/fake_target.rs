//! [`FakeTarget`]: a target whose rollouts follow a script.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use kyb_deploy_core::{
    CancellationToken, DeployHandle, Error, Plan, PlannedChange, Release, Result, Revision,
    RolloutOutcome, StageProgress, Target, TargetDescription, Url, async_trait,
};
use time::OffsetDateTime;

/// How one scripted rollout goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FakeRollout {
    /// Completes after the delay.
    Complete(Duration),
    /// Fails after the delay with the reason; the previous release keeps running.
    Fail(Duration, String),
    /// Fails after the delay and the platform rolls back on its own (like the ECS circuit
    /// breaker) to the release that ran before.
    PlatformRollback(Duration, String),
    /// Never finishes; only cancellation or a timeout ends the wait.
    Hang,
    /// `deploy` (or `rollback`) itself returns this error; no rollout starts.
    Reject(String),
    /// The rollout starts at once, but `deploy` (or `rollback`) answers only after the delay;
    /// the rollout then completes. Like a platform that accepted a change and answered late.
    SlowStart(Duration),
    /// The platform applies the change and starts the inner rollout, but the answer is lost:
    /// `deploy` (or `rollback`) returns [`Error::MaybeApplied`]. Like an UpdateService
    /// answered 500 after it was applied, or a connection dropped after the request went out.
    AnswerLost(Box<FakeRollout>),
    /// The platform refuses the change, but says so ambiguously: `deploy` (or `rollback`)
    /// returns [`Error::MaybeApplied`] and no rollout starts.
    RefusedAmbiguously,
}

/// A call made to a [`FakeTarget`], in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetCall {
    /// `describe`.
    Describe,
    /// `current_release`.
    CurrentRelease,
    /// `plan` of a version.
    Plan(String),
    /// `deploy` of a version.
    Deploy(String),
    /// `wait` on a rollout id.
    Wait(String),
    /// `rollback` to a version.
    Rollback(String),
    /// `promote` of a version verified beside the old one.
    Promote(String),
    /// `discard` of a version that failed before it was promoted.
    Discard(String),
    /// `history`.
    History,
    /// `find_rollout` of a version, after a deploy whose answer was lost.
    FindRollout(String),
    /// `restarts` of a rollout id.
    Restarts(String),
    /// `mark_verified` of a version by a run.
    MarkVerified(String),
    /// `verified_by` of a run id.
    VerifiedBy(String),
}

impl TargetCall {
    /// Whether the call changes the target.
    pub fn is_mutating(&self) -> bool {
        matches!(
            self,
            Self::Deploy(_)
                | Self::Rollback(_)
                | Self::Promote(_)
                | Self::Discard(_)
                | Self::MarkVerified(_)
        )
    }
}

/// Called with each release that becomes current, so a fake can start something real (the
/// README's example starts `kyb-sample-api` for the version). An error fails the rollout.
pub type ActivateHook = Arc<dyn Fn(Release) -> BoxFuture<'static, Result<()>> + Send + Sync>;

#[derive(Default)]
struct State {
    current: Option<Release>,
    history: Vec<Revision>,
    script: VecDeque<FakeRollout>,
    rollouts: HashMap<String, (FakeRollout, Option<Release>)>,
    calls: Vec<TargetCall>,
    next_id: u64,
    /// How many `find_rollout` reads fail before one answers.
    failing_reads: u32,
    /// Answers of `restarts`, one per call; the last one repeats.
    restarts: VecDeque<u64>,
    /// Rollouts started, newest last, by id: what a platform's deployment list shows.
    started: Vec<(String, Release)>,
    /// The newest verification note: the run that left it and the release it verified.
    note: Option<(String, Release)>,
    /// Whether the target keeps verification notes (like ECS service tags).
    keeps_notes: bool,
    /// Whether `plan` never answers.
    plans_hang: bool,
}

/// A [`Target`] for tests and examples: rollouts follow a script of [`FakeRollout`]s (each
/// `deploy` or `rollback` takes the next; an empty script completes at once), every call is
/// recorded, and an optional hook runs when a release becomes current.
///
/// ```
/// use std::time::Duration;
/// use kyb_deploy_testkit::{FakeRollout, FakeTarget};
///
/// let target = FakeTarget::new()
///     .with_endpoint("http://127.0.0.1:8080".parse().unwrap())
///     .script(FakeRollout::Fail(Duration::ZERO, "task exited with code 1".into()));
/// assert!(target.calls().is_empty());
/// ```
#[derive(Clone, Default)]
pub struct FakeTarget {
    state: Arc<Mutex<State>>,
    endpoint: Option<Url>,
    candidate_endpoint: Option<Url>,
    on_activate: Option<ActivateHook>,
}

impl std::fmt::Debug for FakeTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeTarget")
            .field("endpoint", &self.endpoint)
            .field("current", &self.current())
            .finish_non_exhaustive()
    }
}

impl FakeTarget {
    /// A target with nothing running and an empty script.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts with `release` running.
    pub fn with_current(self, release: Release) -> Self {
        self.lock().current = Some(release);
        self
    }

    /// Starts with `releases` deployed before, newest first: the first runs, and the
    /// platform lists them all ([`Target::history`]), as a service deployed from another
    /// runner does.
    pub fn with_history(self, releases: impl IntoIterator<Item = Release>) -> Self {
        {
            let mut state = self.lock();
            state.history = releases
                .into_iter()
                .map(|release| Revision {
                    release,
                    deployed_at: Some(OffsetDateTime::now_utc()),
                    active: false,
                })
                .collect();
            if let Some(first) = state.history.first_mut() {
                first.active = true;
                state.current = Some(first.release.clone());
            }
        }
        self
    }

    /// Reports `endpoint` as where the service answers.
    pub fn with_endpoint(mut self, endpoint: Url) -> Self {
        self.endpoint = Some(endpoint);
        self
    }

    /// Verifies releases beside the old one, like the local Docker target: rollouts answer at
    /// `candidate` and a release becomes current only when promoted.
    pub fn with_candidate_endpoint(mut self, candidate: Url) -> Self {
        self.candidate_endpoint = Some(candidate);
        self
    }

    /// Runs `hook` whenever a release becomes current.
    pub fn on_activate(mut self, hook: ActivateHook) -> Self {
        self.on_activate = Some(hook);
        self
    }

    /// Appends a rollout to the script.
    pub fn script(self, rollout: FakeRollout) -> Self {
        self.lock().script.push_back(rollout);
        self
    }

    /// The next `count` calls of `find_rollout` fail, as when the platform cannot be read
    /// right after a write whose answer was lost.
    pub fn fail_reads(self, count: u32) -> Self {
        self.lock().failing_reads = count;
        self
    }

    /// `restarts` answers these counts, one per call, repeating the last; without any, the
    /// target cannot tell (`None`).
    pub fn restart_counts(self, counts: impl IntoIterator<Item = u64>) -> Self {
        self.lock().restarts = counts.into_iter().collect();
        self
    }

    /// Keeps verification notes ([`Target::mark_verified`]), newest only, as the ECS target
    /// does in its service's tags. Without it the target keeps none, like the default.
    pub fn keeping_verification_notes(self) -> Self {
        self.lock().keeps_notes = true;
        self
    }

    /// The newest verification note: the id of the run that left it, and the release.
    pub fn verification_note(&self) -> Option<(String, Release)> {
        self.lock().note.clone()
    }

    /// `plan` never answers, like a platform that accepted the connection and went quiet:
    /// only cancellation or a time limit ends a dry run.
    pub fn hang_plans(self) -> Self {
        self.lock().plans_hang = true;
        self
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<TargetCall> {
        self.lock().calls.clone()
    }

    /// The calls that changed the target.
    pub fn mutating_calls(&self) -> Vec<TargetCall> {
        self.calls()
            .into_iter()
            .filter(TargetCall::is_mutating)
            .collect()
    }

    /// The release running now.
    pub fn current(&self) -> Option<Release> {
        self.lock().current.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock is a test failure already; keep the state usable.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts the next scripted rollout; returns its handle and how long the call takes to
    /// answer.
    fn start(&self, release: &Release, call: TargetCall) -> Result<(DeployHandle, Duration)> {
        let mut state = self.lock();
        state.calls.push(call);
        let rollout = state
            .script
            .pop_front()
            .unwrap_or(FakeRollout::Complete(Duration::ZERO));
        let lost = |state: &State| {
            Error::maybe_applied(
                "fake",
                format!(
                    "the answer to starting {} was lost (attempt {})",
                    release.version,
                    state.calls.len()
                ),
                None,
            )
        };
        let (rollout, answer) = match rollout {
            FakeRollout::Reject(message) => return Err(Error::target("fake", message)),
            FakeRollout::RefusedAmbiguously => return Err(lost(&state)),
            FakeRollout::SlowStart(d) => (FakeRollout::SlowStart(d), Ok(d)),
            FakeRollout::AnswerLost(inner) => {
                let error = lost(&state);
                (*inner, Err(error))
            }
            other => (other, Ok(Duration::ZERO)),
        };
        state.next_id += 1;
        let rollout_id = format!("fake-rollout-{}", state.next_id);
        let previous = state.current.clone();
        state
            .rollouts
            .insert(rollout_id.clone(), (rollout, previous));
        state.started.push((rollout_id.clone(), release.clone()));
        let handle = DeployHandle {
            rollout_id,
            release: release.clone(),
            started_at: OffsetDateTime::now_utc(),
            candidate_endpoint: self.candidate_endpoint.clone(),
            cursor: None,
        };
        answer.map(|answer_after| (handle, answer_after))
    }

    /// The handle of the newest rollout of `release` (by image) that was started.
    fn started_rollout(&self, release: &Release) -> Option<DeployHandle> {
        let state = self.lock();
        state
            .started
            .iter()
            .rev()
            .find(|(_, r)| r.image == release.image)
            .map(|(id, r)| DeployHandle {
                rollout_id: id.clone(),
                release: r.clone(),
                started_at: OffsetDateTime::now_utc(),
                candidate_endpoint: self.candidate_endpoint.clone(),
                cursor: None,
            })
    }
}

#[async_trait]
impl Target for FakeTarget {
    fn kind(&self) -> &str {
        "fake"
    }

    async fn describe(&self) -> Result<TargetDescription> {
        self.lock().calls.push(TargetCall::Describe);
        Ok(TargetDescription {
            kind: "fake".into(),
            name: "fake target".into(),
            endpoint: self.endpoint.clone(),
            details: Vec::new(),
        })
    }

    async fn current_release(&self) -> Result<Option<Release>> {
        let mut state = self.lock();
        state.calls.push(TargetCall::CurrentRelease);
        Ok(state.current.clone())
    }

    async fn plan(&self, desired: &Release) -> Result<Plan> {
        let (current, hangs) = {
            let mut state = self.lock();
            state
                .calls
                .push(TargetCall::Plan(desired.version.to_string()));
            (state.current.clone(), state.plans_hang)
        };
        if hangs {
            std::future::pending::<()>().await;
        }
        let from = current.as_ref().map(|r| r.image.clone());
        let changes = if from.as_deref() == Some(desired.image.as_str()) {
            Vec::new()
        } else {
            vec![PlannedChange {
                resource: "fake service".into(),
                field: "image".into(),
                from,
                to: Some(desired.image.clone()),
            }]
        };
        Ok(Plan { current, changes })
    }

    async fn deploy(&self, desired: &Release) -> Result<DeployHandle> {
        let (handle, answer_after) =
            self.start(desired, TargetCall::Deploy(desired.version.to_string()))?;
        tokio::time::sleep(answer_after).await;
        Ok(handle)
    }

    async fn wait(
        &self,
        handle: &DeployHandle,
        progress: &StageProgress,
        cancel: &CancellationToken,
    ) -> Result<RolloutOutcome> {
        let (rollout, previous) = {
            let mut state = self.lock();
            state
                .calls
                .push(TargetCall::Wait(handle.rollout_id.clone()));
            state
                .rollouts
                .get(&handle.rollout_id)
                .cloned()
                .ok_or_else(|| {
                    Error::target("fake", format!("unknown rollout {}", handle.rollout_id))
                })?
        };
        let delay = match &rollout {
            FakeRollout::Complete(d)
            | FakeRollout::Fail(d, _)
            | FakeRollout::PlatformRollback(d, _) => *d,
            FakeRollout::Hang => Duration::MAX,
            FakeRollout::Reject(_)
            | FakeRollout::SlowStart(_)
            | FakeRollout::AnswerLost(_)
            | FakeRollout::RefusedAmbiguously => Duration::ZERO,
        };
        progress.progress(format!("fake rollout {} in progress", handle.rollout_id));
        tokio::select! {
            () = cancel.cancelled() => return Err(Error::Cancelled),
            () = sleep(delay) => {}
        }
        match rollout {
            FakeRollout::Complete(_) | FakeRollout::SlowStart(_) => {
                if self.candidate_endpoint.is_none() {
                    self.activate(&handle.release).await?;
                }
                Ok(RolloutOutcome::Completed)
            }
            FakeRollout::Fail(_, reason) => Ok(RolloutOutcome::Failed {
                reason,
                platform_rolled_back_to: None,
            }),
            FakeRollout::PlatformRollback(_, reason) => Ok(RolloutOutcome::Failed {
                reason,
                platform_rolled_back_to: previous,
            }),
            FakeRollout::Hang
            | FakeRollout::Reject(_)
            | FakeRollout::RefusedAmbiguously
            | FakeRollout::AnswerLost(_) => {
                unreachable!(
                    "a hanging rollout never gets here, a refused one never started, and a lost answer's rollout is stored as its inner rollout"
                )
            }
        }
    }

    async fn promote(&self, handle: &DeployHandle, _progress: &StageProgress) -> Result<()> {
        self.lock()
            .calls
            .push(TargetCall::Promote(handle.release.version.to_string()));
        self.activate(&handle.release).await
    }

    async fn discard(&self, handle: &DeployHandle) -> Result<()> {
        self.lock()
            .calls
            .push(TargetCall::Discard(handle.release.version.to_string()));
        Ok(())
    }

    async fn rollback(&self, to: &Release) -> Result<DeployHandle> {
        let (handle, answer_after) =
            self.start(to, TargetCall::Rollback(to.version.to_string()))?;
        tokio::time::sleep(answer_after).await;
        Ok(handle)
    }

    async fn find_rollout(&self, desired: &Release) -> Result<Option<DeployHandle>> {
        {
            let mut state = self.lock();
            state
                .calls
                .push(TargetCall::FindRollout(desired.version.to_string()));
            if state.failing_reads > 0 {
                state.failing_reads -= 1;
                return Err(Error::target(
                    "fake",
                    "reading the rollouts failed: connection reset",
                ));
            }
        }
        Ok(self.started_rollout(desired))
    }

    async fn restarts(&self, handle: &DeployHandle) -> Result<Option<u64>> {
        let mut state = self.lock();
        state
            .calls
            .push(TargetCall::Restarts(handle.rollout_id.clone()));
        let answer = state.restarts.front().copied();
        if state.restarts.len() > 1 {
            state.restarts.pop_front();
        }
        Ok(answer)
    }

    async fn mark_verified(&self, release: &Release, run_id: &str) -> Result<bool> {
        let mut state = self.lock();
        if !state.keeps_notes {
            return Ok(false);
        }
        state
            .calls
            .push(TargetCall::MarkVerified(release.version.to_string()));
        state.note = Some((run_id.to_owned(), release.clone()));
        Ok(true)
    }

    async fn verified_by(&self, run_id: &str) -> Result<Option<Release>> {
        let mut state = self.lock();
        if !state.keeps_notes {
            return Ok(None);
        }
        state.calls.push(TargetCall::VerifiedBy(run_id.to_owned()));
        Ok(state
            .note
            .clone()
            .filter(|(run, _)| run == run_id)
            .map(|(_, release)| release))
    }

    async fn history(&self) -> Result<Vec<Revision>> {
        let mut state = self.lock();
        state.calls.push(TargetCall::History);
        Ok(state.history.clone())
    }
}

impl FakeTarget {
    /// Makes `release` current: runs the hook, then records it.
    async fn activate(&self, release: &Release) -> Result<()> {
        if let Some(hook) = &self.on_activate {
            hook(release.clone()).await?;
        }
        let mut state = self.lock();
        state.current = Some(release.clone());
        for revision in &mut state.history {
            revision.active = false;
        }
        state.history.insert(
            0,
            Revision {
                release: release.clone(),
                deployed_at: Some(OffsetDateTime::now_utc()),
                active: true,
            },
        );
        Ok(())
    }
}

/// Sleeps for `d`, treating `Duration::MAX` as forever.
async fn sleep(d: Duration) {
    if d == Duration::MAX {
        std::future::pending::<()>().await;
    } else {
        tokio::time::sleep(d).await;
    }
}
