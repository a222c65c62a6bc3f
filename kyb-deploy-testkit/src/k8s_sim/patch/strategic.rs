//! Strategic merge patch, as `application/strategic-merge-patch+json`: what `kubectl patch`
//! sends by default, and `kubectl set image`, `rollout pause|resume|restart` and client-side
//! `kubectl apply`.
//!
//! A port of the apply half of apimachinery's `strategicpatch` with the options the API server
//! uses (`MergeParallelList`, `IgnoreUnmatchedNulls`), the merge keys coming from `schema`.
//! Where the Go code copies a patch value verbatim into the result (a key missing from the
//! object, a type change) this one merges it into an empty value instead, so that no
//! directive or `null` ever lands in a stored object.

use serde_json::{Map, Value};

use super::PatchError;
use super::json::json_equal;
use super::schema::{ListKind, list_kind};

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ELEMENT_ORDER: &str = "$setElementOrder/";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList/";

/// Applies a strategic merge patch to `target`.
///
/// Maps merge key by key and `null` deletes a key; lists of objects with a merge key merge
/// item by item, lists of scalars with the merge strategy (`finalizers`) merge as sets, and
/// every other list is replaced. Directives: `$patch: replace|delete|merge` in a map or a
/// list item, `$setElementOrder/<list>`, `$retainKeys` and `$deleteFromPrimitiveList/<list>`.
pub(crate) fn strategic_merge_patch(target: &Value, patch: &Value) -> Result<Value, PatchError> {
    let Value::Object(patch) = patch else {
        return Err(invalid("a strategic merge patch must be a JSON object"));
    };
    let original = match target {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    merge_map(original, patch, &mut Vec::new()).map(Value::Object)
}

fn invalid(message: &str) -> PatchError {
    PatchError::Invalid(message.to_owned())
}

fn merge_map(
    mut original: Map<String, Value>,
    patch: &Map<String, Value>,
    path: &mut Vec<String>,
) -> Result<Map<String, Value>, PatchError> {
    match patch.get(DIRECTIVE) {
        None => {}
        Some(Value::String(directive)) if directive == "merge" => {}
        Some(Value::String(directive)) if directive == "replace" => {
            let mut replacement = patch.clone();
            replacement.remove(DIRECTIVE);
            return merge_map(Map::new(), &replacement, path);
        }
        Some(Value::String(directive)) if directive == "delete" => return Ok(Map::new()),
        Some(other) => {
            return Err(PatchError::Invalid(format!(
                "unknown patch type: {other} in map: {}",
                Value::Object(patch.clone())
            )));
        }
    }
    if let Some(retain) = patch.get(RETAIN_KEYS) {
        retain_keys(&mut original, patch, retain)?;
    }
    let mut ordered = Vec::new();
    for (key, order) in patch {
        if let Some(field) = key.strip_prefix(SET_ELEMENT_ORDER)
            && set_element_order(&mut original, patch, field, order, path)?
        {
            ordered.push(field);
        }
    }
    // Deletions from primitive lists go first, so that a value both deleted and added (the
    // three-way patch of `kubectl apply` never does that) ends up present.
    for (key, values) in patch {
        if let Some(field) = key.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) {
            let Value::Array(values) = values else {
                return Err(invalid("invalid patch format of primitive list"));
            };
            if let Some(Value::Array(items)) = original.get_mut(field) {
                items.retain(|item| !values.iter().any(|value| json_equal(value, item)));
            }
        }
    }
    for (key, value) in patch {
        if key.starts_with('$') {
            let known = [DIRECTIVE, RETAIN_KEYS].contains(&key.as_str())
                || key.starts_with(SET_ELEMENT_ORDER)
                || key.starts_with(DELETE_FROM_PRIMITIVE_LIST);
            if !known {
                return Err(PatchError::Invalid(format!(
                    "unknown patch directive {key:?}"
                )));
            }
            continue;
        }
        if ordered.contains(&key.as_str()) {
            continue;
        }
        if value.is_null() {
            original.remove(key);
            continue;
        }
        // Deleting a map that is not there leaves nothing (the Go code would store the
        // directive itself).
        let deletes = value.get(DIRECTIVE).and_then(Value::as_str) == Some("delete");
        if deletes && !original.contains_key(key) {
            continue;
        }
        path.push(key.clone());
        let merged = merge_value(original.remove(key), value, path);
        path.pop();
        original.insert(key.clone(), merged?);
    }
    Ok(original)
}

