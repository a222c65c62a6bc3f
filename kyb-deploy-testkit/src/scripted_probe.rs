//! [`ScriptedProbe`]: verification whose verdict per version is scripted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kyb_deploy_core::verify::{
    CheckReport, HealthProbe, LatencySummary, SoakRequest, VerificationReport, VerifyRequest,
};
use kyb_deploy_core::{CancellationToken, Error, Result, StageProgress, async_trait};

/// What verification of one version does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeVerdict {
    /// Every check passes.
    Pass,
    /// The named check fails with the detail.
    Fail {
        /// Check name (`liveness`, `smoke: classify`...).
        check: String,
        /// What was seen.
        detail: String,
    },
    /// The next verification of the version fails like [`ProbeVerdict::Fail`]; later ones
    /// pass. Like a rebuilt release that fails where the build before it of the same
    /// version still passes.
    FailOnce {
        /// Check name.
        check: String,
        /// What was seen.
        detail: String,
    },
    /// Verification never ends; only cancellation or a timeout stops it.
    Hang,
}

/// A [`HealthProbe`] whose verdict is scripted per version (passing by default). Every
/// request is recorded. Soaks answer at once, without waiting for their duration: passing,
/// unless [`ScriptedProbe::fail_soak`] scripted a failure for the version.
///
/// ```
/// use kyb_deploy_testkit::ScriptedProbe;
///
/// let probe = ScriptedProbe::new().fail_version("v3", "liveness", "HTTP 503");
/// assert!(probe.requests().is_empty());
/// ```
#[derive(Clone, Debug, Default)]
pub struct ScriptedProbe {
    verdicts: Arc<Mutex<HashMap<String, ProbeVerdict>>>,
    soak_failures: Arc<Mutex<HashMap<String, String>>>,
    requests: Arc<Mutex<Vec<VerifyRequest>>>,
    soaks: Arc<Mutex<Vec<SoakRequest>>>,
}

impl ScriptedProbe {
    /// A probe that passes every version.
    pub fn new() -> Self {
        Self::default()
    }

    /// Verification of `version` fails at `check` with `detail`.
    pub fn fail_version(self, version: &str, check: &str, detail: &str) -> Self {
        self.set(
            version,
            ProbeVerdict::Fail {
                check: check.into(),
                detail: detail.into(),
            },
        )
    }

    /// Verification of `version` never ends.
    pub fn hang_version(self, version: &str) -> Self {
        self.set(version, ProbeVerdict::Hang)
    }

    /// Sets the verdict for `version`.
    pub fn set(self, version: &str, verdict: ProbeVerdict) -> Self {
        lock(&self.verdicts).insert(version.to_owned(), verdict);
        self
    }

    /// The soak of `version` fails with `detail` (its verification still passes).
    pub fn fail_soak(self, version: &str, detail: &str) -> Self {
        lock(&self.soak_failures).insert(version.to_owned(), detail.to_owned());
        self
    }

    /// Every verification request so far.
    pub fn requests(&self) -> Vec<VerifyRequest> {
        lock(&self.requests).clone()
    }

    /// Every soak request so far.
    pub fn soaks(&self) -> Vec<SoakRequest> {
        lock(&self.soaks).clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn check(name: &str, passed: bool, detail: &str) -> CheckReport {
    CheckReport {
        name: name.to_owned(),
        passed,
        detail: detail.to_owned(),
        attempts: 1,
        latency: LatencySummary::default(),
    }
}

#[async_trait]
impl HealthProbe for ScriptedProbe {
    async fn verify(
        &self,
        request: &VerifyRequest,
        progress: &StageProgress,
        cancel: &CancellationToken,
    ) -> Result<VerificationReport> {
        lock(&self.requests).push(request.clone());
        let verdict = {
            let mut verdicts = lock(&self.verdicts);
            let version = request.expected_version.as_str();
            match verdicts.get(version).cloned() {
                Some(ProbeVerdict::FailOnce { check, detail }) => {
                    verdicts.insert(version.to_owned(), ProbeVerdict::Pass);
                    ProbeVerdict::Fail { check, detail }
                }
                verdict => verdict.unwrap_or(ProbeVerdict::Pass),
            }
        };
        progress.progress(format!(
            "scripted verification of {} at {}",
            request.expected_version, request.base_url
        ));
        match verdict {
            ProbeVerdict::Pass => Ok(VerificationReport {
                passed: true,
                checks: vec![check("readiness", true, "scripted pass")],
                reported_version: Some(request.expected_version.to_string()),
                latency: LatencySummary::default(),
                timed_out: false,
            }),
            ProbeVerdict::Fail {
                check: name,
                detail,
            }
            | ProbeVerdict::FailOnce {
                check: name,
                detail,
            } => Ok(VerificationReport {
                passed: false,
                checks: vec![check(&name, false, &detail)],
                reported_version: Some(request.expected_version.to_string()),
                latency: LatencySummary::default(),
                timed_out: false,
            }),
            ProbeVerdict::Hang => {
                cancel.cancelled().await;
                Err(Error::Cancelled)
            }
        }
    }

    async fn soak(
        &self,
        request: &SoakRequest,
        progress: &StageProgress,
        cancel: &CancellationToken,
    ) -> Result<CheckReport> {
        if cancel.is_cancelled() {
            return Err(Error::Cancelled);
        }
        lock(&self.soaks).push(request.clone());
        progress.progress(format!("scripted soak of {}", request.expected_version));
        let failure = lock(&self.soak_failures)
            .get(request.expected_version.as_str())
            .cloned();
        Ok(match failure {
            Some(detail) => check("soak", false, &detail),
            None => check("soak", true, "scripted pass"),
        })
    }
}
