//! The ECS crate's own error types. At the crate's edge each becomes a core
//! [`Error`](kyb_deploy_core::Error): a task definition problem is a configuration error, a
//! failed AWS call a target error whose source is the [`CallError`].

use aws_sdk_ecs::config::http::HttpResponse;
use aws_sdk_ecs::error::{ProvideErrorMetadata, SdkError};

use crate::client::FailureClass;

/// A task definition (a template, or the one the service runs) that kyb-deploy cannot
/// deploy. The message names the file or family, and the fix.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TaskDefinitionError {
    /// The template is not a task definition kyb-deploy can register (JSON syntax, a field
    /// of the wrong type, a field missing): where, and what.
    #[error("{0}")]
    Template(String),
    /// No container of the task definition is the service's: `ecs.container` names none of
    /// them, or several could be.
    #[error("{0}")]
    Container(String),
}

impl From<TaskDefinitionError> for kyb_deploy_core::Error {
    fn from(error: TaskDefinitionError) -> Self {
        Self::Config {
            message: error.to_string(),
        }
    }
}

/// A failed ECS or ECR call: which operation, what kind of failure (which decides the
/// fix), AWS's error code and message when it answered. It displays as
/// `<code>: <message>; <fix>`, and never as the SDK's debug form (which would print the
/// request and its headers).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{answer}{}", fix_suffix(*.class, .code.as_deref()))]
#[non_exhaustive]
pub struct CallError {
    /// The operation, like `DescribeServices` or `ECR GetAuthorizationToken`.
    pub operation: String,
    /// What kind of failure it was.
    pub class: FailureClass,
    /// AWS's error code, when AWS answered with one.
    pub code: Option<String>,
    /// AWS's answer (`<code>: <message>`), or the cause of a failure to reach AWS.
    pub answer: String,
}

impl CallError {
    /// The error of a failed call of `operation`.
    pub(crate) fn of<E>(operation: &str, e: &SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        Self {
            operation: operation.to_owned(),
            class: FailureClass::of(e),
            code: e.code().map(str::to_owned),
            answer: answer(e),
        }
    }

    /// What to do about it, when kyb-deploy knows better than AWS's own message.
    #[must_use]
    pub fn fix(&self) -> Option<&'static str> {
        self.class.fix(self.code.as_deref())
    }
}

fn fix_suffix(class: FailureClass, code: Option<&str>) -> String {
    class
        .fix(code)
        .map_or_else(String::new, |fix| format!("; {fix}"))
}

/// AWS's error code and message, or the cause of a failure to reach AWS: one line of the
/// causes' messages, never the SDK's debug form of them (which holds the request, its
/// headers and the connector's internals).
pub(crate) fn answer<E, R>(e: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    match (e.code(), e.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_owned(),
        // The SDK's own words for this run to a paragraph about its service model; the
        // fix that follows says what to do.
        _ if crate::client::mentions_credentials(e) => "no AWS credentials found".to_owned(),
        _ => causes(e),
    }
}

/// The messages of `e` and its sources, joined with ": ", each once (a cause whose message
/// its wrapper already repeats is left out).
pub(crate) fn causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(e);
    while let Some(error) = next {
        let text = error.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = error.source();
    }
    parts.join(": ")
}

impl From<CallError> for kyb_deploy_core::Error {
    /// A target error naming the operation, with the call's error as its source.
    fn from(error: CallError) -> Self {
        Self::Target {
            target: "ecs".into(),
            message: error.operation.clone(),
            source: Some(Box::new(error)),
        }
    }
}
