//! [`HttpHealthProbe`]: verification of a deployed service over HTTP.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Client, Method, RequestBuilder, StatusCode};
use serde_json::Value;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use url::Url;

use super::probe_tracker::{ProbeState, ProbeTracker};
use super::prometheus::validate_exposition;
use crate::config::{ProbeSettings, SmokeTest, VerifyConfig};
use crate::error::{Error, Result};
use crate::event::StageProgress;
use crate::redact::redact_url;
use crate::verify::{
    CheckReport, HealthProbe, LatencySummary, SoakRequest, VerificationReport, VerifyRequest,
};
use crate::version::Version;

const USER_AGENT: &str = concat!("kyb-deploy/", env!("CARGO_PKG_VERSION"));

/// Time limit of one `/status`, `/metrics` or smoke-test request. The settings give these
/// checks no timeout of their own, and a hung service must not hold the pipeline forever.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A [`HealthProbe`] that verifies a service over HTTP, as configured by a [`VerifyConfig`].
///
/// In order: the readiness probe gates everything else (when it fails, nothing else runs);
/// then the liveness probe, `/status`, `/metrics` and each smoke test all run, so that the
/// report is complete even when an early check fails. Requests go to
/// [`VerifyRequest::base_url`] (the pipeline resolves `VerifyConfig::base_url` or the
/// target's endpoint into it), keeping its path: `/ready` under `https://host/api` is
/// `https://host/api/ready`.
///
/// ```no_run
/// # async fn example() -> kyb_deploy_core::Result<()> {
/// use kyb_deploy_core::config::VerifyConfig;
/// use kyb_deploy_core::{CancellationToken, Stage, StageProgress, Url, Version};
/// use kyb_deploy_core::verify::{HealthProbe, HttpHealthProbe, VerifyRequest};
///
/// let probe = HttpHealthProbe::new(VerifyConfig::default())?;
/// let request = VerifyRequest::new(
///     Url::parse("https://api.staging.example.com").unwrap(),
///     Version::parse("v1.4.0")?,
/// );
/// let progress = StageProgress::discard(Stage::Verify);
/// let report = probe.verify(&request, &progress, &CancellationToken::new()).await?;
/// if let Some(failure) = report.failure() {
///     eprintln!("{failure}");
/// }
/// # Ok(()) }
/// ```
pub struct HttpHealthProbe {
    settings: VerifyConfig,
    client: Client,
    /// Method and headers of each smoke test, parsed once; parallel to `settings.smoke`.
    smoke: Vec<(Method, HeaderMap)>,
}

impl fmt::Debug for HttpHealthProbe {
    // Written by hand: the derived form would print smoke-test header values (tokens).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let smoke: Vec<&str> = self
            .settings
            .smoke
            .iter()
            .map(|t| t.name.as_str())
            .collect();
        f.debug_struct("HttpHealthProbe")
            .field("readiness", &self.settings.readiness.path)
            .field("liveness", &self.settings.liveness.path)
            .field("smoke", &smoke)
            .finish_non_exhaustive()
    }
}

impl HttpHealthProbe {
    /// A probe with one HTTP client for all its requests.
    ///
    /// TLS certificates are verified unless `settings.insecure_skip_tls_verify` is set.
    /// Returns [`Error::Config`] when a smoke test has an invalid method, header, status or
    /// JSON pointer, or no samples, so that a typo fails before anything is deployed.
    pub fn new(settings: VerifyConfig) -> Result<Self> {
        let client = Client::builder()
            .use_rustls_tls()
            .user_agent(USER_AGENT)
            .danger_accept_invalid_certs(settings.insecure_skip_tls_verify)
            .build()
            .map_err(|source| Error::Http {
                what: "building the HTTP client".into(),
                source: source.into(),
            })?;
        let smoke = settings
            .smoke
            .iter()
            .map(prepare_smoke)
            .collect::<Result<_>>()?;
        Ok(Self {
            settings,
            client,
            smoke,
        })
    }

    /// The settings the probe honours.
    pub fn settings(&self) -> &VerifyConfig {
        &self.settings
    }
}

