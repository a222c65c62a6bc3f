//! Server-side apply (`application/apply-patch+yaml`), after structured-merge-diff's
//! `Updater.Apply` as the API server wires it: merge the applied configuration into the live
//! object, refuse to take fields other managers own with other values unless forced, and
//! remove the fields the manager applied before and no longer applies, unless someone else
//! owns them.

mod merge;

use serde_json::{Map, Value};

use super::fields::{
    Comparison, FieldSet, FieldTree, Paths, Scope, display_path, field_set, item_element, paths,
};
use super::managed::{self, Entry, Operation};
use super::schema::{ListKind, list_kind};
use super::{FieldConflict, PatchError};

/// The manager that owns what an object had before its first apply, as the real server names it.
const BEFORE_FIRST_APPLY: &str = "before-first-apply";

/// Where client-side `kubectl apply` keeps the configuration it applied last.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The field manager of `kubectl apply --server-side`: the only one whose applies the API
/// server migrates from client-side apply (its `lastAppliedManager` and
/// `lastAppliedUpdater`).
const KUBECTL: &str = "kubectl";

/// Applies `applied` (a whole object: apiVersion, kind, metadata.name, ...) for `manager`
/// and returns the new object with its `metadata.managedFields`; `live` is `None` when the
/// apply creates the object. `now` stamps the manager's entry.
///
/// Fails with [`PatchError::Conflict`] when the apply would change a field another manager
/// owns and `force` is not set; with `force` the field moves to `manager`. A field several
/// managers set to the same value is owned by all of them.
pub(crate) fn apply(
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    now: &str,
) -> Result<Value, PatchError> {
    let config = configuration(live, applied)?;
    let mut me = Entry {
        manager: manager.to_owned(),
        operation: Operation::Apply,
        api_version: managed::api_version(&config),
        subresource: None,
        time: Some(now.to_owned()),
        fields: field_set(&paths(&config, Scope::Main, true)?),
    };
    let mut entries = live.map(managed::read).unwrap_or_default();
    let live_paths = live
        .map(|live| paths(live, Scope::Main, false).unwrap_or_default())
        .unwrap_or_default();
    // What an object had before its first apply belongs to a manager of its own, so that the
    // apply conflicts with it like with any other.
    if let Some(live) = live
        && entries.is_empty()
    {
        entries.push(Entry {
            manager: BEFORE_FIRST_APPLY.to_owned(),
            operation: Operation::Update,
            api_version: managed::api_version(live),
            subresource: None,
            time: Some(now.to_owned()),
            fields: Comparison::of(None, &live_paths).changed(),
        });
    }
    let empty = Value::Object(Map::new());
    let mut object = merge::merge(live.unwrap_or(&empty), &config);
    let merged_paths = paths(&object, Scope::Main, false).unwrap_or_default();
    let comparison = Comparison::of(Some(&live_paths), &merged_paths);

    let previous = entries
        .iter()
        .position(|entry| entry.same_identity(&me))
        .map(|index| entries.remove(index));
    let changed = comparison.changed();
    let conflicts: Vec<(usize, FieldSet)> = entries
        .iter()
        .enumerate()
        .filter_map(|(index, entry)| {
            let taken: FieldSet = entry.fields.intersection(&changed).cloned().collect();
            (!taken.is_empty()).then_some((index, taken))
        })
        .collect();
    // Moving from client-side to server-side apply: the conflicts with fields that the
    // last client-side apply set, still holding the values it set, are taken over.
    let migrates = manager == KUBECTL
        && live.is_some_and(|live| {
            last_applied_fields(live, &live_paths)
                .is_some_and(|allowed| conflicts.iter().all(|(_, taken)| taken.is_subset(&allowed)))
        });
    if !conflicts.is_empty() && !force && !migrates {
        return Err(conflict_error(&entries, &conflicts));
    }
    for (index, taken) in &conflicts {
        entries[*index].fields.retain(|path| !taken.contains(path));
    }
    for entry in &mut entries {
        entry
            .fields
            .retain(|path| !comparison.removed.contains(path));
    }

    if let Some(previous) = &previous {
        let mut kept = me.fields.clone();
        for entry in &entries {
            kept.extend(entry.fields.iter().cloned());
        }
        let (last, kept) = (FieldTree::of(&previous.fields), FieldTree::of(&kept));
        prune(
            &mut object,
            &last,
            Some(&kept),
            &["metadata"],
            &mut Vec::new(),
        );
        if live == Some(&object) {
            me.time.clone_from(&previous.time);
        }
    }
    entries.push(me);
    managed::write(&mut object, entries);
    if manager == KUBECTL {
        keep_last_applied_current(&mut object, applied);
    }
    Ok(object)
}

/// The fields of the object's last client-side applied configuration that still hold the
/// values it set; `None` without that annotation, or with one of another `apiVersion` or
/// that does not parse.
fn last_applied_fields(live: &Value, live_paths: &Paths) -> Option<FieldSet> {
    let text = live["metadata"]["annotations"][LAST_APPLIED].as_str()?;
    let last: Value = serde_json::from_str(text).ok()?;
    if last["apiVersion"] != live["apiVersion"] {
        return None;
    }
    let last_paths = paths(&last, Scope::Main, false).ok()?;
    // Compared as the live object changing into the last applied one: what the latter
    // adds or modifies differs from the live object.
    let comparison = Comparison::of(Some(live_paths), &last_paths);
    let differs = comparison.changed();
    Some(
        field_set(&last_paths)
            .into_iter()
            .filter(|path| !differs.contains(path))
            .collect(),
    )
}

