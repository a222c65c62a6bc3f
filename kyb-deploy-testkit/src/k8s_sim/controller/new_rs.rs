//! The new ReplicaSet of a Deployment (upstream `getNewReplicaSet` and the revision helpers
//! of `deployment/util`): found by its pod template, or created under the template's hash;
//! its revision (raised on a rollback, the old one kept in the revision history) and the
//! annotations copied from the Deployment.

use serde_json::{Value, json};

use super::ctx::Ctx;
use super::deployment::{Dep, replica_sets, replicas, revision, sort_by_creation};
use super::events::{Note, Source};
use super::hash::{POD_TEMPLATE_HASH, equal_ignore_hash, pod_template_hash};
use super::json::{
    annotation, controller_ref, controller_uid, int, name, namespace, set, set_annotation, uid,
};
use super::progress::{PROGRESSING, condition, new_condition, set_condition};

/// The revision of a ReplicaSet, copied to its Deployment.
pub(super) const REVISION: &str = "deployment.kubernetes.io/revision";
/// The revisions a ReplicaSet had before a rollback made it new again.
pub(super) const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
/// The Deployment's replicas when the ReplicaSet was last scaled.
pub(super) const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
/// The Deployment's replicas plus surge when the ReplicaSet was last scaled.
pub(super) const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";

/// Annotations of a Deployment that are not copied to its ReplicaSets.
const NOT_COPIED: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    REVISION_HISTORY,
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    "deprecated.deployment.rollback.to",
];

/// Upstream's cap on the length of the revision-history annotation.
const MAX_REVISION_HISTORY_CHARS: usize = 2000;

/// Why a sync stops early (the status gathered so far is still written).
#[derive(Debug)]
pub(super) struct Stop;

/// `getAllReplicaSetsAndSyncRevision`: the new ReplicaSet (created when `create` and
/// missing) and the old ones, as indices into `dep.rss`.
pub(super) fn new_and_old(
    ctx: &mut Ctx<'_>,
    dep: &mut Dep,
    create: bool,
) -> Result<(Option<usize>, Vec<usize>), Stop> {
    let mut order: Vec<usize> = (0..dep.rss.len()).collect();
    sort_by_creation(&dep.rss, &mut order);
    let template = &dep.obj["spec"]["template"];
    let existing = order
        .iter()
        .copied()
        .find(|&i| equal_ignore_hash(&dep.rss[i]["spec"]["template"], template));
    let olds: Vec<usize> = order.into_iter().filter(|&i| Some(i) != existing).collect();
    let new = new_replica_set(ctx, dep, existing, &olds, create)?;
    Ok((new, olds))
}

/// `getNewReplicaSet`: syncs the annotations of the existing new ReplicaSet, or creates it.
fn new_replica_set(
    ctx: &mut Ctx<'_>,
    dep: &mut Dep,
    existing: Option<usize>,
    olds: &[usize],
    create: bool,
) -> Result<Option<usize>, Stop> {
    let max_old = olds
        .iter()
        .map(|&i| revision(&dep.rss[i]))
        .max()
        .unwrap_or(0);
    let new_revision = max_old + 1;
    if let Some(i) = existing {
        let mut copy = dep.rss[i].clone();
        let annotations_changed = set_new_rs_annotations(dep, &mut copy, new_revision, true);
        if annotations_changed
            || int(&copy["spec"]["minReadySeconds"]).unwrap_or(0) != dep.min_ready
        {
            set_min_ready(&mut copy, dep.min_ready);
            if let Some(updated) = ctx.update(replica_sets(), copy) {
                dep.rss[i] = updated;
            }
            return Ok(Some(i));
        }
        let rev = annotation(&copy, REVISION).unwrap_or("").to_owned();
        set_deployment_revision(&mut dep.obj, &rev);
        if dep.deadline.is_some() && condition(&dep.obj["status"], PROGRESSING).is_none() {
            let message = format!("Found new replica set \"{}\"", name(&copy));
            let c = new_condition(PROGRESSING, "True", "FoundNewReplicaSet", &message, ctx.now);
            set_condition(&mut dep.obj["status"], c);
        }
        return Ok(Some(i));
    }
    if !create {
        return Ok(None);
    }
    let ns = namespace(&dep.obj).to_owned();
    let template = dep.obj["spec"]["template"].clone();
    let hash = pod_template_hash(&template, int(&dep.obj["status"]["collisionCount"]));
    let mut rs_template = template.clone();
    set(
        &mut rs_template,
        &["metadata", "labels", POD_TEMPLATE_HASH],
        json!(hash),
    );
    let mut selector = dep.obj["spec"]["selector"].clone();
    set(
        &mut selector,
        &["matchLabels", POD_TEMPLATE_HASH],
        json!(hash),
    );
    let rs_name = format!("{}-{hash}", name(&dep.obj));
    let mut rs = json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": rs_name,
            "namespace": ns,
            "labels": rs_template["metadata"]["labels"],
            "ownerReferences": [controller_ref(&dep.obj)],
        },
        "spec": {"replicas": 0, "selector": selector, "template": rs_template},
    });
    set_min_ready(&mut rs, dep.min_ready);
    let others: i64 = olds.iter().map(|&i| replicas(&dep.rss[i])).sum();
    let count = new_rs_new_replicas(dep, others, 0);
    rs["spec"]["replicas"] = json!(count);
    set_new_rs_annotations(dep, &mut rs, new_revision, false);
    let (created, already_existed) = match ctx.create(replica_sets(), &ns, rs) {
        Some(created) => (created, false),
        None => match ctx.store.find(replica_sets(), &ns, &rs_name).cloned() {
            Some(found)
                if controller_uid(&found) == Some(uid(&dep.obj))
                    && equal_ignore_hash(&template, &found["spec"]["template"]) =>
            {
                (found, true)
            }
            Some(_) => {
                // A hash collision: the next sync hashes with a higher collision count.
                let count = int(&dep.obj["status"]["collisionCount"]).unwrap_or(0) + 1;
                set(&mut dep.obj, &["status", "collisionCount"], json!(count));
                return Err(Stop);
            }
            None => {
                let message = format!("Failed to create new replica set \"{rs_name}\"");
                let note = Note::warning(ctx.now, "ReplicaSetCreateError", &message);
                ctx.event(&dep.obj, Source::Deployment, note);
                if dep.deadline.is_some() {
                    let c = new_condition(
                        PROGRESSING,
                        "False",
                        "ReplicaSetCreateError",
                        &message,
                        ctx.now,
                    );
                    set_condition(&mut dep.obj["status"], c);
                }
                return Err(Stop);
            }
        },
    };
    if !already_existed && count > 0 {
        let message = format!("Scaled up replica set {rs_name} from 0 to {count}");
        ctx.event(
            &dep.obj,
            Source::Deployment,
            Note::normal(ctx.now, "ScalingReplicaSet", message),
        );
    }
    set_deployment_revision(&mut dep.obj, &new_revision.to_string());
    if !already_existed && dep.deadline.is_some() {
        let message = format!("Created new replica set \"{rs_name}\"");
        let c = new_condition(
            PROGRESSING,
            "True",
            "NewReplicaSetCreated",
            &message,
            ctx.now,
        );
        set_condition(&mut dep.obj["status"], c);
    }
    dep.rss.push(created);
    Ok(Some(dep.rss.len() - 1))
}

