//! The soak after verification: the same probes again and again for a while, counting
//! failures, so that a release that crashes or flaps a few seconds after it passed does not
//! become "last known-good".

use std::time::Duration;

use super::{Answer, FailureTally, REQUEST_TIMEOUT, Run, after, join, judge_status};
use crate::config::VerifyConfig;
use crate::error::Result;
use crate::redact::redact_url;
use crate::verify::{CheckReport, SoakRequest, soak_passes};

/// The shortest time between two rounds of soak probes, whatever the settings say.
const MIN_PERIOD: Duration = Duration::from_millis(100);

impl Run<'_> {
    /// Probes readiness, liveness and `/status` (those enabled) every readiness period until
    /// `request.duration` has passed, and judges the share of failures. Stops early when
    /// every probe of `liveness.failure_threshold` rounds in a row failed (the service is
    /// down), or when the failures so far exceed the limit even if every probe still to come
    /// passed: waiting longer only delays the rollback.
    pub(super) async fn soak(
        &mut self,
        request: &SoakRequest,
        settings: &VerifyConfig,
    ) -> Result<CheckReport> {
        let mut paths = Vec::new();
        if settings.readiness.enabled {
            paths.push((settings.readiness.path.as_str(), settings.readiness.timeout));
        }
        if settings.liveness.enabled {
            paths.push((settings.liveness.path.as_str(), settings.liveness.timeout));
        }
        let period = settings.readiness.period.max(MIN_PERIOD);
        let down_after = settings.liveness.failure_threshold.max(1);
        let end = after(request.duration);
        let mut samples = Vec::new();
        let mut failures = FailureTally::default();
        let (mut probes, mut rounds_down) = (0u32, 0u32);
        let mut stopped_early = false;
        let mut cannot_pass = None;
        loop {
            let round_started = tokio::time::Instant::now();
            let mut round_failed = 0;
            let mut round_sent = 0;
            for (path, timeout) in &paths {
                let url = join(self.base, path);
                let (answer, elapsed) = self.send(self.client.get(url.clone()), *timeout).await?;
                samples.push(elapsed);
                round_sent += 1;
                let problem = match answer {
                    Answer::Response { status, .. } if (200..=399).contains(&status.as_u16()) => {
                        None
                    }
                    Answer::Response { status, .. } => {
                        Some(format!("GET {path} -> {}", status.as_u16()))
                    }
                    Answer::Failed(why) => Some(format!("GET {path} -> {why}")),
                };
                if let Some(problem) = problem {
                    failures.add(&problem);
                    round_failed += 1;
                }
            }
            if settings.status.enabled {
                let url = join(self.base, &settings.status.path);
                let (answer, elapsed) = self
                    .send(self.client.get(url.clone()), REQUEST_TIMEOUT)
                    .await?;
                samples.push(elapsed);
                round_sent += 1;
                let (outcome, _) = judge_status(
                    &answer,
                    &redact_url(&url),
                    &settings.status.version_pointer,
                    request.expected_version.as_str(),
                );
                if let Err(problem) = outcome {
                    failures.add(&problem);
                    round_failed += 1;
                }
            }
            probes += round_sent;
            rounds_down = if round_sent > 0 && round_failed == round_sent {
                rounds_down + 1
            } else {
                0
            };
            let left = end.saturating_duration_since(tokio::time::Instant::now());
            self.progress.progress(format!(
                "soak: {probes} probes, {} failed, {} left",
                failures.total,
                humantime::format_duration(Duration::from_secs(left.as_secs()))
            ));
            if rounds_down >= down_after {
                stopped_early = true;
                break;
            }
            let rounds_left =
                u32::try_from(left.as_nanos() / period.as_nanos().max(1)).unwrap_or(u32::MAX);
            let at_most = probes.saturating_add(rounds_left.saturating_mul(round_sent));
            if !soak_passes(at_most, failures.total, request.max_failure_ratio) {
                cannot_pass = Some(at_most);
                break;
            }
            let next = round_started.checked_add(period).unwrap_or(end);
            if next >= end {
                break;
            }
            self.sleep_until(next).await?;
        }
        let nothing_to_probe = paths.is_empty() && !settings.status.enabled;
        let passed = nothing_to_probe
            || (!stopped_early
                && cannot_pass.is_none()
                && soak_passes(probes, failures.total, request.max_failure_ratio));
        let soaked = humantime::format_duration(request.duration);
        let limit = request.max_failure_ratio * 100.0;
        let detail = if nothing_to_probe {
            format!(
                "waited {soaked} without probing: readiness, liveness and status are all disabled"
            )
        } else if stopped_early {
            format!(
                "the service stopped answering during the soak: every probe of {rounds_down} rounds in a row failed; {probes} probes{}",
                failures.summary()
            )
        } else if let Some(at_most) = cannot_pass {
            format!(
                "{} of {probes} probes failed, more than the limit of {limit:.0}% of the at most {at_most} probes of a {soaked} soak even if every other passed{}",
                failures.total,
                failures.summary()
            )
        } else if passed {
            format!(
                "{probes} probes over {soaked}{}, within the limit of {limit:.0}% failed",
                failures.summary()
            )
        } else {
            format!(
                "{} of {probes} probes over {soaked} failed, more than the limit of {limit:.0}%{}",
                failures.total,
                failures.summary()
            )
        };
        Ok(CheckReport {
            name: "soak".into(),
            passed,
            detail,
            attempts: probes,
            latency: crate::verify::LatencySummary::from_samples(&samples),
        })
    }
}
