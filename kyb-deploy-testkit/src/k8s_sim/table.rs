//! Server-side printing: the `Table` (meta.k8s.io/v1) that `kubectl get` asks for, with
//! upstream's columns per kind (`pkg/printers/internalversion`), `-o wide` columns at
//! priority 1, and ages computed on the simulated clock.

use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use super::cluster::parse_timestamp;
use super::resources::ResourceType;

/// Whether a request's `Accept` header asks for a Table.
pub(crate) fn wanted(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| {
        a.split(',')
            .next()
            .is_some_and(|first| first.contains("as=Table"))
    })
}

/// One column: its name, type and whether only `-o wide` shows it.
struct Column {
    name: &'static str,
    kind: &'static str,
    wide: bool,
}

const fn col(name: &'static str, kind: &'static str) -> Column {
    Column {
        name,
        kind,
        wide: false,
    }
}

const fn wide(name: &'static str, kind: &'static str) -> Column {
    Column {
        name,
        kind,
        wide: true,
    }
}

fn columns(kind: &str) -> Vec<Column> {
    match kind {
        "Pod" => vec![
            col("Name", "string"),
            col("Ready", "string"),
            col("Status", "string"),
            col("Restarts", "string"),
            col("Age", "string"),
            wide("IP", "string"),
            wide("Node", "string"),
            wide("Nominated Node", "string"),
            wide("Readiness Gates", "string"),
        ],
        "Deployment" => vec![
            col("Name", "string"),
            col("Ready", "string"),
            col("Up-to-date", "integer"),
            col("Available", "integer"),
            col("Age", "string"),
            wide("Containers", "string"),
            wide("Images", "string"),
            wide("Selector", "string"),
        ],
        "ReplicaSet" => vec![
            col("Name", "string"),
            col("Desired", "integer"),
            col("Current", "integer"),
            col("Ready", "integer"),
            col("Age", "string"),
            wide("Containers", "string"),
            wide("Images", "string"),
            wide("Selector", "string"),
        ],
        "Service" => vec![
            col("Name", "string"),
            col("Type", "string"),
            col("Cluster-IP", "string"),
            col("External-IP", "string"),
            col("Port(s)", "string"),
            col("Age", "string"),
            wide("Selector", "string"),
        ],
        "Namespace" => vec![
            col("Name", "string"),
            col("Status", "string"),
            col("Age", "string"),
        ],
        "Node" => vec![
            col("Name", "string"),
            col("Status", "string"),
            col("Roles", "string"),
            col("Age", "string"),
            col("Version", "string"),
            wide("Internal-IP", "string"),
        ],
        "Event" => vec![
            col("Last Seen", "string"),
            col("Type", "string"),
            col("Reason", "string"),
            col("Object", "string"),
            col("Message", "string"),
        ],
        "ConfigMap" => vec![
            col("Name", "string"),
            col("Data", "integer"),
            col("Age", "string"),
        ],
        "Secret" => vec![
            col("Name", "string"),
            col("Type", "string"),
            col("Data", "integer"),
            col("Age", "string"),
        ],
        "HorizontalPodAutoscaler" => vec![
            col("Name", "string"),
            col("Reference", "string"),
            col("Targets", "string"),
            col("MinPods", "string"),
            col("MaxPods", "integer"),
            col("Replicas", "integer"),
            col("Age", "string"),
        ],
        "PodDisruptionBudget" => vec![
            col("Name", "string"),
            col("Min Available", "string"),
            col("Max Unavailable", "string"),
            col("Allowed Disruptions", "integer"),
            col("Age", "string"),
        ],
        _ => vec![col("Name", "string"), col("Age", "string")],
    }
}

/// A Table of `items` of kind `r`, at simulated time `now`; `include` is the request's
/// `includeObject` (`None`, `Object`, else the object's metadata).
pub(crate) fn of(
    r: &ResourceType,
    items: &[Value],
    list_metadata: &Value,
    now: SystemTime,
    include: Option<&str>,
) -> Value {
    let columns = columns(r.kind);
    let definitions: Vec<Value> = columns
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "type": c.kind,
                "format": if c.name == "Name" { "name" } else { "" },
                "description": "",
                "priority": u8::from(c.wide),
            })
        })
        .collect();
    let rows: Vec<Value> = items
        .iter()
        .map(|item| {
            let cells: Vec<Value> = columns
                .iter()
                .map(|c| cell(r.kind, c.name, item, now))
                .collect();
            let object = match include {
                Some("None") => Value::Null,
                Some("Object") => {
                    let mut full = item.clone();
                    full["apiVersion"] = json!(r.api_version());
                    full["kind"] = json!(r.kind);
                    full
                }
                _ => json!({
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": item["metadata"],
                }),
            };
            json!({"cells": cells, "object": object})
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_metadata,
        "columnDefinitions": definitions,
        "rows": rows,
    })
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

