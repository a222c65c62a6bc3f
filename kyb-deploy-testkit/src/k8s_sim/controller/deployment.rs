//! The Deployment controller (upstream `pkg/controller/deployment`): which ReplicaSets a
//! Deployment owns, its new ReplicaSet and revisions, scaling ReplicaSets, and cleaning up
//! old ones. The new ReplicaSet and revisions are in `new_rs`, the rollout strategies in
//! `rollout`, the status in `progress`.

use std::cmp::Ordering;
use std::time::SystemTime;

use serde_json::{Value, json};

use super::super::resources::{ResourceType, kind};
use super::super::selector::LabelSelector;
use super::ctx::Ctx;
use super::defaults;
use super::events::{Note, Source};
use super::json::{
    annotation, controller_ref, controller_uid, created, generation, int, name, namespace,
    object_at, selects_everything, set, uid,
};
use super::new_rs::{REVISION, set_replicas_annotations};
use super::{progress, rollout};

/// `math.MaxInt32`: the value that means "no limit" for the history and the deadline.
const UNSET: i64 = 2_147_483_647;

pub(super) fn deployments() -> &'static ResourceType {
    kind("Deployment")
}

pub(super) fn replica_sets() -> &'static ResourceType {
    kind("ReplicaSet")
}

/// A Deployment being synced: the working copy of the object (whose annotations and
/// status change during the sync and are written at the end), its resolved parameters and
/// its ReplicaSets.
pub(super) struct Dep {
    /// The Deployment as it will be written.
    pub(super) obj: Value,
    /// `spec.replicas`.
    pub(super) replicas: i64,
    /// RollingUpdate (rather than Recreate).
    pub(super) rolling: bool,
    /// `MaxSurge(d)`: resolved surge, 0 for Recreate.
    pub(super) max_surge: i64,
    /// `MaxUnavailable(d)`: resolved, at most `replicas`, 0 for Recreate.
    pub(super) max_unavailable: i64,
    /// `spec.revisionHistoryLimit`, unless unlimited.
    pub(super) history_limit: Option<i64>,
    /// `spec.progressDeadlineSeconds`, unless unlimited.
    pub(super) deadline: Option<i64>,
    /// `spec.minReadySeconds`.
    pub(super) min_ready: i64,
    /// `spec.paused`.
    pub(super) paused: bool,
    /// The ReplicaSets it controls (deleted ones stay, with their last state).
    pub(super) rss: Vec<Value>,
    /// The simulated time of the sync.
    pub(super) now: SystemTime,
}

impl Dep {
    fn new(obj: Value, rss: Vec<Value>, now: SystemTime) -> Self {
        let spec = &obj["spec"];
        let replicas = int(&spec["replicas"]).unwrap_or(1).max(0);
        let rolling = spec["strategy"]["type"] != "Recreate";
        let rolling_update = &spec["strategy"]["rollingUpdate"];
        let mut surge = scaled(&rolling_update["maxSurge"], replicas, true);
        let mut unavailable = scaled(&rolling_update["maxUnavailable"], replicas, false);
        if surge == 0 && unavailable == 0 {
            unavailable = 1;
        }
        if !rolling {
            surge = 0;
        }
        let max_unavailable = if !rolling || replicas == 0 {
            0
        } else {
            unavailable.min(replicas)
        };
        let limited = |v: &Value| int(v).filter(|n| *n != UNSET);
        Self {
            replicas,
            rolling,
            max_surge: surge,
            max_unavailable,
            history_limit: limited(&spec["revisionHistoryLimit"]),
            deadline: limited(&spec["progressDeadlineSeconds"]),
            min_ready: int(&spec["minReadySeconds"]).unwrap_or(0),
            paused: spec["paused"] == true,
            rss,
            obj,
            now,
        }
    }

    /// The name of ReplicaSet `i`.
    pub(super) fn rs_name(&self, i: usize) -> String {
        name(&self.rss[i]).to_owned()
    }
}

