//! The environment a kubelet gives a pod's first container: its `envFrom` ConfigMaps and
//! Secrets, then its `env` entries (which win), with `valueFrom` references to ConfigMap
//! and Secret keys and to the pod's own name and namespace resolved, as plain values for
//! the Docker-backed runtime. What cannot be resolved (a missing object or key) is left
//! out; a real kubelet would hold the container in `CreateContainerConfigError`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value, json};

use super::super::resources::kind;
use super::ctx::Ctx;
use super::json::namespace;

/// `pod` with its first container's `env` made of plain values only.
pub(super) fn resolved(ctx: &Ctx<'_>, pod: &Value) -> Value {
    let ns = namespace(pod).to_owned();
    let container = &pod["spec"]["containers"][0];
    let find = |kind_name: &str, name: &Value| {
        let name = name.as_str()?;
        ctx.store.find(kind(kind_name), &ns, name).cloned()
    };
    // Each source's values as text: ConfigMap `data`, Secret `data` (base64) decoded.
    let values = |kind_name: &str, object: &Value| -> Map<String, Value> {
        let data = object["data"].as_object().cloned().unwrap_or_default();
        if kind_name == "Secret" {
            data.into_iter()
                .filter_map(|(k, v)| {
                    let bytes = BASE64.decode(v.as_str()?).ok()?;
                    Some((k, json!(String::from_utf8(bytes).ok()?)))
                })
                .collect()
        } else {
            data
        }
    };
    let mut env: Vec<(String, String)> = Vec::new();
    let mut set = |name: String, value: String| {
        env.retain(|(existing, _)| *existing != name);
        env.push((name, value));
    };
    for source in container["envFrom"].as_array().into_iter().flatten() {
        let prefix = source["prefix"].as_str().unwrap_or_default();
        for (kind_name, reference) in [("ConfigMap", "configMapRef"), ("Secret", "secretRef")] {
            let Some(object) = find(kind_name, &source[reference]["name"]) else {
                continue;
            };
            for (key, value) in values(kind_name, &object) {
                if let Some(value) = value.as_str() {
                    set(format!("{prefix}{key}"), value.to_owned());
                }
            }
        }
    }
    for entry in container["env"].as_array().into_iter().flatten() {
        let Some(name) = entry["name"].as_str() else {
            continue;
        };
        let from = &entry["valueFrom"];
        let value = if let Some(value) = entry["value"].as_str() {
            Some(value.to_owned())
        } else if !from["configMapKeyRef"].is_null() || !from["secretKeyRef"].is_null() {
            let (kind_name, reference) = if from["configMapKeyRef"].is_null() {
                ("Secret", &from["secretKeyRef"])
            } else {
                ("ConfigMap", &from["configMapKeyRef"])
            };
            find(kind_name, &reference["name"]).and_then(|object| {
                let key = reference["key"].as_str()?;
                values(kind_name, &object)
                    .get(key)
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
        } else {
            match from["fieldRef"]["fieldPath"].as_str() {
                Some("metadata.name") => pod["metadata"]["name"].as_str().map(str::to_owned),
                Some("metadata.namespace") => Some(ns.clone()),
                _ => None,
            }
        };
        if let Some(value) = value {
            set(name.to_owned(), value);
        }
    }
    let mut pod = pod.clone();
    pod["spec"]["containers"][0]["env"] = env
        .into_iter()
        .map(|(name, value)| json!({"name": name, "value": value}))
        .collect();
    pod
}
