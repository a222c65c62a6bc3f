//! The plan: what applying the manifests would change, field by field, from the live
//! objects and the API server's dry run of the apply (its defaults and merge included), as
//! a pure function so that every rule has a test.

use kyb_deploy_core::PlannedChange;
use serde_json::Value;

/// Metadata the server manages: never a change the user makes.
const SERVER_METADATA: [&str; 8] = [
    "resourceVersion",
    "generation",
    "managedFields",
    "uid",
    "creationTimestamp",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

/// Annotations controllers write on the objects kyb-deploy applies.
const CONTROLLER_ANNOTATIONS: [&str; 1] = ["deployment.kubernetes.io/revision"];

/// What changes from `live` (`None`: the object does not exist yet) to `preview`, the dry
/// run's answer, as changes of `resource` (`Deployment kyb/web`). Status and server-managed
/// metadata are left out; a Secret's values are never shown, only that they change.
#[must_use]
pub fn object_changes(resource: &str, live: Option<&Value>, preview: &Value) -> Vec<PlannedChange> {
    let Some(live) = live else {
        return vec![PlannedChange {
            resource: resource.to_owned(),
            field: "(object)".to_owned(),
            from: None,
            to: Some("created".to_owned()),
        }];
    };
    let secret = preview["kind"] == "Secret";
    let mut changes = Vec::new();
    walk(
        &comparable(live),
        &comparable(preview),
        String::new(),
        &mut |field, from, to| {
            let hide = secret
                && ["data", "stringData"]
                    .iter()
                    .any(|f| field == *f || field.starts_with(&format!("{f}.")));
            let shown =
                |v: Option<&Value>| v.map(|v| if hide { "(hidden)".to_owned() } else { text(v) });
            changes.push(PlannedChange {
                resource: resource.to_owned(),
                field,
                from: shown(from),
                to: shown(to),
            });
        },
    );
    changes
}

/// The object without status and server-managed metadata.
fn comparable(object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(map) = object.as_object_mut() {
        map.remove("status");
    }
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        for key in SERVER_METADATA {
            meta.remove(key);
        }
        if let Some(annotations) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
            for key in CONTROLLER_ANNOTATIONS {
                annotations.remove(key);
            }
            if annotations.is_empty() {
                meta.remove("annotations");
            }
        }
    }
    object
}

/// Calls `change(field, from, to)` for every leaf that differs, with paths like
/// `spec.template.spec.containers[0].image`.
fn walk(
    from: &Value,
    to: &Value,
    path: String,
    change: &mut impl FnMut(String, Option<&Value>, Option<&Value>),
) {
    let join = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    match (from, to) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => walk(x, y, join(key), change),
                    (x, y) => change(join(key), x, y),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (index, (x, y)) in a.iter().zip(b).enumerate() {
                walk(x, y, format!("{path}[{index}]"), change);
            }
        }
        (a, b) if a != b => change(path, Some(a), Some(b)),
        _ => {}
    }
}

/// A value as one line: strings bare, anything else as JSON.
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn change(field: &str, from: Option<&str>, to: Option<&str>) -> PlannedChange {
        PlannedChange {
            resource: "Deployment kyb/web".into(),
            field: field.into(),
            from: from.map(str::to_owned),
            to: to.map(str::to_owned),
        }
    }

    fn deployment(image: &str, replicas: u32) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "resourceVersion": "7", "generation": 3,
                "annotations": {"deployment.kubernetes.io/revision": "3"}},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "web", "image": image}]}}},
            "status": {"replicas": replicas}})
    }

    #[test]
    fn changed_leaves_are_listed_by_path_and_server_fields_are_not() {
        let live = deployment("r/web:v1", 2);
        let mut preview = deployment("r/web:v2", 3);
        preview["metadata"]["resourceVersion"] = json!("8");
        preview["metadata"]["generation"] = json!(4);
        preview["status"] = json!({"replicas": 9});
        assert_eq!(
            object_changes("Deployment kyb/web", Some(&live), &preview),
            [
                change("spec.replicas", Some("2"), Some("3")),
                change(
                    "spec.template.spec.containers[0].image",
                    Some("r/web:v1"),
                    Some("r/web:v2")
                ),
            ]
        );
        assert_eq!(object_changes("Deployment kyb/web", Some(&live), &live), []);
    }

    #[test]
    fn added_and_removed_fields_and_resized_lists_are_changes() {
        let live =
            json!({"kind": "ConfigMap", "data": {"A": "1", "B": "2"}, "spec": {"ports": [80]}});
        let preview = json!({"kind": "ConfigMap", "data": {"A": "1", "C": "3"}, "spec": {"ports": [80, 443]}});
        let changes = object_changes("ConfigMap kyb/web-config", Some(&live), &preview);
        let fields: Vec<(&str, Option<&str>, Option<&str>)> = changes
            .iter()
            .map(|c| (c.field.as_str(), c.from.as_deref(), c.to.as_deref()))
            .collect();
        assert_eq!(
            fields,
            [
                ("data.B", Some("2"), None),
                ("data.C", None, Some("3")),
                ("spec.ports", Some("[80]"), Some("[80,443]")),
            ]
        );
    }

    #[test]
    fn a_new_object_is_one_change_and_secret_values_are_hidden() {
        let created = object_changes("Secret kyb/s", None, &json!({"kind": "Secret"}));
        assert_eq!(created.len(), 1);
        assert_eq!(created[0].to.as_deref(), Some("created"));
        let live = json!({"kind": "Secret", "data": {"TOKEN": "b2xk"}});
        let preview = json!({"kind": "Secret", "data": {"TOKEN": "bmV3"}});
        let changes = object_changes("Secret kyb/s", Some(&live), &preview);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].field, "data.TOKEN");
        assert_eq!(changes[0].from.as_deref(), Some("(hidden)"));
        assert_eq!(changes[0].to.as_deref(), Some("(hidden)"));
        // A Secret without data before: the whole map is one change, hidden too.
        let empty = json!({"kind": "Secret"});
        let changes = object_changes("Secret kyb/s", Some(&empty), &preview);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].field, "data");
        assert_eq!(changes[0].to.as_deref(), Some("(hidden)"));
    }
}
