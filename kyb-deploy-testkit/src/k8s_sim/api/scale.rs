//! The `scale` subresource: an `autoscaling/v1` Scale view of a Deployment or ReplicaSet.

use serde_json::{Value, json};

use crate::k8s_sim::error::ApiError;
use crate::k8s_sim::selector::LabelSelector;

/// The Scale of `object`.
pub(super) fn of(object: &Value) -> Result<Value, ApiError> {
    let m = &object["metadata"];
    let selector = LabelSelector::from_object(&object["spec"]["selector"])
        .map(|s| s.to_query())
        .unwrap_or_default();
    Ok(json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": m["name"],
            "namespace": m["namespace"],
            "uid": m["uid"],
            "resourceVersion": m["resourceVersion"],
            "creationTimestamp": m["creationTimestamp"],
        },
        "spec": {"replicas": object["spec"]["replicas"].as_i64().unwrap_or(1)},
        "status": {
            "replicas": object["status"]["replicas"].as_i64().unwrap_or(0),
            "selector": selector,
        },
    }))
}

/// `object` with the replicas of `scale`, checking its resourceVersion.
pub(super) fn apply(object: &Value, scale: &Value) -> Result<Value, ApiError> {
    let replicas = scale["spec"]["replicas"].as_i64().unwrap_or(0);
    let mut updated = object.clone();
    updated["spec"]["replicas"] = json!(replicas);
    // The Scale's resourceVersion is the object's: a stale one is a conflict.
    if let Some(rv) = scale["metadata"]["resourceVersion"].as_str() {
        updated["metadata"]["resourceVersion"] = json!(rv);
    }
    Ok(updated)
}
