//! Decoding an object as the API server does, into the kind's typed schema (k8s-openapi's
//! types stand in for the Go structs): a field of the wrong type is refused, and fields the
//! schema does not declare are found, to be refused (`fieldValidation=Strict`) or dropped.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::k8s_sim::typed::{WithType, with_type};

/// Decodes `object` as a `kind`; the paths of the fields its schema does not declare
/// (`spec.template.spec.containers[0].imagePullPolicyy`), or why it cannot be decoded (a
/// field of the wrong type, a `data` value that is not base64), with the field's path.
pub(crate) fn unknown_fields(kind: &str, object: &Value) -> Result<Vec<String>, String> {
    // A kind without a typed schema here: nothing is known to be unknown.
    let Some(kept) = with_type(kind, Roundtrip(object)) else {
        return Ok(Vec::new());
    };
    let kept = kept?;
    let mut unknown = Vec::new();
    compare(object, &kept, "", &mut unknown);
    Ok(unknown)
}

/// Removes the fields at `paths` (as [`unknown_fields`] names them) from `object`: what a
/// write without strict field validation stores.
pub(crate) fn drop_fields(object: &mut Value, paths: &[String]) {
    for path in paths {
        remove(object, path);
    }
}

/// Decodes an object into a type and encodes it back: what the type keeps of it.
struct Roundtrip<'a>(&'a Value);

impl WithType for Roundtrip<'_> {
    type Output = Result<Value, String>;

    fn with<T: DeserializeOwned + Serialize>(self) -> Self::Output {
        let typed: T = serde_path_to_error::deserialize(self.0).map_err(|e| {
            let path = e.path().to_string();
            if path == "." || path.is_empty() {
                e.into_inner().to_string()
            } else {
                format!("{path}: {}", e.into_inner())
            }
        })?;
        serde_json::to_value(typed).map_err(|e| e.to_string())
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Every field of `given` (not null) that `kept` lacks, by path.
fn compare(given: &Value, kept: &Value, path: &str, unknown: &mut Vec<String>) {
    match (given, kept) {
        (Value::Object(given), Value::Object(kept)) => {
            for (key, value) in given {
                if value.is_null() {
                    continue;
                }
                let at = join(path, key);
                match kept.get(key) {
                    None => unknown.push(at),
                    Some(kept) => compare(value, kept, &at, unknown),
                }
            }
        }
        (Value::Array(given), Value::Array(kept)) => {
            for (i, (value, kept)) in given.iter().zip(kept).enumerate() {
                compare(value, kept, &format!("{path}[{i}]"), unknown);
            }
        }
        _ => {}
    }
}

/// Removes the field at `path` (`a.b[2].c`), built by [`compare`] from this object's own
/// keys, so each step is found by matching the longest key that fits.
fn remove(value: &mut Value, path: &str) {
    match value {
        Value::Object(map) => {
            if map.remove(path).is_some() {
                return;
            }
            // The key is a prefix of `path` followed by `.` or `[`.
            let key = map
                .keys()
                .filter(|k| {
                    path.strip_prefix(k.as_str())
                        .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
                })
                .max_by_key(|k| k.len())
                .cloned();
            if let Some(key) = key {
                let rest = &path[key.len()..];
                let rest = rest.strip_prefix('.').unwrap_or(rest);
                if let Some(child) = map.get_mut(&key) {
                    remove(child, rest);
                }
            }
        }
        Value::Array(items) => {
            let Some((index, rest)) = path.strip_prefix('[').and_then(|p| p.split_once(']')) else {
                return;
            };
            let rest = rest.strip_prefix('.').unwrap_or(rest);
            if let Some(item) = index.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                remove(item, rest);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn deployment(container: Value) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app.kubernetes.io/name": "web"}},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [container]}}
            }
        })
    }

    #[test]
    fn a_declared_object_has_no_unknown_fields() {
        let object = deployment(
            json!({"name": "web", "image": "web:1", "args": [], "resources": {"limits": {"cpu": "1"}}}),
        );
        assert_eq!(unknown_fields("Deployment", &object), Ok(Vec::new()));
    }

    #[test]
    fn undeclared_fields_are_found_by_path_and_can_be_dropped() {
        let mut object =
            deployment(json!({"name": "web", "image": "web:1", "imagePullPolicyy": "Always"}));
        object["spec"]["paused2"] = json!(true);
        let unknown = unknown_fields("Deployment", &object).unwrap();
        assert_eq!(
            unknown,
            [
                "spec.paused2",
                "spec.template.spec.containers[0].imagePullPolicyy"
            ]
        );
        drop_fields(&mut object, &unknown);
        assert_eq!(unknown_fields("Deployment", &object), Ok(Vec::new()));
        assert_eq!(
            object["spec"]["template"]["spec"]["containers"][0]["image"],
            "web:1"
        );
    }

    #[test]
    fn a_field_of_the_wrong_type_is_refused_with_its_path() {
        let mut object = deployment(json!({"name": "web", "image": "web:1"}));
        object["spec"]["replicas"] = json!("two");
        let error = unknown_fields("Deployment", &object).unwrap_err();
        assert!(
            error.starts_with("spec.replicas: invalid type: string \"two\""),
            "{error}"
        );
    }

    #[test]
    fn secret_data_must_be_base64() {
        let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"k": "not base64!"}});
        let error = unknown_fields("Secret", &secret).unwrap_err();
        assert!(error.starts_with("data.k:"), "{error}");
    }
}
