//! The status of a Deployment (upstream `sync.go` and `progress.go`): counts from its
//! ReplicaSets, the `Available` condition, and the `Progressing` condition with its
//! deadline.

use std::time::{Duration, SystemTime};

use serde_json::{Map, Value, json};

use super::super::cluster::timestamp;
use super::deployment::{Dep, replicas, status_count};
use super::json::{generation, int, object, set_count, text, time};

/// The `Progressing` condition type.
pub(super) const PROGRESSING: &str = "Progressing";
/// The `Available` condition type.
pub(super) const AVAILABLE: &str = "Available";
/// The reason of a completed rollout.
pub(super) const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
/// The reason of a rollout past its deadline.
pub(super) const TIMED_OUT: &str = "ProgressDeadlineExceeded";
const PAUSED: &str = "DeploymentPaused";
const RESUMED: &str = "DeploymentResumed";

/// The condition of type `t` in `status`.
pub(super) fn condition<'a>(status: &'a Value, t: &str) -> Option<&'a Value> {
    status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == t)
}

/// `NewDeploymentCondition`: updated and transitioned `now`.
pub(super) fn new_condition(
    t: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: SystemTime,
) -> Value {
    let now = timestamp(now);
    json!({
        "type": t,
        "status": status,
        "lastUpdateTime": now,
        "lastTransitionTime": now,
        "reason": reason,
        "message": message,
    })
}

/// `SetDeploymentCondition`: nothing when status and reason are unchanged; otherwise the
/// condition replaces the old one (at the end of the list), keeping its transition time
/// when the status is the same.
pub(super) fn set_condition(status: &mut Value, mut c: Value) {
    if let Some(current) = condition(status, text(&c["type"])) {
        if current["status"] == c["status"] && current["reason"] == c["reason"] {
            return;
        }
        if current["status"] == c["status"] {
            c["lastTransitionTime"] = current["lastTransitionTime"].clone();
        }
    }
    remove_condition(status, text(&c["type"]).to_owned().as_str());
    let conditions = object(status)
        .entry("conditions")
        .or_insert_with(|| json!([]));
    if !conditions.is_array() {
        *conditions = json!([]);
    }
    if let Some(list) = conditions.as_array_mut() {
        list.push(c);
    }
}

/// `RemoveDeploymentCondition`.
pub(super) fn remove_condition(status: &mut Value, t: &str) {
    if let Some(list) = status.get_mut("conditions").and_then(Value::as_array_mut) {
        list.retain(|c| c["type"] != t);
    }
}

/// `checkPausedConditions`: `Progressing` becomes Unknown/DeploymentPaused when the
/// Deployment is paused and Unknown/DeploymentResumed when it is resumed, unless it has
/// timed out.
pub(super) fn check_paused_conditions(dep: &mut Dep) {
    if dep.deadline.is_none() {
        return;
    }
    let reason = condition(&dep.obj["status"], PROGRESSING).map(|c| text(&c["reason"]).to_owned());
    if reason.as_deref() == Some(TIMED_OUT) {
        return;
    }
    let paused_before = reason.as_deref() == Some(PAUSED);
    let c = if dep.paused && !paused_before {
        new_condition(
            PROGRESSING,
            "Unknown",
            PAUSED,
            "Deployment is paused",
            dep.now,
        )
    } else if !dep.paused && paused_before {
        new_condition(
            PROGRESSING,
            "Unknown",
            RESUMED,
            "Deployment is resumed",
            dep.now,
        )
    } else {
        return;
    };
    set_condition(&mut dep.obj["status"], c);
}

/// `calculateStatus`: the counts from ReplicaSets `all` (`new` being the new one), and the
/// `Available` condition.
fn calculate_status(dep: &Dep, all: &[usize], new: Option<usize>) -> Value {
    let sum = |f: &dyn Fn(&Value) -> i64| all.iter().map(|&i| f(&dep.rss[i])).sum::<i64>();
    let available = sum(&|rs| status_count(rs, "availableReplicas"));
    let total = sum(&replicas);
    let mut status = Map::new();
    set_count(&mut status, "observedGeneration", generation(&dep.obj));
    set_count(
        &mut status,
        "replicas",
        sum(&|rs| status_count(rs, "replicas")),
    );
    let updated = new.map_or(0, |i| status_count(&dep.rss[i], "replicas"));
    set_count(&mut status, "updatedReplicas", updated);
    set_count(
        &mut status,
        "readyReplicas",
        sum(&|rs| status_count(rs, "readyReplicas")),
    );
    set_count(&mut status, "availableReplicas", available);
    set_count(
        &mut status,
        "unavailableReplicas",
        (total - available).max(0),
    );
    if let Some(count) = int(&dep.obj["status"]["collisionCount"]) {
        status.insert("collisionCount".into(), json!(count));
    }
    if let Some(conditions) = dep.obj["status"]["conditions"].as_array() {
        status.insert("conditions".into(), json!(conditions));
    }
    let mut status = Value::Object(status);
    let now = dep.now;
    let c = if available >= dep.replicas - dep.max_unavailable {
        new_condition(
            AVAILABLE,
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
            now,
        )
    } else {
        new_condition(
            AVAILABLE,
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
            now,
        )
    };
    set_condition(&mut status, c);
    status
}

