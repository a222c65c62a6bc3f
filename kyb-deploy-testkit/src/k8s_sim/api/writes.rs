//! Writes: create, replace (with optimistic concurrency), the four patch types, and
//! deletion with owner-reference cascade. Every write records its field manager.

use axum::body::Bytes;
use std::sync::MutexGuard;

use axum::http::{HeaderMap, header};
use serde_json::{Value, json};

use super::{Query, namespace, no_subresource, scale, selectors};
use crate::k8s_sim::cluster::{Cluster, State};
use crate::k8s_sim::controller::defaults;
use crate::k8s_sim::error::ApiError;
use crate::k8s_sim::patch::{self, PatchError};
use crate::k8s_sim::resources::{RESOURCES, ResourceType};
use crate::k8s_sim::route::Target;
use crate::k8s_sim::validation::{self, FieldValidation};

type Written = Result<(u16, Value), ApiError>;

/// POST to a collection.
pub(super) fn create(
    cluster: &Cluster,
    t: &Target,
    query: &Query,
    headers: &HeaderMap,
    body: &Bytes,
    warnings: &mut Vec<String>,
) -> Written {
    let dry = dry_run(query)?;
    let mut object = json_body(headers, body)?;
    check_kind(t.resource, &object)?;
    let fields = field_validation(query)?;
    let manager = field_manager(query, headers);
    let now = cluster.now();
    // The API server fills in defaults when an object is written, not its controllers.
    defaults::apply(t.resource.kind, &mut object);
    validation::admit(t.resource, &mut object, None, fields, warnings)?;
    patch::record_update(None, &mut object, &manager, &now);
    let created = {
        let mut state = cluster.lock();
        let State { store, rng } = &mut *state;
        if dry {
            store.preview_create(t.resource, namespace(t), object, &now, rng)?
        } else {
            store.create(t.resource, namespace(t), object, &now, rng)?
        }
    };
    if !dry {
        cluster.changed.notify_waiters();
    }
    Ok((201, created))
}

/// PUT of an object or its status or scale.
pub(super) fn replace(
    cluster: &Cluster,
    t: &Target,
    query: &Query,
    headers: &HeaderMap,
    body: &Bytes,
    warnings: &mut Vec<String>,
) -> Written {
    let dry = dry_run(query)?;
    let name = t.name.as_deref().unwrap_or_default();
    let given = json_body(headers, body)?;
    let fields = field_validation(query)?;
    let manager = field_manager(query, headers);
    let now = cluster.now();
    let state = cluster.lock();
    let current = state.store.get(t.resource, namespace(t), name)?;
    let (object, status_only) = match t.subresource.as_deref() {
        None => {
            check_kind(t.resource, &given)?;
            (given, false)
        }
        Some("status") if t.resource.status => (given, true),
        Some("scale") if t.resource.scale => (scale::apply(&current, &given)?, false),
        Some(other) => return Err(no_subresource(t.resource, other)),
    };
    let write = Write {
        current: &current,
        status_only,
        manager: Some(&manager),
        now: &now,
        fields,
        dry,
    };
    commit(cluster, state, t, object, &write, warnings)
}

/// How an updated object is stored.
struct Write<'a> {
    /// The object before the write.
    current: &'a Value,
    /// Only `.status` changes (the status subresource).
    status_only: bool,
    /// Who to record as the owner of the changed fields; `None` when the write (a
    /// server-side apply) recorded its managed fields itself.
    manager: Option<&'a str>,
    /// The write's time.
    now: &'a str,
    /// What to do with fields the kind's schema does not declare.
    fields: FieldValidation,
    /// A dry run: everything but storing.
    dry: bool,
}

/// Fills in defaults (main resource), records the field manager, stores `object`, wakes the
/// controllers, and answers as the write's target does.
fn commit(
    cluster: &Cluster,
    mut state: MutexGuard<'_, State>,
    t: &Target,
    mut object: Value,
    write: &Write<'_>,
    warnings: &mut Vec<String>,
) -> Written {
    if t.subresource.is_none() {
        defaults::apply(t.resource.kind, &mut object);
        defaults::keep_allocated(t.resource.kind, &mut object, write.current);
    }
    // The object itself changed (not only its status): it is admitted like a new one,
    // against the stored one for the rules of updates.
    if !write.status_only {
        validation::admit(
            t.resource,
            &mut object,
            Some(write.current),
            write.fields,
            warnings,
        )?;
    }
    if let Some(manager) = write.manager {
        record(
            write.current,
            &mut object,
            manager,
            t.subresource.as_deref(),
            write.now,
        );
    }
    let name = t.name.as_deref().unwrap_or_default();
    let store = &mut state.store;
    let updated = if write.dry {
        store.preview_update(t.resource, namespace(t), name, object, write.status_only)?
    } else {
        store.update(t.resource, namespace(t), name, object, write.status_only)?
    };
    drop(state);
    if !write.dry {
        cluster.changed.notify_waiters();
    }
    Ok((200, answer(t, updated)?))
}