fn or_none(s: String) -> String {
    if s.is_empty() { "<none>".to_owned() } else { s }
}

fn cell(kind: &str, column: &str, o: &Value, now: SystemTime) -> Value {
    let spec = &o["spec"];
    let status = &o["status"];
    let created = || json!(age(&o["metadata"]["creationTimestamp"], now));
    match (kind, column) {
        (_, "Name") => o["metadata"]["name"].clone(),
        (_, "Age") => created(),
        ("Pod", "Ready") => {
            let statuses = status["containerStatuses"]
                .as_array()
                .map_or(&[][..], Vec::as_slice);
            let ready = statuses.iter().filter(|s| s["ready"] == true).count();
            let total = spec["containers"].as_array().map_or(0, Vec::len);
            json!(format!("{ready}/{total}"))
        }
        ("Pod", "Status") => json!(pod_status(o)),
        ("Pod", "Restarts") => {
            let restarts: i64 = status["containerStatuses"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| int(&s["restartCount"]))
                .sum();
            json!(restarts.to_string())
        }
        ("Pod", "IP") => json!(or_none(text(&status["podIP"]))),
        ("Pod", "Node") => json!(or_none(text(&spec["nodeName"]))),
        ("Pod", "Nominated Node" | "Readiness Gates") => json!("<none>"),
        ("Deployment", "Ready") => {
            json!(format!(
                "{}/{}",
                int(&status["readyReplicas"]),
                int(&spec["replicas"])
            ))
        }
        ("Deployment", "Up-to-date") => json!(int(&status["updatedReplicas"])),
        ("Deployment", "Available") => json!(int(&status["availableReplicas"])),
        ("ReplicaSet", "Desired") => json!(int(&spec["replicas"])),
        ("ReplicaSet", "Current") => json!(int(&status["replicas"])),
        ("ReplicaSet", "Ready") => json!(int(&status["readyReplicas"])),
        ("Deployment" | "ReplicaSet", "Containers") => json!(containers(o, "name")),
        ("Deployment" | "ReplicaSet", "Images") => json!(containers(o, "image")),
        ("Deployment" | "ReplicaSet", "Selector") => {
            json!(selector(&spec["selector"]["matchLabels"]))
        }
        ("Service", "Type") => json!(text(&spec["type"])),
        ("Service", "Cluster-IP") => json!(or_none(text(&spec["clusterIP"]))),
        ("Service", "External-IP") => {
            let ingress: Vec<String> = status["loadBalancer"]["ingress"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|i| i["ip"].as_str().map(str::to_owned))
                .collect();
            json!(if ingress.is_empty() {
                "<none>".to_owned()
            } else {
                ingress.join(",")
            })
        }
        ("Service", "Port(s)") => {
            let ports: Vec<String> = spec["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| match p["nodePort"].as_i64() {
                    Some(node) => format!("{}:{node}/{}", int(&p["port"]), text(&p["protocol"])),
                    None => format!("{}/{}", int(&p["port"]), text(&p["protocol"])),
                })
                .collect();
            json!(or_none(ports.join(",")))
        }
        ("Service", "Selector") => json!(selector(&spec["selector"])),
        ("Namespace", "Status") => json!(text(&status["phase"])),
        ("Node", "Status") => {
            let ready = status["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            json!(if ready { "Ready" } else { "NotReady" })
        }
        ("Node", "Roles") => {
            let roles: Vec<String> = o["metadata"]["labels"]
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(k, _)| {
                    k.strip_prefix("node-role.kubernetes.io/")
                        .map(str::to_owned)
                })
                .collect();
            json!(or_none(roles.join(",")))
        }
        ("Node", "Version") => json!(text(&status["nodeInfo"]["kubeletVersion"])),
        ("Node", "Internal-IP") => {
            let ip = status["addresses"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|a| a["type"] == "InternalIP")
                .map(|a| text(&a["address"]))
                .unwrap_or_default();
            json!(or_none(ip))
        }
        ("Event", "Last Seen") => {
            let last = if o["lastTimestamp"].is_string() {
                &o["lastTimestamp"]
            } else {
                &o["eventTime"]
            };
            json!(age(last, now))
        }
        ("Event", "Type") => json!(text(&o["type"])),
        ("Event", "Reason") => json!(text(&o["reason"])),
        ("Event", "Object") => {
            let involved = &o["involvedObject"];
            json!(format!(
                "{}/{}",
                text(&involved["kind"]).to_ascii_lowercase(),
                text(&involved["name"])
            ))
        }
        ("Event", "Message") => json!(text(&o["message"])),
        ("ConfigMap", "Data") => json!(
            o["data"].as_object().map_or(0, |m| m.len())
                + o["binaryData"].as_object().map_or(0, |m| m.len())
        ),
        ("Secret", "Type") => json!(text(&o["type"])),
        ("Secret", "Data") => json!(o["data"].as_object().map_or(0, |m| m.len())),
        ("HorizontalPodAutoscaler", "Reference") => {
            let target = &spec["scaleTargetRef"];
            json!(format!(
                "{}/{}",
                text(&target["kind"]),
                text(&target["name"])
            ))
        }
        ("HorizontalPodAutoscaler", "Targets") => json!(hpa_targets(o)),
        ("HorizontalPodAutoscaler", "MinPods") => {
            json!(int(&spec["minReplicas"]).max(1).to_string())
        }
        ("HorizontalPodAutoscaler", "MaxPods") => json!(int(&spec["maxReplicas"])),
        ("HorizontalPodAutoscaler", "Replicas") => json!(int(&status["currentReplicas"])),
        ("PodDisruptionBudget", "Min Available") => json!(int_or_string(&spec["minAvailable"])),
        ("PodDisruptionBudget", "Max Unavailable") => json!(int_or_string(&spec["maxUnavailable"])),
        ("PodDisruptionBudget", "Allowed Disruptions") => json!(int(&status["disruptionsAllowed"])),
        _ => json!(""),
    }
}

