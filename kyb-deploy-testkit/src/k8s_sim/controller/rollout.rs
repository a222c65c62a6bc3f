//! The rollout strategies of the Deployment controller (upstream `rolling.go`,
//! `recreate.go`) and the scaling of a paused or resized Deployment (`sync.go`).

use std::cmp::Ordering;

use serde_json::Value;

use super::super::resources::kind;
use super::super::selector::LabelSelector;
use super::ctx::Ctx;
use super::deployment::{
    Dep, by_creation, cleanup, replicas, scale, scale_and_record, sort_by_creation, status_count,
};
use super::json::{annotation, controller_uid, namespace, text, uid};
use super::new_rs::{DESIRED_REPLICAS, MAX_REPLICAS, new_and_old, new_rs_new_replicas};
use super::progress::{deployment_complete, sync_deployment_status, sync_rollout_status};

/// The ReplicaSets of `indices` with a non-zero size (`FilterActiveReplicaSets`).
fn active(dep: &Dep, indices: impl IntoIterator<Item = usize>) -> Vec<usize> {
    indices
        .into_iter()
        .filter(|&i| replicas(&dep.rss[i]) > 0)
        .collect()
}

fn with_new(olds: &[usize], new: Option<usize>) -> Vec<usize> {
    olds.iter().copied().chain(new).collect()
}

fn annotation_int(rs: &Value, key: &str) -> Option<i64> {
    annotation(rs, key).and_then(|v| v.parse().ok())
}

/// `isScalingEvent`: whether an active ReplicaSet was last scaled for another size of the
/// Deployment.
pub(super) fn is_scaling_event(ctx: &mut Ctx<'_>, dep: &mut Dep) -> bool {
    let Ok((new, olds)) = new_and_old(ctx, dep, false) else {
        return false;
    };
    active(dep, with_new(&olds, new)).into_iter().any(|i| {
        annotation_int(&dep.rss[i], DESIRED_REPLICAS).is_some_and(|desired| desired != dep.replicas)
    })
}

/// Upstream's `sync`: scales the ReplicaSets to the Deployment's size without rolling out,
/// for a paused Deployment or a scaling event.
pub(super) fn sync_scale(ctx: &mut Ctx<'_>, dep: &mut Dep) {
    let Ok((new, olds)) = new_and_old(ctx, dep, false) else {
        return;
    };
    proportional_scale(ctx, dep, new, &olds);
    if dep.paused {
        cleanup(ctx, dep, &olds);
    }
    sync_deployment_status(dep, &with_new(&olds, new), new);
}

/// `FindActiveOrLatest`: the only active ReplicaSet, or the newest when none is active.
fn active_or_latest(dep: &Dep, new: Option<usize>, olds: &[usize]) -> Option<usize> {
    let mut newest_first = olds.to_vec();
    sort_by_creation(&dep.rss, &mut newest_first);
    newest_first.reverse();
    let all = active(dep, with_new(&newest_first, new));
    match all.len() {
        0 => new.or_else(|| newest_first.first().copied()),
        1 => Some(all[0]),
        _ => None,
    }
}

/// `IsSaturated`: the new ReplicaSet has all replicas, and all are available.
fn is_saturated(dep: &Dep, new: Option<usize>) -> bool {
    new.is_some_and(|i| {
        let rs = &dep.rss[i];
        annotation_int(rs, DESIRED_REPLICAS) == Some(dep.replicas)
            && replicas(rs) == dep.replicas
            && status_count(rs, "availableReplicas") == dep.replicas
    })
}

