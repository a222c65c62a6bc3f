//! The API server's rules for Deployments, ReplicaSets, Pods and their pod templates
//! (`pkg/apis/apps/validation`, `pkg/apis/core/validation`), with its messages.

use std::collections::HashSet;

use serde_json::Value;

use super::errors::FieldErrors;
use super::meta::{self, dns1123_label};
use super::quantity;
use crate::k8s_sim::selector::LabelSelector;

const PERCENT: &str = "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')";
const ENV_NAME: &str = "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', regex used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')";

fn non_negative(errors: &mut FieldErrors, field: &str, value: &Value) {
    if value.as_i64().is_some_and(|n| n < 0) {
        errors.invalid(field, value, "must be greater than or equal to 0");
    }
}

/// A Deployment's, ReplicaSet's, StatefulSet's or DaemonSet's spec; `old` the stored object
/// on an update.
pub(crate) fn workload(errors: &mut FieldErrors, kind: &str, object: &Value, old: Option<&Value>) {
    let spec = &object["spec"];
    non_negative(errors, "spec.replicas", &spec["replicas"]);
    non_negative(errors, "spec.minReadySeconds", &spec["minReadySeconds"]);
    selector_and_template(errors, kind, spec);
    if kind == "Deployment" {
        strategy(errors, &spec["strategy"]);
        non_negative(
            errors,
            "spec.revisionHistoryLimit",
            &spec["revisionHistoryLimit"],
        );
        let deadline = &spec["progressDeadlineSeconds"];
        non_negative(errors, "spec.progressDeadlineSeconds", deadline);
        if let (Some(deadline_s), Some(ready)) =
            (deadline.as_i64(), spec["minReadySeconds"].as_i64())
            && deadline_s <= ready
        {
            errors.invalid(
                "spec.progressDeadlineSeconds",
                deadline,
                "must be greater than minReadySeconds",
            );
        }
    }
    if let Some(old) = old
        && old["spec"]["selector"] != spec["selector"]
    {
        errors.immutable("spec.selector", &spec["selector"]);
    }
}

fn selector_and_template(errors: &mut FieldErrors, kind: &str, spec: &Value) {
    let selector = &spec["selector"];
    let template_labels = &spec["template"]["metadata"]["labels"];
    if selector.is_null() {
        errors.required("spec.selector");
    } else {
        meta::label_selector(errors, "spec.selector", selector);
        let empty = selector["matchLabels"]
            .as_object()
            .is_none_or(|m| m.is_empty())
            && selector["matchExpressions"]
                .as_array()
                .is_none_or(Vec::is_empty);
        let what = kind.to_ascii_lowercase();
        if empty {
            errors.invalid(
                "spec.selector",
                selector,
                &format!("empty selector is invalid for {what}"),
            );
        } else if let Ok(parsed) = LabelSelector::from_object(selector)
            && !parsed.matches(template_labels)
        {
            errors.invalid(
                "spec.template.metadata.labels",
                template_labels,
                "`selector` does not match template `labels`",
            );
        }
    }
    if spec["template"].is_null() {
        errors.required("spec.template");
        return;
    }
    meta::labels(errors, "spec.template.metadata.labels", template_labels);
    let pod_spec = &spec["template"]["spec"];
    pod_spec_rules(errors, "spec.template.spec", pod_spec);
    if let Some(policy) = pod_spec["restartPolicy"].as_str()
        && policy != "Always"
    {
        errors.not_supported(
            "spec.template.spec.restartPolicy",
            &pod_spec["restartPolicy"],
            &["Always"],
        );
    }
}

