//! Deployments through the real kubectl: server-side apply of an application, image
//! updates followed by `rollout status`, history and undo, pause and resume, scale, and a
//! cascading delete.

use kyb_deploy_testkit::k8s_sim::{Fault, K8sSimulator};
use serde_json::Value;

use super::Cluster;

/// A Deployment with its Service, Ingress and HorizontalPodAutoscaler.
const APP: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 3
  progressDeadlineSeconds: 60
  selector:
    matchLabels: {app: web}
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 1, maxUnavailable: 0}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: app
        image: reg.test/web:v1
        ports:
        - containerPort: 8080
        readinessProbe:
          httpGet: {path: /ready, port: 8080}
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - port: 80
    targetPort: 8080
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
spec:
  rules:
  - host: web.kyb.test
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service:
            name: web
            port: {number: 80}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: web
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 3
  maxReplicas: 6
  metrics:
  - type: Resource
    resource:
      name: cpu
      target: {type: Utilization, averageUtilization: 80}
"#;

async fn with_app(builder: kyb_deploy_testkit::k8s_sim::K8sSimulatorBuilder) -> Cluster {
    let c = Cluster::start(builder).await;
    let file = c.file("app.yaml", APP);
    let applied = c
        .kubectl(&[
            "apply",
            "--server-side",
            "--field-manager=kyb-test",
            "-f",
            file.to_str().unwrap(),
        ])
        .await;
    let text = applied.ok();
    for line in [
        "deployment.apps/web serverside-applied",
        "service/web serverside-applied",
        "ingress.networking.k8s.io/web serverside-applied",
        "horizontalpodautoscaler.autoscaling/web serverside-applied",
    ] {
        assert!(text.contains(line), "{text}");
    }
    c.kubectl(&["rollout", "status", "deployment/web", "--timeout=60s"])
        .await
        .ok();
    c
}

fn items(list: &Value, kind: &str) -> Vec<Value> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["kind"] == kind)
        .cloned()
        .collect()
}

fn revision(object: &Value) -> &str {
    object["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
        .as_str()
        .unwrap_or("")
}

#[tokio::test]
async fn an_applied_application_rolls_out_and_kubectl_sees_it() {
    let c = with_app(K8sSimulator::builder().time_scale(20.0).seed(11)).await;
    let all = c
        .kubectl(&["get", "deploy,rs,pods", "-o", "json"])
        .await
        .json();
    let deployments = items(&all, "Deployment");
    assert_eq!(deployments.len(), 1);
    let d = &deployments[0];
    assert_eq!(d["status"]["readyReplicas"], 3, "{d:#}");
    // Defaults are filled in when written, as the API server does: still generation 1.
    assert_eq!(d["metadata"]["generation"], 1, "{d:#}");
    assert_eq!(d["status"]["observedGeneration"], 1);
    assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
    assert_eq!(revision(d), "1");
    let conditions: Vec<(&str, &str)> = d["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["type"].as_str().unwrap(), c["reason"].as_str().unwrap()))
        .collect();
    assert!(
        conditions.contains(&("Available", "MinimumReplicasAvailable")),
        "{conditions:?}"
    );
    assert!(
        conditions.contains(&("Progressing", "NewReplicaSetAvailable")),
        "{conditions:?}"
    );
    let rs = items(&all, "ReplicaSet");
    assert_eq!(rs.len(), 1);
    let hash = rs[0]["metadata"]["labels"]["pod-template-hash"]
        .as_str()
        .unwrap();
    assert_eq!(rs[0]["metadata"]["name"], format!("web-{hash}"));
    let pods = items(&all, "Pod");
    assert_eq!(pods.len(), 3);
    for pod in &pods {
        assert_eq!(pod["status"]["phase"], "Running", "{pod:#}");
        assert!(
            pod["metadata"]["name"]
                .as_str()
                .unwrap()
                .starts_with(&format!("web-{hash}-"))
        );
        assert_eq!(
            pod["metadata"]["ownerReferences"][0]["name"],
            rs[0]["metadata"]["name"]
        );
    }
    let d = c
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
    let managers: Vec<&str> = d["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["manager"].as_str().unwrap())
        .collect();
    assert!(managers.contains(&"kyb-test"), "{managers:?}");
    let events = c.kubectl(&["get", "events", "-o", "json"]).await.json();
    let reasons: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            e["reason"]
                .as_str()
                .unwrap_or_else(|| panic!("an event without a reason: {e:#}"))
        })
        .collect();
    for reason in [
        "ScalingReplicaSet",
        "SuccessfulCreate",
        "Scheduled",
        "Started",
    ] {
        assert!(reasons.contains(&reason), "{reason} in {reasons:?}");
    }
}

#[tokio::test]
async fn set_image_rolls_out_and_a_faulty_image_exceeds_the_deadline() {
    let c = with_app(
        K8sSimulator::builder()
            .time_scale(20.0)
            .seed(12)
            .fault(Fault::image_pull_backoff("reg.test/web:broken")),
    )
    .await;
    c.kubectl(&["set", "image", "deployment/web", "app=reg.test/web:v2"])
        .await
        .ok();
    let status = c
        .kubectl(&["rollout", "status", "deployment/web", "--timeout=60s"])
        .await;
    assert!(
        status
            .ok()
            .contains("deployment \"web\" successfully rolled out"),
        "{status:#?}"
    );
    let d = c
        .kubectl(&["get", "deployment", "web", "-o", "json"])
        .await
        .json();
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "reg.test/web:v2"
    );
    assert_eq!(revision(&d), "2");

    c.kubectl(&["set", "image", "deployment/web", "app=reg.test/web:broken"])
        .await
        .ok();
    let failed = c
        .kubectl(&["rollout", "status", "deployment/web", "--timeout=60s"])
        .await;
    assert_ne!(failed.code, Some(0), "{failed:#?}");
    assert!(
        failed
            .stderr
            .contains("deployment \"web\" exceeded its progress deadline"),
        "{failed:#?}"
    );
    let pods = c.kubectl(&["get", "pods", "-o", "json"]).await.json();
    let waiting: Vec<&str> = pods["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"].as_str())
        .collect();
    assert!(
        waiting
            .iter()
            .any(|r| *r == "ImagePullBackOff" || *r == "ErrImagePull"),
        "{waiting:?}"
    );
    // The old pods kept serving: maxUnavailable 0.
    let d = c
        .kubectl(&["get", "deployment", "web", "-o", "json"])
        .await
        .json();
    assert_eq!(d["status"]["availableReplicas"], 3, "{d:#}");
}