/// What a write of `t` answers: the Scale for the scale subresource, else the object.
fn answer(t: &Target, updated: Value) -> Result<Value, ApiError> {
    match t.subresource.as_deref() {
        Some("scale") => scale::of(&updated),
        _ => Ok(updated),
    }
}

/// Records `manager` as the owner of what a write changed: the whole object, or only the
/// subresource's fields.
fn record(
    current: &Value,
    object: &mut Value,
    manager: &str,
    subresource: Option<&str>,
    now: &str,
) {
    match subresource {
        None => patch::record_update(Some(current), object, manager, now),
        Some(sub) => patch::record_subresource_update(Some(current), object, manager, sub, now),
    }
}

/// PATCH of an object or its status or scale, by the request's content type.
pub(super) fn patch(
    cluster: &Cluster,
    t: &Target,
    query: &Query,
    headers: &HeaderMap,
    body: &Bytes,
    warnings: &mut Vec<String>,
) -> Written {
    let dry = dry_run(query)?;
    let name = t.name.as_deref().unwrap_or_default();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_owned();
    let patch_body = json_body(headers, body)?;
    let fields = field_validation(query)?;
    let manager = field_manager(query, headers);
    let force = matches!(query.get("force").map(String::as_str), Some("true" | "1"));
    let now = cluster.now();
    let mut state = cluster.lock();
    let current = state.store.find(t.resource, namespace(t), name).cloned();
    let is_apply = content_type == "application/apply-patch+yaml";
    if is_apply && query.get("fieldManager").is_none_or(String::is_empty) {
        return Err(ApiError::bad_request(
            "PATCH with an apply patch requires fieldManager (the field manager of the applied configuration)",
        ));
    }
    // Server-side apply creates what does not exist yet.
    let Some(current) = current else {
        if is_apply && t.subresource.is_none() {
            check_kind(t.resource, &patch_body)?;
            let mut applied = patch::apply(None, &patch_body, &manager, force, &now)
                .map_err(|e| patch_error(t.resource, name, e))?;
            applied["metadata"]["name"] = json!(name);
            defaults::apply(t.resource.kind, &mut applied);
            validation::admit(t.resource, &mut applied, None, fields, warnings)?;
            let State { store, rng } = &mut *state;
            if dry {
                let preview = store.preview_create(t.resource, namespace(t), applied, &now, rng)?;
                return Ok((201, preview));
            }
            let created = store.create(t.resource, namespace(t), applied, &now, rng)?;
            drop(state);
            cluster.changed.notify_waiters();
            return Ok((201, created));
        }
        return Err(ApiError::not_found(t.resource, name));
    };
    let base = match t.subresource.as_deref() {
        None | Some("status") => current.clone(),
        Some("scale") if t.resource.scale => scale::of(&current)?,
        Some(other) => return Err(no_subresource(t.resource, other)),
    };
    let patched = match content_type.as_str() {
        "application/json-patch+json" => patch::json_patch(&base, &patch_body),
        "application/merge-patch+json" => Ok(patch::merge_patch(&base, &patch_body)),
        "application/strategic-merge-patch+json" => {
            patch::strategic_merge_patch(&base, &patch_body)
        }
        "application/apply-patch+yaml" => {
            check_kind_if_present(t.resource, &patch_body)?;
            patch::apply(Some(&base), &patch_body, &manager, force, &now)
        }
        other => return Err(ApiError::unsupported_media_type(other)),
    }
    .map_err(|e| patch_error(t.resource, name, e))?;
    let (mut object, status_only) = match t.subresource.as_deref() {
        Some("scale") => (scale::apply(&current, &patched)?, false),
        Some("status") => (patched, true),
        _ => (patched, false),
    };
    // A patch applies to the object as it is: never a stale-version conflict of its own.
    if t.subresource.as_deref() != Some("scale") && !has_precondition(&patch_body) {
        object["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"].clone();
    }
    let write = Write {
        current: &current,
        status_only,
        manager: (!is_apply).then_some(manager.as_str()),
        now: &now,
        fields,
        dry,
    };
    commit(cluster, state, t, object, &write, warnings)
}

/// Whether a patch carries its own `metadata.resourceVersion` precondition.
fn has_precondition(patch: &Value) -> bool {
    patch["metadata"]["resourceVersion"].is_string()
}

