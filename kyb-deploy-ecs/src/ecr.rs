//! [`EcrLogin`]: push credentials for Amazon ECR registries from GetAuthorizationToken.

use aws_config::{BehaviorVersion, Region};
use base64::Engine as _;
use kyb_deploy_core::{Credentials, Error, RegistryLogin, Result, async_trait};

use crate::client::{ThrottleRetry, call_error, https_client};

/// Issues registry credentials for Amazon ECR hosts
/// (`<account>.dkr.ecr.<region>.amazonaws.com`) with ECR's GetAuthorizationToken, as
/// `aws ecr get-login-password` does. Other registries are left to the Docker config.
///
/// ```
/// use kyb_deploy_core::RegistryLogin as _;
/// use kyb_deploy_ecs::EcrLogin;
///
/// let login = EcrLogin::from_environment();
/// assert!(login.handles("123456789012.dkr.ecr.eu-west-1.amazonaws.com"));
/// assert!(!login.handles("ghcr.io"));
/// ```
#[derive(Clone, Debug)]
pub struct EcrLogin {
    client: Option<aws_sdk_ecr::Client>,
}

impl EcrLogin {
    /// A login through the standard AWS configuration chain, in the registry's region.
    pub fn from_environment() -> Self {
        Self { client: None }
    }

    /// A login through `client` (an endpoint override, tests), whatever the registry's region.
    pub fn with_client(client: aws_sdk_ecr::Client) -> Self {
        Self {
            client: Some(client),
        }
    }

    async fn client(&self, region: &str) -> aws_sdk_ecr::Client {
        if let Some(client) = &self.client {
            return client.clone();
        }
        let config = aws_config::defaults(BehaviorVersion::latest())
            .http_client(https_client())
            .region(Region::new(region.to_owned()))
            .load()
            .await;
        aws_sdk_ecr::Client::new(&config)
    }
}

/// The region of an ECR registry host, when `host` is one.
pub fn ecr_region(host: &str) -> Option<&str> {
    let host = host.strip_prefix("https://").unwrap_or(host);
    let host = host.split('/').next()?;
    let (account, rest) = host.split_once('.')?;
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let rest = rest
        .strip_prefix("dkr.ecr.")
        .or_else(|| rest.strip_prefix("dkr.ecr-fips."))?;
    let region = rest
        .strip_suffix(".amazonaws.com")
        .or_else(|| rest.strip_suffix(".amazonaws.com.cn"))?;
    (!region.is_empty() && !region.contains('.')).then_some(region)
}

#[async_trait]
impl RegistryLogin for EcrLogin {
    fn handles(&self, registry: &str) -> bool {
        ecr_region(registry).is_some()
    }

    async fn login(&self, registry: &str) -> Result<Credentials> {
        let region = ecr_region(registry).ok_or_else(|| {
            Error::seam(
                "registry",
                format!("{registry} is not an Amazon ECR registry"),
            )
        })?;
        let client = self.client(region).await;
        let out = ThrottleRetry::default()
            .run(|| client.get_authorization_token().send())
            .await
            .map_err(|e| call_error("ECR GetAuthorizationToken", &e))?;
        let token = out
            .authorization_data()
            .first()
            .and_then(|d| d.authorization_token())
            .ok_or_else(|| {
                Error::seam("registry", "ECR GetAuthorizationToken returned no token")
            })?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(token)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| {
                Error::seam(
                    "registry",
                    "ECR returned a token that is not base64 `user:password`",
                )
            })?;
        let (user, password) = decoded.split_once(':').ok_or_else(|| {
            Error::seam(
                "registry",
                "ECR returned a token that is not `user:password`",
            )
        })?;
        Ok(Credentials::from_origin(
            user,
            password,
            format!("ECR GetAuthorizationToken in {region}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecr_hosts_are_recognised() {
        assert_eq!(
            ecr_region("123456789012.dkr.ecr.us-east-1.amazonaws.com"),
            Some("us-east-1")
        );
        assert_eq!(
            ecr_region("123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com"),
            Some("us-gov-west-1")
        );
        assert_eq!(
            ecr_region("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn"),
            Some("cn-north-1")
        );
        assert_eq!(ecr_region("12345.dkr.ecr.us-east-1.amazonaws.com"), None);
        assert_eq!(ecr_region("127.0.0.1:5000"), None);
        assert_eq!(ecr_region("public.ecr.aws"), None);
    }
}