fn merge_value(
    original: Option<Value>,
    patch: &Value,
    path: &mut Vec<String>,
) -> Result<Value, PatchError> {
    Ok(match (original, patch) {
        (Some(Value::Object(original)), Value::Object(patch)) => {
            Value::Object(merge_map(original, patch, path)?)
        }
        (_, Value::Object(patch)) => Value::Object(merge_map(Map::new(), patch, path)?),
        (Some(Value::Array(original)), Value::Array(patch)) => {
            Value::Array(merge_list(original, patch, path)?)
        }
        (_, Value::Array(patch)) => Value::Array(merge_list(Vec::new(), patch, path)?),
        (_, scalar) => scalar.clone(),
    })
}

/// `$retainKeys`: clears the keys of `original` the list leaves out, after checking that
/// the patch sets no key outside it.
fn retain_keys(
    original: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    retain: &Value,
) -> Result<(), PatchError> {
    let bad_format = || invalid("invalid patch format of retainKeys");
    let Value::Array(retain) = retain else {
        return Err(bad_format());
    };
    let keys: Vec<&str> = retain.iter().filter_map(Value::as_str).collect();
    if keys.len() != retain.len() {
        return Err(bad_format());
    }
    let outside = patch.iter().any(|(key, value)| {
        !key.starts_with('$') && !value.is_null() && !keys.contains(&key.as_str())
    });
    if outside {
        return Err(bad_format());
    }
    original.retain(|key, _| keys.contains(&key.as_str()));
    Ok(())
}

/// `$setElementOrder/<field>`: merges the list `field` and orders it as the directive says,
/// items only the object has keeping their place relative to the others. Returns whether
/// `field` was handled (atomic lists are left to the ordinary merge).
fn set_element_order(
    original: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    field: &str,
    order: &Value,
    path: &mut Vec<String>,
) -> Result<bool, PatchError> {
    let Value::Array(order) = order else {
        return Err(invalid("invalid patch format of setElementOrder list"));
    };
    if field.is_empty() {
        return Err(invalid("invalid patch format of setElementOrder list"));
    }
    path.push(field.to_owned());
    let kind = list_kind(path);
    let patch_list = patch.get(field);
    let handled = match (kind, patch_list) {
        (ListKind::Atomic, _) | (_, Some(Value::Null)) => false,
        (_, Some(value)) if !value.is_array() => false,
        _ => {
            let original_list = match original.get(field) {
                Some(Value::Array(items)) => Some(items.clone()),
                None => None,
                // A patch list over a non-list value replaces it in the ordinary merge.
                Some(_) => {
                    path.pop();
                    return Ok(false);
                }
            };
            let merged = match (&original_list, patch_list) {
                (_, Some(Value::Array(patch_list))) => {
                    merge_list(original_list.clone().unwrap_or_default(), patch_list, path)?
                }
                (Some(original_list), _) => original_list.clone(),
                (None, _) => {
                    path.pop();
                    return Ok(true);
                }
            };
            let server_order = original_list.unwrap_or_default();
            let identity = Identity::of(kind);
            let in_order = |item: &Value| position(order, item, identity).is_some();
            let (patch_items, server_only): (Vec<Value>, Vec<Value>) =
                merged.into_iter().partition(in_order);
            let reordered =
                normalize_order(patch_items, server_only, order, &server_order, identity);
            original.insert(field.to_owned(), Value::Array(reordered));
            true
        }
    };
    path.pop();
    Ok(handled)
}

/// How list items are told apart: by a merge key, or by their whole value.
#[derive(Clone, Copy)]
enum Identity {
    Key(&'static str),
    Value,
}

impl Identity {
    fn of(kind: ListKind) -> Self {
        match kind {
            ListKind::Map { patch_key, .. } => Self::Key(patch_key),
            ListKind::Set | ListKind::Atomic => Self::Value,
        }
    }