/// Upstream's `scale`: a single active ReplicaSet takes the new size; otherwise the change
/// is spread over the active ReplicaSets in proportion to their sizes.
fn proportional_scale(ctx: &mut Ctx<'_>, dep: &mut Dep, new: Option<usize>, olds: &[usize]) {
    if let Some(i) = active_or_latest(dep, new, olds) {
        let size = dep.replicas;
        scale_and_record(ctx, dep, i, size);
        return;
    }
    if is_saturated(dep, new) {
        for i in active(dep, olds.iter().copied()) {
            scale_and_record(ctx, dep, i, 0);
        }
        return;
    }
    if !dep.rolling {
        return;
    }
    let mut all = active(dep, with_new(olds, new));
    let current: i64 = all.iter().map(|&i| replicas(&dep.rss[i])).sum();
    let allowed = if dep.replicas > 0 {
        dep.replicas + dep.max_surge
    } else {
        0
    };
    let to_add = allowed - current;
    let by_size = |a: &Value, b: &Value| replicas(b).cmp(&replicas(a));
    let op = match to_add.cmp(&0) {
        Ordering::Greater => {
            // Larger first; among equals, newer first.
            all.sort_by(|&a, &b| {
                let (a, b) = (&dep.rss[a], &dep.rss[b]);
                by_size(a, b).then_with(|| by_creation(b, a))
            });
            "up"
        }
        Ordering::Less => {
            all.sort_by(|&a, &b| {
                let (a, b) = (&dep.rss[a], &dep.rss[b]);
                by_size(a, b).then_with(|| by_creation(a, b))
            });
            "down"
        }
        Ordering::Equal => "",
    };
    let mut added = 0;
    let mut sizes = Vec::with_capacity(all.len());
    for &i in &all {
        let size = replicas(&dep.rss[i]);
        if to_add == 0 {
            sizes.push(size);
            continue;
        }
        let p = proportion(dep, &dep.rss[i], to_add, added);
        sizes.push(size + p);
        added += p;
    }
    if let Some(first) = sizes.first_mut()
        && to_add != 0
    {
        *first = (*first + to_add - added).max(0);
    }
    for (&i, size) in all.iter().zip(sizes) {
        scale(ctx, dep, i, size, op);
    }
}

/// `GetReplicaSetProportion`: this ReplicaSet's share of `to_add`, given `added` so far.
fn proportion(dep: &Dep, rs: &Value, to_add: i64, added: i64) -> i64 {
    let size = replicas(rs);
    if size == 0 || to_add == 0 || to_add == added {
        return 0;
    }
    let fraction = if dep.replicas == 0 {
        -size
    } else {
        let max_now = dep.replicas + dep.max_surge;
        let max_before = annotation_int(rs, MAX_REPLICAS)
            .filter(|m| *m != 0)
            .unwrap_or_else(|| status_count(&dep.obj, "replicas"));
        if max_before == 0 {
            0
        } else {
            round((size * max_now) as f64 / max_before as f64) - size
        }
    };
    let allowed = to_add - added;
    if to_add > 0 {
        fraction.min(allowed)
    } else {
        fraction.max(allowed)
    }
}

/// `integer.RoundToInt32`: halves away from zero.
fn round(x: f64) -> i64 {
    if x < 0.0 {
        (x - 0.5) as i64
    } else {
        (x + 0.5) as i64
    }
}

/// `rolloutRolling`: scale the new ReplicaSet up within the surge, or the old ones down
/// within the unavailability budget, one step per sync.
pub(super) fn rolling(ctx: &mut Ctx<'_>, dep: &mut Dep) {
    let Ok((Some(new), olds)) = new_and_old(ctx, dep, true) else {
        return;
    };
    let all = with_new(&olds, Some(new));
    if reconcile_new(ctx, dep, &all, new) {
        sync_rollout_status(dep, &all, Some(new));
        return;
    }
    let active_olds = active(dep, olds.iter().copied());
    if reconcile_olds(ctx, dep, &all, active_olds, new) {
        sync_rollout_status(dep, &all, Some(new));
        return;
    }
    if deployment_complete(dep, &dep.obj["status"]) {
        cleanup(ctx, dep, &olds);
    }
    sync_rollout_status(dep, &all, Some(new));
}

/// `reconcileNewReplicaSet`.
fn reconcile_new(ctx: &mut Ctx<'_>, dep: &mut Dep, all: &[usize], new: usize) -> bool {
    let size = replicas(&dep.rss[new]);
    if size == dep.replicas {
        return false;
    }
    if size > dep.replicas {
        let target = dep.replicas;
        return scale_and_record(ctx, dep, new, target);
    }
    let others: i64 = all
        .iter()
        .filter(|&&i| i != new)
        .map(|&i| replicas(&dep.rss[i]))
        .sum();
    let target = new_rs_new_replicas(dep, others, size);
    scale_and_record(ctx, dep, new, target)
}