/// DELETE of an object, cascading to its dependents per `propagationPolicy`.
pub(super) fn delete(cluster: &Cluster, t: &Target, query: &Query, body: &Bytes) -> Written {
    let dry = dry_run(query)? || dry_run_in_options(body)?;
    if t.subresource.is_some() {
        return Err(ApiError::method_not_allowed(
            "the server does not allow this method on the requested resource",
        ));
    }
    let name = t.name.as_deref().unwrap_or_default();
    let policy = propagation(query, body)?;
    let mut state = cluster.lock();
    let current = state.store.get(t.resource, namespace(t), name)?;
    check_preconditions(t.resource, name, &current, body)?;
    let deleted = if dry {
        // Nothing is deleted, dependents included.
        state.store.get(t.resource, namespace(t), name)?
    } else {
        delete_cascading(&mut state, t.resource, namespace(t), name, policy)?
    };
    drop(state);
    if !dry {
        cluster.changed.notify_waiters();
    }
    let m = &deleted["metadata"];
    let mut details = json!({"name": name, "kind": t.resource.plural, "uid": m["uid"]});
    if !t.resource.group.is_empty() {
        details["group"] = json!(t.resource.group);
    }
    Ok((
        200,
        json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": details,
        }),
    ))
}

/// DELETE of a collection: every object matching the selectors.
pub(super) fn delete_collection(
    cluster: &Cluster,
    t: &Target,
    query: &Query,
    body: &Bytes,
) -> Written {
    let dry = dry_run(query)? || dry_run_in_options(body)?;
    let (labels, fields) = selectors(query)?;
    let policy = propagation(query, body)?;
    let mut state = cluster.lock();
    let (items, _) = state
        .store
        .list(t.resource, t.namespace.as_deref(), &labels, &fields);
    let mut deleted = Vec::new();
    if dry {
        let revision = state.store.revision();
        return Ok((200, super::list_document(t.resource, items, revision)));
    }
    for item in items {
        let ns = item["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        let name = item["metadata"]["name"].as_str().unwrap_or("").to_owned();
        if let Ok(object) = delete_cascading(&mut state, t.resource, &ns, &name, policy) {
            deleted.push(object);
        }
    }
    let revision = state.store.revision();
    drop(state);
    cluster.changed.notify_waiters();
    Ok((200, super::list_document(t.resource, deleted, revision)))
}

/// How dependents are treated when their owner is deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Propagation {
    /// Deleted with the owner (Background and Foreground: the simulator deletes at once).
    Cascade,
    /// Kept, their owner reference removed.
    Orphan,
}

/// The `preconditions` of a DeleteOptions body: the object's `uid` and `resourceVersion`
/// must be those given, else 409 Conflict and nothing is deleted.
fn check_preconditions(
    r: &'static ResourceType,
    name: &str,
    object: &Value,
    body: &Bytes,
) -> Result<(), ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let options: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the DeleteOptions body is not JSON: {e}")))?;
    for (field, meta) in [("UID", "uid"), ("ResourceVersion", "resourceVersion")] {
        let wanted = &options["preconditions"][meta];
        if let Some(wanted) = wanted.as_str() {
            let found = object["metadata"][meta].as_str().unwrap_or_default();
            if wanted != found {
                return Err(ApiError::precondition_failed(r, name, field, wanted, found));
            }
        }
    }
    Ok(())
}

fn propagation(query: &Query, body: &Bytes) -> Result<Propagation, ApiError> {
    let from_body = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let options: Value = serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request(format!("the DeleteOptions body is not JSON: {e}"))
        })?;
        let orphan = options["orphanDependents"].as_bool();
        options["propagationPolicy"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| {
                orphan.map(|o| {
                    if o {
                        "Orphan".to_owned()
                    } else {
                        "Background".to_owned()
                    }
                })
            })
    };
    let policy = from_body.or_else(|| query.get("propagationPolicy").cloned());
    match policy.as_deref() {
        None | Some("Background" | "Foreground") => Ok(Propagation::Cascade),
        Some("Orphan") => Ok(Propagation::Orphan),
        Some(other) => Err(ApiError::bad_request(format!(
            "invalid propagationPolicy {other:?}: use Background, Foreground or Orphan"
        ))),
    }
}

