//! `metadata.managedFields`: who owns which fields, and how a non-apply write moves
//! ownership (apimachinery's `Updater.Update` behind its `managedFieldsUpdater`).

use serde_json::{Map, Value};

use super::fields::{Comparison, FieldSet, Scope, from_fields_v1, paths, to_fields_v1};

/// The operation a managed-fields entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Operation {
    /// A server-side apply.
    Apply,
    /// Any other write: create, replace, the other patch types.
    Update,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Self::Apply => "Apply",
            Self::Update => "Update",
        }
    }
}

/// One entry of `metadata.managedFields`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The field manager's name.
    pub(crate) manager: String,
    /// Apply or Update.
    pub(crate) operation: Operation,
    /// The apiVersion the fields were written through.
    pub(crate) api_version: String,
    /// The subresource written (`status`, `scale`), if any.
    pub(crate) subresource: Option<String>,
    /// When the manager last changed something.
    pub(crate) time: Option<String>,
    /// The fields the manager owns.
    pub(crate) fields: FieldSet,
}

impl Entry {
    /// Whether this entry belongs to the same manager identity as `other`. As with the real
    /// server, appliers are one identity across apiVersions, updaters one per apiVersion.
    pub(crate) fn same_identity(&self, other: &Entry) -> bool {
        self.manager == other.manager
            && self.operation == other.operation
            && self.subresource == other.subresource
            && (self.operation == Operation::Apply || self.api_version == other.api_version)
    }

    /// The manager as conflicts name it: `"kubectl"`, `"kubectl-edit" using apps/v1`,
    /// `"kubectl" with subresource "scale" using apps/v1`.
    pub(crate) fn describe(&self) -> String {
        let mut out = quote(&self.manager);
        if let Some(subresource) = &self.subresource {
            out.push_str(&format!(" with subresource {}", quote(subresource)));
        }
        if self.operation == Operation::Update {
            out.push_str(&format!(" using {}", self.api_version));
        }
        out
    }

    /// The sort key of the real server: operation, time, manager, apiVersion, subresource.
    fn sort_key(&self) -> (Operation, &str, &str, &str, &str) {
        (
            self.operation,
            self.time.as_deref().unwrap_or(""),
            &self.manager,
            &self.api_version,
            self.subresource.as_deref().unwrap_or(""),
        )
    }

    fn to_json(&self) -> Value {
        let mut entry = Map::new();
        entry.insert("manager".to_owned(), Value::from(self.manager.as_str()));
        entry.insert("operation".to_owned(), Value::from(self.operation.as_str()));
        entry.insert(
            "apiVersion".to_owned(),
            Value::from(self.api_version.as_str()),
        );
        if let Some(time) = &self.time {
            entry.insert("time".to_owned(), Value::from(time.as_str()));
        }
        entry.insert("fieldsType".to_owned(), Value::from("FieldsV1"));
        entry.insert("fieldsV1".to_owned(), to_fields_v1(&self.fields));
        if let Some(subresource) = &self.subresource {
            entry.insert("subresource".to_owned(), Value::from(subresource.as_str()));
        }
        Value::Object(entry)
    }

    fn from_json(entry: &Value) -> Option<Self> {
        let text = |name: &str| entry.get(name).and_then(Value::as_str).map(str::to_owned);
        let operation = match entry.get("operation").and_then(Value::as_str)? {
            "Apply" => Operation::Apply,
            "Update" => Operation::Update,
            _ => return None,
        };
        if text("fieldsType").is_some_and(|kind| kind != "FieldsV1") {
            return None;
        }
        let fields = match entry.get("fieldsV1") {
            Some(fields) => from_fields_v1(fields).ok()?,
            None => FieldSet::new(),
        };
        Some(Self {
            manager: text("manager")?,
            operation,
            api_version: text("apiVersion").unwrap_or_default(),
            subresource: text("subresource").filter(|s| !s.is_empty()),
            time: text("time"),
            fields,
        })
    }
}

/// A string quoted as Go's `%q` quotes plain text.
fn quote(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| format!("\"{text}\""))
}

/// The `metadata.managedFields` list of `object`, if it has a non-empty one.
fn managed_list(object: &Value) -> Option<&Vec<Value>> {
    object
        .get("metadata")?
        .get("managedFields")?
        .as_array()
        .filter(|entries| !entries.is_empty())
}

