//! `kubectl get` (and `get --watch`) prints upstream's columns from the server's Table; `kubectl explain` reads
//! the kinds' fields from the server's OpenAPI schemas.

use serde_json::json;

use super::Cluster;

#[tokio::test]
async fn kubectl_get_prints_upstreams_columns() {
    let c = Cluster::default().await;
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "registry.test/web:v1"}]}}}});
    let service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}});
    for (name, manifest) in [("d.json", deployment), ("s.json", service)] {
        let file = c.file(name, &manifest.to_string());
        c.kubectl(&["apply", "-f", file.to_str().unwrap()])
            .await
            .ok();
    }
    c.kubectl(&["rollout", "status", "deployment/web", "--timeout=60s"])
        .await
        .ok();

    let deployments = c.kubectl(&["get", "deployments"]).await;
    let lines: Vec<&str> = deployments.ok().lines().collect();
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
        "{lines:?}"
    );
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(&row[..4], ["web", "2/2", "2", "2"], "{lines:?}");

    let wide = c.kubectl(&["get", "deployments", "-o", "wide"]).await;
    assert!(wide.ok().contains("registry.test/web:v1"), "{wide:#?}");
    assert!(wide.stdout.contains("app=web"), "{wide:#?}");

    let pods = c.kubectl(&["get", "pods"]).await;
    let text = pods.ok();
    assert!(text.starts_with("NAME"), "{text}");
    for column in ["READY", "STATUS", "RESTARTS", "AGE"] {
        assert!(text.lines().next().unwrap().contains(column), "{text}");
    }
    assert!(text.contains("1/1") && text.contains("Running"), "{text}");

    let services = c.kubectl(&["get", "services", "web"]).await;
    let text = services.ok();
    assert!(
        text.contains("CLUSTER-IP") && text.contains("ClusterIP") && text.contains("80/TCP"),
        "{text}"
    );
    assert!(text.contains("10.96."), "{text}");

    let events = c.kubectl(&["get", "events"]).await;
    let text = events.ok();
    for column in ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"] {
        assert!(text.lines().next().unwrap().contains(column), "{text}");
    }
    assert!(
        text.contains("ScalingReplicaSet") && text.contains("deployment/web"),
        "{text}"
    );

    // A single object, and the Table's row object for `--show-labels`.
    let one = c
        .kubectl(&["get", "deployment", "web", "--show-labels"])
        .await;
    assert!(one.ok().contains("LABELS"), "{one:#?}");

    // A watch prints the same columns: each event's object is a one-row Table.
    let watched = c
        .kubectl(&[
            "get",
            "deployments",
            "--watch",
            "--output-watch-events",
            "--request-timeout=2s",
        ])
        .await;
    let lines: Vec<&str> = watched.ok().lines().collect();
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        ["EVENT", "NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
        "{lines:?}"
    );
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(&row[..5], ["ADDED", "web", "2/2", "2", "2"], "{lines:?}");
}

#[tokio::test]
async fn kubectl_explain_reads_each_kinds_fields_from_the_servers_schemas() {
    let c = Cluster::default().await;
    let strategy = c
        .kubectl(&["explain", "deployment.spec.strategy.rollingUpdate.maxSurge"])
        .await;
    let text = strategy.ok();
    assert!(text.contains("GROUP:      apps"), "{text}");
    assert!(text.contains("KIND:       Deployment"), "{text}");
    assert!(text.contains("FIELD: maxSurge <IntOrString>"), "{text}");
    assert!(
        text.contains("The maximum number of pods that can be scheduled above"),
        "{text}"
    );

    // A kind of the core group, with its fields listed.
    let service = c.kubectl(&["explain", "services.spec"]).await;
    let text = service.ok();
    assert!(text.contains("FIELD: spec <ServiceSpec>"), "{text}");
    assert!(text.contains("clusterIP\t<string>"), "{text}");
    for field in ["selector", "ports", "sessionAffinity"] {
        assert!(text.contains(field), "{field} missing: {text}");
    }

    // A field no schema has is named in kubectl's error.
    let wrong = c.kubectl(&["explain", "deployment.spec.replicaz"]).await;
    assert_ne!(wrong.code, Some(0), "{wrong:#?}");
    assert!(wrong.stderr.contains("replicaz"), "{wrong:#?}");
}