fn int_or_string(v: &Value) -> String {
    match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => "N/A".to_owned(),
    }
}

/// A pod's STATUS: a waiting or terminated container's reason, else its phase.
fn pod_status(pod: &Value) -> String {
    if !pod["metadata"]["deletionTimestamp"].is_null() {
        return "Terminating".to_owned();
    }
    let statuses = pod["status"]["containerStatuses"]
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    for s in statuses {
        if let Some(reason) = s["state"]["waiting"]["reason"].as_str() {
            return reason.to_owned();
        }
        if let Some(reason) = s["state"]["terminated"]["reason"].as_str() {
            return reason.to_owned();
        }
    }
    pod["status"]["phase"]
        .as_str()
        .unwrap_or("Pending")
        .to_owned()
}

fn containers(o: &Value, field: &str) -> String {
    let list: Vec<String> = o["spec"]["template"]["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| text(&c[field]))
        .collect();
    list.join(",")
}

fn selector(labels: &Value) -> String {
    let pairs: Vec<String> = labels
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    or_none(pairs.join(","))
}

/// `cpu: 50%/60%`, or `<unknown>` before a figure is known.
fn hpa_targets(hpa: &Value) -> String {
    let current = hpa["status"]["currentMetrics"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["resource"]["name"] == "cpu")
        .and_then(|m| m["resource"]["current"]["averageUtilization"].as_i64());
    let parts: Vec<String> = hpa["spec"]["metrics"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["type"] == "Resource")
        .map(|m| {
            let name = text(&m["resource"]["name"]);
            let want = m["resource"]["target"]["averageUtilization"]
                .as_i64()
                .map_or_else(|| "<unset>".to_owned(), |w| format!("{w}%"));
            let now = match (name.as_str(), current) {
                ("cpu", Some(c)) => format!("{c}%"),
                _ => "<unknown>".to_owned(),
            };
            format!("{name}: {now}/{want}")
        })
        .collect();
    or_none(parts.join(", "))
}

/// `5m`, `2d3h`: apimachinery's `HumanDuration` of the time since `stamp`.
fn age(stamp: &Value, now: SystemTime) -> String {
    let Some(at) = stamp.as_str().and_then(parse_timestamp) else {
        return "<unknown>".to_owned();
    };
    match now.duration_since(at) {
        Ok(d) => human_duration(d),
        Err(e) if e.duration() > Duration::from_secs(1) => "<invalid>".to_owned(),
        Err(_) => "0s".to_owned(),
    }
}

fn human_duration(d: Duration) -> String {
    let seconds = d.as_secs();
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        return match seconds % 60 {
            0 => format!("{minutes}m"),
            s => format!("{minutes}m{s}s"),
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        return match minutes % 60 {
            0 => format!("{hours}h"),
            m => format!("{hours}h{m}m"),
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        return match hours % 24 {
            0 => format!("{}d", hours / 24),
            h => format!("{}d{h}h", hours / 24),
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    let years = hours / (24 * 365);
    if hours < 24 * 365 * 8 {
        return match (hours / 24) % 365 {
            0 => format!("{years}y"),
            days => format!("{years}y{days}d"),
        };
    }
    format!("{years}y")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_like_kubectls() {
        let cases = [
            (5, "5s"),
            (119, "119s"),
            (150, "2m30s"),
            (600, "10m"),
            (7_200, "120m"),
            (3 * 3_600 + 60, "3h1m"),
            (30 * 3_600, "30h"),
            (3 * 86_400 + 3_600, "3d1h"),
            (40 * 86_400, "40d"),
        ];
        for (secs, shown) in cases {
            assert_eq!(human_duration(Duration::from_secs(secs)), shown, "{secs}");
        }
    }

    #[test]
    fn a_table_is_asked_for_first() {
        assert!(wanted(Some(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
        )));
        assert!(!wanted(Some("application/json")));
        assert!(!wanted(None));
    }
}
