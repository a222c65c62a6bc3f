//! `HttpHealthProbe` against real HTTP servers on the loopback interface.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Json, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{get, post};
use kyb_deploy_core::config::{ProbeSettings, SmokeTest, VerifyConfig};
use kyb_deploy_core::verify::{
    HealthProbe, HttpHealthProbe, SoakRequest, VerificationReport, VerifyRequest,
};
use kyb_deploy_core::{
    CancellationToken, Error, Event, EventSink, Stage, StageProgress, Url, Version,
};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_rustls::rustls::pki_types::PrivatePkcs8KeyDer;
use tokio_rustls::rustls::{ServerConfig, crypto};
use tokio_rustls::{TlsAcceptor, server::TlsStream};

const METRICS: &str = "# HELP kyb_requests_total Requests served.\n\
# TYPE kyb_requests_total counter\n\
kyb_requests_total{route=\"/classify\",code=\"200\"} 12\n\
# TYPE kyb_request_seconds histogram\n\
kyb_request_seconds_bucket{le=\"0.1\"} 10\n\
kyb_request_seconds_bucket{le=\"+Inf\"} 12\n\
kyb_request_seconds_sum 0.9\n\
kyb_request_seconds_count 12\n";

/// A scriptable service: what it answers, and what it was asked.
#[derive(Clone, Copy)]
struct Service {
    /// `/ready` answers 503 to this many requests before answering 200.
    not_ready_for: u32,
    /// How long `/ready` takes to answer.
    ready_delay: Duration,
    version: &'static str,
    metrics: &'static str,
    industry: &'static str,
    /// How long `/classify` takes to answer.
    classify_delay: Duration,
    /// Every `n`th `/health` request answers 503 (0: none).
    health_fails_every: u32,
    /// `/health` answers 503 from this request on (0: never).
    health_fails_from: u32,
    /// `/ready` alternates 503 and 200 forever.
    ready_flaps: bool,
}

impl Default for Service {
    fn default() -> Self {
        Self {
            not_ready_for: 0,
            ready_delay: Duration::ZERO,
            version: "v1.2.3",
            metrics: METRICS,
            industry: "technology",
            classify_delay: Duration::ZERO,
            health_fails_every: 0,
            health_fails_from: 0,
            ready_flaps: false,
        }
    }
}

#[derive(Default)]
struct Seen {
    ready: AtomicU32,
    health: AtomicU32,
    status: AtomicU32,
    user_agent: Mutex<Option<String>>,
}

type AppState = (Service, Arc<Seen>);

async fn ready(State((service, seen)): State<AppState>) -> StatusCode {
    tokio::time::sleep(service.ready_delay).await;
    let n = seen.ready.fetch_add(1, Ordering::SeqCst);
    if n < service.not_ready_for || (service.ready_flaps && n % 2 == 0) {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    }
}

async fn health(State((service, seen)): State<AppState>) -> StatusCode {
    let n = seen.health.fetch_add(1, Ordering::SeqCst) + 1;
    let every = service.health_fails_every;
    let from = service.health_fails_from;
    if (every > 0 && n % every == 0) || (from > 0 && n >= from) {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    }
}

async fn status(State((service, seen)): State<AppState>, headers: HeaderMap) -> Json<Value> {
    seen.status.fetch_add(1, Ordering::SeqCst);
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    *seen.user_agent.lock().unwrap() = agent.map(str::to_owned);
    Json(json!({ "service": "kyb-platform-api", "build": { "version": service.version } }))
}

async fn classify(
    State((service, _)): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    tokio::time::sleep(service.classify_delay).await;
    if headers.get("x-api-key").is_none_or(|key| key != "s3cret") {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "error": "unauthorized" })),
        );
    }
    let answer = json!({ "company": body["company"], "industry": service.industry });
    (StatusCode::OK, Json(answer))
}

/// The routes of `service` under `/api`, and what it sees.
fn app(service: Service) -> (Router, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let routes = Router::new()
        .route("/ready", get(ready))
        .route("/health", get(health))
        .route("/status", get(status))
        .route("/metrics", get(move || async move { service.metrics }))
        .route("/v1/classify", post(classify))
        .with_state((service, Arc::clone(&seen)));
    (Router::new().nest("/api", routes), seen)
}

/// Serves `service` under `/api` and returns its base URL and what it sees.
async fn serve(service: Service) -> (Url, Arc<Seen>) {
    let (app, seen) = app(service);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (Url::parse(&format!("http://{address}/api")).unwrap(), seen)
}

