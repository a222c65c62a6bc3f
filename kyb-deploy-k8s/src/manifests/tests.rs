use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kyb_deploy_core::Version;
use proptest::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::*;

fn settings(toml_text: &str) -> KubernetesSettings {
    toml::from_str(&format!("namespace = \"kyb\"\n{toml_text}")).unwrap()
}

fn release() -> Release {
    Release::new(
        Version::parse("v1.4.0").unwrap(),
        "registry.test/kyb@sha256:abc",
    )
}

fn render(settings: &KubernetesSettings, secrets: &SecretValues) -> Vec<Manifest> {
    let env = BTreeMap::from([("LOG_LEVEL".to_owned(), "info".to_owned())]);
    let release = release();
    let input = ManifestInput {
        environment: "staging",
        settings,
        release: &release,
        env: &env,
    };
    built_in(&input, secrets)
}

const EVERYTHING: &str = r#"
[ingress]
host = "api.example.com"
tls_secret = "api-tls"
rate_limit_rps = 20
[autoscaling]
min_replicas = 2
max_replicas = 6
memory_percent = 80
[secrets.DATABASE_URL]
env = "KYB_DATABASE_URL"
[secrets.API_KEY]
secret = "kyb-api"
key = "key"
"#;

fn by_kind<'a>(manifests: &'a [Manifest], kind: &str) -> &'a Value {
    &manifests
        .iter()
        .find(|m| m.kind() == kind)
        .unwrap_or_else(|| panic!("no {kind}"))
        .object
}

/// Decodes into the kind's typed schema and back: what a field misspelled or misplaced
/// would lose.
fn roundtrip<T: DeserializeOwned + Serialize>(object: &Value) -> Value {
    let typed: T = serde_json::from_value(object.clone()).unwrap();
    serde_json::to_value(typed).unwrap()
}

#[test]
fn every_object_is_a_valid_object_of_its_kind_and_loses_nothing_in_decoding() {
    let manifests = render(&settings(EVERYTHING), &SecretValues::Redacted);
    let kinds: Vec<&str> = manifests.iter().map(Manifest::kind).collect();
    assert_eq!(
        kinds,
        [
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
        ]
    );
    for manifest in &manifests {
        let object = &manifest.object;
        let back = match manifest.kind() {
            "Namespace" => roundtrip::<Namespace>(object),
            "ServiceAccount" => roundtrip::<ServiceAccount>(object),
            "Role" => roundtrip::<Role>(object),
            "RoleBinding" => roundtrip::<RoleBinding>(object),
            "ConfigMap" => roundtrip::<ConfigMap>(object),
            "Secret" => roundtrip::<Secret>(object),
            "Service" => roundtrip::<Service>(object),
            "Deployment" => roundtrip::<Deployment>(object),
            "HorizontalPodAutoscaler" => roundtrip::<HorizontalPodAutoscaler>(object),
            "PodDisruptionBudget" => roundtrip::<PodDisruptionBudget>(object),
            "NetworkPolicy" => roundtrip::<NetworkPolicy>(object),
            "Ingress" => roundtrip::<Ingress>(object),
            other => panic!("untested kind {other}"),
        };
        assert_eq!(&back, object, "{}", manifest.kind());
        let labels = &object["metadata"]["labels"];
        assert_eq!(
            labels[MANAGED_BY_LABEL],
            "kyb-deploy",
            "{}",
            manifest.kind()
        );
        assert_eq!(labels[ENVIRONMENT_LABEL], "staging", "{}", manifest.kind());
    }
}