#[tokio::test]
async fn history_and_undo_restore_templates_and_revisions() {
    let c = with_app(K8sSimulator::builder().time_scale(20.0).seed(13)).await;
    for v in ["v2", "v3"] {
        c.kubectl(&[
            "set",
            "image",
            "deployment/web",
            &format!("app=reg.test/web:{v}"),
        ])
        .await
        .ok();
        c.kubectl(&["rollout", "status", "deployment/web", "--timeout=60s"])
            .await
            .ok();
    }
    let history = c.kubectl(&["rollout", "history", "deployment/web"]).await;
    let text = history.ok();
    let revisions: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("REVISION"))
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(revisions, ["1", "2", "3"], "{text}");

    c.kubectl(&["rollout", "undo", "deployment/web"]).await.ok();
    c.kubectl(&["rollout", "status", "deployment/web", "--timeout=60s"])
        .await
        .ok();
    let d = c
        .kubectl(&["get", "deployment", "web", "-o", "json"])
        .await
        .json();
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "reg.test/web:v2"
    );
    assert_eq!(
        revision(&d),
        "4",
        "undo reuses v2's ReplicaSet as revision 4"
    );
    let detail = c
        .kubectl(&["rollout", "history", "deployment/web", "--revision=4"])
        .await;
    assert!(detail.ok().contains("reg.test/web:v2"), "{detail:#?}");

    c.kubectl(&["rollout", "undo", "deployment/web", "--to-revision=1"])
        .await
        .ok();
    c.kubectl(&["rollout", "status", "deployment/web", "--timeout=60s"])
        .await
        .ok();
    let d = c
        .kubectl(&["get", "deployment", "web", "-o", "json"])
        .await
        .json();
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "reg.test/web:v1"
    );
    assert_eq!(revision(&d), "5");
    let rs = c.kubectl(&["get", "rs", "-o", "json"]).await.json();
    let v1 = rs["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["spec"]["template"]["spec"]["containers"][0]["image"] == "reg.test/web:v1")
        .unwrap();
    assert_eq!(revision(v1), "5");
    assert_eq!(
        v1["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"],
        "1"
    );
    let history = c.kubectl(&["rollout", "history", "deployment/web"]).await;
    let text = history.ok();
    let revisions: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("REVISION"))
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(revisions, ["3", "4", "5"], "{text}");
}

