//! [`Store`]: every object of the simulated cluster, its resourceVersions, and the history
//! of changes that watches stream and resume from.

use std::collections::{BTreeMap, VecDeque};

use rand::Rng as _;
use rand::rngs::StdRng;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::error::ApiError;
use super::resources::{RESOURCES, ResourceType};
use super::selector::{FieldSelector, LabelSelector};

/// Whether a write is kept or only shown (`dryRun=All`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Commit {
    Store,
    Preview,
}

/// How many changes are kept for watches to resume from; older resourceVersions get
/// 410 Gone, as after an etcd compaction.
pub(crate) const HISTORY: usize = 10_000;

/// Changes buffered for each watcher before it is cut off.
const WATCH_BUFFER: usize = 16_384;

/// Where an object lives: its type (an index into [`RESOURCES`]), namespace and name.
pub(crate) type ObjectKey = (usize, String, String);

/// What happened to an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChangeType {
    /// Created.
    Added,
    /// Changed.
    Modified,
    /// Deleted.
    Deleted,
}

impl ChangeType {
    /// The watch event `type`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One change, as watches see it.
#[derive(Clone, Debug)]
pub(crate) struct Change {
    /// The resourceVersion the change produced.
    pub(crate) revision: u64,
    /// The object's type.
    pub(crate) resource: &'static ResourceType,
    /// The object's namespace (empty for cluster-scoped objects).
    pub(crate) namespace: String,
    /// What happened.
    pub(crate) change: ChangeType,
    /// The object after the change (before deletion, for a deletion).
    pub(crate) object: Value,
}

/// The objects of the cluster.
#[derive(Debug)]
pub(crate) struct Store {
    objects: BTreeMap<ObjectKey, Value>,
    revision: u64,
    history: VecDeque<Change>,
    changes: broadcast::Sender<Change>,
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

/// The index of a resource type in [`RESOURCES`].
pub(crate) fn index_of(r: &ResourceType) -> usize {
    RESOURCES
        .iter()
        .position(|x| std::ptr::eq(x, r))
        .expect("a served resource type")
}

impl Store {
    /// An empty cluster, at resourceVersion 1.
    pub(crate) fn new() -> Self {
        let (changes, _) = broadcast::channel(WATCH_BUFFER);
        Self {
            objects: BTreeMap::new(),
            revision: 1,
            history: VecDeque::new(),
            changes,
        }
    }

    /// The latest resourceVersion.
    pub(crate) fn revision(&self) -> u64 {
        self.revision
    }

    /// The object, or 404.
    pub(crate) fn get(
        &self,
        r: &'static ResourceType,
        namespace: &str,
        name: &str,
    ) -> Result<Value, ApiError> {
        self.objects
            .get(&(index_of(r), ns(r, namespace), name.to_owned()))
            .cloned()
            .ok_or_else(|| ApiError::not_found(r, name))
    }

    /// The object, if it exists.
    pub(crate) fn find(
        &self,
        r: &'static ResourceType,
        namespace: &str,
        name: &str,
    ) -> Option<&Value> {
        self.objects
            .get(&(index_of(r), ns(r, namespace), name.to_owned()))
    }

    /// Objects of type `r` (in `namespace`, or all namespaces) that match the selectors, in
    /// name order, and the resourceVersion of the list.
    pub(crate) fn list(
        &self,
        r: &'static ResourceType,
        namespace: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
    ) -> (Vec<Value>, u64) {
        let index = index_of(r);
        let items = self
            .objects
            .iter()
            .filter(|((i, n, _), _)| {
                *i == index && namespace.is_none_or(|want| !r.namespaced || n == want)
            })
            .map(|(_, o)| o)
            .filter(|o| labels.matches(&o["metadata"]["labels"]) && fields.matches(o))
            .cloned()
            .collect();
        (items, self.revision)
    }

    /// Every object of every type in `namespace` whose owner references include `uid`.
    pub(crate) fn dependents(
        &self,
        namespace: &str,
        uid: &str,
    ) -> Vec<(&'static ResourceType, String)> {
        self.objects
            .iter()
            .filter(|((_, n, _), _)| n == namespace)
            .filter(|(_, o)| {
                o["metadata"]["ownerReferences"]
                    .as_array()
                    .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid))
            })
            .map(|((i, _, name), _)| (&RESOURCES[*i], name.clone()))
            .collect()
    }

