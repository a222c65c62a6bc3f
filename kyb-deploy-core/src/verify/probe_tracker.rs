//! The threshold state machine of a Kubernetes-style probe, without any I/O.

use crate::config::ProbeSettings;

/// Where a probe stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum ProbeState {
    /// Neither threshold has been reached yet: keep probing.
    Pending,
    /// `success_threshold` consecutive attempts succeeded.
    Passed,
    /// `failure_threshold` consecutive attempts failed.
    Failed,
}

impl ProbeState {
    /// Whether the probe has reached a verdict and further attempts change nothing.
    pub(crate) fn is_terminal(self) -> bool {
        self != Self::Pending
    }
}

/// Counts consecutive probe outcomes against the success and failure thresholds.
///
/// A success resets the failure streak and a failure resets the success streak. The first
/// threshold reached decides the probe for good: later attempts do not change the state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ProbeTracker {
    failure_threshold: u32,
    success_threshold: u32,
    consecutive_failures: u32,
    consecutive_successes: u32,
    attempts: u32,
    state: ProbeState,
}

impl ProbeTracker {
    /// A tracker that fails after `failure_threshold` consecutive failures and passes after
    /// `success_threshold` consecutive successes.
    ///
    /// A threshold of 0 is treated as 1, the minimum Kubernetes accepts: a probe has to see
    /// at least one attempt before it can decide anything.
    pub(crate) fn new(failure_threshold: u32, success_threshold: u32) -> Self {
        Self {
            failure_threshold: failure_threshold.max(1),
            success_threshold: success_threshold.max(1),
            consecutive_failures: 0,
            consecutive_successes: 0,
            attempts: 0,
            state: ProbeState::Pending,
        }
    }

    /// A tracker with the thresholds of `settings`.
    pub(crate) fn for_settings(settings: &ProbeSettings) -> Self {
        Self::new(settings.failure_threshold, settings.success_threshold)
    }

    /// Records the outcome of one attempt and returns the resulting state.
    ///
    /// Once the state is [`ProbeState::Passed`] or [`ProbeState::Failed`] it stays so, and
    /// further outcomes are ignored.
    pub(crate) fn record(&mut self, success: bool) -> ProbeState {
        if self.state.is_terminal() {
            return self.state;
        }
        self.attempts = self.attempts.saturating_add(1);
        if success {
            self.consecutive_failures = 0;
            self.consecutive_successes += 1;
            if self.consecutive_successes >= self.success_threshold {
                self.state = ProbeState::Passed;
            }
        } else {
            self.consecutive_successes = 0;
            self.consecutive_failures += 1;
            if self.consecutive_failures >= self.failure_threshold {
                self.state = ProbeState::Failed;
            }
        }
        self.state
    }

    /// The current state.
    #[cfg(test)]
    pub(crate) fn state(&self) -> ProbeState {
        self.state
    }