#[test]
fn the_deployment_carries_the_documented_defaults() {
    let manifests = render(&settings(""), &SecretValues::Redacted);
    let d = by_kind(&manifests, "Deployment");
    assert_eq!(d["metadata"]["namespace"], "kyb");
    assert_eq!(d["spec"]["replicas"], 2);
    assert_eq!(d["spec"]["strategy"]["type"], "RollingUpdate");
    assert_eq!(
        d["spec"]["strategy"]["rollingUpdate"],
        json!({"maxSurge": "25%", "maxUnavailable": 0})
    );
    let template = &d["spec"]["template"];
    assert_eq!(template["metadata"]["labels"][VERSION_LABEL], "v1.4.0");
    assert_eq!(
        template["metadata"]["annotations"][VERSION_ANNOTATION],
        "v1.4.0"
    );
    let pod = &template["spec"];
    assert_eq!(pod["automountServiceAccountToken"], false);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let c = &pod["containers"][0];
    assert_eq!(c["image"], "registry.test/kyb@sha256:abc");
    assert_eq!(
        c["securityContext"],
        json!({"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
            "runAsNonRoot": true, "capabilities": {"drop": ["ALL"]}})
    );
    assert_eq!(
        c["resources"],
        json!({"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}})
    );
    assert_eq!(
        c["livenessProbe"],
        json!({"httpGet": {"path": "/health", "port": "http"}, "initialDelaySeconds": 60,
            "periodSeconds": 30, "timeoutSeconds": 5, "failureThreshold": 3})
    );
    assert_eq!(
        c["readinessProbe"],
        json!({"httpGet": {"path": "/ready", "port": "http"}, "initialDelaySeconds": 30,
            "periodSeconds": 10, "timeoutSeconds": 5, "failureThreshold": 3})
    );
    assert_eq!(
        c["envFrom"][0]["configMapRef"]["name"],
        "kyb-platform-api-config"
    );
    assert_eq!(
        by_kind(&manifests, "ConfigMap")["data"],
        json!({"LOG_LEVEL": "info"})
    );
    assert_eq!(
        by_kind(&manifests, "ServiceAccount")["automountServiceAccountToken"],
        false
    );
    assert_eq!(by_kind(&manifests, "Service")["spec"]["type"], "ClusterIP");
    // Without secrets from the deploying machine, no Secret is written; nor an Ingress or
    // an autoscaler unless configured.
    for kind in ["Secret", "Ingress", "HorizontalPodAutoscaler"] {
        assert!(manifests.iter().all(|m| m.kind() != kind), "{kind}");
    }
    let policy = by_kind(&manifests, "NetworkPolicy");
    assert_eq!(
        policy["spec"]["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"],
        json!({"kubernetes.io/metadata.name": "ingress-nginx"})
    );
    assert_eq!(
        by_kind(&manifests, "PodDisruptionBudget")["spec"]["minAvailable"],
        1
    );
}

#[test]
fn a_configuration_change_changes_the_pod_template_and_a_secret_value_does_not() {
    let template = |env: &[(&str, &str)], values: &[(&str, &str)]| {
        let env: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let values = values
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let release = release();
        let s = settings(EVERYTHING);
        let input = ManifestInput {
            environment: "staging",
            settings: &s,
            release: &release,
            env: &env,
        };
        let manifests = built_in(&input, &SecretValues::Resolved(values));
        by_kind(&manifests, "Deployment")["spec"]["template"]["metadata"]["annotations"]
            [CONFIG_ANNOTATION]
            .clone()
    };
    let base = template(&[("LOG_LEVEL", "info")], &[("DATABASE_URL", "a")]);
    assert_eq!(base.as_str().map(str::len), Some(16), "{base}");
    assert_eq!(
        base,
        template(&[("LOG_LEVEL", "info")], &[("DATABASE_URL", "a")])
    );
    assert_ne!(
        base,
        template(&[("LOG_LEVEL", "debug")], &[("DATABASE_URL", "a")])
    );
    assert_eq!(
        base,
        template(&[("LOG_LEVEL", "info")], &[("DATABASE_URL", "b")])
    );
}

#[test]
fn an_existing_namespace_is_left_alone_when_asked() {
    let manifests = render(
        &settings("create_namespace = false"),
        &SecretValues::Redacted,
    );
    assert_eq!(manifests[0].kind(), "ServiceAccount");
    assert!(manifests.iter().all(|m| m.kind() != "Namespace"));
}

#[test]
fn an_autoscaler_owns_the_replica_count() {
    let manifests = render(&settings(EVERYTHING), &SecretValues::Redacted);
    let d = by_kind(&manifests, "Deployment");
    assert!(d["spec"].get("replicas").is_none(), "{d:#}");
    let hpa = by_kind(&manifests, "HorizontalPodAutoscaler");
    assert_eq!(hpa["spec"]["minReplicas"], 2);
    assert_eq!(hpa["spec"]["maxReplicas"], 6);
    let targets: Vec<(&str, u64)> = hpa["spec"]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["resource"]["name"].as_str().unwrap(),
                m["resource"]["target"]["averageUtilization"]
                    .as_u64()
                    .unwrap(),
            )
        })
        .collect();
    assert_eq!(targets, [("cpu", 70), ("memory", 80)]);
    assert_eq!(
        hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"],
        300
    );
}