/// Accepts TCP connections and completes their TLS handshake. A failed handshake, such as
/// a client rejecting the certificate, drops that connection and waits for the next one.
struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, address)) = self.tcp.accept().await else {
                continue;
            };
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (tls, address);
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// Serves a healthy service under `/api` over HTTPS, with a freshly generated self-signed
/// certificate for `localhost` and 127.0.0.1, and returns its base URL.
async fn serve_tls() -> Url {
    let names = ["localhost".to_owned(), "127.0.0.1".to_owned()];
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(names).unwrap();
    let key = PrivatePkcs8KeyDer::from(signing_key.serialize_der());
    // An explicit provider: the process has no default one to fall back on.
    let config = ServerConfig::builder_with_provider(Arc::new(crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key.into())
        .unwrap();
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = tcp.local_addr().unwrap();
    let listener = TlsListener {
        tcp,
        acceptor: TlsAcceptor::from(Arc::new(config)),
    };
    let (app, _) = app(Service::default());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Url::parse(&format!("https://{address}/api")).unwrap()
}

fn fast_probe(path: &str, failure_threshold: u32, success_threshold: u32) -> ProbeSettings {
    ProbeSettings {
        enabled: true,
        path: path.into(),
        initial_delay: Duration::ZERO,
        period: Duration::from_millis(10),
        timeout: Duration::from_secs(2),
        failure_threshold,
        success_threshold,
    }
}

fn classify_test() -> SmokeTest {
    SmokeTest {
        name: "classify".into(),
        method: "POST".into(),
        path: "/v1/classify".into(),
        headers: BTreeMap::from([("x-api-key".into(), "s3cret".into())]),
        json: Some(json!({ "company": "Acme GmbH" })),
        expect_status: 200,
        expect_json: BTreeMap::from([
            ("/industry".into(), json!("technology")),
            ("/company".into(), json!("Acme GmbH")),
        ]),
        latency_budget: Some(Duration::from_secs(5)),
        samples: 3,
    }
}

fn settings() -> VerifyConfig {
    let mut settings = VerifyConfig {
        readiness: fast_probe("/ready", 5, 1),
        liveness: fast_probe("/health", 3, 2),
        smoke: vec![classify_test()],
        ..VerifyConfig::default()
    };
    settings.status.version_pointer = "/build/version".into();
    settings
}

async fn verify_with(
    settings: VerifyConfig,
    base_url: Url,
) -> (kyb_deploy_core::Result<VerificationReport>, Vec<String>) {
    let (sink, mut events) = EventSink::new().channel();
    let report = verify_progress(settings, base_url, &sink.for_stage(Stage::Verify)).await;
    (report, progress_lines(&mut events))
}

async fn verify_progress(
    settings: VerifyConfig,
    base_url: Url,
    progress: &StageProgress,
) -> kyb_deploy_core::Result<VerificationReport> {
    let probe = HttpHealthProbe::new(settings).unwrap();
    let request = VerifyRequest::new(base_url, Version::parse("v1.2.3").unwrap());
    probe
        .verify(&request, progress, &CancellationToken::new())
        .await
}

fn progress_lines(events: &mut UnboundedReceiver<Event>) -> Vec<String> {
    let mut lines = Vec::new();
    while let Ok(event) = events.try_recv() {
        if let Event::Progress { message, .. } = event {
            lines.push(message);
        }
    }
    lines
}

fn check<'r>(
    report: &'r VerificationReport,
    name: &str,
) -> &'r kyb_deploy_core::verify::CheckReport {
    let found = report.checks.iter().find(|c| c.name == name);
    found.unwrap_or_else(|| panic!("no {name} check in {report:#?}"))
}

