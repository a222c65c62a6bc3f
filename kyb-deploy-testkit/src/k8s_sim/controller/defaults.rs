//! The defaults the API server fills in (`SetDefaults_Deployment`, `SetDefaults_PodSpec`,
//! ...), for the fields `kubectl get -o yaml` shows on a real cluster.
//!
//! Every function only fills fields that are absent, so applying it twice changes nothing.
//! The API layer can call [`apply`] on every create and update (as a real API server
//! does, without a generation bump); the controllers apply it too, for objects that were
//! stored without.

use serde_json::{Map, Value, json};

use super::json::{object, object_at};

/// Fills the defaults of an object of `kind` (Deployment, ReplicaSet, Pod, Secret,
/// Service; other kinds are left alone). Returns whether anything changed.
pub(crate) fn apply(kind: &str, object: &mut Value) -> bool {
    match kind {
        "Deployment" => deployment(object),
        "ReplicaSet" => replica_set(object),
        "Pod" => pod(object),
        "Secret" => secret(object),
        "Service" => service(object),
        "Namespace" => namespace(object),
        _ => false,
    }
}

/// A Namespace carries its name as the label `kubernetes.io/metadata.name` (set by the API
/// server whatever the writer gave, so that selectors can pick namespaces by name).
pub(crate) fn namespace(n: &mut Value) -> bool {
    let Some(name) = n["metadata"]["name"].as_str().map(str::to_owned) else {
        return false;
    };
    let labels = object_at(n, &["metadata", "labels"]);
    let label = json!(name);
    if labels.get("kubernetes.io/metadata.name") == Some(&label) {
        return false;
    }
    labels.insert("kubernetes.io/metadata.name".to_owned(), label);
    true
}

/// A Secret: `stringData` is written into `data` (base64; it wins over a `data` key of the
/// same name) and is never stored; `type` is `Opaque` unless given.
pub(crate) fn secret(s: &mut Value) -> bool {
    use base64::Engine as _;
    let Some(secret) = s.as_object_mut() else {
        return false;
    };
    let mut changed = fill(secret, "type", json!("Opaque"));
    if let Some(Value::Object(strings)) = secret.remove("stringData") {
        changed = true;
        let data = object(secret.entry("data").or_insert(Value::Null));
        for (key, value) in strings {
            let text = value.as_str().unwrap_or_default();
            let encoded = base64::engine::general_purpose::STANDARD.encode(text);
            data.insert(key, Value::String(encoded));
        }
    }
    changed
}