/// `NewRSNewReplicas`: the size of the new ReplicaSet, given the replicas of all the others.
pub(super) fn new_rs_new_replicas(dep: &Dep, others: i64, new: i64) -> i64 {
    if !dep.rolling {
        return dep.replicas;
    }
    let max_total = dep.replicas + dep.max_surge;
    let current = others + new;
    if current >= max_total {
        return new;
    }
    new + (max_total - current).min(dep.replicas - new)
}

fn set_min_ready(rs: &mut Value, seconds: i64) {
    if seconds == 0 {
        if let Some(spec) = rs["spec"].as_object_mut() {
            spec.remove("minReadySeconds");
        }
    } else {
        set(rs, &["spec", "minReadySeconds"], json!(seconds));
    }
}

/// `SetNewReplicaSetAnnotations`: copies the Deployment's annotations, raises the revision
/// (keeping the old one in the revision history on a rollback) and, for a ReplicaSet about
/// to be created, sets the replica annotations. Whether anything changed.
fn set_new_rs_annotations(dep: &Dep, rs: &mut Value, new_revision: i64, exists: bool) -> bool {
    let mut changed = false;
    if let Some(annotations) = dep.obj["metadata"]["annotations"].as_object() {
        for (k, v) in annotations {
            let Some(v) = v.as_str() else { continue };
            if NOT_COPIED.contains(&k.as_str()) || annotation(rs, k) == Some(v) {
                continue;
            }
            set_annotation(rs, k, v);
            changed = true;
        }
    }
    let old = annotation(rs, REVISION).map(str::to_owned);
    let old_revision = match old.as_deref() {
        None | Some("") => 0,
        Some(text) => match text.parse::<i64>() {
            Ok(n) => n,
            Err(_) => return false,
        },
    };
    if old_revision < new_revision {
        set_annotation(rs, REVISION, new_revision.to_string());
        changed = true;
        if let Some(old) = old {
            append_revision_history(rs, &old);
        }
    }
    if !exists {
        changed |= set_replicas_annotations(rs, dep.replicas, dep.replicas + dep.max_surge);
    }
    changed
}

fn append_revision_history(rs: &mut Value, old: &str) {
    let history = annotation(rs, REVISION_HISTORY).unwrap_or("").to_owned();
    if history.is_empty() {
        set_annotation(rs, REVISION_HISTORY, old);
        return;
    }
    let revisions: Vec<&str> = history.split(',').collect();
    let mut total = history.len() + old.len() + 1;
    let mut start = 0;
    while total > MAX_REVISION_HISTORY_CHARS && start < revisions.len() {
        total -= revisions[start].len() + 1;
        start += 1;
    }
    if total <= MAX_REVISION_HISTORY_CHARS {
        let mut kept = revisions[start..].to_vec();
        kept.push(old);
        set_annotation(rs, REVISION_HISTORY, kept.join(","));
    }
}

/// `SetReplicasAnnotations`; whether anything changed.
pub(super) fn set_replicas_annotations(rs: &mut Value, desired: i64, max: i64) -> bool {
    let mut changed = false;
    for (key, value) in [(DESIRED_REPLICAS, desired), (MAX_REPLICAS, max)] {
        let value = value.to_string();
        if annotation(rs, key) != Some(value.as_str()) {
            set_annotation(rs, key, value);
            changed = true;
        }
    }
    changed
}

fn set_deployment_revision(d: &mut Value, revision: &str) {
    if annotation(d, REVISION) != Some(revision) {
        set_annotation(d, REVISION, revision);
    }
}