fn strategy(errors: &mut FieldErrors, strategy: &Value) {
    let kind = strategy["type"].as_str();
    match kind {
        None | Some("RollingUpdate" | "Recreate") => {}
        Some(_) => errors.not_supported(
            "spec.strategy.type",
            &strategy["type"],
            &["Recreate", "RollingUpdate"],
        ),
    }
    let rolling = &strategy["rollingUpdate"];
    if kind == Some("Recreate") && !rolling.is_null() {
        errors.forbidden(
            "spec.strategy.rollingUpdate",
            "may not be specified when strategy `type` is 'Recreate'",
        );
        return;
    }
    if rolling.is_null() {
        return;
    }
    let surge = int_or_percent(
        errors,
        "spec.strategy.rollingUpdate.maxSurge",
        &rolling["maxSurge"],
    );
    let field = "spec.strategy.rollingUpdate.maxUnavailable";
    let unavailable = int_or_percent(errors, field, &rolling["maxUnavailable"]);
    if let Some((value, true)) = unavailable
        && value > 100
    {
        errors.invalid(
            field,
            &rolling["maxUnavailable"],
            "must not be greater than 100%",
        );
    }
    if matches!(surge, Some((0, _))) && matches!(unavailable, Some((0, _))) {
        errors.invalid(
            field,
            &rolling["maxUnavailable"],
            "may not be 0 when `maxSurge` is 0",
        );
    }
}

/// An int-or-percent value: the number and whether it is a percentage.
fn int_or_percent(errors: &mut FieldErrors, field: &str, value: &Value) -> Option<(i64, bool)> {
    match value {
        Value::Null => None,
        Value::Number(n) => {
            let n = n.as_i64()?;
            if n < 0 {
                errors.invalid(field, value, "must be greater than or equal to 0");
            }
            Some((n, false))
        }
        Value::String(s) => match s.strip_suffix('%').and_then(|n| n.parse::<i64>().ok()) {
            Some(n) if s.len() > 1 && s[..s.len() - 1].bytes().all(|b| b.is_ascii_digit()) => {
                Some((n, true))
            }
            _ => {
                errors.invalid(field, value, PERCENT);
                None
            }
        },
        _ => None,
    }
}

/// A Job's pod template (`at` is where it is: `spec.template`, or a CronJob's
/// `spec.jobTemplate.spec.template`): a valid pod spec that restarts `OnFailure` or `Never`.
pub(crate) fn job_template(errors: &mut FieldErrors, at: &str, template: &Value) {
    if template.is_null() {
        errors.required(at);
        return;
    }
    meta::labels(
        errors,
        &format!("{at}.metadata.labels"),
        &template["metadata"]["labels"],
    );
    let spec = &template["spec"];
    pod_spec_rules(errors, &format!("{at}.spec"), spec);
    let field = format!("{at}.spec.restartPolicy");
    match spec["restartPolicy"].as_str() {
        Some("OnFailure" | "Never") => {}
        None => errors.required_because(&field, "valid values: \"OnFailure\", \"Never\""),
        Some(_) => errors.not_supported(&field, &spec["restartPolicy"], &["OnFailure", "Never"]),
    }
}

/// A Pod's spec and metadata-free rules; `old` the stored Pod on an update.
pub(crate) fn pod(errors: &mut FieldErrors, object: &Value, old: Option<&Value>) {
    pod_spec_rules(errors, "spec", &object["spec"]);
    if let Some(old) = old {
        pod_update(errors, &old["spec"], &object["spec"]);
    }
}

