//! Admission like the real API server's, judged by kubectl (its messages and exit codes)
//! and by kube-rs's typed API (canonical quantities, Secret data): validation with 422
//! `Invalid` and causes, strict field validation (and warnings under `Warn`), canonical quantities, Secret `stringData`,
//! Service defaults and the immutable fields.

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use serde_json::{Value, json};

use super::Cluster;

fn deployment(name: &str, change: impl FnOnce(&mut Value)) -> String {
    let mut d = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "web", "image": "registry.test/web:v1",
                    "ports": [{"containerPort": 8080}],
                    "resources": {"requests": {"cpu": "100m"}, "limits": {"cpu": 1}}}]}
            }
        }
    });
    change(&mut d);
    d.to_string()
}

impl Cluster {
    /// `kubectl apply -f` of `manifest` (kubectl sends `fieldValidation=Strict`).
    async fn apply(&self, manifest: &str, extra: &[&str]) -> super::Run {
        let file = self.file("apply.json", manifest);
        let mut args = vec!["apply", "-f", file.to_str().unwrap()];
        args.extend_from_slice(extra);
        self.kubectl(&args).await
    }
}

/// A refused manifest exits 1 and kubectl prints the server's reason, naming the field.
#[track_caller]
fn refused(run: &super::Run, expected: &str) {
    assert_eq!(run.code, Some(1), "{run:#?}");
    assert!(
        run.stderr.contains(expected),
        "expected {expected:?} in:\n{}",
        run.stderr
    );
}

#[tokio::test]
async fn a_deployment_whose_selector_misses_its_template_is_refused_and_the_api_stays_responsive() {
    let c = Cluster::default().await;
    let bad = deployment("web", |d| {
        d["spec"]["template"]["metadata"]["labels"] = json!({"app": "other"})
    });
    let run = c.apply(&bad, &[]).await;
    refused(
        &run,
        "The Deployment \"web\" is invalid: spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"other\"}: `selector` does not match template `labels`",
    );
    // Nothing was stored, so the controllers made nothing; the API answers at once. A
    // hang (the old failure) lasts minutes: 5 s tells the two apart without timing.
    let started = Instant::now();
    let version = c
        .http()
        .get(format!("{}/version", c.running.url()))
        .bearer_auth(super::TOKEN)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .expect("the API answers");
    assert!(version.status().is_success());
    assert!(started.elapsed() < Duration::from_secs(5));
    let listed = c
        .kubectl(&["get", "replicasets,pods", "-o", "json"])
        .await
        .json();
    assert_eq!(listed["items"], json!([]), "{listed}");
}

