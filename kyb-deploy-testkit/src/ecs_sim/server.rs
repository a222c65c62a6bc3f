//! The HTTP front of the simulator: `POST /` with `X-Amz-Target`, as the AWS SDKs and CLI
//! send the ECS JSON 1.1 protocol, and the admin endpoint under `/_kyb-sim/`.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::Value;

use super::admin;
use super::api::{ApiError, OPERATIONS};
use super::shared::Core;

const TARGET_PREFIX: &str = "AmazonEC2ContainerServiceV20141113.";
const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
const DEFAULT_REGION: &str = "us-east-1";

pub(crate) fn router(core: Arc<Core>) -> Router {
    Router::new()
        .route("/", post(handle))
        .merge(admin::router())
        .with_state(core)
}

async fn handle(State(core): State<Arc<Core>>, headers: HeaderMap, body: Bytes) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let operation = target
        .strip_prefix(TARGET_PREFIX)
        .unwrap_or(target)
        .to_owned();
    let Some(authorization) = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
    else {
        let error = ApiError::new(
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        );
        core.log_rejected(&operation, &error);
        return answer(error.status(), &error.body());
    };
    if !target.starts_with(TARGET_PREFIX) || !OPERATIONS.contains(&operation.as_str()) {
        let error = ApiError::new(
            "UnknownOperationException",
            format!("the operation {target:?} is not one this endpoint serves"),
        );
        core.log_rejected(&operation, &error);
        return answer(error.status(), &error.body());
    }
    let region = region_of(authorization);
    let (latency, fault) = core.api_faults(&operation);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if let Some(error) = fault {
        core.log_rejected(&operation, &error);
        return answer(error.status(), &error.body());
    }
    let parsed: Result<Value, _> = if body.iter().all(u8::is_ascii_whitespace) {
        Ok(Value::Object(serde_json::Map::new()))
    } else {
        serde_json::from_slice(&body)
    };
    let (status, body) = match parsed {
        Ok(request) => core.call(&operation, region, &request),
        Err(parse) => {
            let error = ApiError::new(
                "SerializationException",
                format!("the request body is not valid JSON: {parse}"),
            );
            core.log_rejected(&operation, &error);
            (error.status(), error.body())
        }
    };
    answer(status, &body)
}

/// An answer of the ECS API: its JSON body, and a fresh `x-amzn-RequestId` (a UUID) as
/// ECS gives every answer, errors included.
fn answer(status: u16, body: &Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    if let Ok(id) = HeaderValue::from_str(&request_id()) {
        headers.insert("x-amzn-requestid", id);
    }
    response
}

/// A random (version 4) UUID. It comes from the thread's generator, not the simulator's
/// seeded one, so that request ids do not shift the ids of a seeded run.
fn request_id() -> String {
    let bits = rand::random::<u128>() & !(0xf << 76) & !(0x3 << 62) | (0x4 << 76) | (0x2 << 62);
    let hex = format!("{bits:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// The region of a SigV4 `Authorization` header's credential scope
/// (`Credential=AKID/20261126/us-east-1/ecs/aws4_request`), else `us-east-1`.
pub(crate) fn region_of(authorization: &str) -> &str {
    authorization
        .split("Credential=")
        .nth(1)
        .and_then(|credential| credential.split(['/', ',']).nth(2))
        .map(str::trim)
        .filter(|region| !region.is_empty())
        .unwrap_or(DEFAULT_REGION)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_comes_from_the_credential_scope() {
        let header = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261126/eu-west-1/ecs/aws4_request, \
                      SignedHeaders=host, Signature=0";
        assert_eq!(region_of(header), "eu-west-1");
        assert_eq!(region_of("Bearer token"), "us-east-1");
        assert_eq!(region_of("AWS4-HMAC-SHA256 Credential=AKID"), "us-east-1");
    }
}