fn prepare_smoke(test: &SmokeTest) -> Result<(Method, HeaderMap)> {
    let invalid = |problem: String| Error::Config {
        message: format!("smoke test {:?}: {problem}", test.name),
    };
    let method = Method::from_bytes(test.method.to_ascii_uppercase().as_bytes())
        .map_err(|_| invalid(format!("invalid HTTP method {:?}", test.method)))?;
    let mut headers = HeaderMap::new();
    for (name, value) in &test.headers {
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| invalid(format!("invalid header name {name:?}")))?;
        // The value is likely a credential: name the header, never show the value.
        let value = HeaderValue::from_str(value)
            .map_err(|_| invalid(format!("invalid value of header {name:?}")))?;
        headers.insert(header, value);
    }
    StatusCode::from_u16(test.expect_status)
        .map_err(|_| invalid(format!("invalid expect_status {}", test.expect_status)))?;
    if let Some(pointer) = test
        .expect_json
        .keys()
        .find(|p| !p.is_empty() && !p.starts_with('/'))
    {
        return Err(invalid(format!(
            "invalid JSON pointer {pointer:?} in expect_json (it must start with '/')"
        )));
    }
    if test.samples == 0 {
        return Err(invalid("samples must be at least 1".into()));
    }
    Ok((method, headers))
}

#[async_trait]
impl HealthProbe for HttpHealthProbe {
    async fn verify(
        &self,
        request: &VerifyRequest,
        progress: &StageProgress,
        cancel: &CancellationToken,
    ) -> Result<VerificationReport> {
        let settings = &self.settings;
        let mut run = Run::new(&self.client, &request.base_url, progress, cancel);
        run.deadline = request.time_limit.map(after);
        if settings.readiness.enabled {
            run.probe("readiness", &settings.readiness).await?;
            if run.timed_out || run.checks.last().is_some_and(|c| !c.passed) {
                return Ok(run.finish(None));
            }
        }
        if settings.liveness.enabled {
            run.probe("liveness", &settings.liveness).await?;
            if run.timed_out {
                return Ok(run.finish(None));
            }
        }
        let mut reported_version = None;
        if settings.status.enabled {
            reported_version = run.status(&request.expected_version, settings).await?;
        }
        if settings.metrics.enabled {
            run.metrics(&settings.metrics.path).await?;
        }
        for (test, (method, headers)) in settings.smoke.iter().zip(&self.smoke) {
            run.smoke(test, method, headers).await?;
        }
        Ok(run.finish(reported_version))
    }

    async fn soak(
        &self,
        request: &SoakRequest,
        progress: &StageProgress,
        cancel: &CancellationToken,
    ) -> Result<CheckReport> {
        let mut run = Run::new(&self.client, &request.base_url, progress, cancel);
        run.soak(request, &self.settings).await
    }
}

/// What one request came back with.
enum Answer {
    Response {
        status: StatusCode,
        body: Vec<u8>,
    },
    /// Connection error or timeout, described.
    Failed(String),
}

/// The state of one verification.
struct Run<'a> {
    client: &'a Client,
    base: &'a Url,
    progress: &'a StageProgress,
    cancel: &'a CancellationToken,
    checks: Vec<CheckReport>,
    /// Duration of every request sent.
    samples: Vec<Duration>,
    /// When verification must end, if it has a time limit.
    deadline: Option<Instant>,
    /// Whether a probe ran out of time before reaching a verdict.
    timed_out: bool,
}

impl<'a> Run<'a> {
    fn new(
        client: &'a Client,
        base: &'a Url,
        progress: &'a StageProgress,
        cancel: &'a CancellationToken,
    ) -> Self {
        Self {
            client,
            base,
            progress,
            cancel,
            checks: Vec::new(),
            samples: Vec::new(),
            deadline: None,
            timed_out: false,
        }
    }
}