#[tokio::test]
async fn kubectl_prints_each_invalid_field_with_the_servers_reason() {
    let c = Cluster::default().await;
    let cases: Vec<(&str, String, &str)> = vec![
        ("negative replicas", deployment("a", |d| d["spec"]["replicas"] = json!(-1)),
         "spec.replicas: Invalid value: -1: must be greater than or equal to 0"),
        ("no image", deployment("b", |d| d["spec"]["template"]["spec"]["containers"][0]["image"] = Value::Null),
         "spec.template.spec.containers[0].image: Required value"),
        ("surge and unavailable both zero", deployment("c", |d| d["spec"]["strategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}})),
         "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when `maxSurge` is 0"),
        ("port out of range", deployment("d", |d| d["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = json!(70000)),
         "spec.template.spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive"),
        ("bad enum", deployment("e", |d| d["spec"]["strategy"] = json!({"type": "BlueGreen"})),
         "spec.strategy.type: Unsupported value: \"BlueGreen\": supported values: \"Recreate\", \"RollingUpdate\""),
        ("bad label value", deployment("f", |d| d["metadata"]["labels"] = json!({"team": "has space"})),
         "metadata.labels: Invalid value: \"has space\""),
        ("service without ports", json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc"}, "spec": {"selector": {"app": "a"}}}).to_string(),
         "The Service \"svc\" is invalid: spec.ports: Required value"),
    ];
    for (what, manifest, expected) in cases {
        let run = c.apply(&manifest, &[]).await;
        assert_eq!(run.code, Some(1), "{what}: {run:#?}");
        assert!(
            run.stderr.contains(expected),
            "{what}: expected {expected:?} in:\n{}",
            run.stderr
        );
    }
    // Two problems at once: kubectl lists both, one per line.
    let two = deployment("g", |d| {
        d["spec"]["replicas"] = json!(-1);
        d["spec"]["template"]["spec"]["containers"][0]["image"] = Value::Null;
    });
    let run = c.apply(&two, &[]).await;
    refused(&run, "* spec.replicas: Invalid value: -1");
    refused(
        &run,
        "* spec.template.spec.containers[0].image: Required value",
    );
}

#[tokio::test]
async fn unknown_fields_and_wrong_types_are_refused_unless_validation_is_off() {
    let c = Cluster::default().await;
    let typo = deployment("web", |d| {
        d["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = json!("Always")
    });
    refused(
        &c.apply(&typo, &[]).await,
        "strict decoding error: unknown field \"spec.template.spec.containers[0].imagePullPolicyy\"",
    );
    // With `--validate=warn` it is dropped and kubectl prints the server's warning.
    let warned = c.apply(&typo, &["--validate=warn"]).await;
    warned.ok();
    assert!(
        warned.stderr.contains(
            "Warning: unknown field \"spec.template.spec.containers[0].imagePullPolicyy\""
        ),
        "{warned:#?}"
    );
    // Without validation it is dropped silently, as a real API server's decoder does.
    let silent = c.apply(&typo, &["--validate=false"]).await;
    silent.ok();
    assert!(!silent.stderr.contains("Warning"), "{silent:#?}");
    let stored = c
        .kubectl(&["get", "deployment", "web", "-o", "json"])
        .await
        .json();
    let container = &stored["spec"]["template"]["spec"]["containers"][0];
    assert!(container.get("imagePullPolicyy").is_none(), "{container}");

    let wrong_type = deployment("typed", |d| d["spec"]["replicas"] = json!("two"));
    refused(
        &c.apply(&wrong_type, &[]).await,
        "cannot be handled as a Deployment: spec.replicas: invalid type: string \"two\"",
    );

    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"key": "not base64!"}});
    refused(
        &c.apply(&secret.to_string(), &[]).await,
        "cannot be handled as a Secret: data.key",
    );
}

#[tokio::test]
async fn selectors_and_cluster_ips_are_immutable() {
    let c = Cluster::default().await;
    c.apply(&deployment("web", |_| {}), &[]).await.ok();
    let moved = deployment("web", |d| {
        d["spec"]["selector"] = json!({"matchLabels": {"app": "web", "tier": "api"}});
        d["spec"]["template"]["metadata"]["labels"] = json!({"app": "web", "tier": "api"});
    });
    refused(&c.apply(&moved, &[]).await, "spec.selector: Invalid value:");
    refused(&c.apply(&moved, &[]).await, "field is immutable");

    let service = |ip: Option<&str>| {
        let mut s = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}});
        if let Some(ip) = ip {
            s["spec"]["clusterIP"] = json!(ip);
        }
        s.to_string()
    };
    c.apply(&service(None), &[]).await.ok();
    let stored = c
        .kubectl(&["get", "service", "web", "-o", "json"])
        .await
        .json();
    let spec = &stored["spec"];
    let ip = spec["clusterIP"]
        .as_str()
        .expect("a cluster IP was allocated")
        .to_owned();
    assert!(ip.starts_with("10.96."), "{spec}");
    assert_eq!(spec["clusterIPs"], json!([ip]));
    assert_eq!(spec["type"], "ClusterIP");
    assert_eq!(spec["sessionAffinity"], "None");
    assert_eq!(spec["ipFamilies"], json!(["IPv4"]));
    assert_eq!(spec["ipFamilyPolicy"], "SingleStack");
    assert_eq!(spec["internalTrafficPolicy"], "Cluster");
    assert_eq!(spec["ports"][0]["protocol"], "TCP");
    // Re-applying without a cluster IP keeps it; asking for another is refused.
    c.apply(&service(None), &[]).await.ok();
    let other = if ip == "10.96.0.2" {
        "10.96.0.3"
    } else {
        "10.96.0.2"
    };
    refused(
        &c.apply(&service(Some(other)), &[]).await,
        "spec.clusterIP: Invalid value:",
    );
}