#[tokio::test]
async fn healthy_service_passes_every_check() {
    let (base_url, seen) = serve(Service::default()).await;
    let (report, progress) = verify_with(settings(), base_url).await;
    let report = report.unwrap();

    assert!(report.passed, "{report:#?}");
    let names: Vec<&str> = report.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "readiness",
            "liveness",
            "status",
            "metrics",
            "smoke: classify"
        ]
    );
    assert_eq!(report.reported_version.as_deref(), Some("v1.2.3"));
    let attempts: Vec<u32> = report.checks.iter().map(|c| c.attempts).collect();
    assert_eq!(attempts, [1, 2, 1, 1, 3]);
    // Every request is a latency sample, overall and per check.
    assert_eq!(report.latency.samples, 8);
    assert_eq!(check(&report, "smoke: classify").latency.samples, 3);
    assert_eq!(
        check(&report, "metrics").detail,
        "2 metric families, 5 samples"
    );
    assert!(
        progress[0].starts_with("readiness GET http://127.0.0.1:"),
        "{progress:?}"
    );
    assert!(progress[0].ends_with("/api/ready -> 200 (attempt 1, 1 of 1 consecutive successes)"));
    let agent = seen.user_agent.lock().unwrap().clone().unwrap();
    assert!(agent.starts_with("kyb-deploy/"), "{agent}");
}

#[tokio::test]
async fn readiness_that_turns_ready_passes() {
    let (base_url, seen) = serve(Service {
        not_ready_for: 3,
        ..Service::default()
    })
    .await;
    let (report, progress) = verify_with(settings(), base_url).await;
    let report = report.unwrap();

    assert!(report.passed, "{report:#?}");
    assert_eq!(check(&report, "readiness").attempts, 4);
    assert_eq!(seen.ready.load(Ordering::SeqCst), 4);
    let readiness: Vec<&String> = progress
        .iter()
        .filter(|l| l.starts_with("readiness"))
        .collect();
    assert_eq!(readiness.len(), 4, "{progress:?}");
    assert!(readiness[2].ends_with("-> 503 (attempt 3, 3 of 5 consecutive failures)"));
}

#[tokio::test]
async fn never_ready_fails_at_the_threshold_and_checks_nothing_else() {
    let (base_url, seen) = serve(Service {
        not_ready_for: u32::MAX,
        ..Service::default()
    })
    .await;
    let mut settings = settings();
    settings.readiness.failure_threshold = 4;
    let (report, _) = verify_with(settings, base_url).await;
    let report = report.unwrap();

    assert!(!report.passed);
    assert_eq!(report.checks.len(), 1, "{report:#?}");
    assert_eq!(report.checks[0].attempts, 4);
    assert_eq!(seen.ready.load(Ordering::SeqCst), 4);
    assert_eq!(seen.status.load(Ordering::SeqCst), 0);
    assert_eq!(report.reported_version, None);
    let failure = report.failure().unwrap();
    assert!(
        failure.starts_with("readiness check failed: failed after 4 attempt(s)"),
        "{failure}"
    );
    assert!(failure.ends_with("/api/ready -> 503"), "{failure}");
}

#[tokio::test]
async fn unreachable_service_fails_readiness() {
    // A port that was just free: nothing listens there.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let mut settings = settings();
    settings.readiness.failure_threshold = 2;
    let base_url = Url::parse(&format!("http://{address}")).unwrap();
    let (report, _) = verify_with(settings, base_url).await;
    let report = report.unwrap();

    assert!(!report.passed);
    assert!(
        report.checks[0].detail.contains("connection failed"),
        "{report:#?}"
    );
}

#[tokio::test]
async fn slow_readiness_answers_count_as_failures() {
    let (base_url, _) = serve(Service {
        ready_delay: Duration::from_millis(500),
        ..Service::default()
    })
    .await;
    let mut settings = settings();
    settings.readiness.timeout = Duration::from_millis(30);
    settings.readiness.failure_threshold = 2;
    let (report, _) = verify_with(settings, base_url).await;
    let report = report.unwrap();

    assert!(!report.passed);
    assert!(
        report.checks[0].detail.ends_with("-> timed out after 30ms"),
        "{report:#?}"
    );
}

#[tokio::test]
async fn version_mismatch_fails_status_and_names_both_versions() {
    let (base_url, _) = serve(Service {
        version: "v1.2.2",
        ..Service::default()
    })
    .await;
    let (report, _) = verify_with(settings(), base_url).await;
    let report = report.unwrap();

    assert!(!report.passed);
    assert_eq!(report.reported_version.as_deref(), Some("v1.2.2"));
    let status = check(&report, "status");
    assert!(!status.passed);
    assert_eq!(
        status.detail,
        "service reports version \"v1.2.2\" at /build/version, expected \"v1.2.3\""
    );
    // The later checks still ran, so the report is complete.
    assert!(check(&report, "metrics").passed && check(&report, "smoke: classify").passed);
}

