//! SDK clients from configuration, and how kyb-deploy calls ECS: reads retry through
//! throttling; writes never repeat on their own.

use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_ecs::config::http::HttpResponse;
use aws_sdk_ecs::config::retry::RetryConfig;
use aws_sdk_ecs::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use kyb_deploy_core::Error;

use crate::error::CallError;
use crate::settings::EcsSettings;

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
    e.code().is_some_and(is_throttling_code)
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

/// A one-line description of a failed call: the operation, then ECS's error code and
/// message, or the cause of a failure to reach ECS.
pub(crate) fn describe_error<E, R>(operation: &str, e: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    format!("{operation}: {}", crate::error::answer(e))
}

/// What kind of failure a call ended in. Each class has its own fix, so that a server
/// error is never answered with "configure AWS credentials".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureClass {
    /// No usable credentials: none found, expired, or not recognised by AWS.
    Credentials,
    /// The credentials work, and their policy does not allow the action.
    AccessDenied,
    /// A named resource (the cluster, the service) does not exist, in this region.
    NotFound,
    /// AWS refused the call because of the account's request rate.
    Throttled,
    /// The endpoint could not be reached: DNS, connection, TLS, or a timeout.
    Unreachable,
    /// AWS failed on its side (a 5xx answer).
    ServerError,
    /// Anything else, such as an invalid parameter: AWS's own message says what.
    Other,
}

/// AWS error codes meaning the request's credentials are missing, expired or unknown.
const CREDENTIAL_CODES: &[&str] = &[
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "IncompleteSignature",
    "SignatureDoesNotMatch",
    "InvalidClientTokenId",
    "MissingAuthenticationToken",
    "ExpiredToken",
    "ExpiredTokenException",
];

/// AWS error codes meaning the credentials' policy does not allow the action.
const ACCESS_CODES: &[&str] = &[
    "AccessDeniedException",
    "AccessDenied",
    "UnauthorizedOperation",
];

/// AWS error codes of a failure on AWS's side.
const SERVER_CODES: &[&str] = &[
    "ServerException",
    "InternalFailure",
    "InternalError",
    "InternalServerError",
    "ServiceUnavailable",
    "ServiceUnavailableException",
];

impl FailureClass {
    /// The class of a failed call.
    pub fn of<E: ProvideErrorMetadata + std::error::Error + 'static>(
        e: &SdkError<E, HttpResponse>,
    ) -> Self {
        match e {
            SdkError::TimeoutError(_) => Self::Unreachable,
            SdkError::DispatchFailure(_) if mentions_credentials(e) => Self::Credentials,
            SdkError::DispatchFailure(_) => Self::Unreachable,
            SdkError::ConstructionFailure(_) if mentions_credentials(e) => Self::Credentials,
            SdkError::ServiceError(s) => Self::of_answer(e.code(), s.raw().status().as_u16()),
            SdkError::ResponseError(r) => Self::of_answer(e.code(), r.raw().status().as_u16()),
            _ => Self::Other,
        }
    }

    /// The class of an answer: its error code, else its HTTP status.
    pub fn of_answer(code: Option<&str>, status: u16) -> Self {
        match code {
            Some(c) if CREDENTIAL_CODES.contains(&c) => return Self::Credentials,
            Some(c) if ACCESS_CODES.contains(&c) => return Self::AccessDenied,
            Some(c) if is_throttling_code(c) => return Self::Throttled,
            Some(c) if c.ends_with("NotFoundException") || c == "ServiceNotActiveException" => {
                return Self::NotFound;
            }
            Some(c) if SERVER_CODES.contains(&c) => return Self::ServerError,
            _ => {}
        }
        match status {
            500..=599 => Self::ServerError,
            429 => Self::Throttled,
            401 => Self::Credentials,
            403 => Self::AccessDenied,
            404 => Self::NotFound,
            _ => Self::Other,
        }
    }

    /// What to do about a failure of this class; `code` (AWS's error code) makes a
    /// not-found fix name the key. `None` when AWS's own message is the best guide.
    pub fn fix(self, code: Option<&str>) -> Option<&'static str> {
        Some(match self {
            Self::Credentials => {
                "configure AWS credentials (AWS_PROFILE, `aws sso login`, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or a task or instance role); `aws sts get-caller-identity` shows which ones are found"
            }
            Self::AccessDenied => {
                "the credentials work but their policy does not allow this action; grant it (docs/ecs.md lists the permissions kyb-deploy needs)"
            }
            Self::NotFound => match code {
                Some("ClusterNotFoundException") => {
                    "check ecs.cluster and ecs.region: the cluster must exist in that region"
                }
                Some("ServiceNotFoundException" | "ServiceNotActiveException") => {
                    "check ecs.service (kyb-deploy updates an existing service; create it first) and ecs.region"
                }
                _ => "check the names in the environment's [ecs] section and ecs.region",
            },
            Self::Throttled => {
                "AWS is limiting this account's request rate; retry in a minute, or lower ecs.poll.max_calls_per_second when other tools share the account"
            }
            Self::Unreachable => {
                "check the network connection (and any proxy), ecs.region and ecs.endpoint_url (or AWS_ENDPOINT_URL)"
            }
            Self::ServerError => {
                "AWS failed on its side; retry later (https://health.aws.amazon.com lists AWS outages)"
            }
            Self::Other => return None,
        })
    }
}