/// A pod spec at `at` (`spec`, or `spec.template.spec`).
fn pod_spec_rules(errors: &mut FieldErrors, at: &str, spec: &Value) {
    let volumes: Vec<&str> = spec["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["name"].as_str())
        .collect();
    let mut seen_volumes = HashSet::new();
    for (i, name) in volumes.iter().enumerate() {
        let field = format!("{at}.volumes[{i}].name");
        if !seen_volumes.insert(*name) {
            errors.duplicate(&field, &Value::String((*name).to_owned()));
        }
        for p in dns1123_label(name) {
            errors.invalid(&field, &Value::String((*name).to_owned()), &p);
        }
    }
    let containers = spec["containers"].as_array().map_or(&[][..], Vec::as_slice);
    if containers.is_empty() {
        errors.required(&format!("{at}.containers"));
    }
    let mut names = HashSet::new();
    for list in ["initContainers", "containers"] {
        let items = spec[list].as_array().into_iter().flatten();
        for (i, c) in items.enumerate() {
            container(
                errors,
                &format!("{at}.{list}[{i}]"),
                c,
                &volumes,
                &mut names,
            );
        }
    }
    enumerated(
        errors,
        &format!("{at}.restartPolicy"),
        &spec["restartPolicy"],
        &["Always", "OnFailure", "Never"],
    );
    enumerated(
        errors,
        &format!("{at}.dnsPolicy"),
        &spec["dnsPolicy"],
        &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
    );
    non_negative(
        errors,
        &format!("{at}.terminationGracePeriodSeconds"),
        &spec["terminationGracePeriodSeconds"],
    );
}

fn enumerated(errors: &mut FieldErrors, field: &str, value: &Value, supported: &[&str]) {
    if let Some(v) = value.as_str()
        && !supported.contains(&v)
    {
        errors.not_supported(field, value, supported);
    }
}

fn container(
    errors: &mut FieldErrors,
    at: &str,
    c: &Value,
    volumes: &[&str],
    names: &mut HashSet<String>,
) {
    match c["name"].as_str() {
        None | Some("") => errors.required(&format!("{at}.name")),
        Some(name) => {
            for p in dns1123_label(name) {
                errors.invalid(&format!("{at}.name"), &c["name"], &p);
            }
            if !names.insert(name.to_owned()) {
                errors.duplicate(&format!("{at}.name"), &c["name"]);
            }
        }
    }
    if c["image"].as_str().is_none_or(|i| i.trim().is_empty()) {
        errors.required(&format!("{at}.image"));
    }
    enumerated(
        errors,
        &format!("{at}.imagePullPolicy"),
        &c["imagePullPolicy"],
        &["Always", "IfNotPresent", "Never"],
    );
    let mut port_names = HashSet::new();
    for (i, port) in c["ports"].as_array().into_iter().flatten().enumerate() {
        let field = format!("{at}.ports[{i}]");
        errors.port(
            &format!("{field}.containerPort"),
            &port["containerPort"],
            true,
        );
        if port["hostPort"]
            .as_i64()
            .is_some_and(|p| !(0..=65535).contains(&p))
        {
            errors.invalid(
                &format!("{field}.hostPort"),
                &port["hostPort"],
                "must be between 1 and 65535, inclusive",
            );
        }
        enumerated(
            errors,
            &format!("{field}.protocol"),
            &port["protocol"],
            &["SCTP", "TCP", "UDP"],
        );
        if let Some(name) = port["name"].as_str() {
            for p in port_name(name) {
                errors.invalid(&format!("{field}.name"), &port["name"], &p);
            }
            if !port_names.insert(name.to_owned()) {
                errors.duplicate(&format!("{field}.name"), &port["name"]);
            }
        }
    }
    for (i, env) in c["env"].as_array().into_iter().flatten().enumerate() {
        let field = format!("{at}.env[{i}].name");
        match env["name"].as_str() {
            None | Some("") => errors.required(&field),
            Some(name) if !env_name_ok(name) => errors.invalid(&field, &env["name"], ENV_NAME),
            Some(_) => {}
        }
    }
    for (i, mount) in c["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let field = format!("{at}.volumeMounts[{i}]");
        match mount["name"].as_str() {
            Some(name) if !volumes.contains(&name) => {
                errors.not_found(&format!("{field}.name"), &mount["name"])
            }
            None => errors.required(&format!("{field}.name")),
            Some(_) => {}
        }
        if mount["mountPath"].as_str().is_none_or(str::is_empty) {
            errors.required(&format!("{field}.mountPath"));
        }
    }
    resources(errors, &format!("{at}.resources"), &c["resources"]);
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        probe_rules(errors, &format!("{at}.{probe}"), &c[probe]);
    }
}

