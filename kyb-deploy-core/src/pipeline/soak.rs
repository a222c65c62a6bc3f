//! The soak stage: a verified release keeps being probed for `verify.soak`, and the target
//! is watched for restarts, before the release may become "last known-good".

use std::time::Duration;

use url::Url;

use super::Pipeline;
use super::run::Run;
use super::stage::StageError;
use crate::config::Environment;
use crate::error::Result;
use crate::stage::Stage;
use crate::target::DeployHandle;
use crate::verify::{CheckReport, SoakRequest};

/// How often the target is asked for restarts while the probe soaks.
const RESTART_POLL: Duration = Duration::from_secs(2);

/// Time the soak gets past its duration (the last round of probes) before the stage's
/// limit cuts it off.
const SOAK_MARGIN: Duration = Duration::from_secs(30);

/// How a soak ended.
enum SoakEnd {
    /// The probe finished its soak.
    Probed(CheckReport),
    /// The target reported more restarts than when the soak began.
    Restarted { before: u64, now: u64 },
}

/// Whether restarts grew from `before` to `now`; unknown counts never fail a soak.
fn restarted(before: Option<u64>, now: Option<u64>) -> Option<(u64, u64)> {
    match (before, now) {
        (Some(before), Some(now)) if now > before => Some((before, now)),
        _ => None,
    }
}

impl Pipeline {
    /// Soaks the release of `handle` at `candidate` (a release beside the old one) or the
    /// environment's URL. The soak's check joins the verification report; a failure says
    /// what was seen.
    pub(super) async fn soak(
        &self,
        env: &Environment,
        handle: &DeployHandle,
        candidate: Option<&Url>,
        run: &mut Run<'_>,
    ) -> Result<(), StageError> {
        let duration = env.settings.soak(&env.name);
        if duration.is_zero() {
            run.stages.skip(Stage::Soak, "verify.soak is 0s");
            return Ok(());
        }
        let started = run.stages.begin(Stage::Soak);
        let result = self
            .soak_release(env, handle, candidate, duration, run)
            .await;
        let check = match result {
            Ok(check) => check,
            Err(e) => {
                run.stages.fail(started, e.message());
                return Err(e);
            }
        };
        let failure = (!check.passed).then(|| format!("soak check failed: {}", check.detail));
        match &failure {
            None => run.stages.succeed(started),
            Some(reason) => run.stages.fail(started, reason.clone()),
        }
        if let Some(verification) = run.report.verification.as_mut() {
            verification.passed &= check.passed;
            verification.checks.push(check);
        }
        failure.map_or(Ok(()), |reason| Err(StageError::Failed(reason)))
    }

    async fn soak_release(
        &self,
        env: &Environment,
        handle: &DeployHandle,
        candidate: Option<&Url>,
        duration: Duration,
        run: &mut Run<'_>,
    ) -> Result<CheckReport, StageError> {
        let before = self.restarts(handle, run).await;
        let progress = self.events.for_stage(Stage::Soak);
        let ended = run
            .control
            .run(duration.saturating_add(SOAK_MARGIN), async {
                let base_url = match candidate {
                    Some(url) => url.clone(),
                    None => self.base_url(env).await?,
                };
                let request = SoakRequest {
                    base_url,
                    expected_version: handle.release.version.clone(),
                    duration,
                    max_failure_ratio: env.settings.verify.max_failure_ratio,
                };
                let watch = async {
                    loop {
                        tokio::time::sleep(RESTART_POLL).await;
                        let now = self.target.restarts(handle).await.ok().flatten();
                        if let Some((before, now)) = restarted(before, now) {
                            return SoakEnd::Restarted { before, now };
                        }
                    }
                };
                let soak = self
                    .probe
                    .soak(&request, &progress, run.control.cancel_token());
                let end = if before.is_some() {
                    tokio::select! {
                        result = soak => SoakEnd::Probed(result?),
                        end = watch => end,
                    }
                } else {
                    SoakEnd::Probed(soak.await?)
                };
                Ok(end)
            })
            .await?;
        let mut check = match ended {
            SoakEnd::Probed(check) => check,
            SoakEnd::Restarted { before, now } => return Ok(restart_failure(before, now)),
        };
        // A restart in the soak's last moments, after the last poll.
        let now = self.restarts(handle, run).await;
        if let Some((before, now)) = restarted(before, now) {
            check = restart_failure(before, now);
        }
        Ok(check)
    }

    /// The target's restart count for `handle`; a failed read is a warning and counts as
    /// unknown.
    async fn restarts(&self, handle: &DeployHandle, run: &mut Run<'_>) -> Option<u64> {
        match self.target.restarts(handle).await {
            Ok(count) => count,
            Err(e) => {
                run.warn(
                    Stage::Soak,
                    format!(
                        "reading restarts failed, so the soak cannot watch them: {}",
                        super::stage::chain(&e)
                    ),
                );
                None
            }
        }
    }
}

fn restart_failure(before: u64, now: u64) -> CheckReport {
    CheckReport {
        name: "soak".into(),
        passed: false,
        detail: format!(
            "the release restarted during the soak: {} restart(s) or replaced task(s) since it was verified",
            now - before
        ),
        attempts: 0,
        latency: crate::verify::LatencySummary::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::restarted;

    #[test]
    fn restart_verdicts() {
        let cases = [
            (None, None, None),
            (None, Some(3), None),
            (Some(3), None, None),
            (Some(3), Some(3), None),
            (Some(3), Some(2), None),
            (Some(3), Some(4), Some((3, 4))),
            (Some(0), Some(9), Some((0, 9))),
        ];
        for (before, now, expected) in cases {
            assert_eq!(restarted(before, now), expected, "{before:?} -> {now:?}");
        }
    }
}
