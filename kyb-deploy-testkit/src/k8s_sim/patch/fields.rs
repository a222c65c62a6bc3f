//! Field paths and field sets, the currency of server-side apply, and their `FieldsV1`
//! encoding in `metadata.managedFields`.
//!
//! A path is a list of encoded path elements, exactly as `FieldsV1` spells them:
//! `f:<field>` for a map field, `k:{"name":"app"}` for an item of an associative list (the
//! JSON of its key fields, sorted), `v:"x"` for an item of a set, `i:<n>` for a list
//! position. A field set holds the paths that are members; in `FieldsV1` a member with
//! children carries a `"."` entry and a member without any is `{}`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::PatchError;
use super::json::json_equal;
use super::schema::{ListKind, is_atomic_map, key_default, list_kind};

/// A field path: encoded path elements from the object root.
pub(crate) type FieldPath = Vec<String>;

/// A set of field paths.
pub(crate) type FieldSet = BTreeSet<FieldPath>;

/// Which part of an object a write owns fields in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scope {
    /// The main resource: everything but `status` and the fields the server manages.
    Main,
    /// The `status` subresource: `status` only.
    Status,
}

/// `metadata` fields the server manages, never owned by anyone (apimachinery's `stripMeta`).
const SERVER_METADATA: [&str; 8] = [
    "name",
    "namespace",
    "creationTimestamp",
    "selfLink",
    "uid",
    "generation",
    "managedFields",
    "resourceVersion",
];

/// Whether the field at `path` (field names from the root) is outside `scope`.
fn ignored(scope: Scope, path: &[String]) -> bool {
    match (scope, path) {
        (Scope::Status, [first, ..]) => first != "status",
        (Scope::Main, [first]) => ["apiVersion", "kind", "status"].contains(&first.as_str()),
        (Scope::Main, [first, second]) => {
            first == "metadata" && SERVER_METADATA.contains(&second.as_str())
        }
        _ => false,
    }
}

/// The identity of a list item as a path element, or `None` when the item lacks a key
/// field (or, in a set, is not a scalar).
pub(crate) fn item_element(item: &Value, kind: ListKind) -> Option<String> {
    match kind {
        ListKind::Atomic => None,
        ListKind::Set => (!item.is_object() && !item.is_array())
            .then(|| format!("v:{}", serde_json::to_string(item).unwrap_or_default())),
        ListKind::Map { apply_keys, .. } => {
            let fields = item.as_object()?;
            let mut names = apply_keys.to_vec();
            names.sort_unstable();
            let mut key = Map::new();
            for name in names {
                let value = match fields.get(name) {
                    Some(value) if !value.is_null() => value.clone(),
                    _ => key_default(name)?,
                };
                if value.is_object() || value.is_array() {
                    return None;
                }
                key.insert(name.to_owned(), value);
            }
            let json = serde_json::to_string(&Value::Object(key)).unwrap_or_default();
            Some(format!("k:{json}"))
        }
    }
}

/// What a path of an object holds.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Node {
    /// A leaf: a scalar, `null`, an atomic list or map, an empty list or map.
    Leaf(Value),
    /// An item of an associative list, which has fields of its own.
    Item,
    /// A non-empty map, or a non-empty list that is not atomic: not a field of its own for
    /// apply, but a write that adds or removes it changes it.
    Container,
}

/// Every path of an object with what it holds.
pub(crate) type Paths = BTreeMap<FieldPath, Node>;

/// The paths of `object` in `scope`. With `strict`, an associative list item without its
/// key fields or with the key of an earlier item is an error (the applied configuration);
/// otherwise such a list counts as one atomic leaf (a stored object written by other means).
pub(crate) fn paths(object: &Value, scope: Scope, strict: bool) -> Result<Paths, PatchError> {
    let mut out = Paths::new();
    if let Value::Object(map) = object {
        let mut walk = Walk {
            scope,
            strict,
            names: Vec::new(),
            path: Vec::new(),
            out: &mut out,
        };
        walk.fields(map)?;
    }
    Ok(out)
}

/// The fields an applied configuration sets: its leaves and list items (apimachinery's
/// `ToFieldSet`).
pub(crate) fn field_set(paths: &Paths) -> FieldSet {
    paths
        .iter()
        .filter(|(_, node)| !matches!(node, Node::Container))
        .map(|(path, _)| path.clone())
        .collect()
}