#[test]
fn the_ingress_routes_the_host_over_tls_with_a_rate_limit() {
    let manifests = render(&settings(EVERYTHING), &SecretValues::Redacted);
    let ingress = by_kind(&manifests, "Ingress");
    assert_eq!(ingress["spec"]["ingressClassName"], "nginx");
    assert_eq!(ingress["spec"]["rules"][0]["host"], "api.example.com");
    assert_eq!(
        ingress["spec"]["tls"],
        json!([{"hosts": ["api.example.com"], "secretName": "api-tls"}])
    );
    assert_eq!(
        ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/limit-rps"],
        "20"
    );
}

#[test]
fn secrets_reach_the_container_by_reference_only() {
    let values = BTreeMap::from([(
        "DATABASE_URL".to_owned(),
        "postgres://u:hunter2@db".to_owned(),
    )]);
    let manifests = render(&settings(EVERYTHING), &SecretValues::Resolved(values));
    let env =
        &by_kind(&manifests, "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"];
    assert_eq!(
        env,
        &json!([
            {"name": "API_KEY", "valueFrom": {"secretKeyRef": {"name": "kyb-api", "key": "key"}}},
            {"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "kyb-platform-api-secrets", "key": "DATABASE_URL"}}},
        ])
    );
    // The value is in the Secret that is applied, and nowhere else.
    let secret = by_kind(&manifests, "Secret");
    let encoded = BASE64.encode("postgres://u:hunter2@db");
    assert_eq!(secret["data"], json!({"DATABASE_URL": encoded}));
    for manifest in manifests.iter().filter(|m| m.kind() != "Secret") {
        let text = manifest.object.to_string();
        assert!(
            !text.contains("hunter2") && !text.contains(&encoded),
            "{}",
            manifest.kind()
        );
    }
}

proptest! {
    /// A secret's value, whatever it is, is only in the Secret that is applied, and only
    /// there as base64; a redacted render has it nowhere.
    #[test]
    fn a_secret_value_is_only_in_the_applied_secret(value in "[ -~]{12,40}") {
        let known = ["kyb", "v1.4.0", "staging", "redacted", "web", "api", "http", "true", "false"];
        prop_assume!(!known.iter().any(|k| value.contains(k) || k.contains(value.as_str())));
        let values = BTreeMap::from([("DATABASE_URL".to_owned(), value.clone())]);
        let encoded = BASE64.encode(&value);
        let applied = render(&settings(EVERYTHING), &SecretValues::Resolved(values));
        for manifest in &applied {
            let text = manifest.object.to_string();
            prop_assert!(!text.contains(&value), "{} holds the value", manifest.kind());
            if manifest.kind() != "Secret" {
                prop_assert!(!text.contains(&encoded), "{} holds the value", manifest.kind());
            }
        }
        let redacted = render(&settings(EVERYTHING), &SecretValues::Redacted);
        let text = serde_json::to_string(&redacted.iter().map(|m| &m.object).collect::<Vec<_>>()).unwrap();
        prop_assert!(!text.contains(&value) && !text.contains(&encoded));
        prop_assert!(text.contains(REDACTED));
    }
}

#[test]
fn label_values_are_kept_when_valid_and_made_valid_otherwise() {
    assert_eq!(label_value("v1.4.0"), "v1.4.0");
    assert_eq!(label_value("a1b2c3d"), "a1b2c3d");
    let long = "v".repeat(70);
    let shortened = label_value(&long);
    assert!(shortened.len() <= 63, "{shortened}");
    assert_ne!(shortened, label_value(&"v".repeat(71)), "unique per value");
    let trailing = label_value("release_");
    assert!(
        trailing.starts_with("release-") && trailing.len() == "release-".len() + 10,
        "{trailing}"
    );
    assert_eq!(label_value("release_"), trailing, "stable");
}

#[test]
fn the_default_manifests_snapshot() {
    let manifests = render(&settings(""), &SecretValues::Redacted);
    let objects: Vec<&Value> = manifests.iter().map(|m| &m.object).collect();
    insta::assert_json_snapshot!(objects);
}
