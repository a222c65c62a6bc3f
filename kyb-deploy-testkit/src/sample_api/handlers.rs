//! The request handlers and the JSON error answer.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;

use super::AppState;
use super::classify::{self, Classification};

/// The endpoints, for error messages.
const ENDPOINTS: &str = "GET /health, GET /ready, GET /status, GET /metrics and POST /v1/classify";

/// An error answered as `{"error": "<code>", "message": "<what is wrong and how to fix it>"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    pub(super) fn new(status: StatusCode, code: &'static str, message: String) -> Self {
        Self {
            status,
            code,
            message,
        }
    }

    pub(super) fn bad_request(code: &'static str, message: String) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.code,
            message: &self.message,
        };
        (self.status, Json(body)).into_response()
    }
}

/// `GET /health`: liveness.
pub(super) async fn health(State(state): State<Arc<AppState>>) -> Response {
    match state.config.faults.unhealthy_after {
        Some(after) if state.uptime() >= after => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unhealthy"})),
        )
            .into_response(),
        _ => Json(json!({"status": "ok"})).into_response(),
    }
}

/// `GET /ready`: readiness.
pub(super) async fn ready(State(state): State<Arc<AppState>>) -> Response {
    let faults = &state.config.faults;
    if faults.never_ready || state.uptime() < faults.ready_after {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not ready"})),
        )
            .into_response()
    } else {
        Json(json!({"status": "ready"})).into_response()
    }
}

/// `GET /status`: name, version, uptime and environment.
pub(super) async fn status(State(state): State<Arc<AppState>>) -> Response {
    Json(json!({
        "name": "kyb-platform-api",
        "version": state.config.version,
        "uptime_seconds": state.uptime().as_secs_f64(),
        "environment": state.config.environment,
    }))
    .into_response()
}

/// `GET /metrics`: Prometheus text exposition.
pub(super) async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let body = state.metrics.render(&state.config.version);
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

/// `POST /v1/classify`.
pub(super) async fn classify(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Classification>, ApiError> {
    let body = body.map_err(|rejection| {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                status,
                "body_too_large",
                "the body is too large; send only {\"business_name\": \"...\"}".to_owned(),
            )
        } else {
            ApiError::new(
                status,
                "unreadable_body",
                format!(
                    "the body could not be read ({}); send it again",
                    rejection.body_text()
                ),
            )
        }
    })?;
    let name = classify::business_name(&headers, &body)?;
    if state.config.faults.classify_500 {
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "the classification failed (fault injected by KYB_SAMPLE_FAULT_CLASSIFY_500); unset the variable to classify normally".to_owned(),
        ));
    }
    Ok(Json(classify::classify(&name)))
}

/// Any unknown path.
pub(super) async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!(
            "no endpoint at {method} {}; the endpoints are {ENDPOINTS}",
            uri.path()
        ),
    )
}

/// A known path with the wrong method.
pub(super) async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{method} is not allowed on {}; the endpoints are {ENDPOINTS}",
            uri.path()
        ),
    )
}
