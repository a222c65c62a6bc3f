//! JSON patch (RFC 6902) with JSON pointers (RFC 6901), as `application/json-patch+json`.
//!
//! The API server rejects a body that is not a list of operations with 400, and an operation
//! that does not apply (a missing path, a failed `test`) with 422; the errors follow suit.

use serde_json::{Map, Value};

use super::PatchError;

/// Applies the operations of `patch` (`add`, `remove`, `replace`, `move`, `copy`, `test`) to
/// `target` in order; any failure leaves nothing applied.
pub(crate) fn json_patch(target: &Value, patch: &Value) -> Result<Value, PatchError> {
    let Value::Array(operations) = patch else {
        return Err(PatchError::Invalid(
            "a JSON patch must be a list of operations".to_owned(),
        ));
    };
    let mut doc = target.clone();
    for operation in operations {
        let Value::Object(operation) = operation else {
            return Err(PatchError::Invalid(format!(
                "a JSON patch operation must be an object, got {operation}"
            )));
        };
        apply_operation(&mut doc, operation)?;
    }
    Ok(doc)
}

fn apply_operation(doc: &mut Value, operation: &Map<String, Value>) -> Result<(), PatchError> {
    let op = operation
        .get("op")
        .and_then(Value::as_str)
        .ok_or_else(|| unprocessable("a JSON patch operation needs an \"op\""))?;
    let path = string_member(operation, "path", op)?;
    let tokens = parse_pointer(path)?;
    match op {
        "add" => add(doc, &tokens, value_member(operation, op)?.clone(), path),
        "remove" => remove(doc, &tokens, path).map(drop),
        "replace" => {
            let value = value_member(operation, op)?.clone();
            let slot = get_mut(doc, &tokens).ok_or_else(|| missing(op, path))?;
            *slot = value;
            Ok(())
        }
        "move" => {
            let from = string_member(operation, "from", op)?;
            let from_tokens = parse_pointer(from)?;
            if tokens.len() > from_tokens.len() && tokens.starts_with(&from_tokens) {
                return Err(unprocessable(&format!(
                    "move operation cannot move {from} into its own child {path}"
                )));
            }
            let value = remove(doc, &from_tokens, from)?;
            add(doc, &tokens, value, path)
        }
        "copy" => {
            let from = string_member(operation, "from", op)?;
            let value = get(doc, &parse_pointer(from)?)
                .ok_or_else(|| missing(op, from))?
                .clone();
            add(doc, &tokens, value, path)
        }
        "test" => {
            let expected = value_member(operation, op)?;
            match get(doc, &tokens) {
                Some(actual) if json_equal(actual, expected) => Ok(()),
                _ => Err(unprocessable(&format!("testing value {path} failed"))),
            }
        }
        other => Err(unprocessable(&format!(
            "unexpected kind of operation: {other}"
        ))),
    }
}

fn string_member<'a>(
    operation: &'a Map<String, Value>,
    name: &str,
    op: &str,
) -> Result<&'a str, PatchError> {
    operation
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| unprocessable(&format!("{op} operation needs a \"{name}\" string")))
}

fn value_member<'a>(operation: &'a Map<String, Value>, op: &str) -> Result<&'a Value, PatchError> {
    operation
        .get("value")
        .ok_or_else(|| unprocessable(&format!("{op} operation needs a \"value\"")))
}

fn unprocessable(message: &str) -> PatchError {
    PatchError::Unprocessable(message.to_owned())
}

fn missing(op: &str, path: &str) -> PatchError {
    unprocessable(&format!(
        "{op} operation does not apply: doc is missing path: \"{path}\""
    ))
}

/// The reference tokens of a JSON pointer, unescaped (`~1` is `/`, `~0` is `~`).
pub(crate) fn parse_pointer(pointer: &str) -> Result<Vec<String>, PatchError> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err(unprocessable(&format!(
            "JSON pointer {pointer:?} must be empty or start with \"/\""
        )));
    };
    rest.split('/')
        .map(|token| unescape(token, pointer))
        .collect()
}