    /// Whether the namespace exists.
    pub(crate) fn namespace_exists(&self, namespace: &str) -> bool {
        self.find(super::resources::kind("Namespace"), "", namespace)
            .is_some()
    }

    /// Creates `object` (whose metadata is filled in: uid, resourceVersion,
    /// creationTimestamp, generation, namespace) and returns it as stored.
    pub(crate) fn create(
        &mut self,
        r: &'static ResourceType,
        namespace: &str,
        object: Value,
        now: &str,
        rng: &mut StdRng,
    ) -> Result<Value, ApiError> {
        self.create_as(r, namespace, object, now, rng, Commit::Store)
    }

    /// What [`create`](Self::create) would store (a dry run: every check, nothing kept,
    /// no resourceVersion).
    pub(crate) fn preview_create(
        &mut self,
        r: &'static ResourceType,
        namespace: &str,
        object: Value,
        now: &str,
        rng: &mut StdRng,
    ) -> Result<Value, ApiError> {
        self.create_as(r, namespace, object, now, rng, Commit::Preview)
    }

    fn create_as(
        &mut self,
        r: &'static ResourceType,
        namespace: &str,
        mut object: Value,
        now: &str,
        rng: &mut StdRng,
        commit: Commit,
    ) -> Result<Value, ApiError> {
        if !object.is_object() {
            return Err(ApiError::bad_request("the body must be a JSON object"));
        }
        let namespace = ns(r, namespace);
        if r.namespaced && !self.namespace_exists(&namespace) {
            return Err(ApiError::not_found(
                super::resources::kind("Namespace"),
                &namespace,
            ));
        }
        let mut name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if name.is_empty() {
            let Some(prefix) = object["metadata"]["generateName"].as_str() else {
                return Err(ApiError::invalid(
                    r,
                    "",
                    "metadata.name: Required value: name or generateName is required",
                ));
            };
            name = format!("{prefix}{}", random_suffix(rng, 5));
        }
        if let Some(problem) = invalid_name(&name) {
            return Err(ApiError::invalid(
                r,
                &name,
                format!("metadata.name: Invalid value: \"{name}\": {problem}"),
            ));
        }
        let key = (index_of(r), namespace.clone(), name.clone());
        if self.objects.contains_key(&key) {
            return Err(ApiError::already_exists(r, &name));
        }
        if let Some(body_ns) = object["metadata"]["namespace"].as_str()
            && r.namespaced
            && body_ns != namespace
        {
            return Err(ApiError::bad_request(format!(
                "the namespace of the provided object ({body_ns}) does not match the namespace sent on the request ({namespace})"
            )));
        }
        if !object["metadata"].is_object() {
            object["metadata"] = json!({});
        }
        let metadata = object["metadata"]
            .as_object_mut()
            .expect("metadata is an object");
        metadata.insert("name".into(), json!(name));
        if r.namespaced {
            metadata.insert("namespace".into(), json!(namespace));
        } else {
            metadata.remove("namespace");
        }
        metadata.insert("uid".into(), json!(uid(rng)));
        metadata.remove("resourceVersion");
        metadata.insert("creationTimestamp".into(), json!(now));
        metadata.remove("deletionTimestamp");
        if r.generation {
            metadata.insert("generation".into(), json!(1));
        }
        object["apiVersion"] = json!(r.api_version());
        object["kind"] = json!(r.kind);
        if r.status && object.get("status").is_none() {
            object["status"] = json!({});
        }
        if r.kind == "Service" {
            self.allocate_cluster_ip(&mut object, &name, rng)?;
        }
        if commit == Commit::Preview {
            return Ok(object);
        }
        self.revision += 1;
        object["metadata"]["resourceVersion"] = json!(self.revision.to_string());
        self.objects.insert(key, object.clone());
        self.record(r, &namespace, ChangeType::Added, object.clone());
        Ok(object)
    }

