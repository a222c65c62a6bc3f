//! What a deployment tool touches beside the workload: RBAC answers (403 with the API
//! server's words, `kubectl auth can-i`, `auth whoami`), the health endpoints, pod logs, and
//! the kinds a release ships besides its Deployment. kubectl is the judge.

use kyb_deploy_testkit::k8s_sim::{Fault, K8sSimulator};
use serde_json::json;

use super::Cluster;

#[tokio::test]
async fn forbidden_requests_get_403_and_auth_can_i_agrees() {
    let c = Cluster::start(
        K8sSimulator::builder()
            .time_scale(20.0)
            .seed(1)
            .fault(Fault::forbidden("list", "secrets", "default"))
            .fault(Fault::forbidden("*", "clusterroles", "")),
    )
    .await;
    let denied = c.kubectl(&["get", "secrets"]).await;
    assert_eq!(denied.code, Some(1), "{denied:#?}");
    assert!(
        denied.stderr.contains(
            "Error from server (Forbidden): secrets is forbidden: User \"kyb-sim\" cannot list resource \"secrets\" in API group \"\" in the namespace \"default\""
        ),
        "{}",
        denied.stderr
    );
    let cluster_scope = c.kubectl(&["get", "clusterroles"]).await;
    assert!(
        cluster_scope
            .stderr
            .contains("cannot list resource \"clusterroles\" in API group \"rbac.authorization.k8s.io\" at the cluster scope"),
        "{}",
        cluster_scope.stderr
    );
    let no = c.kubectl(&["auth", "can-i", "list", "secrets"]).await;
    assert_eq!((no.code, no.stdout.trim()), (Some(1), "no"), "{no:#?}");
    let yes = c
        .kubectl(&["auth", "can-i", "create", "deployments", "-n", "default"])
        .await;
    assert_eq!((yes.code, yes.stdout.trim()), (Some(0), "yes"), "{yes:#?}");
    let me = c.kubectl(&["auth", "whoami", "-o", "json"]).await.json();
    assert_eq!(me["status"]["userInfo"]["username"], "kyb-sim");
}

#[tokio::test]
async fn health_endpoints_answer_without_a_token() {
    let c = Cluster::default().await;
    for path in ["/readyz", "/livez", "/healthz", "/readyz/ping"] {
        let answer = c
            .http()
            .get(format!("{}{path}", c.running.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "{path}");
        assert_eq!(answer.text().await.unwrap(), "ok", "{path}");
    }
    assert_eq!(c.kubectl(&["get", "--raw", "/readyz"]).await.ok(), "ok");
}

#[tokio::test]
async fn logs_of_a_virtual_pod_say_what_it_runs_and_a_waiting_one_says_why() {
    let c = Cluster::default().await;
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "one"},
        "spec": {"containers": [{"name": "app", "image": "registry.test/app:v1"}]}});
    let early = c.file("pod.json", &pod.to_string());
    c.kubectl(&["create", "-f", early.to_str().unwrap()])
        .await
        .ok();
    c.kubectl(&["wait", "--for=condition=Ready", "pod/one", "--timeout=60s"])
        .await
        .ok();
    let log = c.kubectl(&["logs", "one"]).await;
    assert!(
        log.ok()
            .contains("container app of pod default/one runs registry.test/app:v1 virtually"),
        "{log:#?}"
    );
    let wrong = c.kubectl(&["logs", "one", "-c", "sidecar"]).await;
    assert!(
        wrong
            .stderr
            .contains("container sidecar is not valid for pod one"),
        "{wrong:#?}"
    );
}