fn is_throttling_code(code: &str) -> bool {
    matches!(
        code,
        "ThrottlingException" | "Throttling" | "TooManyRequestsException" | "RequestLimitExceeded"
    )
}

/// Whether the error's chain speaks of credentials: how the SDK reports that the
/// credential chain found none (a dispatch failure caused by the provider).
pub(crate) fn mentions_credentials(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(error) = next {
        let text = error.to_string().to_ascii_lowercase();
        if text.contains("credential") || text.contains("no auth scheme") {
            return true;
        }
        next = error.source();
    }
    false
}

/// A target error for a failed call: the operation, with a [`CallError`] (AWS's answer
/// and the fix of its class) as its source.
pub(crate) fn call_error<E>(operation: &str, e: &SdkError<E, HttpResponse>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    CallError::of(operation, e).into()
}

#[cfg(test)]
mod tests {
    use aws_sdk_ecs::config::{Credentials, Region};
    use aws_sdk_ecs::error::{ConnectorError, ErrorMetadata};
    use aws_sdk_ecs::operation::describe_services::DescribeServicesError;

    use super::*;

    type Failure = SdkError<DescribeServicesError, HttpResponse>;

    fn answer(status: u16, code: Option<&str>) -> Failure {
        let mut meta = ErrorMetadata::builder().message("m");
        if let Some(code) = code {
            meta = meta.code(code);
        }
        SdkError::service_error(
            DescribeServicesError::generic(meta.build()),
            HttpResponse::new(status.try_into().unwrap(), "".into()),
        )
    }

    /// The core error names the operation; its source is the typed call, which says the
    /// rest once, so the chain reads as one line.
    #[test]
    fn a_failed_call_is_a_target_error_whose_source_is_the_typed_call() {
        let error = call_error(
            "DescribeServices",
            &answer(400, Some("ClusterNotFoundException")),
        );
        assert_eq!(error.to_string(), "ecs target: DescribeServices");
        let call = std::error::Error::source(&error)
            .and_then(|s| s.downcast_ref::<CallError>())
            .expect("the source is the call");
        assert_eq!(call.class, FailureClass::NotFound);
        assert_eq!(call.code.as_deref(), Some("ClusterNotFoundException"));
        assert_eq!(
            error.chain(),
            "ecs target: DescribeServices: ClusterNotFoundException: m; check ecs.cluster and ecs.region: the cluster must exist in that region"
        );
    }