    /// Gives a new Service its cluster IP from 10.96.0.0/16 (the one it asks for, when free),
    /// as the API server's allocator does; headless and ExternalName Services get none.
    fn allocate_cluster_ip(
        &self,
        service: &mut Value,
        name: &str,
        rng: &mut StdRng,
    ) -> Result<(), ApiError> {
        let spec = &service["spec"];
        if spec["type"] == "ExternalName" {
            return Ok(());
        }
        if spec["clusterIP"] == "None" {
            service["spec"]["clusterIPs"] = json!(["None"]);
            return Ok(());
        }
        let service_type = super::resources::kind("Service");
        let taken: std::collections::HashSet<String> = self
            .objects
            .iter()
            .filter(|((index, _, _), _)| *index == index_of(service_type))
            .filter_map(|(_, s)| s["spec"]["clusterIP"].as_str().map(str::to_owned))
            .collect();
        let ip = match spec["clusterIP"].as_str().filter(|ip| !ip.is_empty()) {
            Some(asked) if taken.contains(asked) => {
                return Err(ApiError::invalid(
                    service_type,
                    name,
                    format!(
                        "spec.clusterIPs: Invalid value: []string{{\"{asked}\"}}: failed to allocate IP {asked}: provided IP is already allocated"
                    ),
                ));
            }
            Some(asked) => asked.to_owned(),
            None => loop {
                // 10.96.0.1 is the `kubernetes` Service's and 10.96.0.10 the DNS's.
                let ip = format!(
                    "10.96.{}.{}",
                    rng.random_range(0..=255_u16),
                    rng.random_range(2..=254_u16)
                );
                if ip != "10.96.0.10" && !taken.contains(&ip) {
                    break ip;
                }
            },
        };
        service["spec"]["clusterIP"] = json!(ip);
        service["spec"]["clusterIPs"] = json!([ip]);
        Ok(())
    }

    /// Replaces the object with `object`. A `metadata.resourceVersion` in `object` must be
    /// the current one (409 otherwise). With `status_only` only `.status` changes (the
    /// status subresource); otherwise `.status` is kept for types with a status subresource.
    /// Identity metadata (uid, creationTimestamp) never changes; generation grows when the
    /// desired state does. An update that changes nothing keeps the resourceVersion.
    pub(crate) fn update(
        &mut self,
        r: &'static ResourceType,
        namespace: &str,
        name: &str,
        object: Value,
        status_only: bool,
    ) -> Result<Value, ApiError> {
        self.update_as(r, namespace, name, object, status_only, Commit::Store)
    }

    /// What [`update`](Self::update) would store (a dry run: every check, nothing kept, the
    /// resourceVersion unchanged).
    pub(crate) fn preview_update(
        &mut self,
        r: &'static ResourceType,
        namespace: &str,
        name: &str,
        object: Value,
        status_only: bool,
    ) -> Result<Value, ApiError> {
        self.update_as(r, namespace, name, object, status_only, Commit::Preview)
    }