fn unescape(token: &str, pointer: &str) -> Result<String, PatchError> {
    let mut out = String::with_capacity(token.len());
    let mut chars = token.chars();
    while let Some(c) = chars.next() {
        if c != '~' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('0') => out.push('~'),
            Some('1') => out.push('/'),
            _ => {
                return Err(unprocessable(&format!(
                    "JSON pointer {pointer:?} has an invalid escape (only ~0 and ~1 are allowed)"
                )));
            }
        }
    }
    Ok(out)
}

/// An array index token: digits without leading zeros (RFC 6901).
fn parse_index(token: &str) -> Option<usize> {
    let digits = !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit());
    if !digits || (token.len() > 1 && token.starts_with('0')) {
        return None;
    }
    token.parse().ok()
}

fn get<'a>(doc: &'a Value, tokens: &[String]) -> Option<&'a Value> {
    tokens.iter().try_fold(doc, |node, token| match node {
        Value::Object(map) => map.get(token),
        Value::Array(items) => items.get(parse_index(token)?),
        _ => None,
    })
}

fn get_mut<'a>(doc: &'a mut Value, tokens: &[String]) -> Option<&'a mut Value> {
    tokens.iter().try_fold(doc, |node, token| match node {
        Value::Object(map) => map.get_mut(token),
        Value::Array(items) => items.get_mut(parse_index(token)?),
        _ => None,
    })
}

fn add(doc: &mut Value, tokens: &[String], value: Value, path: &str) -> Result<(), PatchError> {
    let Some((last, parent)) = tokens.split_last() else {
        *doc = value;
        return Ok(());
    };
    match get_mut(doc, parent) {
        Some(Value::Object(map)) => {
            map.insert(last.clone(), value);
            Ok(())
        }
        Some(Value::Array(items)) => {
            let index = if last == "-" {
                items.len()
            } else {
                parse_index(last)
                    .filter(|&index| index <= items.len())
                    .ok_or_else(|| {
                        unprocessable(&format!(
                            "add operation does not apply: index {last} of \"{path}\" is out of bounds"
                        ))
                    })?
            };
            items.insert(index, value);
            Ok(())
        }
        _ => Err(missing("add", path)),
    }
}

fn remove(doc: &mut Value, tokens: &[String], path: &str) -> Result<Value, PatchError> {
    let Some((last, parent)) = tokens.split_last() else {
        return Err(unprocessable(
            "remove operation cannot remove the whole document",
        ));
    };
    let removed = match get_mut(doc, parent) {
        Some(Value::Object(map)) => map.remove(last),
        Some(Value::Array(items)) => parse_index(last)
            .filter(|&index| index < items.len())
            .map(|index| items.remove(index)),
        _ => None,
    };
    removed.ok_or_else(|| missing("remove", path))
}