#[tokio::test]
async fn release_kinds_are_served_validated_and_listed_by_category() {
    let c = Cluster::default().await;
    let pdb = |spec: serde_json::Value| {
        json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "web"}, "spec": spec}).to_string()
    };
    let good = c.file(
        "pdb.json",
        &pdb(json!({"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}})),
    );
    c.kubectl(&["apply", "-f", good.to_str().unwrap()])
        .await
        .ok();
    let both = c.file(
        "bad-pdb.json",
        &pdb(json!({"minAvailable": 1, "maxUnavailable": "50%"})),
    );
    let refused = c.kubectl(&["apply", "-f", both.to_str().unwrap()]).await;
    assert!(
        refused
            .stderr
            .contains("minAvailable and maxUnavailable cannot be both set"),
        "{refused:#?}"
    );
    let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "reader"}, "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]});
    let file = c.file("role.json", &role.to_string());
    c.kubectl(&["apply", "-f", file.to_str().unwrap()])
        .await
        .ok();
    let job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate"},
        "spec": {"template": {"spec": {"containers": [{"name": "m", "image": "registry.test/m:v1"}]}}}});
    let file = c.file("job.json", &job.to_string());
    let no_policy = c.kubectl(&["apply", "-f", file.to_str().unwrap()]).await;
    assert!(
        no_policy
            .stderr
            .contains("spec.template.spec.restartPolicy: Required value"),
        "{no_policy:#?}"
    );

    let node = c
        .kubectl(&["get", "node", "kyb-sim-node", "-o", "json"])
        .await
        .json();
    let conditions = node["status"]["conditions"].as_array().unwrap();
    assert!(
        conditions
            .iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True"),
        "{node}"
    );
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "registry.test/web:v1"}]}}}});
    let file = c.file("d.json", &deployment.to_string());
    c.kubectl(&["apply", "-f", file.to_str().unwrap()])
        .await
        .ok();
    let all = c.kubectl(&["get", "all", "-o", "name"]).await;
    let listed = all.ok();
    assert!(listed.contains("deployment.apps/web"), "{listed}");
    assert!(!listed.contains("poddisruptionbudget"), "{listed}");
}

/// An autoscaler keeps its target within bounds and scales it on the reported load; a
/// re-apply that leaves `replicas` out (as a deployment tool does for an autoscaled
/// Deployment) keeps the autoscaler's count.
#[tokio::test]
async fn an_autoscaler_scales_its_target_and_a_reapply_without_replicas_keeps_the_count() {
    let c = Cluster::default().await;
    let deployment = |replicas: Option<i64>| {
        let mut d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                    {"name": "web", "image": "registry.test/web:v1", "resources": {"requests": {"cpu": "100m"}}}]}}}});
        if let Some(n) = replicas {
            d["spec"]["replicas"] = json!(n);
        }
        d.to_string()
    };
    let file = c.file("d.json", &deployment(Some(1)));
    c.kubectl(&["apply", "--server-side", "-f", file.to_str().unwrap()])
        .await
        .ok();
    let hpa = json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 2, "maxReplicas": 5,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]}});
    let file = c.file("hpa.json", &hpa.to_string());
    c.kubectl(&["apply", "-f", file.to_str().unwrap()])
        .await
        .ok();
    let replicas = || async {
        let d = c
            .kubectl(&["get", "deployment", "web", "-o", "json"])
            .await
            .json();
        d["spec"]["replicas"].as_i64().unwrap_or_default()
    };
    let mut seen = 0;
    for _ in 0..100 {
        seen = replicas().await;
        if seen == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(seen, 2, "raised to minReplicas");

    // Two pods' worth of load: 100 % each on two replicas, the 50 % target on four.
    c.running
        .handle()
        .add_fault(Fault::cpu_load("registry.test/web:*", 200));
    for _ in 0..100 {
        seen = replicas().await;
        if seen == 4 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(seen, 4, "scaled on the load");
    let rescales = || async {
        let events = c
            .kubectl(&[
                "get",
                "events",
                "--field-selector",
                "reason=SuccessfulRescale",
                "-o",
                "json",
            ])
            .await
            .json();
        events["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|e| e["count"].as_i64().unwrap_or(1))
                    .sum::<i64>()
            })
            .unwrap_or_default()
    };
    let before = rescales().await;
    assert!(before >= 2, "{before}");
    let owned = c
        .kubectl(&[
            "get",
            "deployment",
            "web",
            "-o",
            "json",
            "--show-managed-fields",
        ])
        .await
        .json();
    let managers: Vec<&serde_json::Value> = owned["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    assert!(
        managers
            .iter()
            .any(|m| m["manager"] == "kube-controller-manager" && m["subresource"] == "scale"),
        "{managers:?}"
    );

    // The tool re-applies without replicas: the field is the autoscaler's now, so it stays,
    // and the autoscaler never had to scale again.
    let file = c.file("d2.json", &deployment(None));
    c.kubectl(&["apply", "--server-side", "-f", file.to_str().unwrap()])
        .await
        .ok();
    assert_eq!(replicas().await, 4);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(replicas().await, 4);
    assert_eq!(rescales().await, before);
}