#[tokio::test]
async fn invalid_metrics_fail_naming_the_line() {
    let (base_url, _) = serve(Service {
        metrics: "# TYPE up gauge\nup 1\nup{job=\"api} 1\n",
        ..Service::default()
    })
    .await;
    let (report, _) = verify_with(settings(), base_url).await;
    let report = report.unwrap();

    assert!(!report.passed);
    let metrics = check(&report, "metrics");
    assert!(!metrics.passed);
    assert!(
        metrics.detail.contains("line 3: unterminated label value"),
        "{}",
        metrics.detail
    );
    assert!(check(&report, "smoke: classify").passed);
}

#[tokio::test]
async fn smoke_wrong_status_fails_without_showing_header_values() {
    let (base_url, _) = serve(Service::default()).await;
    let mut settings = settings();
    let test = &mut settings.smoke[0];
    test.headers
        .insert("x-api-key".into(), "wrong-secret".into());
    let (report, _) = verify_with(settings, base_url).await;
    let report = report.unwrap();

    assert!(!report.passed);
    let smoke = check(&report, "smoke: classify");
    assert!(
        smoke
            .detail
            .contains("3 of 3 requests failed; request 1: expected status 200, got 401"),
        "{}",
        smoke.detail
    );
    assert!(!format!("{report:?}").contains("wrong-secret"));
}

#[tokio::test]
async fn smoke_json_mismatch_names_pointer_expected_and_actual() {
    let (base_url, _) = serve(Service {
        industry: "finance",
        ..Service::default()
    })
    .await;
    let (report, _) = verify_with(settings(), base_url).await;
    let report = report.unwrap();

    let smoke = check(&report, "smoke: classify");
    assert!(!smoke.passed && !report.passed);
    assert!(
        smoke
            .detail
            .contains("/industry: expected \"technology\", got \"finance\""),
        "{}",
        smoke.detail
    );
}

#[tokio::test]
async fn smoke_over_latency_budget_fails() {
    let (base_url, _) = serve(Service {
        classify_delay: Duration::from_millis(150),
        ..Service::default()
    })
    .await;
    let mut settings = settings();
    settings.smoke[0].samples = 2;
    settings.smoke[0].latency_budget = Some(Duration::from_millis(20));
    let (report, _) = verify_with(settings, base_url).await;
    let report = report.unwrap();

    let smoke = check(&report, "smoke: classify");
    assert!(!smoke.passed && !report.passed);
    assert!(smoke.detail.starts_with("p50 "), "{}", smoke.detail);
    assert!(
        smoke.detail.contains("exceeds the latency budget of 20ms"),
        "{}",
        smoke.detail
    );
    assert!(smoke.latency.p95_ms.unwrap() >= 150.0);
}

#[tokio::test]
async fn self_signed_certificate_fails_verification_by_default() {
    let base_url = serve_tls().await;
    let mut settings = settings();
    assert!(
        !settings.insecure_skip_tls_verify,
        "verified unless opted out"
    );
    settings.readiness.failure_threshold = 2;
    let (report, _) = verify_with(settings, base_url).await;
    let report = report.unwrap();

    assert!(!report.passed);
    assert_eq!(report.checks.len(), 1, "{report:#?}");
    let readiness = check(&report, "readiness");
    assert_eq!(readiness.attempts, 2);
    // rustls's words: "connection failed: invalid peer certificate: UnknownIssuer".
    let detail = readiness.detail.to_lowercase();
    assert!(
        detail.contains("connection failed") && detail.contains("certificate"),
        "{}",
        readiness.detail
    );
}

#[tokio::test]
async fn insecure_skip_tls_verify_accepts_a_self_signed_certificate() {
    let base_url = serve_tls().await;
    let settings = VerifyConfig {
        insecure_skip_tls_verify: true,
        ..settings()
    };
    let (report, _) = verify_with(settings, base_url).await;
    let report = report.unwrap();

    assert!(report.passed, "{report:#?}");
    assert_eq!(report.reported_version.as_deref(), Some("v1.2.3"));
    assert_eq!(report.checks.len(), 5, "{report:#?}");
}