/// The managed-fields entries of `object` (entries that do not parse are skipped).
pub(crate) fn read(object: &Value) -> Vec<Entry> {
    managed_list(object)
        .map(|entries| entries.iter().filter_map(Entry::from_json).collect())
        .unwrap_or_default()
}

/// Writes `entries` into `object`'s `metadata.managedFields` in the real server's order,
/// dropping entries that own nothing (and the field when none are left).
pub(crate) fn write(object: &mut Value, mut entries: Vec<Entry>) {
    entries.retain(|entry| !entry.fields.is_empty());
    entries.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    let Some(object) = object.as_object_mut() else {
        return;
    };
    let metadata = object
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(metadata) = metadata.as_object_mut() else {
        return;
    };
    if entries.is_empty() {
        metadata.remove("managedFields");
    } else {
        let list = entries.iter().map(Entry::to_json).collect();
        metadata.insert("managedFields".to_owned(), Value::Array(list));
    }
}

/// The apiVersion of an object, or an empty string.
pub(crate) fn api_version(object: &Value) -> String {
    object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// Records a non-apply write of the main resource in `after`'s `metadata.managedFields`:
/// `manager` (operation Update) takes every field whose value changed or was added and keeps
/// the fields it had; every other manager loses the fields taken or removed; managers left
/// with nothing are dropped. `before` is the stored object (`None` for a create).
///
/// As with the real server, managed fields the write itself carries win over the stored
/// ones when they are a non-empty list (a client may reset ownership with `[{}]`).
pub(crate) fn record_update(before: Option<&Value>, after: &mut Value, manager: &str, now: &str) {
    record(before, after, manager, None, now);
}

/// Records a write of a subresource (`status`, `scale`) like [`record_update`], on an entry
/// with `subresource` set. A `status` write owns fields under `status` only; other
/// subresources own fields of the main resource.
pub(crate) fn record_subresource_update(
    before: Option<&Value>,
    after: &mut Value,
    manager: &str,
    subresource: &str,
    now: &str,
) {
    record(before, after, manager, Some(subresource), now);
}

fn record(
    before: Option<&Value>,
    after: &mut Value,
    manager: &str,
    subresource: Option<&str>,
    now: &str,
) {
    if !after.is_object() {
        return;
    }
    let scope = match subresource {
        Some("status") => Scope::Status,
        _ => Scope::Main,
    };
    let mut entries = match managed_list(after) {
        Some(_) => read(after),
        None => before.map(read).unwrap_or_default(),
    };
    let old = before.map(|before| paths(before, scope, false).unwrap_or_default());
    let new = paths(after, scope, false).unwrap_or_default();
    let comparison = Comparison::of(old.as_ref(), &new);
    let changed = comparison.changed();
    for entry in &mut entries {
        entry
            .fields
            .retain(|path| !changed.contains(path) && !comparison.removed.contains(path));
    }
    if !changed.is_empty() {
        let writer = Entry {
            manager: manager.to_owned(),
            operation: Operation::Update,
            api_version: api_version(after),
            subresource: subresource.map(str::to_owned),
            time: Some(now.to_owned()),
            fields: changed,
        };
        match entries
            .iter_mut()
            .find(|entry| entry.same_identity(&writer))
        {
            Some(entry) => {
                entry.fields.extend(writer.fields);
                entry.time = writer.time;
            }
            None => entries.push(writer),
        }
    }
    write(after, entries);
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn fields_of(object: &Value, manager: &str) -> Option<Value> {
        object["metadata"]["managedFields"]
            .as_array()?
            .iter()
            .find(|entry| entry["manager"] == manager)
            .map(|entry| entry["fieldsV1"].clone())
    }

    fn deployment(replicas: u32, image: &str) -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "uid": "u1", "resourceVersion": "7", "labels": {"app": "web"}},
            "spec": {
                "replicas": replicas,
                "template": {"spec": {"containers": [{"name": "app", "image": image}]}},
            },
            "status": {"replicas": 1},
        })
    }

    #[test]
    fn a_create_owns_every_field_but_the_servers() {
        let mut created = deployment(1, "img:v1");
        record_update(None, &mut created, "kubectl-create", "2025-01-01T00:00:00Z");
        let entry = &created["metadata"]["managedFields"][0];
        assert_eq!(entry["manager"], "kubectl-create");
        assert_eq!(entry["operation"], "Update");
        assert_eq!(entry["apiVersion"], "apps/v1");
        assert_eq!(entry["time"], "2025-01-01T00:00:00Z");
        assert_eq!(entry["fieldsType"], "FieldsV1");
        assert_eq!(
            entry["fieldsV1"],
            json!({
                "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                "f:spec": {
                    "f:replicas": {},
                    "f:template": {"f:spec": {"f:containers": {
                        "k:{\"name\":\"app\"}": {".": {}, "f:image": {}, "f:name": {}}
                    }}},
                },
            })
        );
    }

    #[test]
    fn an_update_takes_changed_fields_from_other_managers() {
        let mut created = deployment(1, "img:v1");
        record_update(None, &mut created, "kubectl-create", "t1");
        let mut scaled = created.clone();
        scaled["spec"]["replicas"] = json!(3);
        scaled["status"]["replicas"] = json!(3);
        record_update(Some(&created), &mut scaled, "kubectl-scale", "t2");
        assert_eq!(
            fields_of(&scaled, "kubectl-scale"),
            Some(json!({"f:spec": {"f:replicas": {}}}))
        );
        let creator = fields_of(&scaled, "kubectl-create").unwrap();
        assert_eq!(creator["f:spec"].get("f:replicas"), None);
        assert!(creator["f:spec"]["f:template"].is_object());
        assert_eq!(scaled["metadata"]["managedFields"][0]["time"], "t1");
    }

    #[test]
    fn a_write_that_changes_nothing_changes_no_ownership_and_removals_are_dropped() {
        let mut created = deployment(1, "img:v1");
        record_update(None, &mut created, "a", "t1");
        let mut same = created.clone();
        record_update(Some(&created), &mut same, "b", "t2");
        assert_eq!(same, created);
        let mut stripped = created.clone();
        if let Some(metadata) = stripped["metadata"].as_object_mut() {
            metadata.remove("labels");
            metadata.remove("managedFields");
        }
        record_update(Some(&created), &mut stripped, "b", "t2");
        assert_eq!(fields_of(&stripped, "a").unwrap().get("f:metadata"), None);
        assert_eq!(fields_of(&stripped, "b"), None);
    }

    #[test]
    fn client_supplied_managed_fields_reset_ownership() {
        let mut created = deployment(1, "img:v1");
        record_update(None, &mut created, "a", "t1");
        let mut reset = created.clone();
        reset["metadata"]["managedFields"] = json!([{}]);
        reset["spec"]["replicas"] = json!(2);
        record_update(Some(&created), &mut reset, "b", "t2");
        let managers: Vec<&Value> = reset["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["manager"])
            .collect();
        assert_eq!(managers, [&json!("b")]);
    }

    #[test]
    fn status_and_scale_writes_record_their_subresource() {
        let mut created = deployment(1, "img:v1");
        record_update(None, &mut created, "kubectl", "t1");
        let mut status = created.clone();
        status["status"]["replicas"] = json!(2);
        record_subresource_update(
            Some(&created),
            &mut status,
            "kube-controller-manager",
            "status",
            "t2",
        );
        let entry = status["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["manager"] == "kube-controller-manager")
            .unwrap()
            .clone();
        assert_eq!(entry["subresource"], "status");
        assert_eq!(entry["fieldsV1"], json!({"f:status": {"f:replicas": {}}}));
        let mut scaled = status.clone();
        scaled["spec"]["replicas"] = json!(4);
        record_subresource_update(Some(&status), &mut scaled, "kubectl", "scale", "t3");
        let entries = read(&scaled);
        let scale = entries
            .iter()
            .find(|e| e.subresource.as_deref() == Some("scale"))
            .unwrap();
        assert_eq!(
            scale.describe(),
            "\"kubectl\" with subresource \"scale\" using apps/v1"
        );
        assert_eq!(
            to_fields_v1(&scale.fields),
            json!({"f:spec": {"f:replicas": {}}})
        );
    }
}
