//! Small helpers to read and write API objects held as JSON, tolerant of malformed objects:
//! a missing or mistyped field reads as absent, and a write replaces whatever non-object
//! stands in the way.

use std::time::SystemTime;

use serde_json::{Map, Value, json};

use super::super::cluster::parse_timestamp;

/// An integer field: JSON integers, and floats without a fractional part.
pub(super) fn int(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| {
        v.as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
            .map(|f| f as i64)
    })
}

/// A string field, or `""`.
pub(super) fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// `metadata.name`.
pub(super) fn name(o: &Value) -> &str {
    text(&o["metadata"]["name"])
}

/// `metadata.namespace`.
pub(super) fn namespace(o: &Value) -> &str {
    text(&o["metadata"]["namespace"])
}

/// `metadata.uid`.
pub(super) fn uid(o: &Value) -> &str {
    text(&o["metadata"]["uid"])
}

/// `metadata.generation` (0 when absent).
pub(super) fn generation(o: &Value) -> i64 {
    int(&o["metadata"]["generation"]).unwrap_or(0)
}

/// An annotation.
pub(super) fn annotation<'a>(o: &'a Value, key: &str) -> Option<&'a str> {
    o["metadata"]["annotations"][key].as_str()
}

/// Sets an annotation.
pub(super) fn set_annotation(o: &mut Value, key: &str, value: impl Into<String>) {
    object_at(o, &["metadata", "annotations"]).insert(key.to_owned(), Value::String(value.into()));
}

/// The object `v` itself, made one if it is not.
pub(super) fn object(v: &mut Value) -> &mut Map<String, Value> {
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    match v {
        Value::Object(m) => m,
        _ => unreachable!("made an object above"),
    }
}

/// The object at `path` under `v`, creating it (and replacing non-objects) on the way.
pub(super) fn object_at<'a>(v: &'a mut Value, path: &[&str]) -> &'a mut Map<String, Value> {
    let mut at = v;
    for key in path {
        at = object(at).entry((*key).to_owned()).or_insert(Value::Null);
    }
    object(at)
}

/// Sets the field at `path` (at least one key).
pub(super) fn set(v: &mut Value, path: &[&str], value: Value) {
    if let Some((last, parents)) = path.split_last() {
        object_at(v, parents).insert((*last).to_owned(), value);
    }
}

/// Sets an integer status count the way Go's `omitempty` writes it: absent when zero.
pub(super) fn set_count(status: &mut Map<String, Value>, key: &str, n: i64) {
    if n == 0 {
        status.remove(key);
    } else {
        status.insert(key.to_owned(), json!(n));
    }
}

/// The uid of the object's controller (the owner reference with `controller: true`).
pub(super) fn controller_uid(o: &Value) -> Option<&str> {
    o["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["controller"] == true)
        .and_then(|r| r["uid"].as_str())
}

/// The owner reference a controller puts on the objects it creates.
pub(super) fn controller_ref(owner: &Value) -> Value {
    json!({
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": name(owner),
        "uid": uid(owner),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// A timestamp field.
pub(super) fn time(v: &Value) -> Option<SystemTime> {
    v.as_str().and_then(parse_timestamp)
}

/// `metadata.creationTimestamp`, for ordering (objects without one sort first).
pub(super) fn created(o: &Value) -> Option<SystemTime> {
    time(&o["metadata"]["creationTimestamp"])
}

/// Label selectors (`matchLabels`, `matchExpressions`) with no requirement select everything.
pub(super) fn selects_everything(selector: &Value) -> bool {
    let empty = |v: &Value| match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    };
    empty(&selector["matchLabels"]) && empty(&selector["matchExpressions"])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_replace_what_is_in_the_way() {
        let mut v = json!({"spec": "oops"});
        set(&mut v, &["spec", "replicas"], json!(3));
        assert_eq!(v, json!({"spec": {"replicas": 3}}));
        set_annotation(&mut v, "a", "b");
        assert_eq!(annotation(&v, "a"), Some("b"));
        assert_eq!(int(&json!(2.0)), Some(2));
        assert_eq!(int(&json!("2")), None);
        assert!(selects_everything(&json!({"matchLabels": {}})));
        assert!(!selects_everything(&json!({"matchLabels": {"a": "b"}})));
    }
}
