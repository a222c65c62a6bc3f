//! Pruning (what an earlier deployment of this service in this environment applied and the
//! manifests no longer have is deleted once the rollout completed; nothing else is), and
//! rollouts found again by their configuration.

use kyb_deploy_core::config::Config;
use kyb_deploy_core::{
    CancellationToken, Release, RolloutOutcome, Stage, StageProgress, Target as _, Version,
};
use kyb_deploy_k8s::{KubernetesTarget, KubernetesTargetSpec};

use super::Cluster;

/// A target for environment `env` with `extra` in its Kubernetes settings.
fn target(c: &Cluster, env: &str, extra: &str) -> KubernetesTarget {
    let text = format!(
        "[environments.{env}]\ntarget = \"kubernetes\"\n\
         [environments.{env}.kubernetes]\nnamespace = \"kyb\"\napp = \"web\"\n{extra}\n"
    );
    let environment = Config::from_toml(&text).unwrap().environment(env).unwrap();
    let spec =
        KubernetesTargetSpec::from_environment(&environment, std::path::Path::new(".")).unwrap();
    KubernetesTarget::new(c.client.clone(), spec)
}

const EXTRAS: &str = "[environments.staging.kubernetes.ingress]\nhost = \"api.example.com\"\n\
    [environments.staging.kubernetes.autoscaling]\nmin_replicas = 2\nmax_replicas = 4\n";

fn release(v: &str) -> Release {
    Release::new(Version::parse(v).unwrap(), format!("registry.test/web:{v}"))
}

#[tokio::test]
async fn objects_the_manifests_no_longer_have_are_deleted_and_only_those() {
    let c = Cluster::start().await;
    let handle = c.running.handle();
    let with_extras = target(&c, "staging", EXTRAS);
    with_extras.deploy(&release("v1")).await.unwrap();
    assert!(handle.get("Ingress", "kyb", "web").is_some());
    assert!(
        handle
            .get("HorizontalPodAutoscaler", "kyb", "web")
            .is_some()
    );
    // Not ours to delete: an object without our labels.
    let config_maps: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::namespaced(c.client.clone(), "kyb");
    let hand_made = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "hand-made"}}))
    .unwrap();
    config_maps
        .create(&kube::api::PostParams::default(), &hand_made)
        .await
        .unwrap();
    // Nor one that carries our labels but was written by someone else.
    let lookalike = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "lookalike", "labels": {
            "app.kubernetes.io/managed-by": "kyb-deploy",
            "kyb-deploy.io/environment": "staging",
            "app.kubernetes.io/name": "web"}}}))
    .unwrap();
    config_maps
        .create(&kube::api::PostParams::default(), &lookalike)
        .await
        .unwrap();

    let plain = target(&c, "staging", "");
    let plan = plain.plan(&release("v2")).await.unwrap();
    let deleted: Vec<&str> = plan
        .changes
        .iter()
        .filter(|c| c.to.as_deref() == Some("deleted"))
        .map(|c| c.resource.as_str())
        .collect();
    assert_eq!(
        deleted,
        ["Ingress kyb/web", "HorizontalPodAutoscaler kyb/web"],
        "{plan:#?}"
    );
    assert!(
        handle.get("Ingress", "kyb", "web").is_some(),
        "a plan deletes nothing"
    );

    let rollout = plain.deploy(&release("v2")).await.unwrap();
    // Nothing goes before the rollout completed: old pods may still use what would go.
    assert!(handle.get("Ingress", "kyb", "web").is_some());
    let outcome = plain
        .wait(
            &rollout,
            &StageProgress::discard(Stage::Wait),
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(outcome, RolloutOutcome::Completed);
    assert!(handle.get("Ingress", "kyb", "web").is_none());
    assert!(
        handle
            .get("HorizontalPodAutoscaler", "kyb", "web")
            .is_none()
    );
    for (kind, name) in [
        ("Deployment", "web"),
        ("Service", "web"),
        ("ConfigMap", "web-config"),
        ("ConfigMap", "hand-made"),
        ("ConfigMap", "lookalike"),
    ] {
        assert!(
            handle.get(kind, "kyb", name).is_some(),
            "{kind} {name} was pruned"
        );
    }
}

#[tokio::test]
async fn a_rollout_is_found_only_with_its_own_configuration() {
    let c = Cluster::start().await;
    let info = target(
        &c,
        "staging",
        "[environments.staging.env]\nLOG_LEVEL = \"info\"\n",
    );
    let debug = target(
        &c,
        "staging",
        "[environments.staging.env]\nLOG_LEVEL = \"debug\"\n",
    );
    info.deploy(&release("v1")).await.unwrap();
    assert!(info.find_rollout(&release("v1")).await.unwrap().is_some());
    // The same version with other variables is another write: not found as this one.
    assert!(debug.find_rollout(&release("v1")).await.unwrap().is_none());
}

#[tokio::test]
async fn turning_autoscaling_on_keeps_the_replica_count_for_the_autoscaler() {
    let c = Cluster::start().await;
    let fixed = target(&c, "staging", "replicas = 4");
    fixed.deploy(&release("v1")).await.unwrap();
    let autoscaled = target(
        &c,
        "staging",
        "[environments.staging.kubernetes.autoscaling]\nmin_replicas = 2\nmax_replicas = 6\n",
    );
    autoscaled.deploy(&release("v2")).await.unwrap();
    // The manifests no longer set replicas; the count stays 4 (inside the autoscaler's
    // bounds) instead of dropping to Kubernetes' default of 1.
    let deployment = c.running.handle().get("Deployment", "kyb", "web").unwrap();
    assert_eq!(deployment["spec"]["replicas"], 4, "{deployment:#}");
}