    fn same(self, left: &Value, right: &Value) -> bool {
        match self {
            Self::Key(key) => match (left.get(key), right.get(key)) {
                (Some(l), Some(r)) => json_equal(l, r),
                _ => false,
            },
            Self::Value => json_equal(left, right),
        }
    }
}

fn position(list: &[Value], item: &Value, identity: Identity) -> Option<usize> {
    list.iter()
        .position(|candidate| identity.same(candidate, item))
}

fn merge_list(
    original: Vec<Value>,
    patch: &[Value],
    path: &mut Vec<String>,
) -> Result<Vec<Value>, PatchError> {
    match list_kind(path) {
        ListKind::Atomic => Ok(patch.to_vec()),
        ListKind::Set => {
            if patch.iter().chain(&original).any(Value::is_array) {
                return Err(PatchError::Unprocessable(
                    "lists of lists are not supported".to_owned(),
                ));
            }
            let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
            for item in original.iter().chain(patch) {
                if !merged.iter().any(|seen| json_equal(seen, item)) {
                    merged.push(item.clone());
                }
            }
            Ok(reorder(merged, patch, &original, Identity::Value))
        }
        ListKind::Map { patch_key, .. } => merge_keyed_list(original, patch, patch_key, path),
    }
}

fn merge_keyed_list(
    mut original: Vec<Value>,
    patch: &[Value],
    key: &'static str,
    path: &mut Vec<String>,
) -> Result<Vec<Value>, PatchError> {
    let identity = Identity::Key(key);
    let mut items = Vec::with_capacity(patch.len());
    let mut replace = false;
    for item in patch {
        let Value::Object(map) = item else {
            return Err(PatchError::Invalid(format!(
                "the items of {} must be objects, got {item}",
                path.join(".")
            )));
        };
        match map.get(DIRECTIVE) {
            None => items.push(map),
            Some(Value::String(directive)) if directive == "delete" => {
                if !map.contains_key(key) {
                    return Err(no_merge_key(item, key));
                }
                original.retain(|candidate| !identity.same(candidate, item));
            }
            Some(Value::String(directive)) if directive == "replace" => replace = true,
            // The Go code rejects `merge` here; merging is what a list item does anyway.
            Some(Value::String(directive)) if directive == "merge" => {}
            Some(other) => {
                return Err(PatchError::Invalid(format!(
                    "unknown patch type: {other} in map: {item}"
                )));
            }
        }
    }
    if replace {
        let mut replaced = Vec::with_capacity(items.len());
        for item in items {
            replaced.push(Value::Object(merge_map(Map::new(), item, path)?));
        }
        return Ok(replaced);
    }
    let server_order = original.clone();
    let mut merged = original;
    for item in &items {
        if !item.contains_key(key) {
            return Err(no_merge_key(&Value::Object((*item).clone()), key));
        }
        let as_value = Value::Object((*item).clone());
        match merged
            .iter()
            .position(|candidate| identity.same(candidate, &as_value))
        {
            Some(index) => {
                let current = match std::mem::take(&mut merged[index]) {
                    Value::Object(current) => current,
                    _ => Map::new(),
                };
                merged[index] = Value::Object(merge_map(current, item, path)?);
            }
            None => merged.push(Value::Object(merge_map(Map::new(), item, path)?)),
        }
    }
    let patch_items: Vec<Value> = items
        .into_iter()
        .map(|item| Value::Object(item.clone()))
        .collect();
    Ok(reorder(merged, &patch_items, &server_order, identity))
}

fn no_merge_key(item: &Value, key: &str) -> PatchError {
    PatchError::Invalid(format!(
        "map: {item} does not contain declared merge key: {key}"
    ))
}

/// Orders a merged list: the items the patch names in the patch's order, the others in the
/// object's order, interleaved so that both relative orders hold.
fn reorder(
    merged: Vec<Value>,
    patch: &[Value],
    server_order: &[Value],
    identity: Identity,
) -> Vec<Value> {
    let (patch_items, server_only): (Vec<Value>, Vec<Value>) = merged
        .into_iter()
        .partition(|item| position(patch, item, identity).is_some());
    normalize_order(patch_items, server_only, patch, server_order, identity)
}

/// apimachinery's `normalizeElementOrder`: sorts `patch_items` by `patch_order` and
/// `server_only` by `server_order`, then merges the two. A server-only item goes first only
/// when both it and the next patch item are in the object and it came first there; so items
/// the patch adds land ahead of server-only items, as with the real API server.
fn normalize_order(
    mut patch_items: Vec<Value>,
    mut server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    identity: Identity,
) -> Vec<Value> {
    patch_items.sort_by_key(|item| position(patch_order, item, identity).unwrap_or(usize::MAX));
    server_only.sort_by_key(|item| position(server_order, item, identity).unwrap_or(usize::MAX));
    let mut out = Vec::with_capacity(patch_items.len() + server_only.len());
    let mut left = server_only.into_iter().peekable();
    let mut right = patch_items.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => {
                match (
                    position(server_order, l, identity),
                    position(server_order, r, identity),
                ) {
                    (Some(l), Some(r)) => l < r,
                    _ => false,
                }
            }
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
    out
}

#[cfg(test)]
mod tests;
