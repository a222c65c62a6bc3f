//! The HorizontalPodAutoscaler controller (autoscaling/v2), the part a deployment tool
//! meets: the target's replicas kept within `minReplicas` and `maxReplicas`, scaled on the
//! CPU utilization its pods report (a `cpu_load` fault stands in for the metrics server),
//! scale-downs held for the stabilization window, and the status and events upstream
//! writes.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use super::ctx::Ctx;
use super::events::{Note, Source};
use super::json::{int, namespace, set, uid};
use crate::k8s_sim::faults::Fault;
use crate::k8s_sim::resources::{ResourceType, kind};

/// Upstream's tolerance: a ratio within 10 % of 1 changes nothing.
const TOLERANCE: f64 = 0.1;

/// Upstream's default scale-down stabilization window.
const SCALE_DOWN_WINDOW: Duration = Duration::from_secs(300);

/// What the controller remembers between passes: each autoscaler's recent
/// recommendations, for the scale-down stabilization window.
#[derive(Debug, Default)]
pub(super) struct Autoscalers {
    recommendations: HashMap<String, Vec<(SystemTime, i64)>>,
}

/// The kinds an autoscaler can scale (those with a `scale` subresource).
fn target_type(kind_name: &str) -> Option<&'static ResourceType> {
    match kind_name {
        "Deployment" | "ReplicaSet" | "StatefulSet" => Some(kind(kind_name)),
        _ => None,
    }
}

impl Autoscalers {
    /// Syncs every autoscaler.
    pub(super) fn sync_all(&mut self, ctx: &mut Ctx<'_>) {
        let autoscalers = ctx.all(kind("HorizontalPodAutoscaler"));
        let alive: Vec<String> = autoscalers.iter().map(|h| uid(h).to_owned()).collect();
        self.recommendations.retain(|id, _| alive.contains(id));
        for hpa in autoscalers {
            self.sync(ctx, hpa);
        }
    }

