//! The admin endpoint under `/_kyb-sim/`, next to the ECS API on the same port: the state,
//! the request log, faults and the manual clock over HTTP, for tests in another process.
//! [`FaultSpec`] is the JSON (and TOML) shape of one [`Fault`].

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::faults::Fault;
use super::shared::Core;

/// One fault as data: the body of `POST /_kyb-sim/faults` and an entry of `kyb-sim ecs
/// --config`'s `[[faults]]`. An API fault names exactly one of `throttle_every`,
/// `throttle_probability`, `server_errors` and `latency_ms`, and optionally an `operation`;
/// a task fault names an `image` pattern and exactly one of `fail_to_start`,
/// `essential_exit`, `health_check_fails` and `slow_start_secs`.
///
/// ```
/// use kyb_deploy_testkit::ecs_sim::{Fault, FaultSpec};
///
/// let spec: FaultSpec =
///     serde_json::from_str(r#"{"api": {"throttle_every": 3, "operation": "DescribeServices"}}"#)
///         .unwrap();
/// assert_eq!(
///     Fault::try_from(spec).unwrap(),
///     Fault::throttle_every(3).on_operation("DescribeServices")
/// );
///
/// let spec: FaultSpec = serde_json::from_str(
///     r#"{"task": {"image": "*:broken", "essential_exit": {"code": 1, "after_secs": 5}}}"#,
/// )
/// .unwrap();
/// assert!(Fault::try_from(spec).is_ok());
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum FaultSpec {
    /// A fault of API calls.
    Api(ApiFaultSpec),
    /// A fault of the tasks whose image matches a pattern.
    Task(TaskFaultSpec),
}

/// The fields of [`FaultSpec::Api`].
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ApiFaultSpec {
    /// The operation it applies to; every operation when absent.
    pub operation: Option<String>,
    /// Every Nth call fails with `ThrottlingException` (N at least 1).
    pub throttle_every: Option<u32>,
    /// Each call fails with `ThrottlingException` with this probability (0 to 1).
    pub throttle_probability: Option<f64>,
    /// The next N calls fail with `ServerException`.
    pub server_errors: Option<u32>,
    /// Every call is answered this many milliseconds later.
    pub latency_ms: Option<u64>,
}

/// The fields of [`FaultSpec::Task`].
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TaskFaultSpec {
    /// The image pattern (`*` wildcards, matching the whole reference).
    pub image: String,
    /// The tasks fail to start with this `stoppedReason`.
    pub fail_to_start: Option<String>,
    /// The essential container exits.
    pub essential_exit: Option<ExitSpec>,
    /// `true`: the tasks fail their health check.
    pub health_check_fails: Option<bool>,
    /// The tasks take this many more (simulated) seconds to start.
    pub slow_start_secs: Option<u64>,
}

/// The fields of [`TaskFaultSpec::essential_exit`].
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ExitSpec {
    /// The container's exit code.
    pub code: i32,
    /// How many (simulated) seconds the task runs first.
    #[serde(default)]
    pub after_secs: u64,
}

/// Why a [`FaultSpec`] is not a [`Fault`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidFault(String);

impl TryFrom<FaultSpec> for Fault {
    type Error = InvalidFault;

    fn try_from(spec: FaultSpec) -> Result<Self, InvalidFault> {
        match spec {
            FaultSpec::Api(api) => api_fault(api),
            FaultSpec::Task(task) => task_fault(task),
        }
    }
}

fn api_fault(spec: ApiFaultSpec) -> Result<Fault, InvalidFault> {
    let mut kinds = Vec::new();
    if let Some(every) = spec.throttle_every {
        if every == 0 {
            return Err(InvalidFault("throttle_every must be at least 1".to_owned()));
        }
        kinds.push(Fault::throttle_every(every));
    }
    if let Some(probability) = spec.throttle_probability {
        if !(0.0..=1.0).contains(&probability) {
            return Err(InvalidFault(format!(
                "throttle_probability must be between 0 and 1, not {probability}"
            )));
        }
        kinds.push(Fault::throttle_probability(probability));
    }
    if let Some(count) = spec.server_errors {
        kinds.push(Fault::server_errors(count));
    }
    if let Some(millis) = spec.latency_ms {
        kinds.push(Fault::latency(Duration::from_millis(millis)));
    }
    let fault = exactly_one(
        kinds,
        "an api fault needs exactly one of throttle_every, throttle_probability, \
         server_errors, latency_ms",
    )?;
    Ok(match spec.operation {
        Some(operation) => fault.on_operation(operation),
        None => fault,
    })
}

fn task_fault(spec: TaskFaultSpec) -> Result<Fault, InvalidFault> {
    if spec.image.is_empty() {
        return Err(InvalidFault(
            "a task fault needs an image pattern".to_owned(),
        ));
    }
    let image = spec.image;
    let mut kinds = Vec::new();
    if let Some(reason) = spec.fail_to_start {
        kinds.push(Fault::fail_to_start(image.clone(), reason));
    }
    if let Some(exit) = spec.essential_exit {
        let after = Duration::from_secs(exit.after_secs);
        kinds.push(Fault::essential_exit(image.clone(), exit.code, after));
    }
    match spec.health_check_fails {
        Some(true) => kinds.push(Fault::health_check_fails(image.clone())),
        Some(false) => {
            return Err(InvalidFault(
                "health_check_fails can only be true".to_owned(),
            ));
        }
        None => {}
    }
    if let Some(secs) = spec.slow_start_secs {
        kinds.push(Fault::slow_start(image, Duration::from_secs(secs)));
    }
    exactly_one(
        kinds,
        "a task fault needs exactly one of fail_to_start, essential_exit, \
         health_check_fails, slow_start_secs",
    )
}