struct Walk<'a> {
    scope: Scope,
    strict: bool,
    names: Vec<String>,
    path: FieldPath,
    out: &'a mut Paths,
}

impl Walk<'_> {
    fn fields(&mut self, map: &Map<String, Value>) -> Result<(), PatchError> {
        for (key, value) in map {
            self.names.push(key.clone());
            if !ignored(self.scope, &self.names) {
                self.path.push(format!("f:{key}"));
                self.value(value)?;
                self.path.pop();
            }
            self.names.pop();
        }
        Ok(())
    }

    fn value(&mut self, value: &Value) -> Result<(), PatchError> {
        match value {
            Value::Object(map) if !map.is_empty() && !is_atomic_map(&self.names) => {
                self.out.insert(self.path.clone(), Node::Container);
                self.fields(map)
            }
            Value::Array(items) if !items.is_empty() => self.list(items, value),
            _ => {
                self.out
                    .insert(self.path.clone(), Node::Leaf(value.clone()));
                Ok(())
            }
        }
    }

    fn list(&mut self, items: &[Value], whole: &Value) -> Result<(), PatchError> {
        let kind = list_kind(&self.names);
        let Some(elements) = self.elements(items, kind)? else {
            self.out
                .insert(self.path.clone(), Node::Leaf(whole.clone()));
            return Ok(());
        };
        self.out.insert(self.path.clone(), Node::Container);
        for (item, element) in items.iter().zip(elements) {
            self.path.push(element);
            match (kind, item) {
                (ListKind::Map { .. }, Value::Object(fields)) => {
                    self.out.insert(self.path.clone(), Node::Item);
                    self.fields(fields)?;
                }
                _ => {
                    self.out.insert(self.path.clone(), Node::Leaf(item.clone()));
                }
            }
            self.path.pop();
        }
        Ok(())
    }

    /// The path elements of the items, or `None` when the list is a leaf.
    fn elements(&self, items: &[Value], kind: ListKind) -> Result<Option<Vec<String>>, PatchError> {
        if kind == ListKind::Atomic {
            return Ok(None);
        }
        let mut seen = BTreeSet::new();
        let mut elements = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            let problem = match item_element(item, kind) {
                Some(element) if seen.insert(element.clone()) => {
                    elements.push(element);
                    continue;
                }
                Some(element) => format!("duplicate entries for key {}", display_element(&element)),
                None => "associative list item without its key fields".to_owned(),
            };
            if !self.strict {
                return Ok(None);
            }
            return Err(PatchError::Unprocessable(format!(
                "{}: element {index}: {problem}",
                display_path(&self.path)
            )));
        }
        Ok(Some(elements))
    }
}

/// The maps and lists an empty object of a built-in kind already has, Go zero values of
/// value-typed struct fields (`metadata`, `spec`, a Deployment's `spec.template.spec`, the
/// `containers` list): a create does not add them, so it does not own them as such.
const SKELETON: [&str; 8] = [
    "f:metadata",
    "f:spec",
    "f:status",
    "f:template",
    "f:strategy",
    "f:updateStrategy",
    "f:jobTemplate",
    "f:containers",
];

/// What changed between two versions of an object, as apimachinery's `Compare` reports it.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Comparison {
    /// Paths only the new version has.
    pub(crate) added: FieldSet,
    /// Leaves both versions have, with different values.
    pub(crate) modified: FieldSet,
    /// Paths only the old version has.
    pub(crate) removed: FieldSet,
}

impl Comparison {
    /// Compares two versions of an object; `old` is `None` for a create.
    pub(crate) fn of(old: Option<&Paths>, new: &Paths) -> Self {
        let empty = Paths::new();
        let created = old.is_none();
        let old = old.unwrap_or(&empty);
        let mut comparison = Self::default();
        for (path, node) in new {
            match (old.get(path), node) {
                (None, Node::Container)
                    if created
                        && path
                            .iter()
                            .all(|element| SKELETON.contains(&element.as_str())) => {}
                (None, _) => {
                    comparison.added.insert(path.clone());
                }
                (Some(Node::Leaf(before)), Node::Leaf(after)) if json_equal(before, after) => {}
                (Some(Node::Item), Node::Item) | (Some(Node::Container), Node::Container) => {}
                // An empty map or list that gains items (or loses them all) is the same field.
                (Some(Node::Leaf(empty)), Node::Container) if is_empty_collection(empty) => {}
                (Some(Node::Container), Node::Leaf(empty)) if is_empty_collection(empty) => {}
                (Some(_), _) => {
                    comparison.modified.insert(path.clone());
                }
            }
        }
        comparison.removed = old
            .keys()
            .filter(|path| !new.contains_key(*path))
            .cloned()
            .collect();
        comparison
    }

