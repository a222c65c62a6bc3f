//! Request metrics: the recording middleware and the Prometheus text exposition.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

use super::AppState;

/// The routes, used as the `path` label; any other path is [`UNMATCHED`].
const ROUTES: [&str; 5] = ["/health", "/ready", "/status", "/metrics", "/v1/classify"];
const UNMATCHED: &str = "unmatched";

/// Upper bounds of the duration histogram's buckets, in seconds.
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

const REQUESTS: &str = "kyb_http_requests_total";
const DURATION: &str = "kyb_http_request_duration_seconds";
const BUILD_INFO: &str = "kyb_build_info";

/// The counters of the service.
#[derive(Debug, Default)]
pub(super) struct Metrics {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Requests by (method, route, status).
    requests: BTreeMap<(&'static str, &'static str, u16), u64>,
    /// Durations by route.
    durations: BTreeMap<&'static str, Histogram>,
}

#[derive(Debug, Default)]
struct Histogram {
    /// Observations per bucket, not cumulative; slower ones are only in `count`.
    buckets: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Metrics {
    fn record(&self, method: &'static str, path: &'static str, status: u16, elapsed: Duration) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        *inner.requests.entry((method, path, status)).or_default() += 1;
        let histogram = inner.durations.entry(path).or_default();
        let seconds = elapsed.as_secs_f64();
        if let Some(bucket) = BUCKETS.iter().position(|le| seconds <= *le) {
            histogram.buckets[bucket] += 1;
        }
        histogram.sum += seconds;
        histogram.count += 1;
    }

    /// The metrics in the Prometheus text exposition format 0.0.4.
    pub(super) fn render(&self, version: &str) -> String {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = String::new();

        family(
            &mut out,
            REQUESTS,
            "counter",
            "HTTP requests by method, route and status.",
        );
        for ((method, path, status), count) in &inner.requests {
            let _ = writeln!(
                out,
                "{REQUESTS}{{method=\"{}\",path=\"{}\",status=\"{status}\"}} {count}",
                escape(method),
                escape(path),
            );
        }

        family(
            &mut out,
            DURATION,
            "histogram",
            "HTTP request duration in seconds by route.",
        );
        for (path, histogram) in &inner.durations {
            let path = escape(path);
            let mut cumulative = 0;
            for (le, count) in BUCKETS.iter().zip(histogram.buckets) {
                cumulative += count;
                let _ = writeln!(
                    out,
                    "{DURATION}_bucket{{path=\"{path}\",le=\"{le}\"}} {cumulative}"
                );
            }
            let count = histogram.count;
            let _ = writeln!(
                out,
                "{DURATION}_bucket{{path=\"{path}\",le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(out, "{DURATION}_sum{{path=\"{path}\"}} {}", histogram.sum);
            let _ = writeln!(out, "{DURATION}_count{{path=\"{path}\"}} {count}");
        }

        family(
            &mut out,
            BUILD_INFO,
            "gauge",
            "Build information; the value is always 1.",
        );
        let _ = writeln!(out, "{BUILD_INFO}{{version=\"{}\"}} 1", escape(version));
        out
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Escapes a label value: backslash, double quote and line feed.
fn escape(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', r#"\""#)
        .replace('\n', r"\n")
}

/// The `path` label of a request path.
fn route_label(path: &str) -> &'static str {
    ROUTES
        .into_iter()
        .find(|route| *route == path)
        .unwrap_or(UNMATCHED)
}

/// The `method` label: standard methods by name, anything else `OTHER` to bound the series.
fn method_label(method: &Method) -> &'static str {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE",
    ];
    KNOWN
        .into_iter()
        .find(|known| *known == method.as_str())
        .unwrap_or("OTHER")
}

/// Middleware: applies the latency fault and records every request.
pub(super) async fn track(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let path = route_label(request.uri().path());
    let latency = state.config.faults.latency;
    if path != "/metrics" && !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let response = next.run(request).await;
    state
        .metrics
        .record(method, path, response.status().as_u16(), started.elapsed());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_routes_and_bounded_methods() {
        assert_eq!(route_label("/health"), "/health");
        assert_eq!(route_label("/health/x"), UNMATCHED);
        assert_eq!(method_label(&Method::POST), "POST");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "OTHER");
    }

    #[test]
    fn renders_cumulative_buckets_and_escapes_labels() {
        let metrics = Metrics::default();
        metrics.record("GET", "/health", 200, Duration::from_millis(1));
        metrics.record("GET", "/health", 200, Duration::from_millis(30));
        metrics.record("GET", "/health", 200, Duration::from_secs(60));
        let text = metrics.render("v\"1\n");
        assert!(text.contains(
            "kyb_http_requests_total{method=\"GET\",path=\"/health\",status=\"200\"} 3\n"
        ));
        assert!(text.contains("_bucket{path=\"/health\",le=\"0.005\"} 1\n"));
        assert!(text.contains("_bucket{path=\"/health\",le=\"0.05\"} 2\n"));
        assert!(text.contains("_bucket{path=\"/health\",le=\"10\"} 2\n"));
        assert!(text.contains("_bucket{path=\"/health\",le=\"+Inf\"} 3\n"));
        assert!(text.contains("_count{path=\"/health\"} 3\n"));
        assert!(text.contains("kyb_build_info{version=\"v\\\"1\\n\"} 1\n"));
    }
}
