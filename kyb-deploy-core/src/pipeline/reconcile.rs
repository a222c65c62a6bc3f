//! Finding out whether a deploy call that failed without a clear answer started a rollout.
//!
//! The write rule: once a platform write may have been applied (no answer in time, a server
//! error, a dropped connection), the run must not claim that nothing was deployed until the
//! platform says so. [`Reconciler`] decides, from the answers of successive lookups
//! ([`crate::Target::find_rollout`]), when the question is settled; the pipeline does the
//! lookups and the waiting.

use std::time::Duration;

use super::Pipeline;
use super::stage::{RunControl, StageError, StageLog};
use crate::config::Environment;
use crate::outcome::Outcome;
use crate::release::Release;
use crate::stage::Stage;
use crate::target::DeployHandle;

/// How many lookups are made at most.
pub(super) const LOOKUPS: u32 = 5;

/// The wait before lookup `n` (1-based): none before the first, then 0.5 s doubling.
pub(super) fn delay_before(n: u32) -> Duration {
    match n {
        0 | 1 => Duration::ZERO,
        n => Duration::from_millis(500).saturating_mul(1 << (n - 2).min(10)),
    }
}

/// One lookup's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Lookup<H> {
    /// The platform runs the rollout.
    Found(H),
    /// The platform shows no such rollout.
    Absent,
    /// The platform could not be read.
    Failed(String),
}

/// What is known after a lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Verdict<H> {
    /// Follow this rollout: the environment changed.
    Deployed(H),
    /// The platform showed no rollout twice in a row: nothing was deployed.
    NotDeployed,
    /// Look again (after [`delay_before`]).
    LookAgain,
    /// Out of lookups without an answer: the environment needs attention. The last read
    /// error, when there was one.
    Unknown(Option<String>),
}

/// Decides from successive lookups. A single "absent" is not trusted (a write still in
/// flight, a platform read that lags its writes): only two in a row settle it.
#[derive(Debug, Default)]
pub(super) struct Reconciler {
    lookups: u32,
    absent_in_a_row: u32,
    last_error: Option<String>,
}

impl Reconciler {
    /// Takes one lookup's answer and says what is known now.
    pub(super) fn next<H>(&mut self, lookup: Lookup<H>) -> Verdict<H> {
        self.lookups += 1;
        match lookup {
            Lookup::Found(handle) => return Verdict::Deployed(handle),
            Lookup::Absent => {
                self.absent_in_a_row += 1;
                if self.absent_in_a_row >= 2 {
                    return Verdict::NotDeployed;
                }
            }
            Lookup::Failed(error) => {
                self.absent_in_a_row = 0;
                self.last_error = Some(error);
            }
        }
        if self.lookups >= LOOKUPS {
            Verdict::Unknown(self.last_error.clone())
        } else {
            Verdict::LookAgain
        }
    }
}