#[tokio::test]
async fn pause_resume_scale_and_a_cascading_delete() {
    let c = with_app(K8sSimulator::builder().time_scale(20.0).seed(14)).await;
    c.kubectl(&["rollout", "pause", "deployment/web"])
        .await
        .ok();
    c.kubectl(&["set", "image", "deployment/web", "app=reg.test/web:v2"])
        .await
        .ok();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let rs = c.kubectl(&["get", "rs", "-o", "json"]).await.json();
    assert_eq!(
        rs["items"].as_array().unwrap().len(),
        1,
        "paused: no new ReplicaSet"
    );
    let d = c
        .kubectl(&["get", "deployment", "web", "-o", "json"])
        .await
        .json();
    assert_eq!(d["spec"]["paused"], true);

    c.kubectl(&["rollout", "resume", "deployment/web"])
        .await
        .ok();
    c.kubectl(&["rollout", "status", "deployment/web", "--timeout=60s"])
        .await
        .ok();
    let rs = c.kubectl(&["get", "rs", "-o", "json"]).await.json();
    assert_eq!(
        rs["items"].as_array().unwrap().len(),
        2,
        "resumed: the v2 ReplicaSet"
    );

    c.kubectl(&["scale", "deployment/web", "--replicas=5"])
        .await
        .ok();
    c.kubectl(&["rollout", "status", "deployment/web", "--timeout=60s"])
        .await
        .ok();
    let d = c
        .kubectl(&["get", "deployment", "web", "-o", "json"])
        .await
        .json();
    assert_eq!(d["spec"]["replicas"], 5);
    assert_eq!(d["status"]["availableReplicas"], 5, "{d:#}");

    let deleted = c.kubectl(&["delete", "deployment", "web"]).await;
    assert!(
        deleted.ok().contains("deployment.apps \"web\" deleted"),
        "{deleted:#?}"
    );
    let left = c.kubectl(&["get", "rs,pods", "-o", "json"]).await.json();
    assert_eq!(left["items"].as_array().unwrap().len(), 0, "{left:#}");
}

/// A ConfigMap with `k` set to `value`, as YAML.
fn settings(value: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  k: {value}\n")
}

/// The settings' client-side last-applied configuration.
async fn last_applied(c: &Cluster) -> Value {
    let object = c
        .kubectl(&["get", "configmap", "settings", "-o", "json"])
        .await
        .json();
    let annotation =
        &object["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"];
    serde_json::from_str(annotation.as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn kubectl_moves_an_object_from_client_side_to_server_side_apply_and_back() {
    let c = Cluster::default().await;
    let v1 = c.file("v1.yaml", &settings("one"));
    c.kubectl(&["apply", "-f", v1.to_str().unwrap()]).await.ok();

    // The field the client-side apply set is taken over without --force-conflicts...
    let v2 = c.file("v2.yaml", &settings("two"));
    let migrated = c
        .kubectl(&["apply", "--server-side", "-f", v2.to_str().unwrap()])
        .await;
    assert!(
        migrated.ok().contains("serverside-applied"),
        "{migrated:#?}"
    );
    // ...and the annotation follows, so a later client-side apply starts from "two".
    assert_eq!(last_applied(&c).await["data"]["k"], "two");

    // A field someone changed since then is a conflict again.
    c.kubectl(&[
        "patch",
        "configmap",
        "settings",
        "--type=merge",
        "-p",
        r#"{"data":{"k":"patched"}}"#,
    ])
    .await
    .ok();
    let v3 = c.file("v3.yaml", &settings("three"));
    let refused = c
        .kubectl(&["apply", "--server-side", "-f", v3.to_str().unwrap()])
        .await;
    assert_ne!(refused.code, Some(0), "{refused:#?}");
    assert!(
        refused.stderr.contains("conflict") && refused.stderr.contains("kubectl-patch"),
        "{refused:#?}"
    );

    // Back to client-side apply: it diffs against the annotation and applies.
    let back = c.kubectl(&["apply", "-f", v3.to_str().unwrap()]).await;
    assert!(back.ok().contains("configured"), "{back:#?}");
    assert_eq!(last_applied(&c).await["data"]["k"], "three");
}