    fn sync(&mut self, ctx: &mut Ctx<'_>, mut hpa: Value) {
        let spec = hpa["spec"].clone();
        let reference = &spec["scaleTargetRef"];
        let target_kind = reference["kind"].as_str().unwrap_or_default();
        let target_name = reference["name"].as_str().unwrap_or_default();
        let ns = namespace(&hpa).to_owned();
        let target = target_type(target_kind)
            .and_then(|r| ctx.store.find(r, &ns, target_name).cloned().map(|t| (r, t)));
        let Some((r, mut target)) = target else {
            let message = format!(
                "the HPA controller was unable to get the target's current scale: {} \"{target_name}\" not found",
                target_kind.to_ascii_lowercase()
            );
            let conditions = json!([condition(
                ctx,
                "AbleToScale",
                false,
                "FailedGetScale",
                &message
            ),]);
            if hpa["status"]["conditions"] != conditions {
                ctx.event(
                    &hpa,
                    Source::Autoscaler,
                    Note::warning(ctx.now, "FailedGetScale", message),
                );
                set(&mut hpa, &["status", "conditions"], conditions);
                set(&mut hpa, &["status", "currentReplicas"], json!(0));
                set(&mut hpa, &["status", "desiredReplicas"], json!(0));
                ctx.update_status(kind("HorizontalPodAutoscaler"), hpa);
            }
            return;
        };
        let current = int(&target["spec"]["replicas"]).unwrap_or(1);
        let min = int(&spec["minReplicas"]).unwrap_or(1);
        let max = int(&spec["maxReplicas"]).unwrap_or(min).max(min);
        let utilization = cpu_utilization(ctx, &target, current);
        let wanted_utilization = spec["metrics"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| m["type"] == "Resource" && m["resource"]["name"] == "cpu")
            .and_then(|m| int(&m["resource"]["target"]["averageUtilization"]));
        // The metric's recommendation, when both the figure and the target are known.
        let (recommended, metric_reason) = match (utilization, wanted_utilization) {
            (Some(now), Some(want)) if want > 0 => {
                let ratio = now as f64 / want as f64;
                let replicas = if (ratio - 1.0).abs() <= TOLERANCE {
                    current
                } else {
                    (ratio * current as f64).ceil() as i64
                };
                (
                    replicas,
                    Some(
                        "cpu resource utilization (percentage of request) above target".to_owned(),
                    ),
                )
            }
            _ => (current, None),
        };
        // Scale-downs follow the highest recommendation of the window; scale-ups are at once.
        let window = spec["behavior"]["scaleDown"]["stabilizationWindowSeconds"]
            .as_u64()
            .map_or(SCALE_DOWN_WINDOW, Duration::from_secs);
        let history = self
            .recommendations
            .entry(uid(&hpa).to_owned())
            .or_default();
        history.push((ctx.now, recommended));
        history.retain(|(at, _)| ctx.now.duration_since(*at).unwrap_or_default() <= window);
        let stabilized = if recommended < current {
            history
                .iter()
                .map(|(_, r)| *r)
                .max()
                .unwrap_or(recommended)
                .min(current)
        } else {
            recommended
        };
        let desired = stabilized.clamp(min, max);
        let limited = if stabilized < min {
            Some("TooFewReplicas")
        } else if stabilized > max {
            Some("TooManyReplicas")
        } else {
            None
        };
        if desired != current {
            let reason = match (limited, &metric_reason) {
                (Some(_), _) if desired == min => {
                    "Current number of replicas below Spec.MinReplicas".to_owned()
                }
                (Some(_), _) => "Current number of replicas above Spec.MaxReplicas".to_owned(),
                (None, Some(reason)) if desired > current => reason.clone(),
                (None, _) => "All metrics below target".to_owned(),
            };
            let before = target.clone();
            set(&mut target, &["spec", "replicas"], json!(desired));
            // Through the scale subresource, as kube-controller-manager: the change takes
            // `spec.replicas` over from whoever applied it, so a later apply that leaves
            // `replicas` out does not remove it.
            crate::k8s_sim::patch::record_subresource_update(
                Some(&before),
                &mut target,
                "kube-controller-manager",
                "scale",
                &ctx.stamp(),
            );
            if ctx.update(r, target).is_some() {
                let message = format!("New size: {desired}; reason: {reason}");
                ctx.event(
                    &hpa,
                    Source::Autoscaler,
                    Note::normal(ctx.now, "SuccessfulRescale", message),
                );
                set(&mut hpa, &["status", "lastScaleTime"], json!(ctx.stamp()));
            }
        }
        let mut conditions = vec![
            condition(
                ctx,
                "AbleToScale",
                true,
                "ReadyForNewScale",
                "recommended size matches current size",
            ),
            match metric_reason {
                Some(_) => condition(
                    ctx,
                    "ScalingActive",
                    true,
                    "ValidMetricFound",
                    "the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage of request)",
                ),
                None => condition(
                    ctx,
                    "ScalingActive",
                    false,
                    "FailedGetResourceMetric",
                    "the HPA was unable to compute the replica count: no metrics returned from resource metrics API",
                ),
            },
        ];
        conditions.push(match limited {
            Some(reason) => condition(
                ctx,
                "ScalingLimited",
                true,
                reason,
                "the desired replica count is out of the range of minReplicas and maxReplicas",
            ),
            None => condition(
                ctx,
                "ScalingLimited",
                false,
                "DesiredWithinRange",
                "the desired count is within the acceptable range",
            ),
        });
        // Transition times stay those of the first pass that set each condition.
        let previous = hpa["status"]["conditions"].clone();
        for c in &mut conditions {
            if let Some(old) = previous
                .as_array()
                .into_iter()
                .flatten()
                .find(|o| o["type"] == c["type"] && o["status"] == c["status"])
            {
                c["lastTransitionTime"] = old["lastTransitionTime"].clone();
            }
        }
        let before = hpa["status"].clone();
        set(&mut hpa, &["status", "currentReplicas"], json!(current));
        set(&mut hpa, &["status", "desiredReplicas"], json!(desired));
        set(
            &mut hpa,
            &["status", "conditions"],
            Value::Array(conditions),
        );
        let metrics = match utilization {
            Some(now) => {
                json!([{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": now}}}])
            }
            None => json!([]),
        };
        set(&mut hpa, &["status", "currentMetrics"], metrics);
        if hpa["status"] != before {
            ctx.update_status(kind("HorizontalPodAutoscaler"), hpa);
        }
    }
}

/// The average CPU utilization the target's `replicas` pods report: the load of a
/// `cpu_load` fault matching the image of its template's first container, shared.
fn cpu_utilization(ctx: &Ctx<'_>, target: &Value, replicas: i64) -> Option<i64> {
    let image = target["spec"]["template"]["spec"]["containers"][0]["image"].as_str()?;
    ctx.faults.for_image(image).iter().find_map(|f| match f {
        Fault::CpuLoad { percent, .. } => Some(i64::from(*percent) / replicas.max(1)),
        _ => None,
    })
}

fn condition(ctx: &Ctx<'_>, kind_name: &str, status: bool, reason: &str, message: &str) -> Value {
    json!({
        "type": kind_name,
        "status": if status { "True" } else { "False" },
        "reason": reason,
        "message": message,
        "lastTransitionTime": ctx.stamp(),
    })
}