impl Pipeline {
    /// After `deploy_error` (no answer in time, or an answer lost): asks the platform, a
    /// bounded number of times, whether it started a rollout of `release`. Returns the
    /// rollout to follow, or the run's outcome: nothing deployed (the platform said so
    /// twice), or "needs attention" when it could not tell. Runs to the end even when the
    /// run was cancelled: the answer decides what the run may claim.
    pub(super) async fn reconcile(
        &self,
        env: &Environment,
        release: &Release,
        deploy_error: StageError,
        stages: &mut StageLog<'_>,
    ) -> Result<DeployHandle, Outcome> {
        let started = stages.begin(Stage::Reconcile);
        let failed = deploy_error.message();
        self.events.progress(
            Stage::Reconcile,
            format!(
                "starting the rollout of {} failed without a clear answer ({failed}); asking the {} target whether it started one",
                release.version,
                self.target.kind()
            ),
        );
        let limit = env.settings.timeouts.deploy;
        let mut reconciler = Reconciler::default();
        // The reconciler settles by its last lookup ([`LOOKUPS`]), so the loop ends.
        let mut n = 0;
        loop {
            n += 1;
            tokio::time::sleep(delay_before(n)).await;
            let lookup = match RunControl::uncancellable(limit)
                .run(limit, self.target.find_rollout(release))
                .await
            {
                Ok(Some(handle)) => Lookup::Found(handle),
                Ok(None) => Lookup::Absent,
                Err(e) => Lookup::Failed(e.message()),
            };
            match reconciler.next(lookup) {
                Verdict::LookAgain => {}
                Verdict::Deployed(handle) => {
                    self.events.progress(
                        Stage::Reconcile,
                        format!(
                            "the platform did start rollout {} of {}; following it",
                            handle.rollout_id, release.version
                        ),
                    );
                    stages.succeed(started);
                    return Ok(handle);
                }
                Verdict::NotDeployed => {
                    let reason = format!(
                        "{failed}; the {} target shows no rollout of {} (asked {n} times), so nothing was deployed",
                        self.target.kind(),
                        release.version
                    );
                    stages.succeed(started);
                    return Err(Outcome::FailedBeforeDeploy {
                        stage: Stage::Deploy,
                        reason,
                    });
                }
                Verdict::Unknown(last_error) => {
                    let rollback_error = format!(
                        "whether the {} target applied the deployment of {} is unknown ({}); nothing was rolled back: check what runs with `kyb-deploy status -e {}`, and return to the last known-good release with `kyb-deploy rollback -e {}` if needed",
                        self.target.kind(),
                        release.version,
                        last_error.unwrap_or_else(|| "it never answered".to_owned()),
                        env.name,
                        env.name
                    );
                    stages.fail(started, &rollback_error);
                    return Err(Outcome::RollbackFailed {
                        stage: Stage::Deploy,
                        reason: failed,
                        rollback_error,
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(lookups: Vec<Lookup<u32>>) -> Vec<Verdict<u32>> {
        let mut reconciler = Reconciler::default();
        lookups.into_iter().map(|l| reconciler.next(l)).collect()
    }

    fn failed() -> Lookup<u32> {
        Lookup::Failed("connection reset".into())
    }

    /// (case name, what each lookup saw, the verdict expected after each).
    type Case = (&'static str, Vec<Lookup<u32>>, Vec<Verdict<u32>>);

    #[test]
    fn verdicts_table() {
        use Lookup::{Absent, Found};
        use Verdict::{Deployed, LookAgain, NotDeployed, Unknown};
        let reset = || Some("connection reset".to_owned());
        let cases: Vec<Case> = vec![
            ("found at once", vec![Found(7)], vec![Deployed(7)]),
            (
                "found after a failed read",
                vec![failed(), Found(7)],
                vec![LookAgain, Deployed(7)],
            ),
            (
                "absent is confirmed once more",
                vec![Absent, Absent],
                vec![LookAgain, NotDeployed],
            ),
            (
                "absent, then found: the write landed late",
                vec![Absent, Found(7)],
                vec![LookAgain, Deployed(7)],
            ),
            (
                "a failed read between two absents does not confirm",
                vec![Absent, failed(), Absent, Absent],
                vec![LookAgain, LookAgain, LookAgain, NotDeployed],
            ),
            (
                "every read fails: unknown with the last error",
                vec![failed(), failed(), failed(), failed(), failed()],
                vec![LookAgain, LookAgain, LookAgain, LookAgain, Unknown(reset())],
            ),
            (
                "never two absents in a row: unknown",
                vec![Absent, failed(), Absent, failed(), Absent],
                vec![LookAgain, LookAgain, LookAgain, LookAgain, Unknown(reset())],
            ),
            (
                "a last absent after failures is not enough",
                vec![failed(), failed(), failed(), failed(), Absent],
                vec![LookAgain, LookAgain, LookAgain, LookAgain, Unknown(reset())],
            ),
            (
                "found on the last lookup",
                vec![failed(), failed(), failed(), failed(), Found(7)],
                vec![LookAgain, LookAgain, LookAgain, LookAgain, Deployed(7)],
            ),
        ];
        for (name, lookups, expected) in cases {
            assert_eq!(run(lookups), expected, "{name}");
        }
    }

    #[test]
    fn confirming_absent_on_the_last_lookup_settles_it() {
        let mut lookups = vec![failed(), failed(), failed(), Lookup::Absent, Lookup::Absent];
        let verdicts = run(std::mem::take(&mut lookups));
        assert_eq!(verdicts.last(), Some(&Verdict::NotDeployed));
    }

    #[test]
    fn delays_grow_and_start_at_zero() {
        assert_eq!(delay_before(1), Duration::ZERO);
        assert_eq!(delay_before(2), Duration::from_millis(500));
        assert_eq!(delay_before(3), Duration::from_secs(1));
        assert_eq!(delay_before(5), Duration::from_secs(4));
        // Never overflows.
        assert!(delay_before(u32::MAX) > Duration::ZERO);
    }
}