/// Requests within limits; no negative quantity.
fn resources(errors: &mut FieldErrors, at: &str, resources: &Value) {
    for part in ["requests", "limits"] {
        for (name, value) in resources[part].as_object().into_iter().flatten() {
            if quantity::nano_of(value).is_some_and(|n| n < 0) {
                errors.invalid(
                    &format!("{at}.{part}.{name}"),
                    value,
                    "must be greater than or equal to 0",
                );
            }
        }
    }
    for (name, request) in resources["requests"].as_object().into_iter().flatten() {
        let limit = &resources["limits"][name];
        if let (Some(r), Some(l)) = (quantity::nano_of(request), quantity::nano_of(limit))
            && r > l
        {
            errors.invalid(
                &format!("{at}.requests"),
                request,
                &format!(
                    "must be less than or equal to {name} limit of {}",
                    limit.as_str().unwrap_or_default()
                ),
            );
        }
    }
}

fn probe_rules(errors: &mut FieldErrors, at: &str, probe: &Value) {
    if !probe.is_object() {
        return;
    }
    let handlers = ["exec", "httpGet", "tcpSocket", "grpc"]
        .iter()
        .filter(|h| !probe[**h].is_null())
        .count();
    if handlers == 0 {
        errors.required_because(at, "must specify a handler type");
    } else if handlers > 1 {
        errors.forbidden(at, "may not specify more than 1 handler type");
    }
    for key in [
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ] {
        non_negative(errors, &format!("{at}.{key}"), &probe[key]);
    }
    for handler in ["httpGet", "tcpSocket"] {
        let port = &probe[handler]["port"];
        match port {
            Value::Number(_) => errors.port(&format!("{at}.{handler}.port"), port, false),
            Value::String(name) => {
                for p in port_name(name) {
                    errors.invalid(&format!("{at}.{handler}.port"), port, &p);
                }
            }
            _ => {}
        }
    }
}

/// Problems of `name` as an IANA service name (a named port).
pub(crate) fn port_name(name: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if name.len() > 15 {
        problems.push("must be no more than 15 characters".to_owned());
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        problems.push(
            "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".to_owned(),
        );
    }
    if name.contains("--") {
        problems.push("must not contain consecutive hyphens".to_owned());
    }
    if !name.chars().any(|c| c.is_ascii_lowercase()) {
        problems.push("must contain at least one letter (a-z)".to_owned());
    }
    if name.starts_with('-') || name.ends_with('-') {
        problems.push("must not begin or end with a hyphen".to_owned());
    }
    problems
}

fn env_name_ok(name: &str) -> bool {
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
    name.chars().next().is_some_and(|c| !c.is_ascii_digit()) && name.chars().all(ok)
}