fn exactly_one(mut faults: Vec<Fault>, message: &str) -> Result<Fault, InvalidFault> {
    match faults.pop() {
        Some(fault) if faults.is_empty() => Ok(fault),
        _ => Err(InvalidFault(message.to_owned())),
    }
}

pub(crate) fn router() -> Router<Arc<Core>> {
    Router::new()
        .route("/_kyb-sim/state", get(state))
        .route("/_kyb-sim/requests", get(requests))
        .route("/_kyb-sim/faults", post(add_fault).delete(clear_faults))
        .route("/_kyb-sim/advance", post(advance))
}

async fn state(State(core): State<Arc<Core>>) -> Response {
    axum::Json(core.snapshot()).into_response()
}

async fn requests(State(core): State<Arc<Core>>) -> Response {
    let inner = core.lock();
    let mut counts = serde_json::Map::new();
    let requests: Vec<Value> = inner
        .log
        .iter()
        .map(|request| {
            let count = counts.entry(request.operation.clone()).or_insert(json!(0));
            *count = json!(count.as_u64().unwrap_or(0) + 1);
            let at = request
                .at
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs_f64();
            json!({
                "operation": request.operation,
                "at": at,
                "mutating": request.mutating,
                "status": request.status,
                "error": request.error,
            })
        })
        .collect();
    drop(inner);
    axum::Json(json!({"requests": requests, "counts": counts})).into_response()
}

async fn add_fault(State(core): State<Arc<Core>>, body: Bytes) -> Response {
    let fault = serde_json::from_slice::<FaultSpec>(&body)
        .map_err(|error| format!("the body is not a fault: {error}"))
        .and_then(|spec| Fault::try_from(spec).map_err(|error| error.to_string()));
    match fault {
        Ok(fault) => {
            let shown = serde_json::to_value(&fault).unwrap_or(Value::Null);
            core.lock().faults.add(fault);
            (StatusCode::CREATED, axum::Json(json!({"fault": shown}))).into_response()
        }
        Err(message) => bad_request(message),
    }
}

async fn clear_faults(State(core): State<Arc<Core>>) -> StatusCode {
    core.lock().faults.clear();
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Advance {
    secs: f64,
}

async fn advance(State(core): State<Arc<Core>>, body: Bytes) -> Response {
    let secs = match serde_json::from_slice::<Advance>(&body) {
        Ok(Advance { secs }) if secs.is_finite() && secs >= 0.0 => secs,
        Ok(Advance { secs }) => {
            return bad_request(format!("secs must be a non-negative number, not {secs}"));
        }
        Err(error) => return bad_request(format!("the body is not {{\"secs\": N}}: {error}")),
    };
    if !core.clock.is_manual() {
        let message = "the clock follows real time; only a manual clock can be advanced";
        return (
            StatusCode::CONFLICT,
            axum::Json(json!({"message": message})),
        )
            .into_response();
    }
    core.clock.advance(Duration::from_secs_f64(secs));
    // Locking runs the controller up to the new time.
    drop(core.lock());
    axum::Json(json!({"now": core.clock.now_seconds()})).into_response()
}

fn bad_request(message: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"message": message})),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Fault, String> {
        let spec: FaultSpec = serde_json::from_str(text).map_err(|error| error.to_string())?;
        Fault::try_from(spec).map_err(|error| error.to_string())
    }

    #[test]
    fn specs_become_faults() {
        assert_eq!(
            parse(r#"{"api": {"server_errors": 5}}"#),
            Ok(Fault::server_errors(5))
        );
        assert_eq!(
            parse(r#"{"api": {"latency_ms": 200}}"#),
            Ok(Fault::latency(Duration::from_millis(200)))
        );
        assert_eq!(
            parse(r#"{"task": {"image": "a:*", "health_check_fails": true}}"#),
            Ok(Fault::health_check_fails("a:*"))
        );
        assert_eq!(
            parse(r#"{"task": {"image": "a", "slow_start_secs": 30}}"#),
            Ok(Fault::slow_start("a", Duration::from_secs(30)))
        );
    }

    #[test]
    fn ambiguous_or_unknown_specs_are_refused() {
        let both = parse(r#"{"api": {"server_errors": 5, "latency_ms": 1}}"#).unwrap_err();
        assert!(both.contains("exactly one"), "{both}");
        assert!(parse(r#"{"api": {}}"#).is_err());
        assert!(parse(r#"{"api": {"throttle_every": 0}}"#).is_err());
        assert!(parse(r#"{"api": {"throttle_probability": 1.5}}"#).is_err());
        let unknown = parse(r#"{"api": {"throttle": 2}}"#).unwrap_err();
        assert!(unknown.contains("throttle"), "{unknown}");
        assert!(parse(r#"{"task": {"fail_to_start": "x"}}"#).is_err());
    }
}