impl Run<'_> {
    fn finish(self, reported_version: Option<String>) -> VerificationReport {
        VerificationReport {
            passed: !self.timed_out && self.checks.iter().all(|c| c.passed),
            checks: self.checks,
            reported_version,
            latency: LatencySummary::from_samples(&self.samples),
            timed_out: self.timed_out,
        }
    }

    fn record(&mut self, name: String, outcome: Result<String, String>, samples: &[Duration]) {
        let passed = outcome.is_ok();
        self.checks.push(CheckReport {
            name,
            passed,
            detail: outcome.unwrap_or_else(|problem| problem),
            attempts: u32::try_from(samples.len()).unwrap_or(u32::MAX),
            latency: LatencySummary::from_samples(samples),
        });
    }

    /// Sends a request and reads the whole body within `timeout`, or until cancelled.
    async fn send(
        &mut self,
        request: RequestBuilder,
        timeout: Duration,
    ) -> Result<(Answer, Duration)> {
        let started = Instant::now();
        let exchange = async {
            let response = request.send().await?;
            let status = response.status();
            Ok::<_, reqwest::Error>((status, response.bytes().await?))
        };
        let answer = tokio::select! {
            biased;
            () = self.cancel.cancelled() => return Err(Error::Cancelled),
            result = tokio::time::timeout(timeout, exchange) => match result {
                Ok(Ok((status, body))) => Answer::Response { status, body: body.to_vec() },
                Ok(Err(error)) => Answer::Failed(describe(error)),
                Err(_) => Answer::Failed(format!(
                    "timed out after {}",
                    humantime::format_duration(timeout)
                )),
            },
        };
        let elapsed = started.elapsed();
        self.samples.push(elapsed);
        Ok((answer, elapsed))
    }

    async fn sleep_until(&self, deadline: Instant) -> Result<()> {
        tokio::select! {
            biased;
            () = self.cancel.cancelled() => Err(Error::Cancelled),
            () = tokio::time::sleep_until(deadline) => Ok(()),
        }
    }

    /// Runs a probe with Kubernetes semantics until its tracker reaches a verdict.
    async fn probe(&mut self, name: &str, settings: &ProbeSettings) -> Result<()> {
        let url = join(self.base, &settings.path);
        let shown = redact_url(&url);
        self.sleep_until(after(settings.initial_delay)).await?;
        let mut tracker = ProbeTracker::for_settings(settings);
        let mut samples = Vec::new();
        let mut failures = FailureTally::default();
        loop {
            // The period counts from the start of an attempt, so slow answers do not
            // stretch the schedule.
            let started = Instant::now();
            let request = self.client.get(url.clone());
            let (answer, elapsed) = self.send(request, settings.timeout).await?;
            samples.push(elapsed);
            let (success, seen) = match answer {
                Answer::Response { status, .. } => (
                    (200..=399).contains(&status.as_u16()),
                    status.as_u16().to_string(),
                ),
                Answer::Failed(why) => (false, why),
            };
            if !success {
                failures.add(&seen);
            }
            let state = tracker.record(success);
            let streak = if success {
                let (n, of) = (tracker.consecutive_successes(), tracker.success_threshold());
                format!("{n} of {of} consecutive successes")
            } else {
                let (n, of) = (tracker.consecutive_failures(), tracker.failure_threshold());
                format!("{n} of {of} consecutive failures")
            };
            let attempts = tracker.attempts();
            self.progress.progress(format!(
                "{name} GET {shown} -> {seen} (attempt {attempts}, {streak})"
            ));
            if state.is_terminal() {
                let outcome = match state {
                    ProbeState::Passed => Ok(format!(
                        "passed after {attempts} attempt(s){}; last GET {shown} -> {seen}",
                        failures.summary()
                    )),
                    _ => Err(format!(
                        "failed after {attempts} attempt(s){}, {streak}; last GET {shown} -> {seen}",
                        failures.summary()
                    )),
                };
                self.record(name.to_owned(), outcome, &samples);
                return Ok(());
            }
            let next = started.checked_add(settings.period).unwrap_or(started);
            if self.deadline.is_some_and(|deadline| next >= deadline) {
                // Out of time: say what was seen rather than nothing.
                self.timed_out = true;
                self.record(
                    name.to_owned(),
                    Err(format!(
                        "ran out of time before a verdict after {attempts} attempt(s){}, {streak}; last GET {shown} -> {seen}",
                        failures.summary()
                    )),
                    &samples,
                );
                return Ok(());
            }
            self.sleep_until(next).await?;
        }
    }

    /// Checks `/status` and returns the version it reports.
    async fn status(
        &mut self,
        expected: &Version,
        settings: &VerifyConfig,
    ) -> Result<Option<String>> {
        let url = join(self.base, &settings.status.path);
        let request = self.client.get(url.clone());
        let (answer, elapsed) = self.send(request, REQUEST_TIMEOUT).await?;
        let pointer = &settings.status.version_pointer;
        let (outcome, reported) =
            judge_status(&answer, &redact_url(&url), pointer, expected.as_str());
        self.record("status".into(), outcome, &[elapsed]);
        Ok(reported)
    }

    async fn metrics(&mut self, path: &str) -> Result<()> {
        let url = join(self.base, path);
        let shown = redact_url(&url);
        let (answer, elapsed) = self.send(self.client.get(url), REQUEST_TIMEOUT).await?;
        let outcome = success_body(&answer, &shown).and_then(|body| {
            let text = std::str::from_utf8(body)
                .map_err(|e| format!("GET {shown}: the body is not UTF-8 ({e})"))?;
            match validate_exposition(text) {
                Ok(summary) => Ok(summary.to_string()),
                Err(error) => Err(format!(
                    "GET {shown}: invalid Prometheus exposition: {error}"
                )),
            }
        });
        self.record("metrics".into(), outcome, &[elapsed]);
        Ok(())
    }

    async fn smoke(
        &mut self,
        test: &SmokeTest,
        method: &Method,
        headers: &HeaderMap,
    ) -> Result<()> {
        let url = join(self.base, &test.path);
        let mut samples = Vec::new();
        let (mut failed, mut first_problem) = (0, None);
        for i in 1..=test.samples {
            let mut request = self
                .client
                .request(method.clone(), url.clone())
                .headers(headers.clone());
            if let Some(body) = &test.json {
                request = request.json(body);
            }
            let (answer, elapsed) = self.send(request, REQUEST_TIMEOUT).await?;
            samples.push(elapsed);
            if let Err(problem) = judge_smoke(test, &answer) {
                failed += 1;
                first_problem.get_or_insert(format!("request {i}: {problem}"));
            }
        }
        let latency = LatencySummary::from_samples(&samples);
        let (p50, p95) = (latency.p50_ms.unwrap_or(0.0), latency.p95_ms.unwrap_or(0.0));
        let target = format!("{method} {}", redact_url(&url));
        let mut problems = Vec::new();
        if let Some(first) = first_problem {
            problems.push(format!(
                "{target}: {failed} of {} requests failed; {first}",
                test.samples
            ));
        }
        let mut timing = format!("p50 {p50:.1} ms, p95 {p95:.1} ms");
        if let Some(budget) = test.latency_budget {
            let budget_text = humantime::format_duration(budget);
            if p95 > budget.as_secs_f64() * 1000.0 {
                problems.push(format!(
                    "{timing} exceeds the latency budget of {budget_text}"
                ));
            } else {
                timing.push_str(&format!(" within the budget of {budget_text}"));
            }
        }
        let outcome = if problems.is_empty() {
            Ok(format!(
                "{target}: {} requests answered as expected, {timing}",
                test.samples
            ))
        } else {
            Err(problems.join("; "))
        };
        self.record(format!("smoke: {}", test.name), outcome, &samples);
        Ok(())
    }
}

