//! SDK clients from configuration, and how kyb-deploy calls ECS: reads retry through
//! throttling; writes never repeat on their own.

use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_ecs::config::http::HttpResponse;
use aws_sdk_ecs::config::retry::RetryConfig;
use aws_sdk_ecs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use kyb_deploy_core::{EcsSettings, Error};

/// The SDK's HTTP client on rustls with ring: the one crypto provider of the whole
/// dependency graph (reqwest and kube use ring too; mixing providers panics at run time).
pub fn https_client() -> aws_sdk_ecs::config::SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// Loads the AWS configuration for an ECS environment through the standard chain:
/// credentials from the environment, profiles (incl. SSO and `credential_process`),
/// container and instance roles; the region from `settings.region`, else `AWS_REGION` or
/// the profile; the endpoint from `settings.endpoint_url`, else `AWS_ENDPOINT_URL_ECS` or
/// `AWS_ENDPOINT_URL`.
///
/// # Errors
///
/// When no region is configured anywhere.
pub async fn load_sdk_config(
    settings: &EcsSettings,
    environment: &str,
) -> Result<SdkConfig, Error> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(https_client())
        .retry_config(RetryConfig::standard());
    if let Some(region) = &settings.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(url) = &settings.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    let config = loader.load().await;
    if config.region().is_none() {
        return Err(Error::target(
            "ecs",
            format!(
                "no AWS region for environments.{environment}: set environments.{environment}.ecs.region, AWS_REGION, or a region in the AWS profile"
            ),
        ));
    }
    Ok(config)
}

/// How throttled calls are retried beyond the SDK's own attempts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThrottleRetry {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// The first wait; each next wait doubles, up to `max_delay`.
    pub delay: Duration,
    /// The longest wait.
    pub max_delay: Duration,
}

impl Default for ThrottleRetry {
    fn default() -> Self {
        Self {
            attempts: 8,
            delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(8),
        }
    }
}

impl ThrottleRetry {
    /// The wait before attempt `attempt` (1-based; attempt 1 does not wait), with jitter
    /// between half and all of the nominal delay.
    pub(crate) fn delay_before(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(2).min(16);
        let nominal = self
            .delay
            .saturating_mul(1 << doublings)
            .min(self.max_delay);
        let jitter = 0.5 + rand::random::<f64>() * 0.5;
        nominal.mul_f64(jitter)
    }

    /// Runs `call` until it succeeds, fails with something other than throttling, or
    /// `attempts` calls were throttled. Only for calls that are safe to repeat: a throttled
    /// call was refused, so repeating it repeats nothing.
    pub(crate) async fn run<T, E, R, F, Fut>(&self, mut call: F) -> Result<T, SdkError<E, R>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, R>>>,
        E: ProvideErrorMetadata,
    {
        let mut attempt = 1;
        loop {
            match call().await {
                Err(e) if is_throttling(&e) && attempt < self.attempts => {
                    attempt += 1;
                    tokio::time::sleep(self.delay_before(attempt)).await;
                }
                other => return other,
            }
        }
    }
}

/// Whether ECS refused the call because of its request rate.
pub(crate) fn is_throttling<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    matches!(
        e.code(),
        Some(
            "ThrottlingException"
                | "Throttling"
                | "TooManyRequestsException"
                | "RequestLimitExceeded"
        )
    )
}

/// Whether a failed call certainly changed nothing: ECS answered with a client error
/// (validation, access denied, throttling) or the request was never built. A server error,
/// a timeout or a lost connection may come after ECS applied the change.
pub(crate) fn certainly_not_applied<E>(e: &SdkError<E, HttpResponse>) -> bool {
    match e {
        SdkError::ConstructionFailure(_) => true,
        SdkError::ServiceError(s) => s.raw().status().as_u16() < 500,
        _ => false,
    }
}

/// A one-line description of a failed call: ECS's error code and message, or the cause
/// of a failure to reach ECS.
pub(crate) fn describe_error<E, R>(operation: &str, e: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match (e.code(), e.message()) {
        (Some(code), Some(message)) => format!("{operation}: {code}: {message}"),
        (Some(code), None) => format!("{operation}: {code}"),
        _ => format!("{operation}: {}", DisplayErrorContext(e)),
    }
}

/// A target error for a failed call.
pub(crate) fn call_error<E, R>(operation: &str, e: &SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let mut message = describe_error(operation, e);
    match e.code() {
        Some(
            "AccessDeniedException" | "UnrecognizedClientException" | "InvalidSignatureException",
        ) => {
            message.push_str(
                "; check the AWS credentials and that their policy allows this action (docs/ecs.md lists the permissions)",
            );
        }
        Some("ClusterNotFoundException") => {
            message.push_str("; check ecs.cluster and ecs.region");
        }
        Some("ServiceNotFoundException" | "ServiceNotActiveException") => {
            message.push_str(
                "; check ecs.service (kyb-deploy updates an existing service; create it first)",
            );
        }
        _ => {}
    }
    Error::target("ecs", message)
}
