//! Watches: a stream of `{"type": ..., "object": ...}` lines, from a resourceVersion or
//! from the current state, until `timeoutSeconds` or the server stops; each object as a
//! one-row Table when the client asks for Tables (`kubectl get -w`).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use futures::StreamExt as _;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::{Query, selectors};
use crate::k8s_sim::cluster::Cluster;
use crate::k8s_sim::error::ApiError;
use crate::k8s_sim::route::Target;
use crate::k8s_sim::selector::{FieldSelector, LabelSelector};
use crate::k8s_sim::store::{Change, ChangeType};
use crate::k8s_sim::table;

/// What one watch shows.
struct Filter {
    resource: &'static crate::k8s_sim::resources::ResourceType,
    namespace: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
}

impl Filter {
    fn event(&self, change: &Change) -> Option<Value> {
        let wanted = std::ptr::eq(change.resource, self.resource)
            && self
                .namespace
                .as_ref()
                .is_none_or(|n| !self.resource.namespaced || *n == change.namespace)
            && self.labels.matches(&change.object["metadata"]["labels"])
            && self.fields.matches(&change.object);
        wanted.then(|| json!({"type": change.change.as_str(), "object": change.object}))
    }
}

/// The body of a watch; with `as_table`, every object as a one-row Table (the first event's
/// with the column definitions, as the API server sends them).
pub(super) fn stream(
    cluster: &Arc<Cluster>,
    t: &Target,
    query: &Query,
    as_table: bool,
) -> Result<Body, ApiError> {
    let (labels, fields) = selectors(query)?;
    let filter = Filter {
        resource: t.resource,
        namespace: t.namespace.clone(),
        labels,
        fields,
    };
    let from = query
        .get("resourceVersion")
        .filter(|v| !v.is_empty() && *v != "0")
        .map(|v| {
            v.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {v:?}")))
        })
        .transpose()?;
    let requested = query
        .get("timeoutSeconds")
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_secs);
    // A disconnect fault cuts every watch short, as a dropped connection would.
    let timeout = match (requested, cluster.faults().watch_lifetime()) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let bookmarks = matches!(
        query.get("allowWatchBookmarks").map(String::as_str),
        Some("true" | "1")
    );

    let (mut initial, receiver, revision) = {
        let state = cluster.lock();
        let revision = state.store.revision();
        let (initial, receiver) = match from {
            // No resourceVersion: the current objects as ADDED, then what changes.
            None => {
                let (items, _) = state.store.list(
                    t.resource,
                    t.namespace.as_deref(),
                    &filter.labels,
                    &filter.fields,
                );
                let added: Vec<Value> = items
                    .into_iter()
                    .map(|o| json!({"type": ChangeType::Added.as_str(), "object": o}))
                    .collect();
                (added, Some(state.store.subscribe()))
            }
            Some(revision) => match state.store.watch_from(revision) {
                Ok((past, receiver)) => (
                    past.iter().filter_map(|c| filter.event(c)).collect(),
                    Some(receiver),
                ),
                // Too old: one ERROR event with the 410 Status, as the API server sends it.
                Err(e) => (vec![json!({"type": "ERROR", "object": e.status()})], None),
            },
        };
        (initial, receiver, revision)
    };
    if bookmarks && receiver.is_some() {
        initial.push(json!({
            "type": "BOOKMARK",
            "object": {
                "kind": t.resource.kind,
                "apiVersion": t.resource.api_version(),
                "metadata": {"resourceVersion": revision.to_string()},
            }
        }));
    }
    let shutdown = cluster.shutdown.clone();
    let live = futures::stream::unfold((receiver, filter), |(receiver, filter)| async move {
        let mut receiver = receiver?;
        loop {
            match receiver.recv().await {
                Ok(change) => {
                    if let Some(event) = filter.event(&change) {
                        return Some((event, (Some(receiver), filter)));
                    }
                }
                // Too slow to keep up: end the watch; the client lists and watches again.
                Err(RecvError::Lagged(_) | RecvError::Closed) => return None,
            }
        }
    });
    let mut events = futures::stream::iter(initial).chain(live).boxed();
    if as_table {
        let (cluster, resource) = (Arc::clone(cluster), t.resource);
        let include = query.get("includeObject").cloned();
        let mut first = true;
        events = events
            .map(move |mut event| {
                if matches!(
                    event["type"].as_str(),
                    Some("ADDED" | "MODIFIED" | "DELETED")
                ) {
                    let object = event["object"].take();
                    let metadata =
                        json!({"resourceVersion": object["metadata"]["resourceVersion"]});
                    let now = cluster.clock.now();
                    let mut table =
                        table::of(resource, &[object], &metadata, now, include.as_deref());
                    if !std::mem::take(&mut first) {
                        table["columnDefinitions"] = Value::Null;
                    }
                    event["object"] = table;
                }
                event
            })
            .boxed();
    }
    let ending = async move {
        match timeout {
            Some(t) => {
                tokio::select! {
                    () = tokio::time::sleep(t) => {}
                    () = shutdown.cancelled() => {}
                }
            }
            None => shutdown.cancelled().await,
        }
    };
    let lines = events
        .take_until(Box::pin(ending))
        .map(|event| Ok::<_, Infallible>(Bytes::from(format!("{event}\n"))));
    Ok(Body::from_stream(lines))
}
