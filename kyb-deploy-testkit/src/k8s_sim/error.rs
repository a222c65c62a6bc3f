//! API errors as Kubernetes `Status` objects, with Kubernetes' reasons, codes and words.

use serde_json::{Value, json};

use super::resources::ResourceType;

/// A failed request: its HTTP code, `reason`, message and details.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ApiError {
    /// The HTTP status code.
    pub(crate) code: u16,
    /// The `reason` of the Status (`NotFound`, `AlreadyExists`, `Conflict`...).
    pub(crate) reason: &'static str,
    /// The message, in Kubernetes' words.
    pub(crate) message: String,
    /// `details` of the Status, when there are any.
    pub(crate) details: Option<Value>,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    fn with_details(mut self, r: &ResourceType, name: &str) -> Self {
        let mut details = json!({"name": name, "kind": r.plural});
        if !r.group.is_empty() {
            details["group"] = json!(r.group);
        }
        self.details = Some(details);
        self
    }

    /// 404: the object does not exist.
    pub(crate) fn not_found(r: &ResourceType, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", r.qualified()),
        )
        .with_details(r, name)
    }

    /// 404: the path names nothing served.
    pub(crate) fn no_route() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    }

    /// 409: an object of that name exists.
    pub(crate) fn already_exists(r: &ResourceType, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", r.qualified()),
        )
        .with_details(r, name)
    }

    /// 409: a write based on a stale resourceVersion.
    pub(crate) fn conflict(r: &ResourceType, name: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                r.qualified()
            ),
        )
        .with_details(r, name)
    }

    /// 409: a delete whose precondition (`uid`, `resourceVersion`) the object does not meet.
    pub(crate) fn precondition_failed(
        r: &ResourceType,
        name: &str,
        field: &str,
        wanted: &str,
        found: &str,
    ) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": Precondition failed: {field} in precondition: {wanted}, {field} in object meta: {found}",
                r.qualified()
            ),
        )
        .with_details(r, name)
    }

    /// 409: a server-side apply conflict (message from the apply logic).
    pub(crate) fn apply_conflict(
        r: &ResourceType,
        name: &str,
        message: String,
        causes: Vec<Value>,
    ) -> Self {
        let mut e = Self::new(409, "Conflict", message).with_details(r, name);
        if let Some(d) = e.details.as_mut() {
            d["causes"] = Value::Array(causes);
        }
        e
    }

    /// 422: the object is invalid.
    pub(crate) fn invalid(r: &ResourceType, name: &str, problem: impl Into<String>) -> Self {
        let kind = if r.group.is_empty() {
            r.kind.to_owned()
        } else {
            format!("{}.{}", r.kind, r.group)
        };
        Self::new(
            422,
            "Invalid",
            format!("{kind} \"{name}\" is invalid: {}", problem.into()),
        )
        .with_details(r, name)
    }

    /// 422: the object is invalid, with a cause per field (`details.kind` is the Kind, as
    /// the API server's field validation reports it).
    pub(crate) fn invalid_object(
        r: &ResourceType,
        name: &str,
        problem: String,
        causes: Vec<Value>,
    ) -> Self {
        let mut e = Self::invalid(r, name, problem);
        let mut details = json!({"name": name, "kind": r.kind, "causes": causes});
        if !r.group.is_empty() {
            details["group"] = json!(r.group);
        }
        e.details = Some(details);
        e
    }

    /// 403: RBAC does not allow the request, in the API server's words.
    pub(crate) fn forbidden(
        r: &ResourceType,
        name: Option<&str>,
        verb: &str,
        namespace: &str,
        user: &str,
    ) -> Self {
        let what = match name {
            Some(name) => format!("{} \"{name}\"", r.qualified()),
            None => r.qualified(),
        };
        let scope = if namespace.is_empty() {
            "at the cluster scope".to_owned()
        } else {
            format!("in the namespace \"{namespace}\"")
        };
        let mut e = Self::new(
            403,
            "Forbidden",
            format!(
                "{what} is forbidden: User \"{user}\" cannot {verb} resource \"{}\" in API group \"{}\" {scope}",
                r.plural, r.group
            ),
        );
        let mut details = json!({"kind": r.plural});
        if let Some(name) = name {
            details["name"] = json!(name);
        }
        if !r.group.is_empty() {
            details["group"] = json!(r.group);
        }
        e.details = Some(details);
        e
    }

    /// 400: a malformed request.
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 401: no or a wrong bearer token.
    pub(crate) fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    /// 405: the verb is not supported there.
    pub(crate) fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", message)
    }

    /// 410: a watch or list from a resourceVersion older than the history kept.
    pub(crate) fn gone(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    /// 415: a content type the simulator does not read.
    pub(crate) fn unsupported_media_type(content_type: &str) -> Self {
        let hint = if content_type.contains("protobuf") {
            " (kubectl's generator commands such as `kubectl create configmap` send protobuf, which the simulator does not decode: write the object as a manifest and use `kubectl create -f` or `kubectl apply -f`)"
        } else {
            ""
        };
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/merge-patch+json, application/json-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml (got {content_type:?}){hint}"
            ),
        )
    }

    /// 500: an injected server error.
    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", message)
    }

    /// The Status object.
    pub(crate) fn status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::k8s_sim::resources::kind;

    #[test]
    fn statuses_read_as_kubernetes_writes_them() {
        let e = ApiError::not_found(kind("Deployment"), "web");
        assert_eq!(e.message, "deployments.apps \"web\" not found");
        let s = e.status();
        assert_eq!(s["reason"], "NotFound");
        assert_eq!(s["code"], 404);
        assert_eq!(s["details"]["group"], "apps");
        assert_eq!(
            ApiError::not_found(kind("Pod"), "p").message,
            "pods \"p\" not found"
        );
        assert_eq!(
            ApiError::invalid(
                kind("Deployment"),
                "web",
                "spec.replicas: Invalid value: -1"
            )
            .message,
            "Deployment.apps \"web\" is invalid: spec.replicas: Invalid value: -1"
        );
        assert_eq!(
            ApiError::invalid(kind("Pod"), "p", "x").message,
            "Pod \"p\" is invalid: x"
        );
    }
}
