//! Server-side apply of the built-in manifests: admitted by the simulator's validation
//! (strict field validation, as a real API server), idempotent, dry runs store nothing,
//! and a conflict with another field manager names it.

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams};
use kyb_deploy_k8s::{ApplyMode, Error, FIELD_MANAGER, apply_all};
use serde_json::json;

use super::{Cluster, manifests, release, settings};

/// An Ingress and a Secret written from the deploying machine's variable.
const INGRESS_AND_SECRET: &str = r#"
[ingress]
host = "api.example.com"
tls_secret = "api-tls"
rate_limit_rps = 20
[secrets.DATABASE_URL]
env = "KYB_DATABASE_URL"
"#;

const AUTOSCALING: &str = r#"
[autoscaling]
min_replicas = 3
max_replicas = 6
memory_percent = 80
"#;

#[tokio::test]
async fn the_example_of_ones_own_manifests_is_admitted_as_filled_in() {
    let c = Cluster::start().await;
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/kubernetes/manifests");
    let s: kyb_deploy_k8s::KubernetesSettings = toml::from_str(
        "namespace = \"kyb\"\nmanifests = \"unused\"\n[secrets.DATABASE_URL]\nenv = \"DB\"\n",
    )
    .unwrap();
    let release = release("v1");
    let env = std::collections::BTreeMap::from([("LOG_LEVEL".to_owned(), "info".to_owned())]);
    let input = kyb_deploy_k8s::ManifestInput {
        environment: "staging",
        settings: &s,
        release: &release,
        env: &env,
    };
    let written = kyb_deploy_k8s::read_manifests(&path).unwrap();
    let objects = kyb_deploy_k8s::fill_in(
        &path,
        written,
        &input,
        &kyb_deploy_k8s::SecretValues::Resolved(std::collections::BTreeMap::from([(
            "DATABASE_URL".to_owned(),
            "postgres://db".to_owned(),
        )])),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let kinds: Vec<&str> = objects.iter().map(|m| m.kind()).collect();
    assert_eq!(
        kinds,
        ["Namespace", "ConfigMap", "Secret", "Service", "Deployment"]
    );
    let applied = apply_all(&c.client, &objects, ApplyMode::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let deployment = applied.iter().find(|o| o["kind"] == "Deployment").unwrap();
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.test/web:v1"
    );
}

#[tokio::test]
async fn every_built_in_object_is_admitted_and_a_second_apply_changes_nothing() {
    let c = Cluster::start().await;
    // No autoscaler here: its own scaling would (rightly) bump the generation.
    let s = settings(INGRESS_AND_SECRET);
    let objects = manifests(&s, &release("v1"));
    let applied = apply_all(&c.client, &objects, ApplyMode::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(applied.len(), objects.len());
    let deployment = applied.iter().find(|o| o["kind"] == "Deployment").unwrap();
    let generation = deployment["metadata"]["generation"].clone();
    assert_eq!(
        deployment["metadata"]["managedFields"][0]["manager"],
        FIELD_MANAGER
    );
    // Quantities come back canonical; the secret value reached the Secret.
    let stored_secret = c
        .running
        .handle()
        .get("Secret", "kyb", "web-secrets")
        .unwrap();
    assert!(
        stored_secret["data"]["DATABASE_URL"].is_string(),
        "{stored_secret:#}"
    );

    // A second later, so that a write would also stamp a new managedFields time.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let again = apply_all(&c.client, &objects, ApplyMode::default())
        .await
        .unwrap();
    // Nothing changed: no rollout (the Deployment's generation stays; its status is the
    // controller's to change), and no other object was written at all.
    for (first, second) in applied.iter().zip(&again) {
        let what = format!("{} {}", first["kind"], first["metadata"]["name"]);
        if first["kind"] == "Deployment" {
            assert_eq!(second["metadata"]["generation"], generation, "{what}");
        } else {
            assert_eq!(
                second["metadata"]["resourceVersion"], first["metadata"]["resourceVersion"],
                "{what} was written again"
            );
        }
    }
}

#[tokio::test]
async fn a_dry_run_answers_the_merged_object_and_stores_nothing() {
    let c = Cluster::start().await;
    let s = settings("");
    apply_all(
        &c.client,
        &manifests(&s, &release("v1")),
        ApplyMode::default(),
    )
    .await
    .unwrap();
    let revision = super::settled_revision(&c.running.handle()).await;
    let preview = apply_all(
        &c.client,
        &manifests(&s, &release("v2")),
        ApplyMode {
            dry_run: true,
            force: false,
        },
    )
    .await
    .unwrap();
    let deployment = preview.iter().find(|o| o["kind"] == "Deployment").unwrap();
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.test/web:v2"
    );
    assert_eq!(c.running.handle().resource_version(), revision);
    let stored = c.running.handle().get("Deployment", "kyb", "web").unwrap();
    assert_eq!(
        stored["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.test/web:v1"
    );
}

#[tokio::test]
async fn a_field_another_manager_owns_is_a_conflict_naming_it_unless_forced() {
    let c = Cluster::start().await;
    let s = settings("");
    apply_all(
        &c.client,
        &manifests(&s, &release("v1")),
        ApplyMode::default(),
    )
    .await
    .unwrap();
    // Someone scales by hand with their own apply.
    let api: Api<Deployment> = Api::namespaced(c.client.clone(), "kyb");
    let theirs = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web"}, "spec": {"replicas": 5}});
    api.patch(
        "web",
        &PatchParams::apply("ops-team").force(),
        &Patch::Apply(&theirs),
    )
    .await
    .unwrap();

    let error = apply_all(
        &c.client,
        &manifests(&s, &release("v2")),
        ApplyMode::default(),
    )
    .await
    .unwrap_err();
    let Error::Conflict { object, message } = &error else {
        panic!("expected a conflict, got {error}");
    };
    assert_eq!(object, "Deployment kyb/web");
    assert!(
        message.contains("\"ops-team\"") && message.contains(".spec.replicas"),
        "{message}"
    );
    assert!(
        error.to_string().contains("kubernetes.force_conflicts"),
        "{error}"
    );

    let forced = apply_all(
        &c.client,
        &manifests(&s, &release("v2")),
        ApplyMode {
            dry_run: false,
            force: true,
        },
    )
    .await
    .unwrap();
    let deployment = forced.iter().find(|o| o["kind"] == "Deployment").unwrap();
    assert_eq!(deployment["spec"]["replicas"], 2);
}

#[tokio::test]
async fn with_an_autoscaler_a_deploy_keeps_the_replica_count_it_chose() {
    let c = Cluster::start().await;
    let s = settings(&format!("{INGRESS_AND_SECRET}{AUTOSCALING}"));
    let objects = manifests(&s, &release("v1"));
    apply_all(&c.client, &objects, ApplyMode::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // The autoscaler raises the Deployment to its minimum.
    let replicas =
        || c.running.handle().get("Deployment", "kyb", "web").unwrap()["spec"]["replicas"].clone();
    let start = std::time::Instant::now();
    while replicas() != 3 {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "{}",
            replicas()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let next = apply_all(
        &c.client,
        &manifests(&s, &release("v2")),
        ApplyMode::default(),
    )
    .await
    .unwrap();
    let deployment = next.iter().find(|o| o["kind"] == "Deployment").unwrap();
    assert_eq!(
        deployment["spec"]["replicas"], 3,
        "the deploy reset the autoscaler's count"
    );
}