/// Deletes an object and, per `policy`, its dependents (recursively) or their owner
/// references; a namespace takes everything in it along.
pub(crate) fn delete_cascading(
    state: &mut State,
    r: &'static ResourceType,
    namespace: &str,
    name: &str,
    policy: Propagation,
) -> Result<Value, ApiError> {
    let deleted = state.store.delete(r, namespace, name)?;
    if r.kind == "Namespace" {
        for (kind, object) in state.store.in_namespace(name) {
            let _ = state.store.delete(kind, name, &object);
        }
        return Ok(deleted);
    }
    let uid = deleted["metadata"]["uid"].as_str().unwrap_or("").to_owned();
    for (dependent, dependent_name) in state.store.dependents(namespace, &uid) {
        match policy {
            Propagation::Cascade => {
                let _ = delete_cascading(state, dependent, namespace, &dependent_name, policy);
            }
            Propagation::Orphan => {
                if let Ok(mut object) = state.store.get(dependent, namespace, &dependent_name) {
                    if let Some(refs) = object["metadata"]["ownerReferences"].as_array_mut() {
                        refs.retain(|o| o["uid"] != uid.as_str());
                        // The last reference gone, the field goes too (as the garbage
                        // collector's orphaning patch leaves it).
                        if refs.is_empty()
                            && let Some(metadata) = object["metadata"].as_object_mut()
                        {
                            metadata.remove("ownerReferences");
                        }
                    }
                    let _ =
                        state
                            .store
                            .update(dependent, namespace, &dependent_name, object, false);
                }
            }
        }
    }
    Ok(deleted)
}

/// The write's `fieldValidation`.
fn field_validation(query: &Query) -> Result<FieldValidation, ApiError> {
    FieldValidation::parse(query.get("fieldValidation").map(String::as_str))
}

/// Whether a DELETE's `DeleteOptions` body asks for a dry run (`"dryRun": ["All"]`, as
/// kubectl sends it).
fn dry_run_in_options(body: &Bytes) -> Result<bool, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(false);
    }
    let options: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the DeleteOptions body is not JSON: {e}")))?;
    match &options["dryRun"] {
        Value::Null => Ok(false),
        Value::Array(values) if values.is_empty() => Ok(false),
        Value::Array(values) if values.iter().all(|v| v == "All") => Ok(true),
        other => Err(ApiError::bad_request(format!(
            "Invalid dry run value: dryRun: Unsupported value: {other}: supported values: \"All\""
        ))),
    }
}

/// Whether the write is a dry run (`dryRun=All`, the one value the API server takes):
/// admitted, defaulted and merged exactly as a real write, and nothing stored.
fn dry_run(query: &Query) -> Result<bool, ApiError> {
    match query.get("dryRun").map(String::as_str) {
        None | Some("") => Ok(false),
        Some("All") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!(
            "Invalid dry run value: dryRun: Unsupported value: \"{other}\": supported values: \"All\""
        ))),
    }
}

fn json_body(headers: &HeaderMap, body: &Bytes) -> Result<Value, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // Protobuf is refused with 415, on which clients fall back to JSON.
    if content_type.starts_with("application/vnd.kubernetes.protobuf") {
        return Err(ApiError::unsupported_media_type(content_type));
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "the request body is not JSON (the simulator reads JSON bodies, apply patches included): {e}"
        ))
    })
}

/// The body's apiVersion and kind must be the target's.
fn check_kind(r: &ResourceType, object: &Value) -> Result<(), ApiError> {
    let api_version = object["apiVersion"]
        .as_str()
        .unwrap_or(&r.api_version())
        .to_owned();
    let kind = object["kind"].as_str().unwrap_or(r.kind).to_owned();
    if api_version != r.api_version() || kind != r.kind {
        let served = RESOURCES
            .iter()
            .any(|x| x.kind == kind && x.api_version() == api_version);
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({}){}",
            r.api_version(),
            if served {
                ""
            } else {
                ", or its kind is not served"
            }
        )));
    }
    Ok(())
}

fn check_kind_if_present(r: &ResourceType, object: &Value) -> Result<(), ApiError> {
    if object.get("apiVersion").is_some() || object.get("kind").is_some() {
        check_kind(r, object)
    } else {
        Ok(())
    }
}

/// The field manager of a write: `fieldManager`, else the client's program name from its
/// User-Agent (`kubectl/v1.32.0 (...)` is `kubectl`), as the API server does.
fn field_manager(query: &Query, headers: &HeaderMap) -> String {
    if let Some(m) = query.get("fieldManager").filter(|m| !m.is_empty()) {
        return m.clone();
    }
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .and_then(|ua| ua.split('/').next())
        .filter(|m| !m.is_empty())
        .unwrap_or("unknown")
        .to_owned()
}

fn patch_error(r: &ResourceType, name: &str, e: PatchError) -> ApiError {
    match e {
        PatchError::Invalid(message) => ApiError::bad_request(message),
        PatchError::Unprocessable(message) => ApiError::invalid(r, name, message),
        PatchError::Conflict { message, conflicts } => {
            let causes = conflicts
                .into_iter()
                .map(|c| json!({"reason": "FieldManagerConflict", "message": c.message, "field": c.field}))
                .collect();
            ApiError::apply_conflict(r, name, message, causes)
        }
    }
}
