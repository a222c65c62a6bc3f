//! The CLI's errors: what stops a command before it produces a result, with its exit code
//! and, where one helps, a hint.

use std::path::PathBuf;

use kyb_deploy_core::Error as CoreError;
use kyb_deploy_core::config::TargetKind;

use crate::exit_codes::ExitCodes;

/// Why a command stopped. Failed deployments are not errors: they are outcomes in a report.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// An error of kyb-deploy-core (configuration, version, ledger...).
    #[error(transparent)]
    Core(#[from] CoreError),

    /// The configuration file does not exist.
    #[error("config file {} not found", path.display())]
    ConfigNotFound {
        /// The path looked at.
        path: PathBuf,
    },

    /// The environment's target could not be created.
    #[error("{error}")]
    Target {
        /// The environment's target kind.
        kind: TargetKind,
        /// Why. Its causes are printed by [`CliError::causes`].
        error: CoreError,
    },

    /// Bad input that clap cannot see (a missing expected version...).
    #[error("{message}")]
    Usage {
        /// What is wrong and how to fix it.
        message: String,
    },

    /// The user answered no to the confirmation prompt.
    #[error("{action} was not confirmed; nothing was changed")]
    NotConfirmed {
        /// What was asked (`deployment of v2 to production`).
        action: String,
    },

    /// Reading the answer to the confirmation prompt failed.
    #[error("failed to read the answer to the confirmation prompt")]
    Prompt(#[source] std::io::Error),

    /// Interrupted before anything started.
    #[error("interrupted; nothing was changed")]
    Interrupted,

    /// Writing the result failed.
    #[error("failed to write to standard output")]
    Output(#[source] std::io::Error),

    /// The Docker engine, needed to build the image, cannot be reached.
    #[error("the image cannot be built without the Docker engine")]
    Engine(#[source] CoreError),

    /// The async runtime could not start.
    #[error("failed to start the async runtime")]
    Runtime(#[source] std::io::Error),
}

impl CliError {
    /// The documented exit code of this error.
    pub(crate) fn exit_code(&self) -> i32 {
        match self {
            Self::Core(e) => core_exit_code(e),
            Self::ConfigNotFound { .. } | Self::Usage { .. } => ExitCodes::USAGE,
            Self::Target { error, .. } if error.is_usage() => ExitCodes::USAGE,
            Self::Target { .. } | Self::NotConfirmed { .. } | Self::Engine(_) => {
                ExitCodes::FAILED_BEFORE_DEPLOY
            }
            Self::Interrupted => ExitCodes::INTERRUPTED,
            Self::Prompt(_) | Self::Output(_) | Self::Runtime(_) => ExitCodes::INTERNAL_ERROR,
        }
    }

    /// The causes of the error, outermost first, for `caused by:` lines.
    pub(crate) fn causes(&self) -> Vec<String> {
        let mut causes = Vec::new();
        let mut next = match self {
            Self::Target { error, .. } => std::error::Error::source(error),
            other => std::error::Error::source(other),
        };
        while let Some(cause) = next {
            causes.push(cause.to_string());
            next = cause.source();
        }
        causes
    }

    /// The error and its causes on one line (`a: b: c`), for a message that has one line.
    pub(crate) fn chain(&self) -> String {
        std::iter::once(self.to_string())
            .chain(self.causes())
            .collect::<Vec<_>>()
            .join(": ")
    }

    /// A suggestion that helps the user past this error, when there is one.
    pub(crate) fn hint(&self) -> Option<String> {
        match self {
            Self::Core(CoreError::UnknownEnvironment { name, .. }) => Some(format!(
                "pick one of the environments above, or define [environments.{name}] in the configuration file"
            )),
            Self::ConfigNotFound { .. } => Some(
                "kyb-deploy reads kyb-deploy.toml in the current directory; create it (docs/configuration.md describes every key), or point --config PATH or KYB_DEPLOY_CONFIG at the file".to_owned(),
            ),
            Self::Engine(_) => Some(
                "start the Docker engine (on Debian: scripts/setup.sh) or set DOCKER_HOST; `kyb-deploy plan` works without it".to_owned(),
            ),
            Self::Core(CoreError::Locked { environment, .. }) => Some(format!(
                "wait for the other deployment to finish, or pass --wait-for-lock DURATION to deploy; a killed holder's lock is released when its process exits (state backend file) or expires after environments.{environment}.state.lock_ttl (shared backends); `kyb-deploy unlock -e {environment}` breaks a shared lock whose holder you know is gone"
            )),
            _ => None,
        }
    }
}

/// The exit code of an error of kyb-deploy-core.
pub(crate) fn core_exit_code(error: &CoreError) -> i32 {
    match error {
        e if e.is_usage() => ExitCodes::USAGE,
        CoreError::Cancelled => ExitCodes::INTERRUPTED,
        CoreError::TimedOut { .. } => ExitCodes::TIMED_OUT,
        CoreError::Guard { .. }
        | CoreError::Prerequisites { .. }
        | CoreError::Locked { .. }
        | CoreError::Git { .. }
        | CoreError::Target { .. } => ExitCodes::FAILED_BEFORE_DEPLOY,
        _ => ExitCodes::INTERNAL_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_errors_of_core_exit_2_and_target_errors_exit_3() {
        let bad_version = CoreError::InvalidVersion {
            value: "x;y".into(),
            problem: "p".into(),
        };
        assert_eq!(CliError::from(bad_version).exit_code(), 2);
        let target = CliError::Target {
            kind: TargetKind::new("ecs"),
            error: CoreError::target("ecs", "not available"),
        };
        assert_eq!(target.exit_code(), 3);
        assert_eq!(CliError::Interrupted.exit_code(), 130);
    }

    #[test]
    fn causes_follow_the_source_chain_once() {
        let ledger = CoreError::Ledger {
            path: "ledger.jsonl".into(),
            what: "read".into(),
            source: std::io::Error::new(std::io::ErrorKind::PermissionDenied, "permission denied"),
        };
        let err = CliError::from(ledger);
        assert_eq!(
            err.to_string(),
            "deployment ledger ledger.jsonl failed: read"
        );
        assert_eq!(err.causes(), ["permission denied"]);
        assert_eq!(err.exit_code(), 1);
    }
}
