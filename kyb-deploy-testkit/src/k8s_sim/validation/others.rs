//! The API server's rules for Services, ConfigMaps and Secrets, autoscalers and RBAC
//! objects, with its messages.

use std::collections::HashSet;

use serde_json::Value;

use super::errors::FieldErrors;
use super::meta::{self, dns1123_label};
use super::workloads::port_name;

const CONFIG_KEY: &str = "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";
const DATA_MAX: usize = 1024 * 1024;

/// A Service; `old` the stored one on an update.
pub(crate) fn service(errors: &mut FieldErrors, object: &Value, old: Option<&Value>) {
    let spec = &object["spec"];
    let kind = spec["type"].as_str().unwrap_or("ClusterIP");
    if !["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"].contains(&kind) {
        errors.not_supported(
            "spec.type",
            &spec["type"],
            &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        );
    }
    let headless = spec["clusterIP"] == "None";
    let ports = spec["ports"].as_array().map_or(&[][..], Vec::as_slice);
    if ports.is_empty() && kind != "ExternalName" && !headless {
        errors.required("spec.ports");
    }
    if kind == "ExternalName" && spec["externalName"].as_str().is_none_or(str::is_empty) {
        errors.required("spec.externalName");
    }
    let mut names = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let at = format!("spec.ports[{i}]");
        match port["name"].as_str() {
            None | Some("") if ports.len() > 1 => errors.required(&format!("{at}.name")),
            None | Some("") => {}
            Some(name) => {
                for p in dns1123_label(name) {
                    errors.invalid(&format!("{at}.name"), &port["name"], &p);
                }
                if !names.insert(name.to_owned()) {
                    errors.duplicate(&format!("{at}.name"), &port["name"]);
                }
            }
        }
        errors.port(&format!("{at}.port"), &port["port"], true);
        if let Some(protocol) = port["protocol"].as_str()
            && !["TCP", "UDP", "SCTP"].contains(&protocol)
        {
            errors.not_supported(
                &format!("{at}.protocol"),
                &port["protocol"],
                &["SCTP", "TCP", "UDP"],
            );
        }
        match &port["targetPort"] {
            number @ Value::Number(_) => errors.port(&format!("{at}.targetPort"), number, false),
            Value::String(name) => {
                for p in port_name(name) {
                    errors.invalid(&format!("{at}.targetPort"), &port["targetPort"], &p);
                }
            }
            _ => {}
        }
        if let Some(node_port) = port["nodePort"].as_i64().filter(|p| *p != 0) {
            if !matches!(kind, "NodePort" | "LoadBalancer") {
                errors.forbidden(
                    &format!("{at}.nodePort"),
                    &format!("may not be used when `type` is '{kind}'"),
                );
            } else if !(30000..=32767).contains(&node_port) {
                errors.invalid(
                    &format!("{at}.nodePort"),
                    &port["nodePort"],
                    "provided port is not in the valid range. The range of valid ports is 30000-32767",
                );
            }
        }
    }
    if let Some(affinity) = spec["sessionAffinity"].as_str()
        && !["None", "ClientIP"].contains(&affinity)
    {
        errors.not_supported(
            "spec.sessionAffinity",
            &spec["sessionAffinity"],
            &["ClientIP", "None"],
        );
    }
    meta::labels(errors, "spec.selector", &spec["selector"]);
    if let Some(old) = old {
        let before = &old["spec"]["clusterIP"];
        if before.as_str().is_some_and(|ip| !ip.is_empty()) && spec["clusterIP"] != *before {
            errors.immutable("spec.clusterIP", &spec["clusterIP"]);
        }
    }
}

fn config_keys(
    errors: &mut FieldErrors,
    field: &str,
    map: &Value,
    seen: &mut HashSet<String>,
) -> usize {
    let mut size = 0;
    for (key, value) in map.as_object().into_iter().flatten() {
        let at = format!("{field}[{key}]");
        if key.is_empty()
            || key.len() > 253
            || key == "."
            || key == ".."
            || !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            errors.invalid(&at, &Value::String(key.clone()), CONFIG_KEY);
        }
        if !seen.insert(key.clone()) {
            errors.invalid(
                &at,
                &Value::String(key.clone()),
                "duplicate of key present in data or binaryData",
            );
        }
        size += value.as_str().map_or(0, str::len);
    }
    size
}