    /// Only the credentials class says to configure credentials; each other class has a
    /// fix of its own.
    #[test]
    fn each_failure_class_gets_its_own_fix() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let cases: Vec<(&str, Failure, FailureClass, Option<&str>)> = vec![
            (
                "a 500 without a code",
                answer(500, None),
                FailureClass::ServerError,
                Some("AWS failed on its side"),
            ),
            (
                "a 503 ServiceUnavailable",
                answer(503, Some("ServiceUnavailableException")),
                FailureClass::ServerError,
                Some("retry later"),
            ),
            (
                "ECS's ServerException",
                answer(500, Some("ServerException")),
                FailureClass::ServerError,
                Some("retry later"),
            ),
            (
                "throttling",
                answer(400, Some("ThrottlingException")),
                FailureClass::Throttled,
                Some("request rate"),
            ),
            (
                "a 429",
                answer(429, None),
                FailureClass::Throttled,
                Some("request rate"),
            ),
            (
                "a missing cluster",
                answer(400, Some("ClusterNotFoundException")),
                FailureClass::NotFound,
                Some("check ecs.cluster and ecs.region"),
            ),
            (
                "a missing service",
                answer(400, Some("ServiceNotFoundException")),
                FailureClass::NotFound,
                Some("check ecs.service"),
            ),
            (
                "access denied",
                answer(400, Some("AccessDeniedException")),
                FailureClass::AccessDenied,
                Some("policy does not allow this action"),
            ),
            (
                "a 403 without a code",
                answer(403, None),
                FailureClass::AccessDenied,
                Some("policy does not allow"),
            ),
            (
                "unknown credentials",
                answer(400, Some("UnrecognizedClientException")),
                FailureClass::Credentials,
                Some("configure AWS credentials"),
            ),
            (
                "expired credentials",
                answer(403, Some("ExpiredTokenException")),
                FailureClass::Credentials,
                Some("configure AWS credentials"),
            ),
            (
                "a refused connection",
                SdkError::dispatch_failure(ConnectorError::io(io.into())),
                FailureClass::Unreachable,
                Some("check the network connection"),
            ),
            (
                "a timeout",
                SdkError::timeout_error("operation timed out"),
                FailureClass::Unreachable,
                Some("ecs.endpoint_url"),
            ),
            (
                "no credentials in the chain",
                SdkError::dispatch_failure(ConnectorError::other(
                    "the credential provider was not enabled".into(),
                    None,
                )),
                FailureClass::Credentials,
                Some("configure AWS credentials"),
            ),
            (
                "an invalid parameter",
                answer(400, Some("InvalidParameterException")),
                FailureClass::Other,
                None,
            ),
        ];
        for (what, failure, class, fix) in cases {
            assert_eq!(FailureClass::of(&failure), class, "{what}");
            let message = call_error("DescribeServices", &failure).chain();
            match fix {
                Some(fix) => assert!(message.contains(fix), "{what}: {message}"),
                None => assert!(!message.contains("; "), "{what}: {message}"),
            }
            assert_eq!(
                message.contains("configure AWS credentials"),
                class == FailureClass::Credentials,
                "{what}: {message}"
            );
        }
    }

    fn client(credentials: bool) -> aws_sdk_ecs::Client {
        let mut config = aws_sdk_ecs::Config::builder()
            .behavior_version_latest()
            .region(Region::new("us-east-1"))
            .http_client(https_client())
            .retry_config(RetryConfig::disabled())
            // Nothing listens on port 1: the connection is refused at once.
            .endpoint_url("http://127.0.0.1:1");
        if credentials {
            config = config.credentials_provider(Credentials::new("a", "b", None, None, "test"));
        }
        aws_sdk_ecs::Client::from_conf(config.build())
    }

    /// The errors the SDK really returns, not only constructed ones.
    #[tokio::test]
    async fn real_sdk_failures_are_classified() {
        let e = client(true)
            .describe_services()
            .cluster("c")
            .send()
            .await
            .unwrap_err();
        assert_eq!(FailureClass::of(&e), FailureClass::Unreachable, "{e:?}");
        let refused = call_error("DescribeServices", &e).chain();
        let e = client(false)
            .describe_services()
            .cluster("c")
            .send()
            .await
            .unwrap_err();
        assert_eq!(FailureClass::of(&e), FailureClass::Credentials, "{e:?}");
        let missing = call_error("DescribeServices", &e).chain();
        assert!(
            missing
                .contains("DescribeServices: no AWS credentials found; configure AWS credentials"),
            "{missing}"
        );
        // One line each, the causes' messages only: no SDK debug dump (`DispatchFailure(`,
        // `ConnectorError {`), which would show the request and its internals.
        for message in [&refused, &missing] {
            assert!(!message.contains('\n'), "{message}");
            assert!(
                !message.contains(" { ") && !message.contains("DispatchFailure("),
                "{message}"
            );
            assert!(
                message.len() < 400,
                "{} characters: {message}",
                message.len()
            );
        }
        assert!(refused.contains("Connection refused"), "{refused}");
    }
}