    /// Attempts recorded until the verdict (later ones are not counted).
    pub(crate) fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The current run of failures.
    pub(crate) fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }

    /// The current run of successes.
    pub(crate) fn consecutive_successes(&self) -> u32 {
        self.consecutive_successes
    }

    /// Consecutive failures that fail the probe (at least 1).
    pub(crate) fn failure_threshold(&self) -> u32 {
        self.failure_threshold
    }

    /// Consecutive successes that pass the probe (at least 1).
    pub(crate) fn success_threshold(&self) -> u32 {
        self.success_threshold
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn run(tracker: &mut ProbeTracker, outcomes: &[bool]) -> Vec<ProbeState> {
        outcomes.iter().map(|&o| tracker.record(o)).collect()
    }

    #[test]
    fn a_success_streak_decides_for_good() {
        use ProbeState::{Passed, Pending};
        // Fails after 3 consecutive failures, passes after 2 consecutive successes.
        let mut tracker = ProbeTracker::new(3, 2);
        assert_eq!(
            run(&mut tracker, &[false, true, true, false]),
            [Pending, Pending, Passed, Passed]
        );
    }

    #[test]
    fn passes_after_success_threshold_consecutive_successes() {
        use ProbeState::{Passed, Pending};
        let mut tracker = ProbeTracker::new(3, 3);
        assert_eq!(
            run(&mut tracker, &[true, true, false, true, true, true]),
            [Pending, Pending, Pending, Pending, Pending, Passed]
        );
        assert_eq!(tracker.attempts(), 6);
    }

    #[test]
    fn fails_after_failure_threshold_consecutive_failures() {
        use ProbeState::{Failed, Pending};
        // A success threshold of 2 keeps the single success from passing the probe.
        let mut tracker = ProbeTracker::new(3, 2);
        assert_eq!(
            run(&mut tracker, &[false, false, true, false, false, false]),
            [Pending, Pending, Pending, Pending, Pending, Failed]
        );
        assert_eq!(tracker.consecutive_failures(), 3);
        assert_eq!(tracker.consecutive_successes(), 0);
    }

    #[test]
    fn verdict_is_terminal() {
        let mut tracker = ProbeTracker::new(1, 1);
        assert_eq!(tracker.record(true), ProbeState::Passed);
        assert_eq!(tracker.record(false), ProbeState::Passed);
        assert_eq!(tracker.attempts(), 1);

        let mut tracker = ProbeTracker::new(1, 1);
        assert_eq!(tracker.record(false), ProbeState::Failed);
        assert_eq!(tracker.record(true), ProbeState::Failed);
        assert_eq!(tracker.state(), ProbeState::Failed);
    }

    #[test]
    fn zero_thresholds_act_as_one() {
        let mut tracker = ProbeTracker::new(0, 0);
        assert_eq!(
            (tracker.failure_threshold(), tracker.success_threshold()),
            (1, 1)
        );
        assert_eq!(tracker.state(), ProbeState::Pending);
        assert_eq!(tracker.record(true), ProbeState::Passed);
    }

    #[test]
    fn for_settings_uses_the_settings_thresholds() {
        let settings = ProbeSettings {
            failure_threshold: 7,
            success_threshold: 2,
            ..ProbeSettings::default()
        };
        let tracker = ProbeTracker::for_settings(&settings);
        assert_eq!(
            (tracker.failure_threshold(), tracker.success_threshold()),
            (7, 2)
        );
    }

    /// A deliberately different formulation: the verdict is decided by the first prefix of
    /// the outcomes that ends in a long enough run.
    fn reference(failure: u32, success: u32, outcomes: &[bool]) -> Vec<ProbeState> {
        let (failure, success) = (failure.max(1) as usize, success.max(1) as usize);
        let mut verdict = ProbeState::Pending;
        (0..outcomes.len())
            .map(|i| {
                if verdict == ProbeState::Pending {
                    let prefix = &outcomes[..=i];
                    let last = prefix[i];
                    let run = prefix.iter().rev().take_while(|&&o| o == last).count();
                    if last && run >= success {
                        verdict = ProbeState::Passed;
                    } else if !last && run >= failure {
                        verdict = ProbeState::Failed;
                    }
                }
                verdict
            })
            .collect()
    }

    proptest! {
        #[test]
        fn matches_the_reference(
            failure in 0u32..6,
            success in 0u32..6,
            outcomes in proptest::collection::vec(any::<bool>(), 0..40),
        ) {
            let mut tracker = ProbeTracker::new(failure, success);
            prop_assert_eq!(run(&mut tracker, &outcomes), reference(failure, success, &outcomes));
        }

        #[test]
        fn never_passes_without_trailing_successes(
            failure in 1u32..6,
            success in 1u32..6,
            outcomes in proptest::collection::vec(any::<bool>(), 0..40),
        ) {
            let mut tracker = ProbeTracker::new(failure, success);
            for (i, &outcome) in outcomes.iter().enumerate() {
                if tracker.record(outcome) == ProbeState::Passed {
                    // The attempts up to the verdict end in `success` successes.
                    let upto = tracker.attempts() as usize;
                    prop_assert!(upto <= i + 1);
                    let tail = &outcomes[..upto];
                    prop_assert!(tail.len() >= success as usize);
                    prop_assert!(tail[tail.len() - success as usize..].iter().all(|&o| o));
                    break;
                }
            }
        }

        #[test]
        fn early_failure_run_always_fails(
            failure in 1u32..6,
            success in 1u32..6,
            before in proptest::collection::vec(any::<bool>(), 0..10),
            after in proptest::collection::vec(any::<bool>(), 0..20),
        ) {
            let mut tracker = ProbeTracker::new(failure, success);
            // Feed the history, leaving out any success that would pass the probe.
            for &outcome in &before {
                if tracker.clone().record(outcome) != ProbeState::Passed {
                    tracker.record(outcome);
                }
            }
            let failures = vec![false; failure as usize];
            let mut states = run(&mut tracker, &failures);
            states.extend(run(&mut tracker, &after));
            prop_assert_eq!(tracker.state(), ProbeState::Failed);
            prop_assert!(!states.contains(&ProbeState::Passed));
        }
    }
}