/// The body of a 2xx answer to `GET shown`, or what went wrong.
fn success_body<'a>(answer: &'a Answer, shown: &str) -> Result<&'a [u8], String> {
    match answer {
        Answer::Failed(why) => Err(format!("GET {shown}: {why}")),
        Answer::Response { status, .. } if !status.is_success() => {
            Err(format!("GET {shown} answered {status}"))
        }
        Answer::Response { body, .. } => Ok(body),
    }
}

/// The outcome of the `/status` check and the version the service reported, if any.
fn judge_status(
    answer: &Answer,
    shown: &str,
    pointer: &str,
    expected: &str,
) -> (Result<String, String>, Option<String>) {
    let json = success_body(answer, shown).and_then(|body| {
        serde_json::from_slice::<Value>(body)
            .map_err(|e| format!("GET {shown}: the body is not JSON ({e})"))
    });
    let json = match json {
        Ok(json) => json,
        Err(problem) => return (Err(problem), None),
    };
    match json.pointer(pointer) {
        Some(Value::String(reported)) if reported == expected => {
            (Ok(format!("version {reported}")), Some(reported.clone()))
        }
        Some(Value::String(reported)) => (
            Err(format!(
                "service reports version {reported:?} at {pointer}, expected {expected:?}"
            )),
            Some(reported.clone()),
        ),
        Some(other) => (
            Err(format!(
                "{pointer} is {}, not a version string (expected {expected:?})",
                shorten(&other.to_string())
            )),
            None,
        ),
        None => (
            Err(format!("no version at {pointer} (expected {expected:?})")),
            None,
        ),
    }
}