/// A ConfigMap.
pub(crate) fn config_map(errors: &mut FieldErrors, object: &Value) {
    let mut seen = HashSet::new();
    let size = config_keys(errors, "data", &object["data"], &mut seen)
        + config_keys(errors, "binaryData", &object["binaryData"], &mut seen);
    if size > DATA_MAX {
        errors.too_long("", DATA_MAX);
    }
}

/// A Secret (after `stringData` was merged into `data`); `old` the stored one.
pub(crate) fn secret(errors: &mut FieldErrors, object: &Value, old: Option<&Value>) {
    let mut seen = HashSet::new();
    let size = config_keys(errors, "data", &object["data"], &mut seen);
    if size > DATA_MAX {
        errors.too_long("data", DATA_MAX);
    }
    let required: &[&str] = match object["type"].as_str() {
        Some("kubernetes.io/tls") => &["tls.crt", "tls.key"],
        Some("kubernetes.io/dockerconfigjson") => &[".dockerconfigjson"],
        Some("kubernetes.io/dockercfg") => &[".dockercfg"],
        _ => &[],
    };
    for key in required {
        if object["data"][*key].is_null() {
            errors.required(&format!("data[{key}]"));
        }
    }
    if object["type"] == "kubernetes.io/service-account-token"
        && object["metadata"]["annotations"]["kubernetes.io/service-account.name"].is_null()
    {
        errors.required("metadata.annotations[kubernetes.io/service-account.name]");
    }
    if let Some(old) = old
        && old["type"] != object["type"]
    {
        errors.immutable("type", &object["type"]);
    }
    if let Some(old) = old
        && old["immutable"] == true
        && (old["data"] != object["data"] || object["immutable"] != true)
    {
        errors.forbidden("data", "field is immutable when `immutable` is set");
    }
}

/// A HorizontalPodAutoscaler (autoscaling/v2).
pub(crate) fn autoscaler(errors: &mut FieldErrors, object: &Value) {
    let spec = &object["spec"];
    let min = spec["minReplicas"].as_i64();
    if min.is_some_and(|m| m < 1) {
        errors.invalid(
            "spec.minReplicas",
            &spec["minReplicas"],
            "must be greater than or equal to 1",
        );
    }
    match spec["maxReplicas"].as_i64() {
        None => errors.required("spec.maxReplicas"),
        Some(max) if max < 1 => {
            errors.invalid(
                "spec.maxReplicas",
                &spec["maxReplicas"],
                "must be greater than or equal to 1",
            );
        }
        Some(max) if min.is_some_and(|m| max < m) => errors.invalid(
            "spec.maxReplicas",
            &spec["maxReplicas"],
            "must be greater than or equal to `minReplicas`",
        ),
        Some(_) => {}
    }
    for key in ["kind", "name"] {
        if spec["scaleTargetRef"][key]
            .as_str()
            .is_none_or(str::is_empty)
        {
            errors.required(&format!("spec.scaleTargetRef.{key}"));
        }
    }
}

/// A PodDisruptionBudget: `minAvailable` or `maxUnavailable`, not both, each a number or
/// a percentage; a valid selector.
pub(crate) fn disruption_budget(errors: &mut FieldErrors, object: &Value) {
    let spec = &object["spec"];
    if !spec["minAvailable"].is_null() && !spec["maxUnavailable"].is_null() {
        errors.invalid(
            "spec",
            spec,
            "minAvailable and maxUnavailable cannot be both set",
        );
    }
    for key in ["minAvailable", "maxUnavailable"] {
        let value = &spec[key];
        let ok = match value {
            Value::Null => true,
            Value::Number(n) => n.as_i64().is_some_and(|n| n >= 0),
            Value::String(s) => s
                .strip_suffix('%')
                .and_then(|n| n.parse::<u32>().ok())
                .is_some_and(|n| n <= 100),
            _ => false,
        };
        if !ok {
            errors.invalid(
                &format!("spec.{key}"),
                value,
                "must be a non-negative integer or a percentage between 0% and 100%",
            );
        }
    }
    if !spec["selector"].is_null() {
        meta::label_selector(errors, "spec.selector", &spec["selector"]);
    }
}

