//! Latency percentiles of request durations.

use std::time::Duration;

use crate::verify::LatencySummary;

impl LatencySummary {
    /// Summarizes request durations with nearest-rank percentiles: the p-th percentile is
    /// the smallest sample that at least p% of the samples do not exceed, so every reported
    /// value is one that was actually measured.
    ///
    /// Without samples every percentile is `None`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use kyb_deploy_core::verify::LatencySummary;
    ///
    /// let samples: Vec<_> = (1..=20).map(Duration::from_millis).collect();
    /// let summary = LatencySummary::from_samples(&samples);
    /// assert_eq!(summary.samples, 20);
    /// assert_eq!(summary.p50_ms, Some(10.0));
    /// assert_eq!(summary.p95_ms, Some(19.0));
    /// assert_eq!(summary.max_ms, Some(20.0));
    /// ```
    pub fn from_samples(samples: &[Duration]) -> Self {
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        Self {
            samples: u32::try_from(sorted.len()).unwrap_or(u32::MAX),
            p50_ms: nearest_rank(&sorted, 50),
            p95_ms: nearest_rank(&sorted, 95),
            max_ms: sorted.last().map(|d| millis(*d)),
        }
    }
}

/// The `percent`-th percentile of sorted samples, in milliseconds.
fn nearest_rank(sorted: &[Duration], percent: usize) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    // Rank is ceil(percent/100 * n), 1-based; integer arithmetic avoids float rounding.
    let rank = (percent * sorted.len()).div_ceil(100).max(1);
    Some(millis(sorted[rank - 1]))
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn ms(values: &[u64]) -> Vec<Duration> {
        values.iter().copied().map(Duration::from_millis).collect()
    }

    #[test]
    fn empty_has_no_percentiles() {
        assert_eq!(
            LatencySummary::from_samples(&[]),
            LatencySummary {
                samples: 0,
                p50_ms: None,
                p95_ms: None,
                max_ms: None
            }
        );
    }

    #[test]
    fn single_sample_is_every_percentile() {
        let summary = LatencySummary::from_samples(&[Duration::from_micros(1500)]);
        assert_eq!(summary.samples, 1);
        assert_eq!(summary.p50_ms, Some(1.5));
        assert_eq!(summary.p95_ms, Some(1.5));
        assert_eq!(summary.max_ms, Some(1.5));
    }

    #[test]
    fn nearest_rank_on_unsorted_samples() {
        // Sorted: 10 20 30 40 50; p50 rank ceil(2.5) = 3, p95 rank ceil(4.75) = 5.
        let summary = LatencySummary::from_samples(&ms(&[50, 10, 40, 20, 30]));
        assert_eq!(summary.p50_ms, Some(30.0));
        assert_eq!(summary.p95_ms, Some(50.0));
        assert_eq!(summary.max_ms, Some(50.0));
    }

    #[test]
    fn p95_ignores_the_slowest_of_many() {
        // 99 fast requests and one slow one: the slow one is the max, not the p95.
        let mut samples = ms(&[5; 99]);
        samples.push(Duration::from_secs(2));
        let summary = LatencySummary::from_samples(&samples);
        assert_eq!(summary.p95_ms, Some(5.0));
        assert_eq!(summary.max_ms, Some(2000.0));
    }

    #[test]
    fn even_count_median_is_the_lower_middle() {
        let summary = LatencySummary::from_samples(&ms(&[1, 2, 3, 4]));
        assert_eq!(summary.p50_ms, Some(2.0));
    }

    proptest! {
        #[test]
        fn percentiles_are_ordered_and_measured(
            micros in proptest::collection::vec(0u64..10_000_000, 1..200),
        ) {
            let samples: Vec<_> = micros.iter().copied().map(Duration::from_micros).collect();
            let summary = LatencySummary::from_samples(&samples);
            let min = millis(*samples.iter().min().unwrap());
            let (p50, p95, max) = (
                summary.p50_ms.unwrap(),
                summary.p95_ms.unwrap(),
                summary.max_ms.unwrap(),
            );
            prop_assert_eq!(summary.samples as usize, samples.len());
            prop_assert!(min <= p50 && p50 <= p95 && p95 <= max);
            prop_assert_eq!(max, millis(*samples.iter().max().unwrap()));
            prop_assert!(samples.iter().any(|d| millis(*d) == p50));
            prop_assert!(samples.iter().any(|d| millis(*d) == p95));
        }
    }
}
