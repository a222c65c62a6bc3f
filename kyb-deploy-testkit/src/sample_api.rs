//! `kyb-sample-api`: the "KYB Platform API" sample service that kyb-deploy deploys in its
//! examples and end-to-end tests.
//!
//! It is a small, dependency-free HTTP service with the endpoints a real service exposes to
//! a deployment pipeline, plus fault switches that make it misbehave on purpose so that
//! health checks, readiness gates, smoke tests and rollbacks can be exercised.
//!
//! # Endpoints
//!
//! | Request             | Answer |
//! |---------------------|--------|
//! | `GET /health`       | Liveness: `200 {"status":"ok"}`, or `503 {"status":"unhealthy"}` under the unhealthy fault. |
//! | `GET /ready`        | Readiness: `200 {"status":"ready"}` once ready, `503 {"status":"not ready"}` before. |
//! | `GET /status`       | `200 {"name":"kyb-platform-api","version":"…","uptime_seconds":1.5,"environment":"…"}`. |
//! | `GET /metrics`      | Prometheus text exposition (`text/plain; version=0.0.4`): `kyb_http_requests_total` (counter; labels `method`, `path`, `status`), `kyb_http_request_duration_seconds` (histogram; label `path`) and `kyb_build_info` (gauge; label `version`). |
//! | `POST /v1/classify` | Deterministic business classification of `{"business_name":"Test Corp"}`: `200 {"business_name","industry","risk_score","risk_level","reasons"}`. |
//!
//! The `path` label of the metrics is the route (`/health`, …, or `unmatched`), never the raw
//! request path. Errors are JSON `{"error":"<code>","message":"<what is wrong and how to fix it>"}`:
//! `400` for a missing body, invalid JSON, a missing, empty, non-string or longer than 200
//! characters `business_name`, or unknown fields; `415` for a body that is not
//! `application/json`; `404` for an unknown path; `405` for a wrong method.
//!
//! # Configuration (environment variables)
//!
//! An empty variable counts as unset. Booleans are `1`/`0`, `true`/`false` or `yes`/`no`;
//! durations are seconds, fractions allowed (`5`, `2.5`).
//!
//! | Variable | Meaning | Default |
//! |----------|---------|---------|
//! | `PORT` | TCP port; `0` picks a free one | `8080` |
//! | `BIND_ADDR` | IP address to bind | `0.0.0.0` |
//! | `KYB_SAMPLE_VERSION`, then `APP_VERSION` | Version reported by `/status` and `/metrics` | the build version |
//! | `ENVIRONMENT` | Environment reported by `/status` | `development` |
//! | `KYB_SAMPLE_FAULT_UNHEALTHY_AFTER` | `/health` answers 503 once this long has passed since start | never |
//! | `KYB_SAMPLE_FAULT_NEVER_READY` | `/ready` always answers 503 | `false` |
//! | `KYB_SAMPLE_FAULT_READY_AFTER` | `/ready` answers 503 until this long has passed since start | `0` |
//! | `KYB_SAMPLE_FAULT_CLASSIFY_500` | `/v1/classify` answers valid requests with a 500 JSON error | `false` |
//! | `KYB_SAMPLE_FAULT_LATENCY_MS` | Milliseconds added to every request except `/metrics` | `0` |
//! | `KYB_SAMPLE_FAULT_EXIT_AFTER` | The binary exits with code 3 this long after start (a crash) | never |
//!
//! The build version is `KYB_SAMPLE_BUILD_VERSION` at compile time, else the crate version.
//!
//! The binary prints `listening on ADDR:PORT` to stdout once bound, serves until SIGTERM or
//! SIGINT and then exits 0; an invalid configuration is reported on stderr with exit code 2.

mod classify;
mod env;
mod handlers;
mod metrics;

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::{get, post};

pub use env::ConfigError;

/// The configuration of the sample service.
///
/// Build it from the environment with [`SampleApiConfig::from_env`], or in code from
/// [`SampleApiConfig::default`] and struct update syntax.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleApiConfig {
    /// Address the binary binds (`BIND_ADDR`).
    pub bind_addr: IpAddr,
    /// Port the binary binds (`PORT`); `0` picks a free port.
    pub port: u16,
    /// Version reported by `/status` and `kyb_build_info`.
    pub version: String,
    /// Environment name reported by `/status` (`ENVIRONMENT`).
    pub environment: String,
    /// Deliberate misbehaviour.
    pub faults: Faults,
}

impl Default for SampleApiConfig {
    fn default() -> Self {
        Self {
            bind_addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: 8080,
            version: build_version().to_owned(),
            environment: "development".to_owned(),
            faults: Faults::default(),
        }
    }
}

/// Fault switches; the default is a well-behaved service.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    /// `/health` answers 503 once this long has passed since start.
    pub unhealthy_after: Option<Duration>,
    /// `/ready` never answers 200.
    pub never_ready: bool,
    /// `/ready` answers 503 until this long has passed since start.
    pub ready_after: Duration,
    /// `/v1/classify` answers valid requests with a 500 JSON error.
    pub classify_500: bool,
    /// Added to every request except `/metrics`.
    pub latency: Duration,
    /// The binary exits with code 3 this long after start; [`serve`] ignores it.
    pub exit_after: Option<Duration>,
}

/// The version used when neither `KYB_SAMPLE_VERSION` nor `APP_VERSION` is set:
/// `KYB_SAMPLE_BUILD_VERSION` at compile time, else the crate version.
#[must_use]
pub fn build_version() -> &'static str {
    option_env!("KYB_SAMPLE_BUILD_VERSION").unwrap_or(env!("CARGO_PKG_VERSION"))
}

/// Shared state of the handlers.
#[derive(Debug)]
struct AppState {
    config: SampleApiConfig,
    started: Instant,
    metrics: metrics::Metrics,
}

impl AppState {
    fn uptime(&self) -> Duration {
        self.started.elapsed()
    }
}

/// The service's routes, with request metrics and the latency fault applied.
///
/// The clock of the time-based faults starts when this is called.
pub fn router(config: SampleApiConfig) -> Router {
    let state = Arc::new(AppState {
        config,
        started: Instant::now(),
        metrics: metrics::Metrics::default(),
    });
    Router::new()
        .route("/health", get(handlers::health))
        .route("/ready", get(handlers::ready))
        .route("/status", get(handlers::status))
        .route("/metrics", get(handlers::metrics))
        .route("/v1/classify", post(handlers::classify))
        .fallback(handlers::not_found)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            metrics::track,
        ))
        .with_state(state)
}

/// Serves [`router`] on `listener` until `shutdown` completes, then finishes the requests in
/// flight and returns.
///
/// # Errors
///
/// Fails when the listener fails.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: SampleApiConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(config))
        .with_graceful_shutdown(shutdown)
        .await
}