/// JSON equality where numbers compare by value (`1` equals `1.0`), as RFC 6902 `test` wants.
pub(crate) fn json_equal(left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::Number(l), Value::Number(r)) => match (l.as_i64(), r.as_i64()) {
            (Some(l), Some(r)) => l == r,
            _ => match (l.as_u64(), r.as_u64()) {
                (Some(l), Some(r)) => l == r,
                _ => l.as_f64() == r.as_f64(),
            },
        },
        (Value::Array(l), Value::Array(r)) => {
            l.len() == r.len() && l.iter().zip(r).all(|(l, r)| json_equal(l, r))
        }
        (Value::Object(l), Value::Object(r)) => {
            l.len() == r.len()
                && l.iter()
                    .all(|(key, l)| r.get(key).is_some_and(|r| json_equal(l, r)))
        }
        _ => left == right,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn patched(target: Value, patch: Value) -> Result<Value, PatchError> {
        json_patch(&target, &patch)
    }

    #[test]
    fn rfc_6902_appendix_examples() {
        let doc = json!({"foo": ["bar", "baz"], "a": {"b": 1}});
        let ops = json!([
            {"op": "add", "path": "/foo/1", "value": "qux"},
            {"op": "add", "path": "/foo/-", "value": "end"},
            {"op": "remove", "path": "/a/b"},
            {"op": "replace", "path": "/a", "value": {"c": 2}},
            {"op": "copy", "from": "/a/c", "path": "/d"},
            {"op": "move", "from": "/foo/0", "path": "/e"},
            {"op": "test", "path": "/d", "value": 2.0},
        ]);
        assert_eq!(
            patched(doc, ops).unwrap(),
            json!({"foo": ["qux", "baz", "end"], "a": {"c": 2}, "d": 2, "e": "bar"})
        );
    }

    #[test]
    fn escaped_tokens_name_keys_with_slashes_and_tildes() {
        let doc = json!({"metadata": {"annotations": {"a/b": "1", "m~n": "2"}}});
        let ops = json!([
            {"op": "replace", "path": "/metadata/annotations/a~1b", "value": "x"},
            {"op": "remove", "path": "/metadata/annotations/m~0n"},
        ]);
        assert_eq!(
            patched(doc, ops).unwrap(),
            json!({"metadata": {"annotations": {"a/b": "x"}}})
        );
    }

    #[test]
    fn kubectl_scale_style_replace_and_test() {
        let doc = json!({"spec": {"replicas": 1}});
        let ops = json!([
            {"op": "test", "path": "/spec/replicas", "value": 1},
            {"op": "replace", "path": "/spec/replicas", "value": 3},
        ]);
        assert_eq!(patched(doc, ops).unwrap(), json!({"spec": {"replicas": 3}}));
    }

    #[test]
    fn failures_are_unprocessable_and_malformed_bodies_invalid() {
        let doc = json!({"a": [1]});
        let unprocessable = [
            json!([{"op": "test", "path": "/a/0", "value": 2}]),
            json!([{"op": "replace", "path": "/b", "value": 2}]),
            json!([{"op": "remove", "path": "/a/1"}]),
            json!([{"op": "add", "path": "/a/2", "value": 2}]),
            json!([{"op": "add", "path": "/a/01", "value": 2}]),
            json!([{"op": "add", "path": "/x/y", "value": 2}]),
            json!([{"op": "add", "path": "a", "value": 2}]),
            json!([{"op": "add", "path": "/a~2", "value": 2}]),
            json!([{"op": "add", "path": "/a"}]),
            json!([{"op": "move", "from": "/a", "path": "/a/0"}]),
            json!([{"op": "frobnicate", "path": "/a"}]),
            json!([{"op": "remove", "path": ""}]),
        ];
        for ops in unprocessable {
            let result = patched(doc.clone(), ops.clone());
            assert!(
                matches!(result, Err(PatchError::Unprocessable(_))),
                "{ops}: {result:?}"
            );
        }
        assert!(matches!(
            patched(doc.clone(), json!({})),
            Err(PatchError::Invalid(_))
        ));
        assert!(matches!(
            patched(doc, json!([1])),
            Err(PatchError::Invalid(_))
        ));
    }

    #[test]
    fn a_failed_test_applies_nothing_and_root_add_replaces_the_document() {
        let doc = json!({"a": 1});
        let ops = json!([{"op": "add", "path": "/b", "value": 2}, {"op": "test", "path": "/a", "value": 9}]);
        assert!(patched(doc.clone(), ops).is_err());
        let ops = json!([{"op": "add", "path": "", "value": [1]}]);
        assert_eq!(patched(doc, ops).unwrap(), json!([1]));
    }

    fn arb_key() -> impl Strategy<Value = String> {
        "[a-z~/]{1,6}"
    }

    proptest! {
        #[test]
        fn adding_then_removing_a_new_key_restores_the_document(
            keys in proptest::collection::btree_map(arb_key(), any::<i32>(), 0..5),
            new_key in arb_key(),
            value in any::<i64>(),
        ) {
            prop_assume!(!keys.contains_key(&new_key));
            let doc = json!({"data": keys});
            let escaped = new_key.replace('~', "~0").replace('/', "~1");
            let pointer = format!("/data/{escaped}");
            prop_assert_eq!(parse_pointer(&pointer).unwrap(), vec!["data".to_owned(), new_key.clone()]);
            let added = patched(doc.clone(), json!([{"op": "add", "path": pointer, "value": value}])).unwrap();
            prop_assert_eq!(&added["data"][&new_key], &json!(value));
            let removed = patched(added, json!([{"op": "remove", "path": pointer}])).unwrap();
            prop_assert_eq!(removed, doc);
        }
    }
}
