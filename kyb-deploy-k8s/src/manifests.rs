//! The built-in manifests: every object of the service, generated from the environment's
//! settings and the release, in the order they are applied (what others refer to first).

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use kyb_deploy_core::Release;
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};

use crate::settings::{KubernetesSettings, Probe};
use crate::verdict::VERSION_LABEL;

/// The label naming the service (`app.kubernetes.io/name`), the Deployment's selector.
pub const NAME_LABEL: &str = "app.kubernetes.io/name";
/// The label marking what kyb-deploy applied (`app.kubernetes.io/managed-by`).
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// The label naming the environment that applied an object, which pruning selects on.
pub const ENVIRONMENT_LABEL: &str = "kyb-deploy.io/environment";
/// The annotation holding the release's exact version (a label value may be shortened).
pub const VERSION_ANNOTATION: &str = "kyb-deploy.io/version";

/// The pod template's annotation with a digest of the configuration the containers read
/// (the plain variables and where each secret comes from, not the secret values): a
/// configuration change is a template change, which rolls the pods.
pub const CONFIG_ANNOTATION: &str = "kyb-deploy.io/config-hash";

/// The pod template's annotation naming the ConfigMap in which the manifests of its
/// release are recorded (`<app>-manifests-<digest of the template>`), for rollbacks.
pub const MANIFESTS_ANNOTATION: &str = "kyb-deploy.io/manifests";

/// What the value of a generated Secret is shown as wherever it is not applied (as
/// `stringData`, in place of the base64 `data` that is applied).
pub const REDACTED: &str = "<redacted>";

/// One object to apply.
#[derive(Clone, Debug, PartialEq)]
pub struct Manifest {
    /// The object, with `apiVersion`, `kind` and `metadata.name` (and the namespace, for
    /// a namespaced kind).
    pub object: Value,
}

impl Manifest {
    /// Its kind.
    pub fn kind(&self) -> &str {
        self.object["kind"].as_str().unwrap_or_default()
    }

    /// Its name.
    pub fn name(&self) -> &str {
        self.object["metadata"]["name"].as_str().unwrap_or_default()
    }
}

/// The values of the Secret kyb-deploy writes for the `env` and `file` secret sources:
/// read when deploying, [`REDACTED`] when rendering or planning.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretValues {
    /// Shown as [`REDACTED`].
    Redacted,
    /// The values, by variable name.
    Resolved(BTreeMap<String, String>),
}

/// What the manifests are generated from.
#[derive(Clone, Copy, Debug)]
pub struct ManifestInput<'a> {
    /// The environment's name.
    pub environment: &'a str,
    /// Its Kubernetes settings.
    pub settings: &'a KubernetesSettings,
    /// The release to run.
    pub release: &'a Release,
    /// The service's plain environment variables (the environment's `env` table).
    pub env: &'a BTreeMap<String, String>,
}

