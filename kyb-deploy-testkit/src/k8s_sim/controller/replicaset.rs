//! The ReplicaSet controller (upstream `pkg/controller/replicaset`): pods created and
//! deleted to match `spec.replicas`, and the status counts; plus the garbage collection of
//! objects whose controller is gone.

use std::cmp::Ordering;
use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use super::super::resources::kind;
use super::super::selector::LabelSelector;
use super::ctx::Ctx;
use super::defaults;
use super::deployment::{replica_sets, replicas};
use super::events::{Note, Source};
use super::json::{
    controller_ref, controller_uid, created, generation, int, name, namespace, object, object_at,
    selects_everything, set_count, text, time, uid,
};
use super::pods::qos_class;

/// Upstream's `BurstReplicas`: at most this many pods are created or deleted per sync.
const BURST: usize = 500;

/// Syncs every ReplicaSet.
pub(super) fn sync_all(ctx: &mut Ctx<'_>) {
    for rs in ctx.all(replica_sets()) {
        sync(ctx, rs);
    }
}

/// Whether a pod counts: not being deleted and not finished (`FilterActivePods`).
fn is_active(pod: &Value) -> bool {
    pod["metadata"]["deletionTimestamp"].is_null()
        && !matches!(text(&pod["status"]["phase"]), "Succeeded" | "Failed")
}

/// The Ready condition of a pod, when it is True.
fn ready_since(pod: &Value) -> Option<Option<SystemTime>> {
    pod["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready" && c["status"] == "True")
        .map(|c| time(&c["lastTransitionTime"]))
}

/// `IsPodReady`.
pub(super) fn is_ready(pod: &Value) -> bool {
    ready_since(pod).is_some()
}

/// `IsPodAvailable`: ready for longer than `min_ready` seconds.
fn is_available(pod: &Value, min_ready: i64, now: SystemTime) -> bool {
    match ready_since(pod) {
        None => false,
        Some(_) if min_ready <= 0 => true,
        Some(since) => since.is_some_and(|t| t + Duration::from_secs(min_ready as u64) < now),
    }
}

fn sync(ctx: &mut Ctx<'_>, mut rs: Value) {
    if defaults::replica_set(&mut rs) {
        match ctx.update(replica_sets(), rs) {
            Some(updated) => rs = updated,
            None => return,
        }
    }
    // Validation forbids an empty selector; one would take every pod of the namespace.
    if selects_everything(&rs["spec"]["selector"]) {
        return;
    }
    let Ok(selector) = LabelSelector::from_object(&rs["spec"]["selector"]) else {
        return;
    };
    // Validation refuses a template its selector does not match; pods made from one would
    // never be this ReplicaSet's, and it would make more on every pass without end.
    if !selector.matches(&rs["spec"]["template"]["metadata"]["labels"]) {
        return;
    }
    let mut pods: Vec<Value> = claim_pods(ctx, &rs, &selector)
        .into_iter()
        .filter(is_active)
        .collect();
    let want = replicas(&rs).max(0) as usize;
    if pods.len() < want {
        for _ in 0..(want - pods.len()).min(BURST) {
            match create_pod(ctx, &rs) {
                Some(pod) => pods.push(pod),
                None => break,
            }
        }
    } else if pods.len() > want {
        pods.sort_by(|a, b| delete_order(a, b).then_with(|| name(a).cmp(name(b))));
        let doomed: Vec<Value> = pods.drain(..(pods.len() - want).min(BURST)).collect();
        for pod in doomed {
            if ctx.delete(kind("Pod"), namespace(&pod), name(&pod)) {
                let message = format!("Deleted pod: {}", name(&pod));
                ctx.event(
                    &rs,
                    Source::ReplicaSet,
                    Note::normal(ctx.now, "SuccessfulDelete", message),
                );
            }
        }
    }
    update_status(ctx, rs, &pods);
}

/// The pods `rs` controls, adopting orphans its selector matches and releasing those it
/// no longer matches (`ClaimPods`).
fn claim_pods(ctx: &mut Ctx<'_>, rs: &Value, selector: &LabelSelector) -> Vec<Value> {
    let owner = uid(rs).to_owned();
    let mut owned = Vec::new();
    for mut pod in ctx.in_namespace(kind("Pod"), namespace(rs)) {
        let matches = selector.matches(&pod["metadata"]["labels"]);
        match controller_uid(&pod) {
            Some(u) if u == owner && matches => owned.push(pod),
            Some(u) if u == owner => {
                if let Some(refs) = pod["metadata"]["ownerReferences"].as_array_mut() {
                    refs.retain(|r| r["uid"] != owner.as_str());
                }
                ctx.update(kind("Pod"), pod);
            }
            None if matches && is_active(&pod) => {
                let refs = object_at(&mut pod, &["metadata"])
                    .entry("ownerReferences")
                    .or_insert_with(|| json!([]));
                if let Some(refs) = refs.as_array_mut() {
                    refs.push(controller_ref(rs));
                }
                if let Some(adopted) = ctx.update(kind("Pod"), pod) {
                    owned.push(adopted);
                }
            }
            _ => {}
        }
    }
    owned
}

