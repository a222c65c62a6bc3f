//! Admission of what a write stores, as the API server does it: quantities in canonical
//! form, decoding into the kind's typed schema (a field of the wrong type is refused with
//! 400; a field the schema does not declare is refused under `fieldValidation=Strict`,
//! which kubectl sends, and otherwise dropped), then the kind's validation rules, refused
//! with 422 `Invalid` and a cause per field.
//!
//! The rules follow `k8s.io/apimachinery` (names, labels, selectors) and
//! `k8s.io/kubernetes/pkg/apis/*/validation` for the kinds served; where they are a subset
//! of upstream's, docs/simulators.md lists what is not checked.

mod decode;
mod errors;
mod meta;
mod others;
mod quantity;
mod workloads;

use serde_json::Value;

pub(crate) use self::errors::FieldErrors;
use self::meta::NameRule;
use crate::k8s_sim::error::ApiError;
use crate::k8s_sim::resources::ResourceType;

/// How a write treats fields the kind's schema does not declare (`fieldValidation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FieldValidation {
    /// Refuse the write (400), as kubectl asks by default.
    Strict,
    /// Drop them, and warn about each (a `Warning` header).
    Warn,
    /// Drop them.
    Ignore,
}

impl FieldValidation {
    /// The query parameter's value; absent is `Warn`, the API server's default.
    pub(crate) fn parse(value: Option<&str>) -> Result<Self, ApiError> {
        match value {
            None | Some("" | "Warn") => Ok(Self::Warn),
            Some("Strict") => Ok(Self::Strict),
            Some("Ignore") => Ok(Self::Ignore),
            Some(other) => Err(ApiError::bad_request(format!(
                "fieldValidation parameter unsupported: {other}; use Ignore, Warn or Strict"
            ))),
        }
    }
}

/// Makes `object` what a write of kind `r` stores, or refuses it; `old` is the stored
/// object on an update. Under [`FieldValidation::Warn`] each unknown field dropped adds
/// its warning to `warnings`.
pub(crate) fn admit(
    r: &ResourceType,
    object: &mut Value,
    old: Option<&Value>,
    fields: FieldValidation,
    warnings: &mut Vec<String>,
) -> Result<(), ApiError> {
    let kind = r.kind;
    let undecodable = |detail: String| {
        ApiError::bad_request(format!(
            "{kind} in version \"{}\" cannot be handled as a {kind}: {detail}",
            r.version
        ))
    };
    quantity::canonicalize(object)
        .map_err(|(path, problem)| undecodable(format!("{path}: {problem}")))?;
    let unknown = decode::unknown_fields(kind, object).map_err(undecodable)?;
    if !unknown.is_empty() {
        let listed = unknown
            .iter()
            .map(|path| format!("unknown field \"{path}\""));
        match fields {
            FieldValidation::Strict => {
                let listed: Vec<String> = listed.collect();
                return Err(undecodable(format!(
                    "strict decoding error: {}",
                    listed.join(", ")
                )));
            }
            FieldValidation::Warn => warnings.extend(listed),
            FieldValidation::Ignore => {}
        }
        decode::drop_fields(object, &unknown);
    }
    let problems = problems(r, object, old);
    if problems.is_empty() {
        Ok(())
    } else {
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        Err(problems.into_error(r, name))
    }
}

/// What the kind's rules find wrong with `object`.
fn problems(r: &ResourceType, object: &Value, old: Option<&Value>) -> FieldErrors {
    let mut errors = FieldErrors::default();
    let rule = match r.kind {
        "Namespace" => NameRule::Label,
        "Service" => NameRule::Dns1035,
        "Role" | "RoleBinding" | "ClusterRole" | "ClusterRoleBinding" => NameRule::PathSegment,
        _ => NameRule::Subdomain,
    };
    meta::object_meta(&mut errors, &object["metadata"], rule, r.namespaced);
    match r.kind {
        "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" => {
            workloads::workload(&mut errors, r.kind, object, old);
        }
        "Job" => workloads::job_template(&mut errors, "spec.template", &object["spec"]["template"]),
        "CronJob" => {
            others::cron_schedule(&mut errors, object);
            let template = &object["spec"]["jobTemplate"]["spec"]["template"];
            workloads::job_template(&mut errors, "spec.jobTemplate.spec.template", template);
        }
        "PodDisruptionBudget" => others::disruption_budget(&mut errors, object),
        "Pod" => workloads::pod(&mut errors, object, old),
        "Service" => others::service(&mut errors, object, old),
        "ConfigMap" => others::config_map(&mut errors, object),
        "Secret" => others::secret(&mut errors, object, old),
        "HorizontalPodAutoscaler" => others::autoscaler(&mut errors, object),
        "Role" | "ClusterRole" => others::role(&mut errors, object),
        "RoleBinding" | "ClusterRoleBinding" => others::role_binding(&mut errors, object, old),
        _ => {}
    }
    errors
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::k8s_sim::resources::kind;

    #[test]
    fn strict_refuses_unknown_fields_and_warn_drops_them() {
        let object = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}, "extra": true});
        let error = admit(
            kind("ConfigMap"),
            &mut object.clone(),
            None,
            FieldValidation::Strict,
            &mut Vec::new(),
        )
        .unwrap_err();
        assert_eq!(error.code, 400);
        assert_eq!(
            error.message,
            "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: strict decoding error: unknown field \"extra\""
        );
        let mut warnings = Vec::new();
        let mut kept = object.clone();
        admit(
            kind("ConfigMap"),
            &mut kept,
            None,
            FieldValidation::Warn,
            &mut warnings,
        )
        .unwrap();
        assert!(kept.get("extra").is_none());
        assert_eq!(kept["data"]["a"], "1");
        assert_eq!(warnings, ["unknown field \"extra\""]);
        let mut ignored = object;
        warnings.clear();
        admit(
            kind("ConfigMap"),
            &mut ignored,
            None,
            FieldValidation::Ignore,
            &mut warnings,
        )
        .unwrap();
        assert_eq!(ignored, kept);
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn quantities_are_canonical_before_decoding() {
        let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "c", "image": "i", "resources": {"requests": {"cpu": 0.5, "memory": 1073741824}}}
        ]}});
        admit(
            kind("Pod"),
            &mut pod,
            None,
            FieldValidation::Strict,
            &mut Vec::new(),
        )
        .unwrap();
        assert_eq!(
            pod["spec"]["containers"][0]["resources"]["requests"]["cpu"],
            "500m"
        );
        let mut bad = pod.clone();
        bad["spec"]["containers"][0]["resources"]["requests"]["cpu"] = json!("lots");
        let error = admit(
            kind("Pod"),
            &mut bad,
            None,
            FieldValidation::Strict,
            &mut Vec::new(),
        )
        .unwrap_err();
        assert_eq!(error.code, 400);
        assert!(
            error
                .message
                .contains("spec.containers[0].resources.requests.cpu: quantities must match"),
            "{}",
            error.message
        );
    }

    #[test]
    fn invalid_objects_are_422_with_causes() {
        let mut d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "other"}}, "spec": {"containers": [{"name": "web", "image": "web:1"}]}}
        }});
        let error = admit(
            kind("Deployment"),
            &mut d,
            None,
            FieldValidation::Strict,
            &mut Vec::new(),
        )
        .unwrap_err();
        assert_eq!(error.code, 422);
        assert_eq!(error.reason, "Invalid");
        let details = error.details.unwrap();
        assert_eq!(
            details["causes"][0]["field"],
            "spec.template.metadata.labels"
        );
    }
}
