//! [`Ctx`]: what one reconcile pass works with: the store, the generator of names, the faults
//! and the simulated time; writes that change nothing are skipped, and every write that
//! does is noted so the loop knows to run again.

use std::time::SystemTime;

use rand::rngs::StdRng;
use serde_json::Value;

use super::super::cluster::timestamp;
use super::super::faults::FaultSet;
use super::super::resources::ResourceType;
use super::super::selector::{FieldSelector, LabelSelector};
use super::super::store::Store;
use super::json::{name, namespace, uid};

/// The state one pass of the controllers reads and writes.
pub(super) struct Ctx<'a> {
    /// Every object.
    pub(super) store: &'a mut Store,
    /// Names of pods and events.
    pub(super) rng: &'a mut StdRng,
    /// Faults in force, per image.
    pub(super) faults: &'a FaultSet,
    /// Simulated time of the pass.
    pub(super) now: SystemTime,
    /// Whether the pass wrote anything.
    pub(super) changed: bool,
}

impl Ctx<'_> {
    /// The time of the pass as the API writes timestamps.
    pub(super) fn stamp(&self) -> String {
        timestamp(self.now)
    }

    /// Every object of `r`, in every namespace.
    pub(super) fn all(&self, r: &'static ResourceType) -> Vec<Value> {
        self.list(r, None, &FieldSelector::default())
    }

    /// Objects of `r` in `ns`.
    pub(super) fn in_namespace(&self, r: &'static ResourceType, ns: &str) -> Vec<Value> {
        self.list(r, Some(ns), &FieldSelector::default())
    }

    /// Objects of `r` matching a field selector, in `ns` or everywhere.
    pub(super) fn list(
        &self,
        r: &'static ResourceType,
        ns: Option<&str>,
        fields: &FieldSelector,
    ) -> Vec<Value> {
        self.store.list(r, ns, &LabelSelector::default(), fields).0
    }

    /// Replaces the object (its status is kept); `None` when it is gone.
    pub(super) fn update(&mut self, r: &'static ResourceType, object: Value) -> Option<Value> {
        self.write(r, object, false)
    }

    /// Replaces the object's status, as a write to the status subresource.
    pub(super) fn update_status(
        &mut self,
        r: &'static ResourceType,
        object: Value,
    ) -> Option<Value> {
        self.write(r, object, r.status)
    }

    fn write(
        &mut self,
        r: &'static ResourceType,
        mut object: Value,
        status_only: bool,
    ) -> Option<Value> {
        let (ns, object_name) = (namespace(&object).to_owned(), name(&object).to_owned());
        // The pass holds the lock: the object read is the current one, so there is no
        // precondition to check (and a second write of the same object in one pass must not
        // fail on the resourceVersion of the first).
        if let Some(m) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
        }
        let before = self.store.find(r, &ns, &object_name)?["metadata"]["resourceVersion"].clone();
        let after = self
            .store
            .update(r, &ns, &object_name, object, status_only)
            .ok()?;
        if after["metadata"]["resourceVersion"] != before {
            self.changed = true;
        }
        Some(after)
    }

    /// Creates an object in `ns`; `None` when the store refuses it (a name taken, a
    /// namespace gone).
    pub(super) fn create(
        &mut self,
        r: &'static ResourceType,
        ns: &str,
        object: Value,
    ) -> Option<Value> {
        let now = self.stamp();
        let created = self.store.create(r, ns, object, &now, self.rng).ok()?;
        self.changed = true;
        Some(created)
    }

    /// Deletes an object; whether it existed.
    pub(super) fn delete(&mut self, r: &'static ResourceType, ns: &str, object_name: &str) -> bool {
        let deleted = self.store.delete(r, ns, object_name).is_ok();
        self.changed |= deleted;
        deleted
    }

    /// Deletes an object and, as the garbage collector would, everything it owns.
    pub(super) fn delete_with_dependents(
        &mut self,
        r: &'static ResourceType,
        ns: &str,
        object_name: &str,
    ) {
        let Some(owner) = self
            .store
            .find(r, ns, object_name)
            .map(|o| uid(o).to_owned())
        else {
            return;
        };
        self.delete(r, ns, object_name);
        for (dependent, dependent_name) in self.store.dependents(ns, &owner) {
            self.delete_with_dependents(dependent, ns, &dependent_name);
        }
    }
}
