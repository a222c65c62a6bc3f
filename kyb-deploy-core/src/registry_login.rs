//! Registry credentials and the seam through which a platform issues them
//! ([`RegistryLogin`], like Amazon ECR's GetAuthorizationToken). Looking credentials up the
//! way `docker push` does is the Docker crate's job.

use std::fmt;

use crate::error::Result;

/// A user name and password (or token) for a registry.
///
/// Neither `Debug` nor `Display` shows the password:
///
/// ```
/// use kyb_deploy_core::Credentials;
///
/// let credentials = Credentials::new("ci", "s3cret");
/// assert!(!format!("{credentials:?} {credentials}").contains("s3cret"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    username: String,
    password: String,
    origin: String,
}

impl Credentials {
    /// Credentials given explicitly.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self::from_origin(username, password, "explicit credentials")
    }

    /// Credentials issued by `origin` (a platform login such as ECR's
    /// GetAuthorizationToken), which messages name.
    pub fn from_origin(
        username: impl Into<String>,
        password: impl Into<String>,
        origin: impl Into<String>,
    ) -> Self {
        Self {
            username: username.into(),
            password: password.into(),
            origin: origin.into(),
        }
    }

    /// The user name.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// Where the credentials were found (an environment variable, the Docker config file, a
    /// credential helper), for messages.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The password or token, for the registry client that sends it. Never print it.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// Whether the secret is an identity (refresh) token rather than a password, as Docker
    /// marks it with the user name `<token>`.
    pub fn is_identity_token(&self) -> bool {
        self.username == "<token>"
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"***")
            .field("origin", &self.origin)
            .finish()
    }
}

impl fmt::Display for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "user {} ({})", self.username, self.origin)
    }
}

/// Short-lived registry credentials a platform issues, like Amazon ECR's
/// GetAuthorizationToken. The Docker image pipeline's credential source asks its logins
/// after explicit settings and before the Docker config file.
#[async_trait::async_trait]
pub trait RegistryLogin: Send + Sync + fmt::Debug {
    /// Whether this login issues credentials for `registry` (a host like
    /// `123456789012.dkr.ecr.us-east-1.amazonaws.com`).
    fn handles(&self, registry: &str) -> bool;

    /// Fresh credentials for `registry`. An error says why the platform refused them.
    async fn login(&self, registry: &str) -> Result<Credentials>;
}