/// Checks one smoke-test answer against the expected status and JSON values.
fn judge_smoke(test: &SmokeTest, answer: &Answer) -> Result<(), String> {
    let (status, body) = match answer {
        Answer::Failed(why) => return Err(why.clone()),
        Answer::Response { status, body } => (status.as_u16(), body),
    };
    if status != test.expect_status {
        return Err(format!(
            "expected status {}, got {status}",
            test.expect_status
        ));
    }
    if test.expect_json.is_empty() {
        return Ok(());
    }
    let json: Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not JSON ({e})"))?;
    for (pointer, expected) in &test.expect_json {
        match json.pointer(pointer) {
            Some(actual) if actual == expected => {}
            actual => {
                let actual = actual.map_or_else(|| "nothing".into(), |v| shorten(&v.to_string()));
                return Err(format!("{pointer}: expected {expected}, got {actual}"));
            }
        }
    }
    Ok(())
}

/// Describes a transport error by its root cause, without the URL (which can hold
/// credentials and is already named by the caller).
fn describe(error: reqwest::Error) -> String {
    let kind = if error.is_connect() {
        "connection failed"
    } else if error.is_redirect() {
        "redirect failed"
    } else if error.is_body() || error.is_decode() {
        "reading the body failed"
    } else {
        "request failed"
    };
    let error = error.without_url();
    let mut cause: &dyn std::error::Error = &error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    format!("{kind}: {cause}")
}

/// `path` (which may carry a query) under the base URL, keeping the base URL's own path:
/// `https://host/api` joined with `/ready` is `https://host/api/ready`.
fn join(base: &Url, path: &str) -> Url {
    let (path, query) = match path.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (path, None),
    };
    let mut url = base.clone();
    let base_path = base.path().trim_end_matches('/');
    url.set_path(&format!("{base_path}/{}", path.trim_start_matches('/')));
    url.set_query(query);
    url.set_fragment(None);
    url
}

/// The instant `d` from now; a `d` too large to represent means a year (durations are
/// bounded when configuration is read; this only keeps the arithmetic from panicking).
fn after(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(365 * 24 * 3600)))
        .unwrap_or(now)
}

/// Failed probe answers by what was seen (`503`, `connection failed: ...`), for messages
/// that show a flapping service as flapping.
#[derive(Debug, Default)]
struct FailureTally {
    total: u32,
    seen: std::collections::BTreeMap<String, u32>,
}

impl FailureTally {
    fn add(&mut self, seen: &str) {
        self.total += 1;
        *self.seen.entry(shorten(seen)).or_default() += 1;
    }

    /// `""` without failures, else `" (3 failed: 503 x2, connection failed: ... x1)"`.
    fn summary(&self) -> String {
        if self.total == 0 {
            return String::new();
        }
        let kinds: Vec<String> = self
            .seen
            .iter()
            .map(|(what, n)| format!("{what} x{n}"))
            .collect();
        format!(" ({} failed: {})", self.total, kinds.join(", "))
    }
}

fn shorten(text: &str) -> String {
    const MAX: usize = 200;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_owned(),
    }
}

mod soak;

#[cfg(test)]
mod tests;