/// The service's objects for `input`, in apply order: Namespace (unless
/// `create_namespace` is off), ServiceAccount, Role,
/// RoleBinding, ConfigMap, Secret (when a secret has an `env` or `file` source), Service,
/// Deployment, then the optional HorizontalPodAutoscaler, PodDisruptionBudget,
/// NetworkPolicy and Ingress.
#[must_use]
pub fn built_in(input: &ManifestInput<'_>, secrets: &SecretValues) -> Vec<Manifest> {
    let s = input.settings;
    let app = s.app.as_str();
    let ns = s.namespace.as_str();
    let labels = common_labels(input);
    let meta = |name: &str| json!({"name": name, "namespace": ns, "labels": labels});
    let config_name = format!("{app}-config");
    let secret_name = format!("{app}-secrets");
    let mut objects = Vec::new();
    if s.create_namespace {
        objects.push(json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": ns, "labels": labels}}));
    }
    objects.extend([
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(app),
            "automountServiceAccountToken": false}),
        // The service reads its own configuration and nothing else.
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta(app),
            "rules": [{"apiGroups": [""], "resources": ["configmaps"],
                "resourceNames": [config_name], "verbs": ["get"]}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": meta(app),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": app},
            "subjects": [{"kind": "ServiceAccount", "name": app, "namespace": ns}]}),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(&config_name),
            "data": input.env}),
    ]);
    let generated: Vec<&String> = s
        .secrets
        .iter()
        .filter(|(_, source)| source.secret.is_none())
        .map(|(variable, _)| variable)
        .collect();
    if !generated.is_empty() {
        // Applied as `data`, not `stringData`: the API server turns `stringData` into
        // `data`, so applying `stringData` again would be a change every time. Shown (not
        // applied) as `stringData` of REDACTED, which a reader cannot mistake for a value.
        let (field, data): (&str, Map<String, Value>) = match secrets {
            SecretValues::Redacted => (
                "stringData",
                generated
                    .iter()
                    .map(|v| ((*v).clone(), json!(REDACTED)))
                    .collect(),
            ),
            SecretValues::Resolved(values) => (
                "data",
                generated
                    .iter()
                    .map(|v| {
                        let value = values.get(*v).map_or(REDACTED, String::as_str);
                        ((*v).clone(), json!(BASE64.encode(value)))
                    })
                    .collect(),
            ),
        };
        objects.push(json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": meta(&secret_name), "type": "Opaque", field: data}));
    }
    objects.push(
        json!({"apiVersion": "v1", "kind": "Service", "metadata": meta(app),
        "spec": {"type": "ClusterIP", "selector": {NAME_LABEL: app},
            "ports": [{"name": "http", "port": s.service_port, "targetPort": "http",
                "protocol": "TCP"}]}}),
    );
    objects.push(deployment(input, &config_name, &secret_name));
    if let Some(a) = &s.autoscaling {
        let mut metrics = vec![json!({"type": "Resource", "resource": {"name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": a.cpu_percent}}})];
        if let Some(memory) = a.memory_percent {
            metrics.push(json!({"type": "Resource", "resource": {"name": "memory",
                "target": {"type": "Utilization", "averageUtilization": memory}}}));
        }
        objects.push(
            json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": meta(app),
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": app},
                "minReplicas": a.min_replicas, "maxReplicas": a.max_replicas, "metrics": metrics,
                "behavior": {
                    "scaleUp": {"stabilizationWindowSeconds": 0,
                        "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]},
                    "scaleDown": {"stabilizationWindowSeconds": a.scale_down_window.as_secs(),
                        "policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}]},
                }}}),
        );
    }
    if s.disruption_budget.enabled {
        objects.push(
            json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": meta(app),
            "spec": {"minAvailable": int_or_percent(&s.disruption_budget.min_available),
                "selector": {"matchLabels": {NAME_LABEL: app}}}}),
        );
    }
    if s.network_policy.enabled {
        let from: Vec<Value> = s
            .network_policy
            .allow_from_namespaces
            .iter()
            .map(|namespace| {
                json!({"namespaceSelector":
                {"matchLabels": {"kubernetes.io/metadata.name": namespace}}})
            })
            .collect();
        objects.push(
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": meta(app),
            "spec": {"podSelector": {"matchLabels": {NAME_LABEL: app}},
                "policyTypes": ["Ingress"],
                "ingress": [{"from": from, "ports": [{"protocol": "TCP", "port": s.port}]}]}}),
        );
    }
    if let Some(ingress) = &s.ingress {
        let mut annotations = Map::new();
        if let Some(rps) = ingress.rate_limit_rps {
            annotations.insert(
                "nginx.ingress.kubernetes.io/limit-rps".into(),
                json!(rps.to_string()),
            );
        }
        let mut spec = json!({"ingressClassName": ingress.class,
            "rules": [{"host": ingress.host, "http": {"paths": [{"path": "/", "pathType": "Prefix",
                "backend": {"service": {"name": app, "port": {"name": "http"}}}}]}}]});
        if let Some(secret) = &ingress.tls_secret {
            annotations.insert(
                "nginx.ingress.kubernetes.io/ssl-redirect".into(),
                json!("true"),
            );
            spec["tls"] = json!([{"hosts": [ingress.host], "secretName": secret}]);
        }
        let mut metadata = meta(app);
        if !annotations.is_empty() {
            metadata["annotations"] = Value::Object(annotations);
        }
        objects.push(
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": metadata, "spec": spec}),
        );
    }
    objects
        .into_iter()
        .map(|object| Manifest { object })
        .collect()
}

/// The labels every object carries: the service, the manager, the environment.
fn common_labels(input: &ManifestInput<'_>) -> Value {
    json!({
        NAME_LABEL: input.settings.app,
        MANAGED_BY_LABEL: "kyb-deploy",
        ENVIRONMENT_LABEL: label_value(input.environment),
    })
}