fn count(status: &Value, key: &str) -> i64 {
    int(&status[key]).unwrap_or(0)
}

/// `syncDeploymentStatus`: the status without progress estimation (paused or scaling).
pub(super) fn sync_deployment_status(dep: &mut Dep, all: &[usize], new: Option<usize>) {
    dep.obj["status"] = calculate_status(dep, all, new);
}

/// `DeploymentComplete`: all replicas updated and available, and the spec observed.
pub(super) fn deployment_complete(dep: &Dep, status: &Value) -> bool {
    count(status, "updatedReplicas") == dep.replicas
        && count(status, "replicas") == dep.replicas
        && count(status, "availableReplicas") == dep.replicas
        && count(status, "observedGeneration") >= generation(&dep.obj)
}

/// `DeploymentProgressing`: more updated, ready or available replicas than before, or
/// fewer old ones.
fn deployment_progressing(old: &Value, new: &Value) -> bool {
    let old_olds = count(old, "replicas") - count(old, "updatedReplicas");
    let new_olds = count(new, "replicas") - count(new, "updatedReplicas");
    count(new, "updatedReplicas") > count(old, "updatedReplicas")
        || new_olds < old_olds
        || count(new, "readyReplicas") > count(old, "readyReplicas")
        || count(new, "availableReplicas") > count(old, "availableReplicas")
}

/// `DeploymentTimedOut`: no progress reported for `progressDeadlineSeconds`.
fn deployment_timed_out(dep: &Dep, status: &Value) -> bool {
    let Some(deadline) = dep.deadline else {
        return false;
    };
    let Some(c) = condition(status, PROGRESSING) else {
        return false;
    };
    match text(&c["reason"]) {
        NEW_RS_AVAILABLE => false,
        TIMED_OUT => true,
        _ => time(&c["lastUpdateTime"])
            .is_some_and(|from| from + Duration::from_secs(deadline.max(0) as u64) < dep.now),
    }
}

/// `syncRolloutStatus`: the status with the `Progressing` condition estimated.
pub(super) fn sync_rollout_status(dep: &mut Dep, all: &[usize], new: Option<usize>) {
    let mut status = calculate_status(dep, all, new);
    if dep.deadline.is_none() {
        remove_condition(&mut status, PROGRESSING);
    }
    let current = condition(&dep.obj["status"], PROGRESSING).cloned();
    let complete_before = count(&status, "replicas") == count(&status, "updatedReplicas")
        && current
            .as_ref()
            .is_some_and(|c| c["reason"] == NEW_RS_AVAILABLE);
    if dep.deadline.is_some() && !complete_before {
        let subject = match new {
            Some(i) => format!("ReplicaSet \"{}\"", dep.rs_name(i)),
            None => format!("Deployment \"{}\"", text(&dep.obj["metadata"]["name"])),
        };
        if deployment_complete(dep, &status) {
            let message = format!("{subject} has successfully progressed.");
            let c = new_condition(PROGRESSING, "True", NEW_RS_AVAILABLE, &message, dep.now);
            set_condition(&mut status, c);
        } else if deployment_progressing(&dep.obj["status"], &status) {
            let message = format!("{subject} is progressing.");
            let mut c = new_condition(PROGRESSING, "True", "ReplicaSetUpdated", &message, dep.now);
            // Unlike other conditions, Progressing gets a new lastUpdateTime whenever
            // progress is noticed, even with the same reason.
            if let Some(current) = &current {
                if current["status"] == "True" {
                    c["lastTransitionTime"] = current["lastTransitionTime"].clone();
                }
                remove_condition(&mut status, PROGRESSING);
            }
            set_condition(&mut status, c);
        } else if deployment_timed_out(dep, &status) {
            let message = format!("{subject} has timed out progressing.");
            let c = new_condition(PROGRESSING, "False", TIMED_OUT, &message, dep.now);
            set_condition(&mut status, c);
        }
    }
    remove_condition(&mut status, "ReplicaFailure");
    dep.obj["status"] = status;
}