    fn update_as(
        &mut self,
        r: &'static ResourceType,
        namespace: &str,
        name: &str,
        mut object: Value,
        status_only: bool,
        commit: Commit,
    ) -> Result<Value, ApiError> {
        let namespace = ns(r, namespace);
        let key = (index_of(r), namespace.clone(), name.to_owned());
        let current = self
            .objects
            .get(&key)
            .ok_or_else(|| ApiError::not_found(r, name))?;
        if !object.is_object() {
            return Err(ApiError::bad_request("the body must be a JSON object"));
        }
        if let Some(body_name) = object["metadata"]["name"].as_str()
            && body_name != name
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        if let Some(rv) = object["metadata"]["resourceVersion"].as_str()
            && !rv.is_empty()
            && rv != current["metadata"]["resourceVersion"]
        {
            return Err(ApiError::conflict(r, name));
        }
        if status_only {
            let status = object.get("status").cloned().unwrap_or(Value::Null);
            object = current.clone();
            object["status"] = status;
        } else if r.status {
            object["status"] = current.get("status").cloned().unwrap_or_else(|| json!({}));
        }
        // Identity and server-managed metadata come from the stored object.
        for field in [
            "uid",
            "creationTimestamp",
            "generation",
            "namespace",
            "name",
            "resourceVersion",
        ] {
            match current["metadata"].get(field) {
                Some(v) => object["metadata"][field] = v.clone(),
                None => {
                    if let Some(m) = object["metadata"].as_object_mut() {
                        m.remove(field);
                    }
                }
            }
        }
        object["apiVersion"] = json!(r.api_version());
        object["kind"] = json!(r.kind);
        if object == *current {
            return Ok(object);
        }
        if r.generation && desired_state(&object) != desired_state(current) {
            let generation = current["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
            object["metadata"]["generation"] = json!(generation);
        }
        if commit == Commit::Preview {
            return Ok(object);
        }
        self.revision += 1;
        object["metadata"]["resourceVersion"] = json!(self.revision.to_string());
        self.objects.insert(key, object.clone());
        self.record(r, &namespace, ChangeType::Modified, object.clone());
        Ok(object)
    }

    /// Deletes the object and returns it as it was.
    pub(crate) fn delete(
        &mut self,
        r: &'static ResourceType,
        namespace: &str,
        name: &str,
    ) -> Result<Value, ApiError> {
        let namespace = ns(r, namespace);
        let mut object = self
            .objects
            .remove(&(index_of(r), namespace.clone(), name.to_owned()))
            .ok_or_else(|| ApiError::not_found(r, name))?;
        self.revision += 1;
        object["metadata"]["resourceVersion"] = json!(self.revision.to_string());
        self.record(r, &namespace, ChangeType::Deleted, object.clone());
        Ok(object)
    }

    /// Every object in `namespace`, of every type (for deleting a namespace).
    pub(crate) fn in_namespace(&self, namespace: &str) -> Vec<(&'static ResourceType, String)> {
        self.objects
            .keys()
            .filter(|(i, n, _)| n == namespace && RESOURCES[*i].namespaced)
            .map(|(i, _, name)| (&RESOURCES[*i], name.clone()))
            .collect()
    }

    /// The changes after `revision` and a receiver for those to come, taken together so
    /// that nothing falls between them; 410 Gone when `revision` is older than the history.
    pub(crate) fn watch_from(
        &self,
        revision: u64,
    ) -> Result<(Vec<Change>, broadcast::Receiver<Change>), ApiError> {
        let oldest = self
            .history
            .front()
            .map_or(self.revision, |c| c.revision - 1);
        if revision < oldest {
            return Err(ApiError::gone(format!(
                "too old resource version: {revision} ({oldest})"
            )));
        }
        let past = self
            .history
            .iter()
            .filter(|c| c.revision > revision)
            .cloned()
            .collect();
        Ok((past, self.changes.subscribe()))
    }

    /// A receiver for the changes to come.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    fn record(
        &mut self,
        r: &'static ResourceType,
        namespace: &str,
        change: ChangeType,
        object: Value,
    ) {
        let change = Change {
            revision: self.revision,
            resource: r,
            namespace: namespace.to_owned(),
            change,
            object,
        };
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(change.clone());
        // No receiver is fine: nobody watches.
        let _ = self.changes.send(change);
    }
}

/// The namespace key of an object of `r`: empty for cluster-scoped types.
fn ns(r: &ResourceType, namespace: &str) -> String {
    if r.namespaced {
        namespace.to_owned()
    } else {
        String::new()
    }
}

/// Everything but metadata and status: what `generation` counts changes of.
fn desired_state(object: &Value) -> Value {
    let mut o = object.clone();
    if let Some(m) = o.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
    }
    o
}

/// Why `name` is not a DNS-1123 subdomain, if it is not.
fn invalid_name(name: &str) -> Option<&'static str> {
    let valid = !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    (!valid).then_some(
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
    )
}

/// A random suffix of lowercase consonants and digits, as Kubernetes generates names.
pub(crate) fn random_suffix(rng: &mut StdRng, len: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// A random version-4 UUID.
fn uid(rng: &mut StdRng) -> String {
    let b: [u8; 16] = rng.random();
    format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-4{:01x}{:02x}-{:01x}{:01x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        b[0],
        b[1],
        b[2],
        b[3],
        b[4],
        b[5],
        b[6] & 0x0f,
        b[7],
        8 | (b[8] & 0x3),
        b[8] >> 4,
        b[9],
        b[10],
        b[11],
        b[12],
        b[13],
        b[14],
        b[15]
    )
}

#[cfg(test)]
mod tests;