    /// The fields a write took: added or modified.
    pub(crate) fn changed(&self) -> FieldSet {
        self.added.union(&self.modified).cloned().collect()
    }
}

fn is_empty_collection(value: &Value) -> bool {
    match value {
        Value::Object(map) => map.is_empty(),
        Value::Array(items) => items.is_empty(),
        _ => false,
    }
}

/// A field set as a tree, for encoding and for walking an object alongside it.
#[derive(Debug, Default)]
pub(crate) struct FieldTree {
    /// Whether the path that leads here is itself a member.
    pub(crate) member: bool,
    /// The subtrees, by path element.
    pub(crate) children: BTreeMap<String, FieldTree>,
}

impl FieldTree {
    /// The tree of a field set.
    pub(crate) fn of(set: &FieldSet) -> Self {
        let mut root = Self::default();
        for path in set {
            let node = path.iter().fold(&mut root, |node, element| {
                node.children.entry(element.clone()).or_default()
            });
            node.member = true;
        }
        root
    }
}

/// The `FieldsV1` JSON of a field set.
pub(crate) fn to_fields_v1(set: &FieldSet) -> Value {
    fn encode(tree: &FieldTree) -> Map<String, Value> {
        let mut out = Map::new();
        for (element, child) in &tree.children {
            let mut encoded = encode(child);
            if child.member && !encoded.is_empty() {
                encoded.insert(".".to_owned(), Value::Object(Map::new()));
            }
            out.insert(element.clone(), Value::Object(encoded));
        }
        out
    }
    Value::Object(encode(&FieldTree::of(set)))
}

/// The field set a `FieldsV1` JSON describes, or why it is not one.
pub(crate) fn from_fields_v1(fields: &Value) -> Result<FieldSet, String> {
    fn decode(
        map: &Map<String, Value>,
        prefix: &mut FieldPath,
        out: &mut FieldSet,
    ) -> Result<(), String> {
        for (element, child) in map {
            if element == "." {
                if !prefix.is_empty() {
                    out.insert(prefix.clone());
                }
                continue;
            }
            if !["f:", "k:", "v:", "i:"]
                .iter()
                .any(|kind| element.starts_with(kind))
            {
                return Err(format!("unexpected path element {element:?}"));
            }
            let Value::Object(child) = child else {
                return Err(format!("the value of {element:?} is not an object"));
            };
            prefix.push(element.clone());
            if child.is_empty() {
                out.insert(prefix.clone());
            } else {
                decode(child, prefix, out)?;
            }
            prefix.pop();
        }
        Ok(())
    }
    let Value::Object(map) = fields else {
        return Err("fieldsV1 is not an object".to_owned());
    };
    let mut out = FieldSet::new();
    decode(map, &mut Vec::new(), &mut out)?;
    Ok(out)
}

/// A path as the API server prints it in conflicts: `.spec.template.spec.containers[name="app"].image`.
pub(crate) fn display_path(path: &[String]) -> String {
    path.iter()
        .map(|element| display_element(element))
        .collect()
}

fn display_element(element: &str) -> String {
    if let Some(field) = element.strip_prefix("f:") {
        return format!(".{field}");
    }
    if let Some(key) = element.strip_prefix("k:")
        && let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(key)
    {
        let parts: Vec<String> = fields
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        return format!("[{}]", parts.join(","));
    }
    if let Some(value) = element.strip_prefix("v:") {
        return format!("[={value}]");
    }
    match element.strip_prefix("i:") {
        Some(index) => format!("[{index}]"),
        None => element.to_owned(),
    }
}

#[cfg(test)]
mod tests;