fn deployment(input: &ManifestInput<'_>, config_name: &str, secret_name: &str) -> Value {
    let s = input.settings;
    let app = s.app.as_str();
    let version = input.release.version.as_str();
    let mut labels = common_labels(input);
    labels[VERSION_LABEL] = json!(label_value(version));
    let secret_env: Vec<Value> = s
        .secrets
        .iter()
        .map(|(variable, source)| {
            let (secret, key) = match (&source.secret, &source.key) {
                (Some(secret), Some(key)) => (secret.as_str(), key.as_str()),
                _ => (secret_name, variable.as_str()),
            };
            json!({"name": variable, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}})
        })
        .collect();
    let r = &s.resources;
    let container = json!({
        "name": app,
        "image": input.release.image,
        "ports": [{"name": "http", "containerPort": s.port, "protocol": "TCP"}],
        "envFrom": [{"configMapRef": {"name": config_name}}],
        "env": secret_env,
        "resources": {
            "requests": {"cpu": r.cpu_request, "memory": r.memory_request},
            "limits": {"cpu": r.cpu_limit, "memory": r.memory_limit},
        },
        "livenessProbe": probe(&s.probes.liveness),
        "readinessProbe": probe(&s.probes.readiness),
        "securityContext": {
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "runAsNonRoot": true,
            "capabilities": {"drop": ["ALL"]},
        },
        // The root filesystem is read-only; the service may still write temporary files.
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    });
    let mut spec = json!({
        "selector": {"matchLabels": {NAME_LABEL: app}},
        "progressDeadlineSeconds": s.rollout.progress_deadline.as_secs(),
        "revisionHistoryLimit": 10,
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {
            "maxSurge": int_or_percent(&s.rollout.max_surge),
            "maxUnavailable": int_or_percent(&s.rollout.max_unavailable),
        }},
        "template": {
            "metadata": {"labels": labels,
                "annotations": {VERSION_ANNOTATION: version, CONFIG_ANNOTATION: config_hash(input)}},
            "spec": {
                "serviceAccountName": app,
                "automountServiceAccountToken": false,
                "securityContext": {
                    "runAsNonRoot": true,
                    "runAsUser": 10001,
                    "runAsGroup": 10001,
                    "fsGroup": 10001,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [container],
                "volumes": [{"name": "tmp", "emptyDir": {}}],
            },
        },
    });
    // With an autoscaler, the replica count is its to keep: a deploy must not reset it.
    if s.autoscaling.is_none() {
        spec["replicas"] = json!(s.replicas);
    }
    let mut deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": app, "namespace": s.namespace, "labels": labels,
            "annotations": {VERSION_ANNOTATION: version}},
        "spec": spec});
    name_record(&mut deployment, app);
    deployment
}

/// Names, in `deployment`'s pod template, the record of the manifests it is applied with
/// ([`MANIFESTS_ANNOTATION`]): a digest of the template before it carries the name, which
/// changes exactly when the template does, so the name never rolls pods by itself.
pub(crate) fn name_record(deployment: &mut Value, app: &str) {
    let template = &mut deployment["spec"]["template"];
    if let Some(annotations) = template["metadata"]["annotations"].as_object_mut() {
        annotations.remove(MANIFESTS_ANNOTATION);
    }
    let digest = short_digest(template);
    template["metadata"]["annotations"][MANIFESTS_ANNOTATION] =
        json!(format!("{app}-manifests-{digest}"));
}

/// Where objects of `kind` come in the apply order: what others refer to first.
pub(crate) fn apply_order(kind: &str) -> usize {
    const ORDER: [&str; 12] = [
        "Namespace",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "ConfigMap",
        "Secret",
        "Service",
        "Deployment",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "Ingress",
    ];
    ORDER.iter().position(|k| *k == kind).unwrap_or(ORDER.len())
}

/// The digest in [`CONFIG_ANNOTATION`]: the first 16 hex digits of SHA-256 over the plain
/// variables and the secret sources. Secret values stay out: a digest of a guessable value
/// would give it away, so rotating a secret's value alone rolls nothing.
fn config_hash(input: &ManifestInput<'_>) -> String {
    short_digest(&json!({"env": input.env, "secrets": input.settings.secrets}))
}

/// The first 16 hex digits of SHA-256 over `value`'s JSON.
pub(crate) fn short_digest(value: &Value) -> String {
    let digest = Sha256::digest(value.to_string().as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

fn probe(probe: &Probe) -> Value {
    json!({
        "httpGet": {"path": probe.path, "port": "http"},
        "initialDelaySeconds": probe.initial_delay.as_secs(),
        "periodSeconds": probe.period.as_secs().max(1),
        "timeoutSeconds": probe.timeout.as_secs().max(1),
        "failureThreshold": probe.failure_threshold,
    })
}

/// A count (`"1"`) as a JSON number, a percentage (`"25%"`) as a string: Kubernetes'
/// IntOrString.
fn int_or_percent(value: &str) -> Value {
    value
        .parse::<u32>()
        .map_or_else(|_| json!(value), |count| json!(count))
}

/// `value` as a label value: itself when Kubernetes accepts it (at most 63 characters of
/// letters, digits, '-', '_' and '.', starting and ending with a letter or digit),
/// otherwise a shortened form made unique by a hash of the whole.
#[must_use]
pub fn label_value(value: &str) -> String {
    let valid = value.len() <= 63
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && value
            .chars()
            .next()
            .is_none_or(|c| c.is_ascii_alphanumeric())
        && value
            .chars()
            .last()
            .is_none_or(|c| c.is_ascii_alphanumeric());
    if valid {
        return value.to_owned();
    }
    let digest = Sha256::digest(value.as_bytes());
    let hash: String = digest[..5].iter().map(|b| format!("{b:02x}")).collect();
    let kept: String = value
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
        .take(52)
        .collect();
    let kept = kept.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    if kept.is_empty() {
        hash
    } else {
        format!("{kept}-{hash}")
    }
}

#[cfg(test)]
mod tests;