/// `reconcileOldReplicaSets`: scale down unhealthy old replicas first, then healthy ones
/// while enough pods stay available.
fn reconcile_olds(
    ctx: &mut Ctx<'_>,
    dep: &mut Dep,
    all: &[usize],
    mut olds: Vec<usize>,
    new: usize,
) -> bool {
    let sum = |dep: &Dep, set: &[usize], f: &dyn Fn(&Value) -> i64| -> i64 {
        set.iter().map(|&i| f(&dep.rss[i])).sum()
    };
    if sum(dep, &olds, &replicas) == 0 {
        return false;
    }
    let all_pods = sum(dep, all, &replicas);
    let min_available = dep.replicas - dep.max_unavailable;
    let new_rs = &dep.rss[new];
    let new_unavailable = replicas(new_rs) - status_count(new_rs, "availableReplicas");
    let max_scaled_down = all_pods - min_available - new_unavailable;
    if max_scaled_down <= 0 {
        return false;
    }
    sort_by_creation(&dep.rss, &mut olds);
    // cleanupUnhealthyReplicas: unavailable old replicas go first, as they cost nothing.
    let mut cleaned = 0;
    for &i in &olds {
        if cleaned >= max_scaled_down {
            break;
        }
        let (size, available) = (
            replicas(&dep.rss[i]),
            status_count(&dep.rss[i], "availableReplicas"),
        );
        if size == 0 || size <= available {
            continue;
        }
        let down = (max_scaled_down - cleaned).min(size - available);
        scale_and_record(ctx, dep, i, size - down);
        cleaned += down;
    }
    // scaleDownOldReplicaSetsForRollingUpdate.
    let with_new_rs = with_new(&olds, Some(new));
    let available = sum(dep, &with_new_rs, &|rs| {
        status_count(rs, "availableReplicas")
    });
    let mut scaled = 0;
    if available > min_available {
        let budget = available - min_available;
        for &i in &olds {
            if scaled >= budget {
                break;
            }
            let size = replicas(&dep.rss[i]);
            if size == 0 {
                continue;
            }
            let down = size.min(budget - scaled);
            scale_and_record(ctx, dep, i, size - down);
            scaled += down;
        }
    }
    cleaned + scaled > 0
}

/// `rolloutRecreate`: old ReplicaSets to zero, wait for their pods to go, then the new one
/// at full size.
pub(super) fn recreate(ctx: &mut Ctx<'_>, dep: &mut Dep) {
    let Ok((mut new, olds)) = new_and_old(ctx, dep, false) else {
        return;
    };
    let mut all = with_new(&olds, new);
    let mut scaled = false;
    for i in active(dep, olds.iter().copied()) {
        scaled |= scale_and_record(ctx, dep, i, 0);
    }
    if scaled || old_pods_running(ctx, dep, new, &olds) {
        sync_rollout_status(dep, &all, new);
        return;
    }
    if new.is_none() {
        let Ok((created, olds)) = new_and_old(ctx, dep, true) else {
            return;
        };
        new = created;
        all = with_new(&olds, new);
    }
    if let Some(i) = new {
        let size = dep.replicas;
        scale_and_record(ctx, dep, i, size);
    }
    if deployment_complete(dep, &dep.obj["status"]) {
        cleanup(ctx, dep, &olds);
    }
    sync_rollout_status(dep, &all, new);
}

/// `oldPodsRunning`: old ReplicaSets still report pods, or pods of theirs are not finished.
fn old_pods_running(ctx: &Ctx<'_>, dep: &Dep, new: Option<usize>, olds: &[usize]) -> bool {
    if olds
        .iter()
        .map(|&i| status_count(&dep.rss[i], "replicas"))
        .sum::<i64>()
        > 0
    {
        return true;
    }
    let Ok(selector) = LabelSelector::from_object(&dep.obj["spec"]["selector"]) else {
        return false;
    };
    let old_uids: Vec<&str> = (0..dep.rss.len())
        .filter(|&i| Some(i) != new)
        .map(|i| uid(&dep.rss[i]))
        .collect();
    ctx.in_namespace(kind("Pod"), namespace(&dep.obj))
        .iter()
        .filter(|p| selector.matches(&p["metadata"]["labels"]))
        .filter(|p| controller_uid(p).is_some_and(|u| old_uids.contains(&u)))
        .any(|p| !matches!(text(&p["status"]["phase"]), "Failed" | "Succeeded"))
}
