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

/// Lists page with `limit` and `continue` (kubectl's `--chunk-size`), items carry no type of
/// their own; every namespace has its name label and a `default` ServiceAccount; an orphaned
/// dependent loses its owner reference.
#[tokio::test]
async fn lists_page_namespaces_are_labelled_with_default_accounts_and_orphans_lose_owners() {
    let c = Cluster::default().await;
    for i in 0..5 {
        c.create(&configmap("default", &format!("cm-{i}"), "v"))
            .await;
    }
    let url = format!(
        "{}/api/v1/namespaces/default/configmaps?limit=2",
        c.running.url()
    );
    let first = get_json(&c, &url).await;
    assert_eq!(first["items"].as_array().map(Vec::len), Some(2), "{first}");
    assert!(first["items"][0].get("kind").is_none(), "{first}");
    assert_eq!(first["metadata"]["remainingItemCount"], 3);
    let token = first["metadata"]["continue"].as_str().unwrap();
    let second = get_json(&c, &format!("{url}&continue={token}")).await;
    assert_eq!(second["items"][0]["metadata"]["name"], "cm-2");
    // kubectl pages through all of them.
    let names = c
        .kubectl(&["get", "configmaps", "--chunk-size=2", "-o", "name"])
        .await;
    assert_eq!(
        names
            .ok()
            .lines()
            .filter(|l| l.starts_with("configmap/cm-"))
            .count(),
        5
    );

    c.create(r#"{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}}"#)
        .await;
    let selected = c
        .kubectl(&[
            "get",
            "namespaces",
            "-l",
            "kubernetes.io/metadata.name=team-a",
            "-o",
            "name",
        ])
        .await;
    assert_eq!(selected.ok().trim(), "namespace/team-a");
    let mut account = c
        .kubectl(&["get", "serviceaccount", "default", "-n", "team-a"])
        .await;
    for _ in 0..50 {
        if account.code == Some(0) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        account = c
            .kubectl(&["get", "serviceaccount", "default", "-n", "team-a"])
            .await;
    }
    account.ok();

    c.create(r#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner"}}"#)
        .await;
    let owner = c
        .kubectl(&["get", "configmap", "owner", "-o", "json"])
        .await
        .json();
    let uid = owner["metadata"]["uid"].as_str().unwrap();
    c.create(&format!(
        r#"{{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {{"name": "dependent", "ownerReferences": [{{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": "{uid}"}}]}}}}"#
    ))
    .await;
    c.kubectl(&["delete", "configmap", "owner", "--cascade=orphan"])
        .await
        .ok();
    let orphan = c
        .kubectl(&["get", "configmap", "dependent", "-o", "json"])
        .await
        .json();
    assert!(
        orphan["metadata"].get("ownerReferences").is_none(),
        "{orphan}"
    );
}

/// A GET of the API with the cluster's token; the JSON answer.
async fn get_json(c: &Cluster, url: &str) -> serde_json::Value {
    let response = c
        .http()
        .get(url)
        .bearer_auth(super::TOKEN)
        .send()
        .await
        .unwrap();
    response.json().await.unwrap()
}
