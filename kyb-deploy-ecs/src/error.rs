//! The ECS crate's own error types. At the crate's edge each becomes a core
//! [`Error`](kyb_deploy_core::Error): a task definition problem is a configuration error.

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