/// A Pod's spec may change only in its containers' images, `activeDeadlineSeconds`, and
/// added tolerations.
fn pod_update(errors: &mut FieldErrors, old: &Value, new: &Value) {
    let mut old = old.clone();
    let mut new = new.clone();
    for spec in [&mut old, &mut new] {
        for list in ["containers", "initContainers"] {
            for c in spec[list].as_array_mut().into_iter().flatten() {
                if let Some(c) = c.as_object_mut() {
                    c.remove("image");
                }
            }
        }
        if let Some(spec) = spec.as_object_mut() {
            spec.remove("activeDeadlineSeconds");
            spec.remove("tolerations");
        }
    }
    if old != new {
        errors.forbidden(
            "spec",
            "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
        );
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn deployment() -> Value {
        json!({"metadata": {"name": "web"}, "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                "restartPolicy": "Always",
                "containers": [{"name": "web", "image": "web:1", "ports": [{"containerPort": 8080, "protocol": "TCP"}]}]
            }}
        }})
    }

    fn problems(object: &Value, old: Option<&Value>) -> Vec<String> {
        let mut errors = FieldErrors::default();
        workload(&mut errors, "Deployment", object, old);
        errors
            .0
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect()
    }

    #[test]
    fn a_good_deployment_passes() {
        assert_eq!(problems(&deployment(), None), Vec::<String>::new());
    }

    #[test]
    fn each_rule_names_its_field() {
        type Change = fn(&mut Value);
        let cases: Vec<(&str, Change, &str)> = vec![
            (
                "mismatch",
                |d| d["spec"]["template"]["metadata"]["labels"] = json!({"app": "other"}),
                "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"other\"}: `selector` does not match template `labels`",
            ),
            (
                "no selector",
                |d| d["spec"]["selector"] = Value::Null,
                "spec.selector: Required value",
            ),
            (
                "negative replicas",
                |d| d["spec"]["replicas"] = json!(-1),
                "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
            ),
            (
                "no image",
                |d| d["spec"]["template"]["spec"]["containers"][0]["image"] = Value::Null,
                "spec.template.spec.containers[0].image: Required value",
            ),
            (
                "port",
                |d| {
                    d["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] =
                        json!(70000)
                },
                "spec.template.spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
            ),
            (
                "both zero",
                |d| {
                    d["spec"]["strategy"]["rollingUpdate"] =
                        json!({"maxSurge": 0, "maxUnavailable": "0%"})
                },
                "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: \"0%\": may not be 0 when `maxSurge` is 0",
            ),
            (
                "strategy",
                |d| d["spec"]["strategy"] = json!({"type": "BlueGreen"}),
                "spec.strategy.type: Unsupported value: \"BlueGreen\": supported values: \"Recreate\", \"RollingUpdate\"",
            ),
            (
                "restart",
                |d| d["spec"]["template"]["spec"]["restartPolicy"] = json!("Never"),
                "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"",
            ),
            (
                "duplicate",
                |d| {
                    let c = d["spec"]["template"]["spec"]["containers"][0].clone();
                    d["spec"]["template"]["spec"]["containers"]
                        .as_array_mut()
                        .unwrap()
                        .push(c);
                },
                "spec.template.spec.containers[1].name: Duplicate value: \"web\"",
            ),
            (
                "requests",
                |d| {
                    d["spec"]["template"]["spec"]["containers"][0]["resources"] =
                        json!({"requests": {"cpu": "2"}, "limits": {"cpu": "1"}})
                },
                "spec.template.spec.containers[0].resources.requests: Invalid value: \"2\": must be less than or equal to cpu limit of 1",
            ),
        ];
        for (what, change, expected) in cases {
            let mut d = deployment();
            change(&mut d);
            let found = problems(&d, None);
            assert!(found.iter().any(|p| p == expected), "{what}: {found:?}");
        }
    }

    #[test]
    fn the_selector_is_immutable() {
        let old = deployment();
        let mut new = deployment();
        new["spec"]["selector"] = json!({"matchLabels": {"app": "web", "tier": "api"}});
        new["spec"]["template"]["metadata"]["labels"]["tier"] = json!("api");
        let found = problems(&new, Some(&old));
        assert!(
            found
                .iter()
                .any(|p| p.starts_with("spec.selector: Invalid value:")
                    && p.ends_with("field is immutable")),
            "{found:?}"
        );
    }

    #[test]
    fn a_pod_may_change_only_its_images() {
        let old = json!({"spec": {"containers": [{"name": "a", "image": "a:1"}], "restartPolicy": "Always"}});
        let mut new = old.clone();
        new["spec"]["containers"][0]["image"] = json!("a:2");
        let mut errors = FieldErrors::default();
        pod(&mut errors, &new, Some(&old));
        assert!(errors.is_empty(), "{errors:?}");
        new["spec"]["restartPolicy"] = json!("Never");
        pod(&mut errors, &new, Some(&old));
        assert_eq!(errors.0[0].field, "spec");
    }
}
