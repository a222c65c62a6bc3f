//! The S3 state backend: an environment's deployment records and its lock as objects in a
//! bucket, shared by every runner that deploys the environment. The layout and the rules
//! are core's (`kyb_deploy_core::shared_state`); this module is the bucket: objects written
//! with `If-None-Match: *` and `If-Match`, deleted with `If-Match`, listed by prefix.

mod s3_objects;

use std::sync::Arc;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region};
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{RequestChecksumCalculation, ResponseChecksumValidation};
use kyb_deploy_core::config::{StateBackendKind, StateConfig};
use kyb_deploy_core::shared_state::{ObjectDeployLock, ObjectRecordStore, object_state};
use kyb_deploy_core::{Error, Result};

use self::s3_objects::S3Objects;
use crate::client::https_client;

/// The record store and the lock of `environment` in the bucket `state` names, through
/// [`s3_client`].
///
/// # Errors
///
/// When the backend is not `s3`, the bucket is missing, or no region is configured.
pub async fn s3_state(
    state: &StateConfig,
    environment: &str,
) -> Result<(ObjectRecordStore, ObjectDeployLock)> {
    let client = s3_client(state, environment).await?;
    s3_state_with_client(client, state, environment)
}

/// The record store and the lock of `environment` in the bucket `state` names, through
/// `client` (a program that builds its own AWS configuration, or a test).
///
/// # Errors
///
/// When the backend is not `s3` or the bucket is missing.
pub fn s3_state_with_client(
    client: aws_sdk_s3::Client,
    state: &StateConfig,
    environment: &str,
) -> Result<(ObjectRecordStore, ObjectDeployLock)> {
    let key = format!("environments.{environment}.state");
    if state.backend != StateBackendKind::S3 {
        return Err(Error::Config {
            message: format!(
                "{key}.backend: \"{}\" is not \"s3\"",
                state.backend.as_str()
            ),
        });
    }
    let Some(bucket) = state.bucket.clone() else {
        return Err(Error::Config {
            message: format!(
                "{key}.bucket: backend = \"s3\" needs a bucket; set bucket = \"NAME\""
            ),
        });
    };
    Ok(object_state(
        Arc::new(S3Objects::new(client, bucket)),
        state,
    ))
}

/// An S3 client for the state bucket of `environment`, on the graph's ring TLS.
///
/// Credentials come from the standard AWS chain; the region from `state.region`, else
/// `AWS_REGION` or the profile; the endpoint from `state.endpoint_url`, else
/// `AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL` (a configured endpoint is addressed path-style,
/// as S3-compatible stores expect). Calls are bounded in time; the SDK retries throttling
/// and server errors (a retried conditional write is settled by reading back).
///
/// # Errors
///
/// When no region is configured anywhere.
pub async fn s3_client(state: &StateConfig, environment: &str) -> Result<aws_sdk_s3::Client> {
    let key = format!("environments.{environment}.state");
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(https_client())
        .retry_config(RetryConfig::standard().with_max_attempts(4))
        .timeout_config(
            TimeoutConfig::builder()
                .operation_attempt_timeout(Duration::from_secs(10))
                .operation_timeout(Duration::from_secs(45))
                .build(),
        );
    if let Some(region) = &state.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(url) = &state.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    let sdk = loader.load().await;
    if sdk.region().is_none() {
        return Err(Error::Config {
            message: format!(
                "{key}: no AWS region for the state bucket; set {key}.region, AWS_REGION, or a region in the AWS profile"
            ),
        });
    }
    let custom_endpoint = state.endpoint_url.is_some()
        || ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
            .iter()
            .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()));
    let config = aws_sdk_s3::config::Builder::from(&sdk)
        .force_path_style(custom_endpoint)
        // Checksums only where S3 requires them: S3-compatible stores differ in the rest.
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
        .build();
    Ok(aws_sdk_s3::Client::from_conf(config))
}