/// `GetScaledValueFromIntOrPercent`: an int, or a percentage of `total` rounded up or down.
fn scaled(v: &Value, total: i64, round_up: bool) -> i64 {
    match v {
        Value::String(s) => match s.strip_suffix('%').map(str::parse::<i64>) {
            Some(Ok(p)) if round_up => (p * total + 99).div_euclid(100),
            Some(Ok(p)) => (p * total).div_euclid(100),
            Some(Err(_)) => 0,
            None => s.parse().unwrap_or(0),
        },
        other => int(other).unwrap_or(0),
    }
}

/// `spec.replicas` of a ReplicaSet (1 when absent, as defaulted).
pub(super) fn replicas(rs: &Value) -> i64 {
    int(&rs["spec"]["replicas"]).unwrap_or(1)
}

/// A count from a ReplicaSet's status.
pub(super) fn status_count(rs: &Value, key: &str) -> i64 {
    int(&rs["status"][key]).unwrap_or(0)
}

/// The revision of a ReplicaSet (0 when absent or malformed).
pub(super) fn revision(rs: &Value) -> i64 {
    annotation(rs, REVISION)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// `ReplicaSetsByCreationTimestamp`: older first, then by name.
pub(super) fn by_creation(a: &Value, b: &Value) -> Ordering {
    created(a)
        .cmp(&created(b))
        .then_with(|| name(a).cmp(name(b)))
}

/// Sorts indices into `rss` by creation.
pub(super) fn sort_by_creation(rss: &[Value], indices: &mut [usize]) {
    indices.sort_by(|&a, &b| by_creation(&rss[a], &rss[b]));
}

/// Syncs every Deployment.
pub(super) fn sync_all(ctx: &mut Ctx<'_>) {
    for d in ctx.all(deployments()) {
        sync(ctx, d);
    }
}

/// Upstream's `syncDeployment`, with the Deployment's own writes gathered at the end.
fn sync(ctx: &mut Ctx<'_>, mut d: Value) {
    if defaults::deployment(&mut d) {
        match ctx.update(deployments(), d) {
            Some(updated) => d = updated,
            None => return,
        }
    }
    let stored = d.clone();
    if selects_everything(&d["spec"]["selector"]) {
        if int(&d["status"]["observedGeneration"]).unwrap_or(0) < generation(&d) {
            let message =
                "This deployment is selecting all pods. A non-empty selector is required.";
            ctx.event(
                &d,
                Source::Deployment,
                Note::warning(ctx.now, "SelectingAll", message),
            );
            let observed = generation(&d);
            set(&mut d, &["status", "observedGeneration"], json!(observed));
            ctx.update_status(deployments(), d);
        }
        return;
    }
    let Ok(selector) = LabelSelector::from_object(&d["spec"]["selector"]) else {
        return;
    };
    // Validation refuses a template its selector does not match; its ReplicaSets would
    // never be this Deployment's, and it would make a new one on every pass without end.
    if !selector.matches(&d["spec"]["template"]["metadata"]["labels"]) {
        return;
    }
    let rss = claim_replica_sets(ctx, &d, &selector);
    let mut dep = Dep::new(d, rss, ctx.now);
    progress::check_paused_conditions(&mut dep);
    if dep.paused || rollout::is_scaling_event(ctx, &mut dep) {
        rollout::sync_scale(ctx, &mut dep);
    } else if dep.rolling {
        rollout::rolling(ctx, &mut dep);
    } else {
        rollout::recreate(ctx, &mut dep);
    }
    // Upstream writes the revision annotation and the status as it goes (through the
    // status subresource, which also takes metadata); one write of each at the end leaves
    // the same object behind.
    if dep.obj["metadata"]["annotations"] != stored["metadata"]["annotations"] {
        let mut main = stored.clone();
        main["metadata"]["annotations"] = dep.obj["metadata"]["annotations"].clone();
        ctx.update(deployments(), main);
    }
    if dep.obj["status"] != stored["status"] {
        ctx.update_status(deployments(), dep.obj);
    }
}

/// The ReplicaSets `d` controls, adopting orphans its selector matches and releasing those
/// it no longer matches (upstream's `ClaimReplicaSets`).
fn claim_replica_sets(ctx: &mut Ctx<'_>, d: &Value, selector: &LabelSelector) -> Vec<Value> {
    let owner = uid(d).to_owned();
    let mut owned = Vec::new();
    for mut rs in ctx.in_namespace(replica_sets(), namespace(d)) {
        let matches = selector.matches(&rs["metadata"]["labels"]);
        match controller_uid(&rs) {
            Some(u) if u == owner && matches => owned.push(rs),
            Some(u) if u == owner => {
                if let Some(refs) = rs["metadata"]["ownerReferences"].as_array_mut() {
                    refs.retain(|r| r["uid"] != owner.as_str());
                }
                ctx.update(replica_sets(), rs);
            }
            None if matches => {
                let refs = object_at(&mut rs, &["metadata"])
                    .entry("ownerReferences")
                    .or_insert_with(|| json!([]));
                if let Some(refs) = refs.as_array_mut() {
                    refs.push(controller_ref(d));
                }
                if let Some(adopted) = ctx.update(replica_sets(), rs) {
                    owned.push(adopted);
                }
            }
            _ => {}
        }
    }
    owned
}

/// `scaleReplicaSetAndRecordEvent`: scales ReplicaSet `i` unless it has the size already.
pub(super) fn scale_and_record(ctx: &mut Ctx<'_>, dep: &mut Dep, i: usize, size: i64) -> bool {
    let current = replicas(&dep.rss[i]);
    if current == size {
        return false;
    }
    scale(
        ctx,
        dep,
        i,
        size,
        if current < size { "up" } else { "down" },
    )
}

/// `scaleReplicaSet`: sets the size and the replica annotations of ReplicaSet `i`, with a
/// `ScalingReplicaSet` event when the size changed. Whether it did.
pub(super) fn scale(ctx: &mut Ctx<'_>, dep: &mut Dep, i: usize, size: i64, op: &str) -> bool {
    let old = replicas(&dep.rss[i]);
    let max = dep.replicas + dep.max_surge;
    let mut copy = dep.rss[i].clone();
    let annotations_changed = set_replicas_annotations(&mut copy, dep.replicas, max);
    if old == size && !annotations_changed {
        return false;
    }
    set(&mut copy, &["spec", "replicas"], json!(size));
    let Some(updated) = ctx.update(replica_sets(), copy) else {
        return false;
    };
    dep.rss[i] = updated;
    if old == size {
        return false;
    }
    let message = format!(
        "Scaled {op} replica set {} from {old} to {size}",
        dep.rs_name(i)
    );
    ctx.event(
        &dep.obj,
        Source::Deployment,
        Note::normal(ctx.now, "ScalingReplicaSet", message),
    );
    true
}

/// `cleanupDeployment`: deletes the oldest scaled-down ReplicaSets beyond the history limit.
pub(super) fn cleanup(ctx: &mut Ctx<'_>, dep: &Dep, olds: &[usize]) {
    let Some(limit) = dep.history_limit else {
        return;
    };
    let mut cleanable: Vec<usize> = olds.to_vec();
    let diff = cleanable.len() as i64 - limit;
    if diff <= 0 {
        return;
    }
    cleanable.sort_by(|&a, &b| {
        let (a, b) = (&dep.rss[a], &dep.rss[b]);
        revision(a)
            .cmp(&revision(b))
            .then_with(|| by_creation(a, b))
    });
    for &i in cleanable.iter().take(diff as usize) {
        let rs = &dep.rss[i];
        if status_count(rs, "replicas") != 0
            || replicas(rs) != 0
            || generation(rs) > status_count(rs, "observedGeneration")
        {
            continue;
        }
        ctx.delete_with_dependents(replica_sets(), namespace(rs), name(rs));
    }
}
