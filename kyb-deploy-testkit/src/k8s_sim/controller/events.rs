//! core/v1 Events, written as client-go's event recorder writes them: named
//! `<object>.<nanoseconds in hex>`, and a repeat of an event (same object, source, type,
//! reason and message) counted on the existing Event instead of written anew.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::super::cluster::timestamp;
use super::super::resources::kind;
use super::super::selector::FieldSelector;
use super::ctx::Ctx;
use super::json::{int, name, namespace, time, uid};

/// The node every pod runs on.
pub(crate) const NODE: &str = "kyb-sim-node";

/// How long Events are kept, like the API server's default `--event-ttl`.
pub(super) const EVENT_TTL: Duration = Duration::from_secs(3600);

/// Who reports an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Source {
    /// The Deployment controller.
    Deployment,
    /// The ReplicaSet controller.
    ReplicaSet,
    /// The scheduler.
    Scheduler,
    /// The kubelet of [`NODE`].
    Kubelet,
    /// The HorizontalPodAutoscaler controller.
    Autoscaler,
}

impl Source {
    fn component(self) -> &'static str {
        match self {
            Self::Deployment => "deployment-controller",
            Self::ReplicaSet => "replicaset-controller",
            Self::Scheduler => "default-scheduler",
            Self::Kubelet => "kubelet",
            Self::Autoscaler => "horizontal-pod-autoscaler",
        }
    }

    fn host(self) -> Option<&'static str> {
        (self == Self::Kubelet).then_some(NODE)
    }
}

/// One event about to be recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Note {
    /// When it happened (at most the time of the pass).
    pub(super) at: SystemTime,
    /// `Warning` rather than `Normal`.
    pub(super) warning: bool,
    /// The machine-readable reason (`ScalingReplicaSet`).
    pub(super) reason: &'static str,
    /// The human-readable message.
    pub(super) message: String,
    /// The part of the object it is about (`spec.containers{app}`), if any.
    pub(super) field_path: Option<String>,
}

impl Note {
    /// A `Normal` event about the whole object.
    pub(super) fn normal(at: SystemTime, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            at,
            warning: false,
            reason,
            message: message.into(),
            field_path: None,
        }
    }

    /// A `Warning` event about the whole object.
    pub(super) fn warning(
        at: SystemTime,
        reason: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            warning: true,
            ..Self::normal(at, reason, message)
        }
    }
}

impl Ctx<'_> {
    /// Records `note` about `object`, reported by `source`.
    pub(super) fn event(&mut self, object: &Value, source: Source, note: Note) {
        let ns = match namespace(object) {
            "" => "default".to_owned(),
            ns => ns.to_owned(),
        };
        let event_type = if note.warning { "Warning" } else { "Normal" };
        let stamp = timestamp(note.at);
        let field_path = note.field_path.as_deref().map_or(Value::Null, |p| json!(p));
        let fields = FieldSelector::parse(&format!(
            "involvedObject.uid={},reason={}",
            uid(object),
            note.reason
        ))
        .unwrap_or_default();
        let repeat = self
            .list(kind("Event"), Some(&ns), &fields)
            .into_iter()
            .find(|e| {
                e["message"] == note.message.as_str()
                    && e["type"] == event_type
                    && e["source"]["component"] == source.component()
                    && e["involvedObject"]["fieldPath"] == field_path
            });
        if let Some(mut e) = repeat {
            let count = int(&e["count"]).unwrap_or(1);
            e["count"] = json!(count + 1);
            if time(&e["lastTimestamp"]).is_none_or(|last| last < note.at) {
                e["lastTimestamp"] = json!(stamp);
            }
            self.update(kind("Event"), e);
            return;
        }
        let mut involved = json!({
            "kind": object["kind"],
            "namespace": ns,
            "name": name(object),
            "uid": uid(object),
            "apiVersion": object["apiVersion"],
            "resourceVersion": object["metadata"]["resourceVersion"],
        });
        if let Some(path) = &note.field_path {
            involved["fieldPath"] = json!(path);
        }
        let mut source_json = json!({"component": source.component()});
        if let Some(host) = source.host() {
            source_json["host"] = json!(host);
        }
        let mut nanos = note
            .at
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64;
        let mut event_name = format!("{}.{nanos:x}", name(object));
        while self.store.find(kind("Event"), &ns, &event_name).is_some() {
            nanos += 1;
            event_name = format!("{}.{nanos:x}", name(object));
        }
        let event = json!({
            "metadata": {"name": event_name, "namespace": ns},
            "involvedObject": involved,
            "reason": note.reason,
            "message": note.message,
            "source": source_json,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
            "type": event_type,
            "eventTime": null,
            "reportingComponent": source.component(),
            "reportingInstance": source.host().unwrap_or(""),
        });
        self.create(kind("Event"), &ns, event);
    }

    /// Deletes Events last seen more than [`EVENT_TTL`] ago.
    pub(super) fn expire_events(&mut self) {
        let Some(cutoff) = self.now.checked_sub(EVENT_TTL) else {
            return;
        };
        for e in self.all(kind("Event")) {
            if time(&e["lastTimestamp"]).is_some_and(|last| last < cutoff) {
                self.delete(kind("Event"), namespace(&e), name(&e));
            }
        }
    }
}
