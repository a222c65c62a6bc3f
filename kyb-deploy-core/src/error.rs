//! The error type of kyb-deploy-core.

use std::path::PathBuf;

/// Everything that can go wrong in kyb-deploy-core.
///
/// Messages are lowercase fragments that name the thing that failed; the cause is kept in
/// the error's source so that it prints once.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A version string is not a valid Docker tag.
    #[error(
        "invalid version {value:?}: {problem}; a version must be a Docker tag: 1 to 128 characters from [A-Za-z0-9_.-], not starting with '.' or '-' (for example v1.2.3 or 3f9c2ab)"
    )]
    InvalidVersion {
        /// The rejected input.
        value: String,
        /// What is wrong with it.
        problem: String,
    },

    /// The configuration could not be loaded or is invalid.
    #[error("invalid configuration: {message}")]
    Config {
        /// What is wrong, naming the key and the file.
        message: String,
    },

    /// The named environment is not defined in the configuration.
    #[error("unknown environment {name:?}; valid environments: {}", valid.join(", "))]
    UnknownEnvironment {
        /// The requested name.
        name: String,
        /// The environments the configuration defines.
        valid: Vec<String>,
    },

    /// A git command failed or git is not usable.
    #[error("git {what} failed in {dir}: {message}")]
    Git {
        /// What was attempted.
        what: String,
        /// The repository directory.
        dir: PathBuf,
        /// What git said.
        message: String,
    },

    /// A guard of the environment refused the deployment.
    #[error("{environment} refuses this deployment: {reason}")]
    Guard {
        /// The guarded environment.
        environment: String,
        /// Why, and how to proceed.
        reason: String,
    },

    /// Prerequisites are missing.
    #[error("{} prerequisite(s) missing for {environment}: {}", missing.len(), missing.join("; "))]
    Prerequisites {
        /// The environment that was checked.
        environment: String,
        /// Each missing piece with its fix.
        missing: Vec<String>,
    },

    /// Another deployment holds the environment's lock.
    #[error("environment {environment} is locked by another deployment ({holder})")]
    Locked {
        /// The locked environment.
        environment: String,
        /// Who holds the lock, as far as known.
        holder: String,
    },

    /// Reading or writing the deployment ledger failed.
    #[error("deployment ledger {path} failed: {what}")]
    Ledger {
        /// The ledger file.
        path: PathBuf,
        /// What was attempted.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },

    /// An I/O operation on a file failed.
    #[error("failed to {what} {path}")]
    Io {
        /// What was attempted.
        what: String,
        /// The file involved.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },

    /// An HTTP request failed.
    #[error("{what} failed")]
    Http {
        /// What was attempted, naming the URL.
        what: String,
        /// The cause (the HTTP client's error).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// A deployment target reported an error.
    #[error("{target} target: {message}")]
    Target {
        /// The target kind or name.
        target: String,
        /// What failed.
        message: String,
        /// The cause, when there is one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },

    /// A write to the platform failed in a way that may still have been applied: no answer,
    /// a server error, a dropped connection, or a failed check of whether it applied. The
    /// pipeline then treats the environment as changed and finds out from the platform.
    #[error("{target} target: {message}; the change may have been applied")]
    MaybeApplied {
        /// The target kind or name.
        target: String,
        /// What failed.
        message: String,
        /// The cause, when there is one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },

    /// A pipeline seam (builder, registry, scanner, test runner, notifier) failed.
    #[error("{seam}: {message}")]
    Seam {
        /// Which seam failed.
        seam: &'static str,
        /// What failed.
        message: String,
    },

    /// The operation was cancelled.
    #[error("cancelled")]
    Cancelled,

    /// The operation ran out of time.
    #[error("{what} timed out after {}", humantime::format_duration(*after))]
    TimedOut {
        /// What timed out.
        what: String,
        /// The limit that was hit.
        after: std::time::Duration,
    },
}

impl Error {
    /// Convenience constructor for target errors without a source.
    pub fn target(target: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Target {
            target: target.into(),
            message: message.into(),
            source: None,
        }
    }

    /// A write that may have been applied although it failed (see [`Error::MaybeApplied`]).
    pub fn maybe_applied(
        target: impl Into<String>,
        message: impl Into<String>,
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::MaybeApplied {
            target: target.into(),
            message: message.into(),
            source,
        }
    }

    /// Whether the failed operation may nevertheless have changed the platform.
    pub fn may_have_been_applied(&self) -> bool {
        matches!(self, Self::MaybeApplied { .. })
    }

    /// Convenience constructor for seam errors.
    pub fn seam(seam: &'static str, message: impl Into<String>) -> Self {
        Self::Seam {
            seam,
            message: message.into(),
        }
    }

    /// Whether the error comes from bad input (usage or configuration) rather than from a
    /// failed operation. The CLI maps these to its usage exit code.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Self::InvalidVersion { .. } | Self::Config { .. } | Self::UnknownEnvironment { .. }
        )
    }

    /// The error and its causes on one line (`a: b: c`), with credentials redacted: the
    /// form in which an error goes into reports, records, warnings and notifications
    /// (`Display` alone shows the error without its causes).
    pub fn chain(&self) -> String {
        chain(self)
    }

    /// Any error and its causes as one line, redacted like [`Error::chain`]: for a
    /// backend's own error that becomes a configuration message.
    pub fn chain_of(error: &(dyn std::error::Error + 'static)) -> String {
        chain(error)
    }
}

/// An error and its causes as one line: `a: b: c`. A cause whose words are already in the
/// line is not repeated (some SDK errors print their source in their own message too).
pub(crate) fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = cause.source();
    }
    // A peer may echo what it was sent (an `Authorization` header, a signed URL): this text
    // goes into the report, the ledger and notifications, so credentials never survive it.
    crate::redact::redact_text(&text)
}

/// Result with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    /// An error that prints its cause in its own message, as some SDK errors do.
    #[derive(Debug, thiserror::Error)]
    #[error("failed to read config from \"/x\": {0}")]
    struct Echoing(#[source] std::io::Error);

    #[test]
    fn a_chain_names_each_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let outer = Error::Target {
            target: "kubernetes".into(),
            message: "cannot start".into(),
            source: Some(Box::new(Echoing(io))),
        };
        assert_eq!(
            outer.chain(),
            "kubernetes target: cannot start: failed to read config from \"/x\": no such file"
        );
    }
}
