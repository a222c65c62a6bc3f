//! The four patch types of the Kubernetes API, as pure functions on JSON objects.
//!
//! - [`json_patch`]: `application/json-patch+json` (RFC 6902).
//! - [`merge_patch`]: `application/merge-patch+json` (RFC 7386).
//! - [`strategic_merge_patch`]: `application/strategic-merge-patch+json`, with the merge keys
//!   of the built-in kinds the simulator serves (see `schema`) and the `$patch`,
//!   `$setElementOrder`, `$retainKeys` and `$deleteFromPrimitiveList` directives.
//! - [`apply`]: `application/apply-patch+yaml` (server-side apply), which reads and writes
//!   `metadata.managedFields` as the real API server does.
//!
//! Every other write records its field ownership with [`record_update`] (or
//! [`record_subresource_update`] for `/status` and `/scale`), so that a later apply sees the
//! same conflicts it would see against a real cluster.

mod apply;
mod fields;
mod json;
mod managed;
mod merge;
mod schema;
mod strategic;

pub(crate) use apply::apply;
pub(crate) use json::json_patch;
pub(crate) use managed::record_update;
pub(crate) use merge::merge_patch;
pub(crate) use strategic::strategic_merge_patch;

/// Why a patch could not be applied; the server maps [`PatchError::Invalid`] to
/// 400 BadRequest, [`PatchError::Unprocessable`] to 422 Invalid and [`PatchError::Conflict`]
/// to 409 Conflict.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PatchError {
    /// The patch document itself is malformed (400).
    #[error("{0}")]
    Invalid(String),
    /// The patch is well formed but cannot be applied to this object (422).
    #[error("{0}")]
    Unprocessable(String),
    /// A server-side apply would take fields other managers own (409).
    #[error("{message}")]
    Conflict {
        /// The message of the Status, in the API server's words.
        message: String,
        /// One entry per conflicting (manager, field), for the Status' `details.causes`.
        conflicts: Vec<FieldConflict>,
    },
}

/// One field of an apply that another manager owns with a different value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FieldConflict {
    /// The name of the manager that owns the field, e.g. `kubectl-client-side-apply`.
    pub(crate) manager: String,
    /// The field, as the API server prints it: `.spec.replicas`,
    /// `.spec.template.spec.containers[name="app"].image`.
    pub(crate) field: String,
    /// The message of the Status cause (`reason: FieldManagerConflict`), e.g.
    /// `conflict with "kubectl-client-side-apply" using apps/v1`.
    pub(crate) message: String,
}

/// Records a write of a subresource (`status`, `scale`) in `after`'s managed fields, like
/// [`record_update`] but on an entry with `subresource` set: a `status` write owns fields
/// under `status` only, a `scale` write fields of the main resource (`spec.replicas`).
pub(crate) fn record_subresource_update(
    before: Option<&serde_json::Value>,
    after: &mut serde_json::Value,
    manager: &str,
    subresource: &str,
    now: &str,
) {
    managed::record_subresource_update(before, after, manager, subresource, now);
}

#[cfg(test)]
impl PatchError {
    /// The human-readable message, as the Status' `message` carries it.
    pub(crate) fn message(&self) -> &str {
        match self {
            Self::Invalid(message) | Self::Unprocessable(message) => message,
            Self::Conflict { message, .. } => message,
        }
    }
}