/// A CronJob: a schedule of five fields.
pub(crate) fn cron_schedule(errors: &mut FieldErrors, object: &Value) {
    let schedule = &object["spec"]["schedule"];
    match schedule.as_str() {
        None | Some("") => errors.required("spec.schedule"),
        Some(text) if !text.starts_with('@') && text.split_whitespace().count() != 5 => {
            errors.invalid(
                "spec.schedule",
                schedule,
                &format!(
                    "expected exactly 5 fields, found {}",
                    text.split_whitespace().count()
                ),
            );
        }
        Some(_) => {}
    }
}

/// A Role: every rule names verbs.
pub(crate) fn role(errors: &mut FieldErrors, object: &Value) {
    for (i, rule) in object["rules"].as_array().into_iter().flatten().enumerate() {
        if rule["verbs"].as_array().is_none_or(Vec::is_empty) {
            errors.required(&format!("rules[{i}].verbs"));
        }
    }
}

/// A RoleBinding: its `roleRef` is required and never changes.
pub(crate) fn role_binding(errors: &mut FieldErrors, object: &Value, old: Option<&Value>) {
    for key in ["kind", "name"] {
        if object["roleRef"][key].as_str().is_none_or(str::is_empty) {
            errors.required(&format!("roleRef.{key}"));
        }
    }
    let cluster_wide = object["kind"] == "ClusterRoleBinding";
    let allowed: &[&str] = if cluster_wide {
        &["ClusterRole"]
    } else {
        &["ClusterRole", "Role"]
    };
    if let Some(kind) = object["roleRef"]["kind"].as_str()
        && !allowed.contains(&kind)
    {
        errors.not_supported("roleRef.kind", &object["roleRef"]["kind"], allowed);
    }
    if let Some(old) = old
        && old["roleRef"] != object["roleRef"]
    {
        errors.invalid("roleRef", &object["roleRef"], "cannot change roleRef");
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn fields(errors: &FieldErrors) -> Vec<String> {
        errors
            .0
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect()
    }

    #[test]
    fn services_need_ports_names_and_a_fixed_cluster_ip() {
        let mut errors = FieldErrors::default();
        service(
            &mut errors,
            &json!({"spec": {"selector": {"app": "web"}}}),
            None,
        );
        assert_eq!(fields(&errors), ["spec.ports: Required value"]);

        let mut errors = FieldErrors::default();
        let two = json!({"spec": {"ports": [{"port": 80}, {"port": 443, "name": "https"}]}});
        service(&mut errors, &two, None);
        assert_eq!(fields(&errors), ["spec.ports[0].name: Required value"]);

        let mut errors = FieldErrors::default();
        let old = json!({"spec": {"clusterIP": "10.96.0.10", "ports": [{"port": 80}]}});
        let new = json!({"spec": {"clusterIP": "10.96.0.11", "ports": [{"port": 80}]}});
        service(&mut errors, &new, Some(&old));
        assert_eq!(
            fields(&errors),
            ["spec.clusterIP: Invalid value: \"10.96.0.11\": field is immutable"]
        );
    }

    #[test]
    fn config_keys_and_secret_types() {
        let mut errors = FieldErrors::default();
        config_map(
            &mut errors,
            &json!({"data": {"ok.key": "v", "bad key": "v"}}),
        );
        assert_eq!(errors.0.len(), 1);
        assert_eq!(errors.0[0].field, "data[bad key]");

        let mut errors = FieldErrors::default();
        secret(
            &mut errors,
            &json!({"type": "kubernetes.io/tls", "data": {"tls.crt": "eA=="}}),
            None,
        );
        assert_eq!(fields(&errors), ["data[tls.key]: Required value"]);
    }

    #[test]
    fn autoscaler_bounds() {
        let mut errors = FieldErrors::default();
        autoscaler(
            &mut errors,
            &json!({"spec": {"minReplicas": 3, "maxReplicas": 2, "scaleTargetRef": {"kind": "Deployment", "name": "web"}}}),
        );
        assert_eq!(
            fields(&errors),
            ["spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`"]
        );
    }
}