/// Runs a verification that cannot finish by itself and cancels it from another task.
async fn assert_cancelled(settings: VerifyConfig, service: Service) {
    let (base_url, _) = serve(service).await;
    let probe = HttpHealthProbe::new(settings).unwrap();
    let request = VerifyRequest::new(base_url, Version::parse("v1.2.3").unwrap());
    let cancel = CancellationToken::new();
    let canceller = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        canceller.cancel();
    });
    let progress = StageProgress::discard(Stage::Verify);
    let verification = probe.verify(&request, &progress, &cancel);
    // The outer limit only keeps a broken implementation from hanging the suite.
    let result = tokio::time::timeout(Duration::from_secs(20), verification).await;
    assert!(matches!(result, Ok(Err(Error::Cancelled))), "{result:?}");
}

#[tokio::test]
async fn cancellation_stops_a_long_readiness_wait() {
    let mut settings = settings();
    settings.readiness.failure_threshold = u32::MAX;
    settings.readiness.period = Duration::from_millis(30);
    let never_ready = Service {
        not_ready_for: u32::MAX,
        ..Service::default()
    };
    assert_cancelled(settings, never_ready).await;
}

#[tokio::test]
async fn cancellation_stops_the_initial_delay_and_hanging_requests() {
    let mut delayed = settings();
    delayed.readiness.initial_delay = Duration::from_secs(3600);
    assert_cancelled(delayed, Service::default()).await;

    let mut patient = settings();
    patient.readiness.timeout = Duration::from_secs(3600);
    let hanging = Service {
        ready_delay: Duration::from_secs(3600),
        ..Service::default()
    };
    assert_cancelled(patient, hanging).await;
}

/// Soaks `service` for `duration` with the test's fast probes and a 10 % failure limit.
async fn soak(service: Service, duration: Duration) -> kyb_deploy_core::verify::CheckReport {
    let (base_url, _) = serve(service).await;
    let probe = HttpHealthProbe::new(settings()).unwrap();
    let request = SoakRequest {
        base_url,
        expected_version: Version::parse("v1.2.3").unwrap(),
        duration,
        max_failure_ratio: 0.1,
    };
    probe
        .soak(
            &request,
            &StageProgress::discard(Stage::Soak),
            &CancellationToken::new(),
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn a_steady_service_passes_its_soak() {
    let report = soak(Service::default(), Duration::from_millis(500)).await;
    assert!(report.passed, "{report:#?}");
    assert_eq!(report.name, "soak");
    assert!(report.attempts >= 5, "{report:#?}");
}

/// A third of the health checks fail: each probe round alone would pass a snapshot check,
/// the soak's ratio does not.
#[tokio::test]
async fn a_service_failing_a_third_of_its_health_checks_fails_its_soak() {
    let service = Service {
        health_fails_every: 3,
        ..Service::default()
    };
    let report = soak(service, Duration::from_millis(600)).await;
    assert!(!report.passed, "{report:#?}");
    assert!(report.detail.contains("503"), "{}", report.detail);
    assert!(report.detail.contains("failed"), "{}", report.detail);
}

/// Health that turns bad after verification (503 from the 6th request on) fails the soak
/// before its time is up, and names what it saw.
#[tokio::test]
async fn health_that_turns_bad_fails_the_soak_early() {
    let service = Service {
        health_fails_from: 6,
        ..Service::default()
    };
    let report = soak(service, Duration::from_secs(30)).await;
    assert!(!report.passed, "{report:#?}");
    assert!(
        report.detail.contains("GET /health -> 503"),
        "{}",
        report.detail
    );
    // 300 rounds of three probes fit in 30 s; the soak stopped once the limit was out of
    // reach.
    assert!(
        report.detail.contains("even if every other passed") && report.attempts < 900,
        "{report:#?}"
    );
}

/// Readiness that flaps never meets its success threshold: when verification runs out of
/// time it reports the failures it saw, not nothing.
#[tokio::test]
async fn verification_out_of_time_reports_the_failures_it_saw() {
    let (base_url, _) = serve(Service {
        ready_flaps: true,
        ..Service::default()
    })
    .await;
    let mut settings = settings();
    settings.readiness = fast_probe("/ready", 1000, 2);
    let probe = HttpHealthProbe::new(settings).unwrap();
    let request = VerifyRequest::new(base_url, Version::parse("v1.2.3").unwrap())
        .with_time_limit(Duration::from_millis(500));
    let report = probe
        .verify(
            &request,
            &StageProgress::discard(Stage::Verify),
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    assert!(report.timed_out, "{report:#?}");
    assert!(!report.passed);
    let failure = report.failure().unwrap();
    assert!(failure.contains("ran out of time"), "{failure}");
    assert!(failure.contains("503"), "{failure}");
}
