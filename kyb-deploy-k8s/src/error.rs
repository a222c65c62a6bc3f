//! The Kubernetes crate's errors. At the crate's edge each becomes a core
//! [`Error`](kyb_deploy_core::Error): a kubeconfig that cannot be used is a configuration
//! error, a failed API call a target error whose source is the `kube::Error`.

use std::path::PathBuf;

/// What went wrong talking to a cluster. Messages name the thing and the fix; the cause is
/// the `#[source]`, never pasted into the message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No kubeconfig anywhere and not running in a pod.
    #[error(
        "no Kubernetes credentials found: KUBECONFIG is unset, ~/.kube/config does not exist and this is not a pod; set kubernetes.kubeconfig or KUBECONFIG"
    )]
    NoCredentials,
    /// The kubeconfig file could not be read or parsed.
    #[error("failed to read kubeconfig {path}")]
    Kubeconfig {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// The context asked for is not in the kubeconfig.
    #[error(
        "kubeconfig has no context {context:?}; its contexts: {available}; fix kubernetes.context"
    )]
    UnknownContext {
        /// The context asked for.
        context: String,
        /// The contexts it has, comma-separated.
        available: String,
    },
    /// The kubeconfig's context cannot make a client (a missing cluster or user entry, a
    /// bad certificate).
    #[error("cannot use kubeconfig context {context:?}")]
    Context {
        /// The context.
        context: String,
        /// Why.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// The in-cluster service account cannot make a client.
    #[error("cannot use the pod's service account")]
    InCluster(#[source] kube::config::InClusterError),
    /// The HTTP client could not be built from the configuration.
    #[error("cannot build a Kubernetes client")]
    Client(#[source] kube::Error),
    /// Another field manager owns fields the manifest changes.
    #[error(
        "{object}: {message}; another field manager owns these fields: stop it from setting them, or set kubernetes.force_conflicts = true to take them over"
    )]
    Conflict {
        /// The object (`Deployment kyb/web`).
        object: String,
        /// The API server's message, naming the managers and fields.
        message: String,
    },
    /// A manifest of a kind kyb-deploy does not apply.
    #[error("{object}: kind of apiVersion {api_version:?} is not one kyb-deploy applies")]
    UnknownKind {
        /// The object.
        object: String,
        /// Its `apiVersion`.
        api_version: String,
    },
    /// Every watch of a rollout ended although the client still runs.
    #[error("the watches of the rollout ended before it did")]
    WatchEnded,
    /// The operation was cancelled.
    #[error("cancelled")]
    Cancelled,
    /// An API call failed.
    #[error("failed to {action}{}", hint(&.source.0))]
    Api {
        /// What was being done: `apply Deployment kyb/kyb-api`.
        action: String,
        /// The client's error.
        #[source]
        source: Box<ApiCause>,
    },
}

/// The cause of a failed API call: the client's error, shown as the API server's answer
/// (message, reason, code) rather than the client's `Debug` of it.
#[derive(Debug)]
pub struct ApiCause(pub kube::Error);

impl std::fmt::Display for ApiCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            kube::Error::Api(status) => {
                write!(f, "{} ({}, {})", status.message, status.reason, status.code)
            }
            other => write!(f, "{other}"),
        }
    }
}

impl std::error::Error for ApiCause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.0 {
            // The answer is all there is to say; kube's own source repeats it.
            kube::Error::Api(_) => None,
            other => other.source(),
        }
    }
}

/// A hint for the kinds of API failures whose fix kyb-deploy knows.
fn hint(source: &kube::Error) -> &'static str {
    match source {
        kube::Error::Api(status) if status.code == 401 => {
            "; the cluster refused the credentials: refresh the kubeconfig's token or certificate"
        }
        kube::Error::Api(status) if status.code == 403 => {
            "; the identity lacks this permission: grant it (docs/kubernetes.md, RBAC)"
        }
        kube::Error::Api(status)
            if status.code == 404
                && status
                    .details
                    .as_ref()
                    .is_some_and(|d| d.kind == "namespaces") =>
        {
            "; the namespace does not exist: create it, or set kubernetes.create_namespace = true (the default) to let kyb-deploy apply it"
        }
        kube::Error::HyperError(_) | kube::Error::Service(_) => {
            "; the API server is unreachable: check the kubeconfig's server address and the network"
        }
        _ => "",
    }
}

impl Error {
    /// Whether a failed write may nevertheless have been applied: no answer came (a
    /// dropped connection, a timeout), or the API server answered with a server error,
    /// which it may send after storing the object.
    pub fn may_have_been_applied(&self) -> bool {
        match self {
            Self::Api { source, .. } => match &source.0 {
                // Code 0: the client read a JSON error body that was not a Kubernetes
                // `Status` (a proxy's) and lost the HTTP status: it may have been a 5xx.
                kube::Error::Api(status) => status.code >= 500 || status.code == 0,
                // Failures in sending or reading: the request may have reached the server.
                kube::Error::HyperError(_)
                | kube::Error::Service(_)
                | kube::Error::ReadEvents(_)
                | kube::Error::SerdeError(_)
                | kube::Error::FromUtf8(_)
                | kube::Error::LinesCodecMaxLineLengthExceeded => true,
                // Failures before sending (credentials, building the request): nothing sent.
                _ => false,
            },
            _ => false,
        }
    }

    /// The error of an API call doing `action`.
    pub(crate) fn api(action: impl Into<String>, source: kube::Error) -> Self {
        Self::Api {
            action: action.into(),
            source: Box::new(ApiCause(source)),
        }
    }
}

impl From<Error> for kyb_deploy_core::Error {
    fn from(error: Error) -> Self {
        match error {
            Error::Cancelled => Self::Cancelled,
            // The message is this error's; its cause follows once, as the source.
            Error::Api { action, source } => Self::Target {
                target: "kubernetes".to_owned(),
                message: format!("failed to {action}{}", hint(&source.0)),
                source: Some(source),
            },
            Error::Conflict { .. } | Error::WatchEnded | Error::UnknownKind { .. } => {
                Self::Target {
                    target: "kubernetes".to_owned(),
                    message: error.to_string(),
                    source: None,
                }
            }
            other => Self::Config {
                message: kyb_deploy_core::Error::chain_of(&other),
            },
        }
    }
}
