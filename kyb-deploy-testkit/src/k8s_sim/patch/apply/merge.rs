//! Merging an applied configuration into the live object (structured-merge-diff's
//! `Merge`): the configuration wins at every leaf, maps merge field by field, associative
//! lists and sets item by item, and atomic lists and maps are replaced.

use std::collections::{HashMap, HashSet, VecDeque};

use serde_json::Value;

use crate::k8s_sim::patch::fields::item_element;
use crate::k8s_sim::patch::schema::{ListKind, is_atomic_map, list_kind};

/// `config` merged into `live`.
pub(super) fn merge(live: &Value, config: &Value) -> Value {
    merge_value(Some(live), config, &mut Vec::new())
}

fn merge_value(live: Option<&Value>, config: &Value, names: &mut Vec<String>) -> Value {
    match (live, config) {
        (Some(Value::Object(live)), Value::Object(config)) if !is_atomic_map(names) => {
            let mut out = live.clone();
            for (key, value) in config {
                names.push(key.clone());
                let merged = merge_value(live.get(key), value, names);
                names.pop();
                out.insert(key.clone(), merged);
            }
            Value::Object(out)
        }
        (Some(Value::Array(live)), Value::Array(items)) => {
            merge_list(live, items, names).map_or_else(|| config.clone(), Value::Array)
        }
        _ => config.clone(),
    }
}

/// Merges two lists by item identity, or `None` when the list is atomic or an item has no
/// identity. Items only the live list has keep their place; the configuration's items come
/// in its order (structured-merge-diff's `visitListItems`).
fn merge_list(lhs: &[Value], rhs: &[Value], names: &mut Vec<String>) -> Option<Vec<Value>> {
    let kind = list_kind(names);
    if kind == ListKind::Atomic {
        return None;
    }
    let identify = |items: &[Value]| -> Option<Vec<String>> {
        items.iter().map(|item| item_element(item, kind)).collect()
    };
    let (lhs_ids, rhs_ids) = (identify(lhs)?, identify(rhs)?);
    let index = |ids: &[String]| {
        let mut map = HashMap::with_capacity(ids.len());
        for (position, id) in ids.iter().enumerate() {
            map.entry(id.clone()).or_insert(position);
        }
        map
    };
    let (observed_lhs, observed_rhs) = (index(&lhs_ids), index(&rhs_ids));
    let mut shared: VecDeque<&String> = rhs_ids
        .iter()
        .filter(|id| observed_lhs.contains_key(*id))
        .collect();
    let mut next_shared = shared.pop_front();
    let mut merged_rhs: HashSet<&String> = HashSet::new();
    let mut out = Vec::with_capacity(lhs.len().max(rhs.len()));
    let (mut l, mut r) = (0, 0);
    let merge_item = |id: &String, names: &mut Vec<String>| {
        let live = observed_lhs.get(id).map(|&position| &lhs[position]);
        let position = observed_rhs.get(id).copied().unwrap_or(0);
        merge_value(live, &rhs[position], names)
    };
    while l < lhs_ids.len() || r < rhs_ids.len() {
        if l < lhs_ids.len() && r < rhs_ids.len() {
            let id = &lhs_ids[l];
            if *id == rhs_ids[r] {
                merged_rhs.insert(id);
                out.push(merge_item(id, names));
                l += 1;
                r += 1;
                next_shared = shared.pop_front();
                continue;
            }
            if observed_rhs.contains_key(id) && next_shared.is_some_and(|next| next != id) {
                l += 1;
                continue;
            }
        }
        if l < lhs_ids.len() {
            let id = &lhs_ids[l];
            if !observed_rhs.contains_key(id) {
                out.push(lhs[l].clone());
                l += 1;
                continue;
            }
            if merged_rhs.contains(id) {
                l += 1;
                continue;
            }
        }
        if r < rhs_ids.len() {
            let id = &rhs_ids[r];
            merged_rhs.insert(id);
            out.push(merge_item(id, names));
            r += 1;
            if next_shared == Some(id) {
                next_shared = shared.pop_front();
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn containers(names: &[&str]) -> Value {
        let list: Vec<Value> = names
            .iter()
            .map(|n| json!({"name": n, "image": format!("{n}:live")}))
            .collect();
        json!({"spec": {"containers": list}})
    }

    fn names_of(object: &Value) -> Vec<String> {
        object["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn live_only_items_keep_their_place_and_config_items_its_order() {
        let config = json!({"spec": {"containers": [{"name": "c"}, {"name": "b"}, {"name": "e"}]}});
        let merged = merge(&containers(&["a", "b", "c", "d"]), &config);
        // As structured-merge-diff orders it: "b" follows "c" as the configuration says, and
        // "d", which only the live list has, stays right after "c".
        assert_eq!(names_of(&merged), ["a", "c", "d", "b", "e"]);
        assert_eq!(
            merged["spec"]["containers"][3],
            json!({"name": "b", "image": "b:live"})
        );
    }

    #[test]
    fn atomic_values_are_replaced_and_maps_merged() {
        let live = json!({"spec": {"selector": {"matchLabels": {"a": "1"}}, "template": {"metadata": {"labels": {"a": "1"}}}}});
        let config = json!({"spec": {"selector": {"matchLabels": {"b": "2"}}, "template": {"metadata": {"labels": {"b": "2"}}}}});
        let merged = merge(&live, &config);
        assert_eq!(
            merged["spec"]["selector"],
            json!({"matchLabels": {"b": "2"}})
        );
        assert_eq!(
            merged["spec"]["template"]["metadata"]["labels"],
            json!({"a": "1", "b": "2"})
        );
    }
}
