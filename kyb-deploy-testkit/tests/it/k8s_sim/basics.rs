//! Discovery, authentication, CRUD, selectors, optimistic concurrency, watches and errors.

use super::{Cluster, TOKEN};

/// A ConfigMap manifest with `k` set to `value`.
fn configmap(namespace: &str, name: &str, value: &str) -> String {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": {"k": value},
    })
    .to_string()
}

#[tokio::test]
async fn generator_commands_sending_protobuf_get_415_naming_the_fix() {
    let c = Cluster::default().await;
    let run = c
        .kubectl(&["create", "configmap", "x", "--from-literal=k=v"])
        .await;
    assert_ne!(run.code, Some(0));
    assert!(
        run.stderr.contains("UnsupportedMediaType") || run.stderr.contains("unknown format"),
        "{run:#?}"
    );
    assert!(run.stderr.contains("create -f"), "{run:#?}");
}

#[tokio::test]
async fn kubectl_discovers_the_api_and_a_wrong_token_gets_401() {
    let c = Cluster::default().await;
    let version = c.kubectl(&["version", "-o", "json"]).await.json();
    assert_eq!(version["serverVersion"]["gitVersion"], "v1.32.0");
    let resources = c.kubectl(&["api-resources", "--no-headers"]).await;
    let text = resources.ok();
    for line in [
        "deployments",
        "replicasets",
        "pods",
        "services",
        "configmaps",
        "secrets",
        "serviceaccounts",
        "events",
        "namespaces",
        "ingresses",
        "networkpolicies",
        "horizontalpodautoscalers",
        "roles",
        "rolebindings",
        "leases",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(line)),
            "{line} missing:\n{text}"
        );
    }
    assert!(
        text.contains("deploy") && text.contains("apps/v1"),
        "{text}"
    );

    let config = std::fs::read_to_string(c.kubeconfig())
        .unwrap()
        .replace(TOKEN, "wrong");
    let bad = c.file("bad-kubeconfig", &config);
    let run = c
        .kubectl(&["--kubeconfig", bad.to_str().unwrap(), "get", "pods"])
        .await;
    assert_ne!(run.code, Some(0));
    assert!(
        run.stderr.contains("Unauthorized") || run.stderr.contains("provide credentials"),
        "{run:#?}"
    );
}

#[tokio::test]
async fn objects_are_created_read_listed_by_selector_and_deleted() {
    let c = Cluster::default().await;
    c.create(r#"{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kyb"}}"#)
        .await;
    c.create(&configmap("kyb", "a", "v")).await;
    c.create(&configmap("kyb", "b", "w")).await;
    c.kubectl(&["-n", "kyb", "label", "configmap", "a", "tier=front"])
        .await
        .ok();
    let a = c
        .kubectl(&["-n", "kyb", "get", "configmap", "a", "-o", "json"])
        .await
        .json();
    assert_eq!(a["data"]["k"], "v");
    assert_eq!(a["metadata"]["labels"]["tier"], "front");
    let selected = c
        .kubectl(&["-n", "kyb", "get", "cm", "-l", "tier=front", "-o", "json"])
        .await
        .json();
    assert_eq!(selected["items"].as_array().unwrap().len(), 1);
    let named = c
        .kubectl(&[
            "-n",
            "kyb",
            "get",
            "cm",
            "--field-selector",
            "metadata.name=b",
            "-o",
            "name",
        ])
        .await;
    assert_eq!(named.ok().trim(), "configmap/b");
    let file = c.file("again.json", &configmap("kyb", "a", "v"));
    let again = c.kubectl(&["create", "-f", file.to_str().unwrap()]).await;
    assert!(
        again.stderr.contains("AlreadyExists")
            && again.stderr.contains("configmaps \"a\" already exists"),
        "{again:#?}"
    );
    c.kubectl(&["-n", "kyb", "delete", "configmap", "a"])
        .await
        .ok();
    let gone = c.kubectl(&["-n", "kyb", "get", "configmap", "a"]).await;
    assert!(
        gone.stderr.contains("NotFound") && gone.stderr.contains("configmaps \"a\" not found"),
        "{gone:#?}"
    );
    let file = c.file("missing.json", &configmap("nope", "x", "v"));
    let missing = c.kubectl(&["create", "-f", file.to_str().unwrap()]).await;
    assert!(
        missing.stderr.contains("namespaces \"nope\" not found"),
        "{missing:#?}"
    );
}

#[tokio::test]
async fn a_stale_resource_version_is_a_conflict() {
    let c = Cluster::default().await;
    c.create(&configmap("default", "cfg", "v")).await;
    let mut stale = c
        .kubectl(&["get", "configmap", "cfg", "-o", "json"])
        .await
        .json();
    c.kubectl(&["label", "configmap", "cfg", "changed=yes"])
        .await
        .ok();
    stale["data"]["k"] = "w".into();
    let file = c.file("stale.json", &stale.to_string());
    let run = c.kubectl(&["replace", "-f", file.to_str().unwrap()]).await;
    assert_ne!(run.code, Some(0));
    assert!(run.stderr.contains("the object has been modified; please apply your changes to the latest version and try again"), "{run:#?}");
}

#[tokio::test]
async fn watches_stream_changes_and_resume_from_a_resource_version() {
    let c = Cluster::default().await;
    let client = c.http();
    let url = c.running.url();
    let get = |path: String| client.get(format!("{url}{path}")).bearer_auth(TOKEN).send();
    let list: serde_json::Value = get("/api/v1/namespaces/default/configmaps".into())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let from = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    c.create(&configmap("default", "w1", "v")).await;
    c.kubectl(&["delete", "configmap", "w1"]).await.ok();
    let body = get(format!(
        "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={from}&timeoutSeconds=1"
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    let types: Vec<String> = body
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(types, ["ADDED", "DELETED"], "{body}");
}

#[tokio::test]
async fn api_faults_answer_conflicts_server_errors_and_delays() {
    use kyb_deploy_testkit::k8s_sim::{Fault, K8sSimulator};
    let c = Cluster::start(K8sSimulator::builder().seed(3)).await;
    c.create(&configmap("default", "f", "v")).await;
    let handle = c.running.handle();
    handle.add_fault(Fault::conflicts("PATCH", 2));
    handle.add_fault(Fault::server_errors("DELETE", 1));
    let client = c.http();
    let url = format!("{}/api/v1/namespaces/default/configmaps/f", c.running.url());
    let patch = || {
        client
            .patch(&url)
            .bearer_auth(TOKEN)
            .header("content-type", "application/merge-patch+json")
            .body(r#"{"data": {"k": "w"}}"#)
            .send()
    };
    for _ in 0..2 {
        let response = patch().await.unwrap();
        assert_eq!(response.status().as_u16(), 409);
        let status: serde_json::Value = response.json().await.unwrap();
        assert_eq!(status["reason"], "Conflict");
    }
    assert_eq!(
        patch().await.unwrap().status().as_u16(),
        200,
        "the storm is over"
    );
    let delete = || client.delete(&url).bearer_auth(TOKEN).send();
    assert_eq!(delete().await.unwrap().status().as_u16(), 500);
    assert_eq!(delete().await.unwrap().status().as_u16(), 200);
    handle.clear_faults();
    assert!(handle.get("ConfigMap", "default", "f").is_none());
}
