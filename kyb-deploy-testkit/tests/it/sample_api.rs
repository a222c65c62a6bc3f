//! The `kyb-sample-api` sample service: in process through `serve`, and as the real binary.

mod binary;
mod exposition;

use std::time::{Duration, Instant};

use kyb_deploy_testkit::sample_api::{self, Faults, SampleApiConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// Guards against a hang; never an assertion on speed.
const PATIENCE: Duration = Duration::from_secs(60);

/// A server on a free port of 127.0.0.1, shut down when dropped.
struct Server {
    base: String,
    client: reqwest::Client,
    _shutdown: oneshot::Sender<()>,
}

impl Server {
    async fn start(config: SampleApiConfig) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (shutdown, stop) = oneshot::channel::<()>();
        tokio::spawn(sample_api::serve(listener, config, async {
            let _ = stop.await;
        }));
        Self {
            base,
            client: reqwest::Client::new(),
            _shutdown: shutdown,
        }
    }

    async fn with_faults(faults: Faults) -> Self {
        Self::start(SampleApiConfig {
            faults,
            ..SampleApiConfig::default()
        })
        .await
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }

    async fn get_json(&self, path: &str) -> (StatusCode, Value) {
        let response = self.get(path).await;
        (response.status(), response.json().await.unwrap())
    }

    async fn classify(&self, content_type: Option<&str>, body: &str) -> (StatusCode, Value) {
        let mut request = self
            .client
            .post(format!("{}/v1/classify", self.base))
            .body(body.to_owned());
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let is_json = response
            .headers()
            .get("content-type")
            .is_some_and(|v| v == "application/json");
        assert!(is_json, "{status}: {:?}", response.headers());
        (status, response.json().await.unwrap())
    }

    async fn metrics(&self) -> Vec<exposition::Sample> {
        let response = self.get("/metrics").await;
        assert_eq!(response.status(), StatusCode::OK);
        let content_type = response.headers()["content-type"].clone();
        assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
        let text = response.text().await.unwrap();
        exposition::parse(&text).unwrap_or_else(|problem| panic!("{problem}\n{text}"))
    }

    /// Polls `path` until it answers `status`.
    async fn wait_for(&self, path: &str, status: StatusCode) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let (got, body) = self.get_json(path).await;
            if got == status {
                return body;
            }
            assert!(Instant::now() < deadline, "{path} never answered {status}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn assert_error(body: &Value, code: &str) {
    assert_eq!(body["error"], code, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(!message.is_empty(), "{body}");
    assert_eq!(body.as_object().map(|o| o.len()), Some(2), "{body}");
}

#[tokio::test]
async fn health_ready_and_status_answer_json() {
    let server = Server::start(SampleApiConfig {
        version: "v1.2.3".to_owned(),
        environment: "staging".to_owned(),
        ..SampleApiConfig::default()
    })
    .await;
    assert_eq!(
        server.get_json("/health").await,
        (StatusCode::OK, json!({"status": "ok"}))
    );
    assert_eq!(
        server.get_json("/ready").await,
        (StatusCode::OK, json!({"status": "ready"}))
    );
    let (status, body) = server.get_json("/status").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["name"], "kyb-platform-api");
    assert_eq!(body["version"], "v1.2.3");
    assert_eq!(body["environment"], "staging");
    assert!(
        body["uptime_seconds"].as_f64().is_some_and(|s| s >= 0.0),
        "{body}"
    );
    assert_eq!(body.as_object().map(|o| o.len()), Some(4), "{body}");
}

#[tokio::test]
async fn status_defaults_to_the_build_version_and_development() {
    let server = Server::start(SampleApiConfig::default()).await;
    let (_, body) = server.get_json("/status").await;
    assert_eq!(body["version"], sample_api::build_version());
    assert_eq!(body["environment"], "development");
}

#[tokio::test]
async fn unknown_paths_and_methods_answer_json_errors() {
    let server = Server::start(SampleApiConfig::default()).await;
    let (status, body) = server.get_json("/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, "not_found");
    let response = server
        .client
        .delete(format!("{}/health", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_error(&response.json().await.unwrap(), "method_not_allowed");
}

#[tokio::test]
async fn metrics_are_a_valid_exposition_that_counts_requests() {
    let server = Server::start(SampleApiConfig {
        version: "v7".to_owned(),
        ..SampleApiConfig::default()
    })
    .await;
    let health_count = |samples: &[exposition::Sample]| {
        samples
            .iter()
            .find(|s| {
                s.name == "kyb_http_requests_total"
                    && s.label("method") == Some("GET")
                    && s.label("path") == Some("/health")
                    && s.label("status") == Some("200")
            })
            .map_or(0.0, |s| s.value)
    };
    let before = health_count(&server.metrics().await);
    for _ in 0..3 {
        server.get("/health").await;
    }
    server.get("/no/such/path").await;
    let samples = server.metrics().await;
    assert_eq!(health_count(&samples), before + 3.0);

    let has = |name: &str, labels: &[(&str, &str)]| {
        samples
            .iter()
            .any(|s| s.name == name && labels.iter().all(|(k, v)| s.label(k) == Some(*v)))
    };
    assert!(has(
        "kyb_http_requests_total",
        &[("path", "/metrics"), ("status", "200")]
    ));
    assert!(has(
        "kyb_http_requests_total",
        &[("path", "unmatched"), ("status", "404")]
    ));
    assert!(
        !samples
            .iter()
            .any(|s| s.label("path") == Some("/no/such/path"))
    );
    assert!(has(
        "kyb_http_request_duration_seconds_count",
        &[("path", "/health")]
    ));
    assert!(has(
        "kyb_http_request_duration_seconds_bucket",
        &[("path", "/health"), ("le", "+Inf")]
    ));
    let build_info = samples.iter().find(|s| s.name == "kyb_build_info").unwrap();
    assert_eq!(
        (build_info.label("version"), build_info.value),
        (Some("v7"), 1.0)
    );
}

#[tokio::test]
async fn classify_answers_test_corp_deterministically() {
    let server = Server::start(SampleApiConfig::default()).await;
    let request = r#"{"business_name": "Test Corp"}"#;
    let (status, body) = server.classify(Some("application/json"), request).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["business_name"], "Test Corp");
    assert_eq!(body["industry"], "general_business");
    let score = body["risk_score"].as_u64().unwrap();
    assert!(score <= 100, "{body}");
    let level = body["risk_level"].as_str().unwrap();
    assert!(["low", "medium", "high"].contains(&level), "{body}");
    let reasons = body["reasons"].as_array().unwrap();
    assert!(
        !reasons.is_empty() && reasons.iter().all(Value::is_string),
        "{body}"
    );
    assert_eq!(body.as_object().map(|o| o.len()), Some(5), "{body}");

    let again = server
        .classify(Some("application/json; charset=utf-8"), request)
        .await;
    assert_eq!(again, (StatusCode::OK, body));
}

#[tokio::test]
async fn classify_guesses_the_industry_from_keywords() {
    let server = Server::start(SampleApiConfig::default()).await;
    for (name, industry) in [
        ("Moon Coin Exchange", "crypto_assets"),
        ("Acme Capital LLC", "financial_services"),
        ("Rocket Labs Inc", "technology"),
    ] {
        let request = json!({"business_name": name}).to_string();
        let (status, body) = server.classify(Some("application/json"), &request).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["industry"], industry, "{body}");
    }
    let request = json!({"business_name": "Moon Coin Exchange"}).to_string();
    let (_, body) = server.classify(Some("application/json"), &request).await;
    assert_eq!(body["risk_level"], "high", "{body}");
}

#[tokio::test]
async fn classify_rejects_bad_input_with_json_errors() {
    let server = Server::start(SampleApiConfig::default()).await;
    let json_type = Some("application/json");
    let too_long = json!({"business_name": "a".repeat(201)}).to_string();
    let cases = [
        (None, "", StatusCode::BAD_REQUEST, "missing_body"),
        (json_type, "", StatusCode::BAD_REQUEST, "missing_body"),
        (
            json_type,
            "{not json",
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (json_type, "[]", StatusCode::BAD_REQUEST, "invalid_body"),
        (json_type, "{}", StatusCode::BAD_REQUEST, "missing_field"),
        (
            json_type,
            r#"{"business_name": 5}"#,
            StatusCode::BAD_REQUEST,
            "invalid_type",
        ),
        (
            json_type,
            r#"{"business_name": ""}"#,
            StatusCode::BAD_REQUEST,
            "empty_business_name",
        ),
        (
            json_type,
            r#"{"business_name": " \t "}"#,
            StatusCode::BAD_REQUEST,
            "empty_business_name",
        ),
        (
            json_type,
            &too_long,
            StatusCode::BAD_REQUEST,
            "business_name_too_long",
        ),
        (
            json_type,
            r#"{"business_name": "X", "extra": 1}"#,
            StatusCode::BAD_REQUEST,
            "unknown_field",
        ),
        (
            Some("text/plain"),
            r#"{"business_name": "X"}"#,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
    ];
    for (content_type, request, status, code) in cases {
        let (got, body) = server.classify(content_type, request).await;
        assert_eq!(got, status, "{request:?}: {body}");
        assert_error(&body, code);
    }
    let longest = json!({"business_name": "a".repeat(200)}).to_string();
    assert_eq!(server.classify(json_type, &longest).await.0, StatusCode::OK);
}

#[tokio::test]
async fn never_ready_keeps_ready_at_503() {
    let server = Server::with_faults(Faults {
        never_ready: true,
        ..Faults::default()
    })
    .await;
    let not_ready = (
        StatusCode::SERVICE_UNAVAILABLE,
        json!({"status": "not ready"}),
    );
    assert_eq!(server.get_json("/ready").await, not_ready);
    assert_eq!(server.get_json("/health").await.0, StatusCode::OK);
}

#[tokio::test]
async fn ready_after_turns_ready_later() {
    let after = Duration::from_millis(300);
    let started = Instant::now();
    let server = Server::with_faults(Faults {
        ready_after: after,
        ..Faults::default()
    })
    .await;
    let (status, _) = server.get_json("/ready").await;
    assert!(status == StatusCode::SERVICE_UNAVAILABLE || started.elapsed() >= after);
    assert_eq!(
        server.wait_for("/ready", StatusCode::OK).await,
        json!({"status": "ready"})
    );
}

#[tokio::test]
async fn unhealthy_after_flips_health_to_503() {
    let unhealthy = json!({"status": "unhealthy"});
    let immediately = Server::with_faults(Faults {
        unhealthy_after: Some(Duration::ZERO),
        ..Faults::default()
    })
    .await;
    let expected = (StatusCode::SERVICE_UNAVAILABLE, unhealthy.clone());
    assert_eq!(immediately.get_json("/health").await, expected);

    let after = Duration::from_millis(300);
    let started = Instant::now();
    let later = Server::with_faults(Faults {
        unhealthy_after: Some(after),
        ..Faults::default()
    })
    .await;
    let (status, _) = later.get_json("/health").await;
    assert!(status == StatusCode::OK || started.elapsed() >= after);
    let body = later
        .wait_for("/health", StatusCode::SERVICE_UNAVAILABLE)
        .await;
    assert_eq!(body, unhealthy);
}

#[tokio::test]
async fn classify_500_fails_valid_requests() {
    let server = Server::with_faults(Faults {
        classify_500: true,
        ..Faults::default()
    })
    .await;
    let request = r#"{"business_name": "Test Corp"}"#;
    let (status, body) = server.classify(Some("application/json"), request).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_error(&body, "internal_error");
}

#[tokio::test]
async fn latency_is_added_to_requests() {
    let server = Server::with_faults(Faults {
        latency: Duration::from_millis(50),
        ..Faults::default()
    })
    .await;
    assert_eq!(server.get_json("/health").await.0, StatusCode::OK);
    let samples = server.metrics().await;
    let sum = samples
        .iter()
        .find(|s| {
            s.name == "kyb_http_request_duration_seconds_sum" && s.label("path") == Some("/health")
        })
        .unwrap();
    assert!(sum.value >= 0.05, "{sum:?}");
}