/// `SetDefaults_Service`: type, session affinity, IP families and traffic policy, each
/// port's protocol and target port. The cluster IP is allocated by the store on create.
pub(crate) fn service(s: &mut Value) -> bool {
    if !s["spec"].is_object() {
        return false;
    }
    let spec = object_at(s, &["spec"]);
    let mut changed = fill(spec, "type", json!("ClusterIP"));
    changed |= fill(spec, "sessionAffinity", json!("None"));
    let external_name = spec["type"] == "ExternalName";
    if !external_name {
        changed |= fill(spec, "ipFamilies", json!(["IPv4"]));
        changed |= fill(spec, "ipFamilyPolicy", json!("SingleStack"));
        changed |= fill(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    if matches!(spec["type"].as_str(), Some("NodePort" | "LoadBalancer")) {
        changed |= fill(spec, "externalTrafficPolicy", json!("Cluster"));
    }
    for port in ports_mut(spec) {
        changed |= fill(port, "protocol", json!("TCP"));
        let number = port.get("port").cloned().unwrap_or(Value::Null);
        if !number.is_null() {
            changed |= fill(port, "targetPort", number);
        }
    }
    changed
}

/// On an update, what the server allocated and the writer left out is kept: a Service's
/// `clusterIP` and `clusterIPs` (as the API server's registry does before validating).
pub(crate) fn keep_allocated(kind: &str, object: &mut Value, current: &Value) {
    if kind != "Service" || !object["spec"].is_object() {
        return;
    }
    let spec = object_at(object, &["spec"]);
    for key in ["clusterIP", "clusterIPs"] {
        let unset = spec
            .get(key)
            .is_none_or(|v| v.is_null() || v == "" || v.as_array().is_some_and(Vec::is_empty));
        if unset && !current["spec"][key].is_null() {
            spec.insert(key.to_owned(), current["spec"][key].clone());
        }
    }
}

/// `SetDefaults_Deployment` (apps/v1) and the defaults of its pod template.
pub(crate) fn deployment(d: &mut Value) -> bool {
    if !d["spec"].is_object() {
        return false;
    }
    let spec = object_at(d, &["spec"]);
    let mut changed = fill(spec, "replicas", json!(1));
    changed |= fill(spec, "revisionHistoryLimit", json!(10));
    changed |= fill(spec, "progressDeadlineSeconds", json!(600));
    let strategy = object(spec.entry("strategy").or_insert(Value::Null));
    changed |= fill(strategy, "type", json!("RollingUpdate"));
    if strategy["type"] == "RollingUpdate" {
        let rolling = object(strategy.entry("rollingUpdate").or_insert(Value::Null));
        changed |= fill(rolling, "maxUnavailable", json!("25%"));
        changed |= fill(rolling, "maxSurge", json!("25%"));
    }
    if let Some(template) = spec.get_mut("template") {
        changed |= pod_spec(&mut template["spec"]);
    }
    changed
}

/// `SetDefaults_ReplicaSet` and the defaults of its pod template.
pub(crate) fn replica_set(rs: &mut Value) -> bool {
    if !rs["spec"].is_object() {
        return false;
    }
    let spec = object_at(rs, &["spec"]);
    let mut changed = fill(spec, "replicas", json!(1));
    if let Some(template) = spec.get_mut("template") {
        changed |= pod_spec(&mut template["spec"]);
    }
    changed
}

/// The defaults of a Pod: its spec's, and those the admission plugins add (service
/// account, tolerations of unready and unreachable nodes, priority).
pub(crate) fn pod(p: &mut Value) -> bool {
    if !p["spec"].is_object() {
        return false;
    }
    let mut changed = pod_spec(&mut p["spec"]);
    let spec = object_at(p, &["spec"]);
    changed |= fill(spec, "serviceAccountName", json!("default"));
    let account = spec["serviceAccountName"].clone();
    changed |= fill(spec, "serviceAccount", account);
    changed |= fill(spec, "enableServiceLinks", json!(true));
    changed |= fill(spec, "priority", json!(0));
    changed |= fill(spec, "preemptionPolicy", json!("PreemptLowerPriority"));
    let toleration = |key: &str| json!({"effect": "NoExecute", "key": key, "operator": "Exists", "tolerationSeconds": 300});
    changed |= fill(
        spec,
        "tolerations",
        json!([
            toleration("node.kubernetes.io/not-ready"),
            toleration("node.kubernetes.io/unreachable")
        ]),
    );
    changed
}

/// `SetDefaults_PodSpec` and the defaults of its containers.
fn pod_spec(spec: &mut Value) -> bool {
    if !spec.is_object() {
        return false;
    }
    let spec = object(spec);
    let mut changed = fill(spec, "restartPolicy", json!("Always"));
    changed |= fill(spec, "terminationGracePeriodSeconds", json!(30));
    changed |= fill(spec, "dnsPolicy", json!("ClusterFirst"));
    changed |= fill(spec, "securityContext", json!({}));
    changed |= fill(spec, "schedulerName", json!("default-scheduler"));
    for list in ["initContainers", "containers"] {
        for c in spec
            .get_mut(list)
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            changed |= container(c);
        }
    }
    changed
}

fn container(c: &mut Value) -> bool {
    if !c.is_object() {
        return false;
    }
    let policy = pull_policy(c["image"].as_str().unwrap_or(""));
    let c = object(c);
    let mut changed = fill(c, "imagePullPolicy", json!(policy));
    changed |= fill(c, "terminationMessagePath", json!("/dev/termination-log"));
    changed |= fill(c, "terminationMessagePolicy", json!("File"));
    changed |= fill(c, "resources", json!({}));
    for port in ports_mut(c) {
        changed |= fill(port, "protocol", json!("TCP"));
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = c.get_mut(probe).and_then(Value::as_object_mut) {
            changed |= fill(p, "timeoutSeconds", json!(1));
            changed |= fill(p, "periodSeconds", json!(10));
            changed |= fill(p, "successThreshold", json!(1));
            changed |= fill(p, "failureThreshold", json!(3));
            if let Some(get) = p.get_mut("httpGet").and_then(Value::as_object_mut) {
                changed |= fill(get, "scheme", json!("HTTP"));
            }
        }
    }
    changed
}

/// `Always` for `:latest` or untagged images, `IfNotPresent` otherwise.
fn pull_policy(image: &str) -> &'static str {
    if image.contains('@') {
        return "IfNotPresent";
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, tag)) if tag != "latest" => "IfNotPresent",
        _ => "Always",
    }
}

/// The entries of a Service's or a container's `ports`.
fn ports_mut(map: &mut Map<String, Value>) -> impl Iterator<Item = &mut Map<String, Value>> {
    map.get_mut("ports")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
}

/// Inserts `key: value` when `key` is absent (or null).
fn fill(map: &mut Map<String, Value>, key: &str, value: Value) -> bool {
    if map.get(key).is_some_and(|v| !v.is_null()) {
        return false;
    }
    map.insert(key.to_owned(), value);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployments_get_upstream_defaults_once() {
        let mut d = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "app", "image": "reg:5000/web:v1", "ports": [{"containerPort": 80}]},
            {"name": "side", "image": "busybox"}
        ]}}}});
        assert!(apply("Deployment", &mut d));
        assert_eq!(d["spec"]["replicas"], 1);
        assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
        assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
        assert_eq!(d["spec"]["progressDeadlineSeconds"], 600);
        let containers = &d["spec"]["template"]["spec"]["containers"];
        assert_eq!(containers[0]["imagePullPolicy"], "IfNotPresent");
        assert_eq!(containers[0]["ports"][0]["protocol"], "TCP");
        assert_eq!(containers[1]["imagePullPolicy"], "Always");
        assert!(!apply("Deployment", &mut d));
    }

    #[test]
    fn recreate_gets_no_rolling_parameters() {
        let mut d = json!({"spec": {"strategy": {"type": "Recreate"}}});
        deployment(&mut d);
        assert!(d["spec"]["strategy"].get("rollingUpdate").is_none());
        let mut p = json!({"spec": {"containers": []}});
        assert!(pod(&mut p));
        assert_eq!(p["spec"]["serviceAccount"], "default");
        assert!(!apply("ConfigMap", &mut p));
    }
}