#[tokio::test]
async fn typed_clients_read_canonical_quantities_and_merged_secret_data() {
    let c = Cluster::default().await;
    // JSON numbers for quantities, as YAML `cpu: 0.5` sends them.
    let manifest = deployment("web", |d| {
        d["spec"]["template"]["spec"]["containers"][0]["resources"] = json!({"requests": {"cpu": 0.5, "memory": 1073741824}, "limits": {"cpu": 1, "memory": "1.5Gi"}});
    });
    c.apply(&manifest, &[]).await.ok();
    let client = super::kube_client::client(&c).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let typed = deployments
        .get("web")
        .await
        .expect("a typed client decodes it");
    let resources = typed.spec.unwrap().template.spec.unwrap().containers[0]
        .resources
        .clone()
        .unwrap();
    let requests = resources.requests.unwrap();
    let limits = resources.limits.unwrap();
    assert_eq!(requests["cpu"].0, "500m");
    assert_eq!(requests["memory"].0, "1073741824");
    assert_eq!(limits["cpu"].0, "1");
    assert_eq!(limits["memory"].0, "1536Mi");

    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
        "data": {"user": "YWRtaW4="}, "stringData": {"password": "s3cret"}});
    c.apply(&secret.to_string(), &[]).await.ok();
    let secrets: Api<Secret> = Api::namespaced(client, "default");
    let stored = secrets.get("creds").await.unwrap();
    assert_eq!(stored.type_.as_deref(), Some("Opaque"));
    assert!(stored.string_data.is_none());
    let data = stored.data.unwrap();
    assert_eq!(data["user"].0, b"admin");
    assert_eq!(data["password"].0, b"s3cret");
}

/// `dryRun=All` admits, defaults and merges exactly as a real write and stores nothing:
/// `kubectl apply --dry-run=server`, `kubectl diff`, `create` and `delete` dry runs.
#[tokio::test]
async fn server_dry_runs_show_the_result_and_change_nothing() {
    let c = Cluster::default().await;
    c.apply(&deployment("web", |_| {}), &[]).await.ok();
    let before = c
        .kubectl(&["get", "deployment", "web", "-o", "json"])
        .await
        .json();
    let v2 = deployment("web", |d| {
        d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("registry.test/web:v2");
    });

    let run = c.apply(&v2, &["--dry-run=server"]).await;
    assert!(
        run.ok()
            .contains("deployment.apps/web configured (server dry run)"),
        "{run:#?}"
    );
    let after = c
        .kubectl(&["get", "deployment", "web", "-o", "json"])
        .await
        .json();
    // The controllers keep writing the status; the object itself is as it was.
    assert_eq!(
        after["metadata"]["generation"],
        before["metadata"]["generation"]
    );
    assert_eq!(after["spec"], before["spec"]);

    // kubectl diff asks for a server-side dry run and compares: exit 1 with the change.
    let file = c.file("v2.json", &v2);
    let diff = c.kubectl(&["diff", "-f", file.to_str().unwrap()]).await;
    assert_eq!(diff.code, Some(1), "{diff:#?}");
    assert!(
        diff.stdout.contains("-      - image: registry.test/web:v1"),
        "{}",
        diff.stdout
    );
    assert!(
        diff.stdout.contains("+      - image: registry.test/web:v2"),
        "{}",
        diff.stdout
    );
    let same = c.file("v1.json", &deployment("web", |_| {}));
    let no_diff = c.kubectl(&["diff", "-f", same.to_str().unwrap()]).await;
    assert_eq!(no_diff.code, Some(0), "{no_diff:#?}");

    // A dry run is validated like a write.
    let bad = deployment("web", |d| d["spec"]["replicas"] = json!(-1));
    refused(
        &c.apply(&bad, &["--dry-run=server"]).await,
        "spec.replicas: Invalid value: -1",
    );

    let service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "preview"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}});
    let file = c.file("svc.json", &service.to_string());
    let created = c
        .kubectl(&[
            "create",
            "--dry-run=server",
            "-o",
            "json",
            "-f",
            file.to_str().unwrap(),
        ])
        .await
        .json();
    assert!(created["spec"]["clusterIP"].is_string(), "{created}");
    let missing = c.kubectl(&["get", "service", "preview"]).await;
    assert_eq!(missing.code, Some(1), "{missing:#?}");

    let deleted = c
        .kubectl(&["delete", "deployment", "web", "--dry-run=server"])
        .await;
    assert!(
        deleted.ok().contains("deleted (server dry run)"),
        "{deleted:#?}"
    );
    c.kubectl(&["get", "deployment", "web"]).await.ok();
    let replica_sets = c
        .kubectl(&["get", "replicasets", "-o", "json"])
        .await
        .json();
    assert_eq!(replica_sets["items"].as_array().map(Vec::len), Some(1));
}
