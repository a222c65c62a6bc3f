//! Who the client is and what it may do: the RBAC faults' 403s, SelfSubjectAccessReview
//! (`kubectl auth can-i`) and SelfSubjectReview (`kubectl auth whoami`).

use axum::http::Method;
use serde_json::{Value, json};

use super::Query;
use crate::k8s_sim::cluster::Cluster;
use crate::k8s_sim::error::ApiError;
use crate::k8s_sim::route::Target;

/// The user behind the simulator's token.
pub(crate) const USER: &str = "kyb-sim";

/// The Kubernetes verb of a request (`get`, `list`, `watch`, `create`, ...).
pub(crate) fn verb(method: &Method, t: &Target, query: &Query) -> &'static str {
    let watch = query.get("watch").is_some_and(|v| v == "true" || v == "1");
    match (method.as_str(), t.name.is_some()) {
        ("GET", true) => "get",
        ("GET", false) if watch => "watch",
        ("GET", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => "get",
    }
}

/// The 403 of a request the RBAC faults forbid.
pub(crate) fn check(
    cluster: &Cluster,
    method: &Method,
    t: &Target,
    query: &Query,
) -> Result<(), ApiError> {
    let verb = verb(method, t, query);
    let namespace = t.namespace.as_deref().unwrap_or_default();
    if cluster.faults().forbids(verb, t.resource.plural, namespace) {
        return Err(ApiError::forbidden(
            t.resource,
            t.name.as_deref(),
            verb,
            namespace,
            USER,
        ));
    }
    Ok(())
}

/// A SelfSubjectAccessReview: `status.allowed` for the review's resource attributes.
pub(crate) fn access_review(cluster: &Cluster, body: &Value) -> Result<Value, ApiError> {
    let attributes = &body["spec"]["resourceAttributes"];
    if !attributes.is_object() && body["spec"]["nonResourceAttributes"].is_null() {
        return Err(ApiError::bad_request(
            "SelfSubjectAccessReview: spec.resourceAttributes or spec.nonResourceAttributes is required",
        ));
    }
    let text = |key: &str| attributes[key].as_str().unwrap_or_default();
    let allowed = !cluster
        .faults()
        .forbids(text("verb"), text("resource"), text("namespace"));
    let mut review = body.clone();
    review["apiVersion"] = json!("authorization.k8s.io/v1");
    review["kind"] = json!("SelfSubjectAccessReview");
    review["status"] = if allowed {
        json!({"allowed": true, "reason": "RBAC: allowed by ClusterRoleBinding \"cluster-admin\" of ClusterRole \"cluster-admin\" to Group \"system:masters\""})
    } else {
        // RBAC denies without a reason, so kubectl prints a bare "no".
        json!({"allowed": false})
    };
    Ok(review)
}

/// A SelfSubjectReview: the user the token stands for.
pub(crate) fn who_am_i() -> Value {
    json!({
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "SelfSubjectReview",
        "metadata": {},
        "status": {"userInfo": {
            "username": USER,
            "groups": ["system:masters", "system:authenticated"],
        }},
    })
}

/// The body of a review, JSON or the protobuf kubectl sends (`k8s\0` and an `Unknown`
/// envelope around the object), as the JSON form of its `spec`.
pub(crate) fn review_body(body: &[u8]) -> Result<Value, ApiError> {
    if let Some(envelope) = body.strip_prefix(b"k8s\0") {
        return protobuf::access_review(envelope).ok_or_else(|| {
            ApiError::bad_request("the protobuf body is not a SelfSubjectAccessReview")
        });
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the request body is not JSON: {e}")))
}

/// Just enough of the protobuf wire format to read a SelfSubjectAccessReview.
mod protobuf {
    use serde_json::{Map, Value, json};

    /// The fields of one message: number and payload (varints as their value's bytes
    /// are not needed here, so only length-delimited payloads are kept).
    fn fields(mut bytes: &[u8]) -> Option<Vec<(u64, &[u8])>> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            let (key, rest) = varint(bytes)?;
            bytes = rest;
            let (number, wire) = (key >> 3, key & 7);
            match wire {
                0 => bytes = varint(bytes)?.1,
                1 => bytes = bytes.get(8..)?,
                5 => bytes = bytes.get(4..)?,
                2 => {
                    let (len, rest) = varint(bytes)?;
                    let len = usize::try_from(len).ok()?;
                    out.push((number, rest.get(..len)?));
                    bytes = rest.get(len..)?;
                }
                _ => return None,
            }
        }
        Some(out)
    }

    fn varint(bytes: &[u8]) -> Option<(u64, &[u8])> {
        let mut value = 0_u64;
        for (i, byte) in bytes.iter().enumerate().take(10) {
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Some((value, &bytes[i + 1..]));
            }
        }
        None
    }

    fn field<'a>(message: &[(u64, &'a [u8])], number: u64) -> Option<&'a [u8]> {
        message.iter().find(|(n, _)| *n == number).map(|(_, b)| *b)
    }

    /// `Unknown{raw: SelfSubjectAccessReview{spec: {resourceAttributes, nonResourceAttributes}}}`
    /// as JSON.
    pub(super) fn access_review(envelope: &[u8]) -> Option<Value> {
        let unknown = fields(envelope)?;
        let review = fields(field(&unknown, 2)?)?;
        let spec = fields(field(&review, 2)?)?;
        let strings = |message: &[u8], names: &[&str]| -> Option<Value> {
            let parsed = fields(message)?;
            let mut map = Map::new();
            for (i, name) in names.iter().enumerate() {
                if let Some(bytes) = field(&parsed, i as u64 + 1) {
                    map.insert((*name).to_owned(), json!(String::from_utf8_lossy(bytes)));
                }
            }
            Some(Value::Object(map))
        };
        let mut out = json!({"spec": {}});
        if let Some(attributes) = field(&spec, 1) {
            out["spec"]["resourceAttributes"] = strings(
                attributes,
                &[
                    "namespace",
                    "verb",
                    "group",
                    "version",
                    "resource",
                    "subresource",
                    "name",
                ],
            )?;
        }
        if let Some(attributes) = field(&spec, 2) {
            out["spec"]["nonResourceAttributes"] = strings(attributes, &["path", "verb"])?;
        }
        Some(out)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn message(fields: &[(u8, &[u8])]) -> Vec<u8> {
            let mut out = Vec::new();
            for (number, payload) in fields {
                out.push((number << 3) | 2);
                out.push(u8::try_from(payload.len()).unwrap());
                out.extend_from_slice(payload);
            }
            out
        }

        #[test]
        fn a_review_in_protobuf_reads_as_its_json() {
            let attributes = message(&[(1, b"default"), (2, b"list"), (5, b"secrets")]);
            let spec = message(&[(1, &attributes)]);
            let review = message(&[(1, b""), (2, &spec)]);
            let unknown = message(&[(1, b"type"), (2, &review)]);
            let json = access_review(&unknown).unwrap();
            assert_eq!(
                json["spec"]["resourceAttributes"],
                serde_json::json!({"namespace": "default", "verb": "list", "resource": "secrets"})
            );
        }
    }
}