/// After a server-side apply by kubectl, an object that has a client-side last-applied
/// annotation gets the applied configuration in it, so that a later client-side apply
/// computes its changes from what was really applied last.
fn keep_last_applied_current(object: &mut Value, applied: &Value) {
    let present = object["metadata"]["annotations"][LAST_APPLIED]
        .as_str()
        .is_some_and(|text| !text.is_empty());
    if !present {
        return;
    }
    let mut configuration = applied.clone();
    if let Some(annotations) = configuration
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        annotations.remove(LAST_APPLIED);
    }
    object["metadata"]["annotations"][LAST_APPLIED] = Value::String(configuration.to_string());
}

/// The applied configuration, checked and cleaned: no `null`s, no `status` (the main
/// resource's writes leave it alone), none of the metadata the server manages.
fn configuration(live: Option<&Value>, applied: &Value) -> Result<Value, PatchError> {
    let Value::Object(fields) = applied else {
        return Err(PatchError::Invalid(
            "an applied configuration must be an object".to_owned(),
        ));
    };
    for name in ["apiVersion", "kind"] {
        if fields
            .get(name)
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(PatchError::Invalid(format!(
                "Object '{}' is missing in '{applied}'",
                if name == "kind" { "Kind" } else { "apiVersion" }
            )));
        }
    }
    let metadata = fields.get("metadata");
    if metadata
        .and_then(|m| m.get("managedFields"))
        .is_some_and(|m| !m.is_null())
    {
        return Err(PatchError::Invalid(
            "metadata.managedFields must be nil".to_owned(),
        ));
    }
    if let Some(live) = live {
        let pairs = [
            ("kind", applied.get("kind"), live.get("kind")),
            (
                "name",
                applied.pointer("/metadata/name"),
                live.pointer("/metadata/name"),
            ),
        ];
        for (what, given, current) in pairs {
            if let (Some(Value::String(given)), Some(Value::String(current))) = (given, current)
                && given != current
            {
                return Err(PatchError::Invalid(format!(
                    "the {what} of the applied configuration ({given}) does not match the object's ({current})"
                )));
            }
        }
    }
    let mut config = without_nulls(applied);
    if let Some(config) = config.as_object_mut() {
        config.remove("status");
        if let Some(Value::Object(metadata)) = config.get_mut("metadata") {
            metadata.retain(|key, _| {
                ![
                    "creationTimestamp",
                    "selfLink",
                    "uid",
                    "generation",
                    "resourceVersion",
                ]
                .contains(&key.as_str())
            });
        }
    }
    Ok(config)
}

fn without_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, value)| !value.is_null())
                .map(|(key, value)| (key.clone(), without_nulls(value)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

/// Removes from `value` what `last` owned and nobody in `kept` owns: a map field nobody
/// owns anything under, a list item nobody owns as such. `protected` fields (the item keys,
/// the root's `metadata`) are walked into but never removed.
fn prune(
    value: &mut Value,
    last: &FieldTree,
    kept: Option<&FieldTree>,
    protected: &[&str],
    names: &mut Vec<String>,
) {
    match value {
        Value::Object(map) => {
            for (element, last_child) in &last.children {
                let Some(field) = element.strip_prefix("f:") else {
                    continue;
                };
                let kept_child = kept.and_then(|kept| kept.children.get(element));
                if kept_child.is_none() && !protected.contains(&field) {
                    map.remove(field);
                } else if let Some(child) = map.get_mut(field) {
                    names.push(field.to_owned());
                    prune(child, last_child, kept_child, &[], names);
                    names.pop();
                }
            }
        }
        Value::Array(items) => {
            let kind = list_kind(names);
            let keys = match kind {
                ListKind::Map { apply_keys, .. } => apply_keys,
                ListKind::Set | ListKind::Atomic => &[],
            };
            items.retain_mut(|item| {
                let Some(element) = item_element(item, kind) else {
                    return true;
                };
                let Some(last_child) = last.children.get(&element) else {
                    return true;
                };
                match kept.and_then(|kept| kept.children.get(&element)) {
                    Some(kept_child) if kept_child.member => {
                        prune(item, last_child, Some(kept_child), keys, names);
                        true
                    }
                    _ => false,
                }
            });
        }
        _ => {}
    }
}

/// The conflict error of the real server: one line for a single conflict, else a list per
/// manager.
fn conflict_error(entries: &[Entry], conflicts: &[(usize, FieldSet)]) -> PatchError {
    let mut by_manager: Vec<(&Entry, &FieldSet)> = conflicts
        .iter()
        .map(|(index, taken)| (&entries[*index], taken))
        .collect();
    by_manager.sort_by(|(a, _), (b, _)| {
        (&a.manager, a.operation, &a.api_version, &a.subresource).cmp(&(
            &b.manager,
            b.operation,
            &b.api_version,
            &b.subresource,
        ))
    });
    let mut list = Vec::new();
    let mut lines = Vec::new();
    for (entry, taken) in by_manager {
        let message = format!("conflict with {}", entry.describe());
        lines.push(format!("conflicts with {}:", entry.describe()));
        for path in taken {
            let field = display_path(path);
            lines.push(format!("- {field}"));
            list.push(FieldConflict {
                manager: entry.manager.clone(),
                field,
                message: message.clone(),
            });
        }
    }
    let message = match list.as_slice() {
        [only] => format!(
            "Apply failed with 1 conflict: {}: {}",
            only.message, only.field
        ),
        _ => format!(
            "Apply failed with {} conflicts: {}",
            list.len(),
            lines.join("\n")
        ),
    };
    PatchError::Conflict {
        message,
        conflicts: list,
    }
}

#[cfg(test)]
mod tests;