/// Creates a pod from the template of `rs` (`GetPodFromTemplate`), with a
/// `SuccessfulCreate` event.
fn create_pod(ctx: &mut Ctx<'_>, rs: &Value) -> Option<Value> {
    let template = &rs["spec"]["template"];
    let mut pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": format!("{}-", name(rs)),
            "namespace": namespace(rs),
            "ownerReferences": [controller_ref(rs)],
        },
        "spec": template["spec"],
    });
    for field in ["labels", "annotations", "finalizers"] {
        if !template["metadata"][field].is_null() {
            pod["metadata"][field] = template["metadata"][field].clone();
        }
    }
    defaults::pod(&mut pod);
    pod["status"] = json!({"phase": "Pending", "qosClass": qos_class(&pod["spec"])});
    // A generated name can be taken already; the API server would answer 409, and the
    // controller would try again.
    let created = (0..3).find_map(|_| ctx.create(kind("Pod"), namespace(rs), pod.clone()))?;
    let message = format!("Created pod: {}", name(&created));
    ctx.event(
        rs,
        Source::ReplicaSet,
        Note::normal(ctx.now, "SuccessfulCreate", message),
    );
    Some(created)
}

/// `ActivePodsWithRanks`: the order in which surplus pods are deleted: unscheduled before
/// scheduled, pending before running, not ready before ready, ready for less time before
/// ready for longer, more restarts before fewer, newer before older.
fn delete_order(a: &Value, b: &Value) -> Ordering {
    let node = |p: &Value| text(&p["spec"]["nodeName"]).to_owned();
    let (na, nb) = (node(a), node(b));
    if na != nb && (na.is_empty() || nb.is_empty()) {
        return if na.is_empty() {
            Ordering::Less
        } else {
            Ordering::Greater
        };
    }
    let phase = |p: &Value| match text(&p["status"]["phase"]) {
        "Unknown" => 1,
        "Running" => 2,
        _ => 0,
    };
    let by_phase = phase(a).cmp(&phase(b));
    if by_phase != Ordering::Equal {
        return by_phase;
    }
    match (ready_since(a), ready_since(b)) {
        (None, Some(_)) => return Ordering::Less,
        (Some(_), None) => return Ordering::Greater,
        (Some(ta), Some(tb)) if ta != tb => return after_or_zero(ta, tb),
        _ => {}
    }
    let restarts = |p: &Value| {
        p["status"]["containerStatuses"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| int(&c["restartCount"]))
            .max()
            .unwrap_or(0)
    };
    let by_restarts = restarts(b).cmp(&restarts(a));
    if by_restarts != Ordering::Equal {
        return by_restarts;
    }
    let (ca, cb) = (created(a), created(b));
    if ca != cb {
        return after_or_zero(ca, cb);
    }
    Ordering::Equal
}

/// `afterOrZero` as an ordering: a missing time first, then the later time.
fn after_or_zero(a: Option<SystemTime>, b: Option<SystemTime>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(a), Some(b)) => b.cmp(&a),
    }
}

/// `calculateStatus` and `updateReplicaSetStatus`: the counts over the pods it has now.
fn update_status(ctx: &mut Ctx<'_>, mut rs: Value, pods: &[Value]) {
    let template_labels = rs["spec"]["template"]["metadata"]["labels"].clone();
    let fully_labeled = pods
        .iter()
        .filter(|p| {
            template_labels.as_object().is_none_or(|labels| {
                labels
                    .iter()
                    .all(|(k, v)| p["metadata"]["labels"][k.as_str()] == *v)
            })
        })
        .count();
    let min_ready = int(&rs["spec"]["minReadySeconds"]).unwrap_or(0);
    let ready = pods.iter().filter(|p| is_ready(p)).count();
    let available = pods
        .iter()
        .filter(|p| is_available(p, min_ready, ctx.now))
        .count();
    let observed = generation(&rs);
    let status = object(&mut rs["status"]);
    status.insert("replicas".into(), json!(pods.len()));
    set_count(status, "fullyLabeledReplicas", fully_labeled as i64);
    set_count(status, "readyReplicas", ready as i64);
    set_count(status, "availableReplicas", available as i64);
    set_count(status, "observedGeneration", observed);
    ctx.update_status(replica_sets(), rs);
}

/// Deletes pods and ReplicaSets whose controller (a ReplicaSet or a Deployment) is gone,
/// as the garbage collector does after an owner is deleted without cascading through the
/// API.
pub(super) fn collect_garbage(ctx: &mut Ctx<'_>) {
    for (dependent, owner_kind) in [("Pod", "ReplicaSet"), ("ReplicaSet", "Deployment")] {
        let owners: HashSet<String> = ctx
            .all(kind(owner_kind))
            .iter()
            .map(|o| uid(o).to_owned())
            .collect();
        for object in ctx.all(kind(dependent)) {
            let refs = object["metadata"]["ownerReferences"].as_array();
            let orphaned = refs.is_some_and(|refs| {
                !refs.is_empty()
                    && refs
                        .iter()
                        .all(|r| r["kind"] == owner_kind && !owners.contains(text(&r["uid"])))
            });
            if orphaned {
                ctx.delete_with_dependents(kind(dependent), namespace(&object), name(&object));
            }
        }
    }
}
