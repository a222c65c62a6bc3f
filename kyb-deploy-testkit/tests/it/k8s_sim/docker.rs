//! Docker-backed pods against the local engine and registry, judged by the real kubectl: a
//! Deployment of kyb-sample-api rolls out behind its Service's local URL, an image update
//! rolls out to the URL, and an image that never gets ready stalls its rollout while the
//! old pods keep serving; images that cannot be pulled or that crash show as they would on
//! a real node.

use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kyb_deploy_testkit::k8s_sim::{DockerPodsConfig, K8sSimulator};
use kyb_deploy_testkit::{docker, require_image_peers, static_sample_api};
use serde_json::Value;

use super::Cluster;

/// Bounds every wait for the engine; never an assertion on speed.
const DOCKER_PATIENCE: Duration = Duration::from_secs(90);

const REGISTRY: &str = "127.0.0.1:5000";
/// Checks the engine and the registry, then names a repository no other run uses.
async fn unique_repository() -> String {
    require_image_peers();
    let unique = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{REGISTRY}/kyb-sim-k8s-test-{}-{unique:x}",
        std::process::id()
    )
}

/// Builds the `FROM scratch` image of kyb-sample-api with `env` baked in (`KEY=value`
/// lines) and pushes it as `<repository>:<tag>`.
fn push_sample_image(repository: &str, tag: &str, env: &[&str]) -> String {
    let context = tempfile::tempdir().unwrap();
    std::fs::copy(static_sample_api(), context.path().join("kyb-sample-api")).unwrap();
    let env: String = env.iter().map(|pair| format!("ENV {pair}\n")).collect();
    // The label makes every image ID unique, so that the `ancestor=` filter of one test
    // never matches the containers of another test running concurrently.
    std::fs::write(
        context.path().join("Dockerfile"),
        format!(
            "FROM scratch\nCOPY kyb-sample-api /kyb-sample-api\nUSER 10001\nEXPOSE 8080\n{env}\
             LABEL kyb-sim-test=\"{repository}:{tag}\"\nENTRYPOINT [\"/kyb-sample-api\"]\n"
        ),
    )
    .unwrap();
    let image = format!("{repository}:{tag}");
    docker(&[
        "build",
        "-q",
        "-t",
        &image,
        context.path().to_str().unwrap(),
    ]);
    docker(&["push", "-q", &image]);
    image
}

/// The IDs of the containers, running or not, of `image`.
fn containers_of(image: &str) -> Vec<String> {
    docker(&["ps", "-aq", "--filter", &format!("ancestor={image}")])
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

fn remove_images(images: &[&str]) {
    for image in images {
        let _ = Command::new("docker")
            .args(["rmi", "--no-prune", image])
            .output();
    }
}

async fn start_docker_cluster() -> Cluster {
    let builder = K8sSimulator::builder()
        .time_scale(10.0)
        .seed(11)
        .docker_runtime(DockerPodsConfig::default());
    Cluster::start(builder).await
}

/// The Service in front of the pods labelled `app: web`, on their port named `http`.
const WEB_SERVICE: &str = "---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - {port: 80, targetPort: http}
";

/// A Deployment of kyb-sample-api (2 replicas, ready per `/ready` on 8080) and a Service
/// that targets its named port.
fn app(image: &str) -> String {
    format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {{app: web}}
  strategy:
    type: RollingUpdate
    rollingUpdate: {{maxSurge: 1, maxUnavailable: 0}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: api
        image: {image}
        env:
        - {{name: ENVIRONMENT, value: k8s-sim}}
        ports:
        - {{name: http, containerPort: 8080}}
        readinessProbe:
          httpGet: {{path: /ready, port: 8080}}
          periodSeconds: 2
{WEB_SERVICE}"#
    )
}

/// `GET url/status` through the Service's proxy: its status code and JSON body.
async fn status(client: &reqwest::Client, url: &str) -> (u16, Value) {
    let response =
        tokio::time::timeout(DOCKER_PATIENCE, client.get(format!("{url}/status")).send())
            .await
            .expect("the Service URL did not answer")
            .unwrap_or_else(|error| panic!("GET {url}/status: {error}"));
    let code = response.status().as_u16();
    (code, response.json().await.unwrap_or(Value::Null))
}

/// The versions that `n` requests to the Service got, sorted.
async fn versions(client: &reqwest::Client, url: &str, n: usize) -> Vec<String> {
    let mut seen = Vec::new();
    for _ in 0..n {
        let (code, body) = status(client, url).await;
        assert_eq!(code, 200, "{body:#}");
        assert_eq!(body["environment"], "k8s-sim", "{body:#}");
        seen.push(body["version"].as_str().unwrap_or_default().to_owned());
    }
    seen.sort();
    seen
}

/// The pods of the Deployment, as kubectl lists them.
async fn pods(cluster: &Cluster) -> Vec<Value> {
    let list = cluster
        .kubectl(&["get", "pods", "-l", "app=web", "-o", "json"])
        .await
        .json();
    list["items"].as_array().unwrap().clone()
}

/// Polls the pods until `done` holds for them, at most [`DOCKER_PATIENCE`].
async fn wait_for_pods(
    cluster: &Cluster,
    what: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let pods = pods(cluster).await;
        if done(&pods) {
            return pods;
        }
        assert!(
            start.elapsed() < DOCKER_PATIENCE,
            "timed out waiting for {what}: {pods:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn image_of(pod: &Value) -> &str {
    pod["spec"]["containers"][0]["image"].as_str().unwrap()
}

fn container_status(pod: &Value) -> &Value {
    &pod["status"]["containerStatuses"][0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pods_are_containers_behind_the_service_url_and_an_unready_image_stalls_its_rollout() {
    let repository = unique_repository().await;
    let v1 = push_sample_image(&repository, "v1", &["KYB_SAMPLE_VERSION=v1"]);
    let v2 = push_sample_image(&repository, "v2", &["KYB_SAMPLE_VERSION=v2"]);
    let broken = push_sample_image(
        &repository,
        "never-ready",
        &["KYB_SAMPLE_VERSION=v3", "KYB_SAMPLE_FAULT_NEVER_READY=1"],
    );
    let cluster = start_docker_cluster().await;
    let manifest = cluster.file("app.yaml", &app(&v1));
    cluster
        .kubectl(&["apply", "--server-side", "-f", manifest.to_str().unwrap()])
        .await
        .ok();

    // Two real containers pass their readiness probes; the Service balances over them.
    cluster
        .kubectl(&["rollout", "status", "deployment/web", "--timeout=90s"])
        .await
        .ok();
    assert_eq!(containers_of(&v1).len(), 2);
    let url = cluster
        .running
        .service_url("default", "web")
        .expect("a Service with a selector has a URL");
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    // Clients in other processes find the URL in the Service's status.
    let ingress =
        "{.status.loadBalancer.ingress[0].ip}:{.status.loadBalancer.ingress[0].ports[0].port}";
    let published = cluster
        .kubectl(&[
            "get",
            "service",
            "web",
            "-o",
            &format!("jsonpath={ingress}"),
        ])
        .await;
    assert_eq!(format!("http://{}", published.ok()), url);
    // A fresh connection per request, as each one is routed by the endpoints of its time: a
    // kept-alive connection stays with its pod until that pod ends, as with kube-proxy.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    assert_eq!(versions(&client, &url, 4).await, ["v1"; 4]);
    // `kubectl logs` shows what the real container wrote.
    let logs = cluster.kubectl(&["logs", "deployment/web"]).await;
    assert!(logs.ok().contains("listening on"), "{logs:#?}");

    // An image update rolls out, and the URL then answers from the new pods only.
    let new_image = format!("api={v2}");
    cluster
        .kubectl(&["set", "image", "deployment/web", &new_image])
        .await
        .ok();
    cluster
        .kubectl(&["rollout", "status", "deployment/web", "--timeout=90s"])
        .await
        .ok();
    // As with a real cluster's endpoints, the Service follows the pods shortly after the
    // rollout reports success: wait (bounded) until it answers from the new pods only.
    let deadline = tokio::time::Instant::now() + DOCKER_PATIENCE;
    loop {
        let seen = versions(&client, &url, 4).await;
        if seen == ["v2"; 4] {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still answering {seen:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        cluster.running.service_url("default", "web").as_deref(),
        Some(url.as_str()),
        "the URL is stable across rollouts"
    );

    // An image whose readiness never passes: its pod runs but stays unready, the rollout
    // cannot complete, and the Service keeps answering from the old pods.
    let new_image = format!("api={broken}");
    cluster
        .kubectl(&["set", "image", "deployment/web", &new_image])
        .await
        .ok();
    let stalled = wait_for_pods(&cluster, "the unready pod to run", |pods| {
        pods.iter().any(|pod| {
            image_of(pod) == broken && !container_status(pod)["state"]["running"].is_null()
        })
    })
    .await;
    let rollout = cluster
        .kubectl(&["rollout", "status", "deployment/web", "--timeout=3s"])
        .await;
    assert_ne!(rollout.code, Some(0), "{rollout:#?}");
    let pods = pods(&cluster).await;
    let unready: Vec<&Value> = pods.iter().filter(|pod| image_of(pod) == broken).collect();
    assert_eq!(unready.len(), 1, "maxSurge 1: {stalled:#?}");
    assert_eq!(container_status(unready[0])["ready"], false, "{pods:#?}");
    assert_eq!(
        pods.iter().filter(|pod| image_of(pod) == v2).count(),
        2,
        "{pods:#?}"
    );
    assert_eq!(versions(&client, &url, 4).await, ["v2"; 4]);

    // Shutting down removes every container the simulator ran.
    assert!(!containers_of(&broken).is_empty());
    cluster.running.shutdown().await.unwrap();
    for image in [&v1, &v2, &broken] {
        assert_eq!(
            containers_of(image),
            Vec::<String>::new(),
            "{image} left behind"
        );
    }
    remove_images(&[&v1, &v2, &broken]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_missing_image_backs_off_and_a_crashing_container_loops() {
    let repository = unique_repository().await;
    let image = push_sample_image(&repository, "v1", &["KYB_SAMPLE_FAULT_EXIT_AFTER=0.2"]);
    let cluster = start_docker_cluster().await;
    let missing = format!("{repository}:does-not-exist");
    let manifest = format!(
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: missing
  labels: {{app: web}}
spec:
  containers:
  - {{name: api, image: "{missing}"}}
---
apiVersion: v1
kind: Pod
metadata:
  name: crashing
  labels: {{app: web}}
spec:
  containers:
  - {{name: api, image: "{image}"}}
"#
    );
    let file = cluster.file("pods.yaml", &manifest);
    cluster
        .kubectl(&["apply", "-f", file.to_str().unwrap()])
        .await
        .ok();

    let pods = wait_for_pods(&cluster, "the pull to fail and the crash to loop", |pods| {
        let by_name = |name: &str| pods.iter().find(|p| p["metadata"]["name"] == name);
        let pull = by_name("missing").map(container_status);
        let crash = by_name("crashing").map(container_status);
        pull.is_some_and(|s| {
            matches!(
                s["state"]["waiting"]["reason"].as_str(),
                Some("ErrImagePull" | "ImagePullBackOff")
            )
        }) && crash.is_some_and(|s| {
            s["restartCount"].as_u64().is_some_and(|n| n >= 1)
                && (s["state"]["waiting"]["reason"] == "CrashLoopBackOff"
                    || !s["state"]["terminated"].is_null()
                    || !s["lastState"]["terminated"].is_null())
        })
    })
    .await;
    let missing_status = container_status(
        pods.iter()
            .find(|p| p["metadata"]["name"] == "missing")
            .unwrap(),
    );
    let message = missing_status["state"]["waiting"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.contains("does-not-exist") || message.contains("Back-off pulling"),
        "{missing_status:#}"
    );
    let crashing = container_status(
        pods.iter()
            .find(|p| p["metadata"]["name"] == "crashing")
            .unwrap(),
    );
    let exit = if crashing["state"]["terminated"].is_null() {
        &crashing["lastState"]["terminated"]
    } else {
        &crashing["state"]["terminated"]
    };
    assert_eq!(exit["exitCode"], 3, "{crashing:#}");
    let events = cluster
        .kubectl(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=missing",
            "-o",
            "json",
        ])
        .await
        .json();
    let messages: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["message"].as_str())
        .collect();
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("Failed to pull image") && m.contains("does-not-exist")),
        "{messages:#?}"
    );

    cluster.running.shutdown().await.unwrap();
    assert_eq!(
        containers_of(&image),
        Vec::<String>::new(),
        "containers left behind"
    );
    remove_images(&[&image]);
}

/// The IDs of the running containers of `image`.
fn running_containers_of(image: &str) -> Vec<String> {
    docker(&["ps", "-q", "--filter", &format!("ancestor={image}")])
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deleted_pod_leaves_the_service_at_once_and_its_container_serves_out_the_pre_stop_sleep()
{
    let repository = unique_repository().await;
    let image = push_sample_image(&repository, "v1", &["KYB_SAMPLE_VERSION=v1"]);
    let cluster = start_docker_cluster().await;
    // At time scale 10: a 5 s preStop sleep in real time, inside a 9 s grace period.
    let manifest = format!(
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: draining
  labels: {{app: web}}
spec:
  terminationGracePeriodSeconds: 90
  containers:
  - name: api
    image: "{image}"
    env:
    - {{name: ENVIRONMENT, value: k8s-sim}}
    ports:
    - {{name: http, containerPort: 8080}}
    lifecycle:
      preStop:
        sleep: {{seconds: 50}}
{WEB_SERVICE}"#
    );
    let file = cluster.file("pod.yaml", &manifest);
    cluster
        .kubectl(&["apply", "-f", file.to_str().unwrap()])
        .await
        .ok();
    cluster
        .kubectl(&[
            "wait",
            "pod/draining",
            "--for=condition=Ready",
            "--timeout=90s",
        ])
        .await
        .ok();
    let url = cluster.running.service_url("default", "web").unwrap();
    // A fresh connection per request, so each one is routed by the current endpoints.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    assert_eq!(status(&client, &url).await.0, 200);

    cluster
        .kubectl(&["delete", "pod", "draining", "--wait=false"])
        .await
        .ok();
    // The Service has no endpoint left, while the container still runs its preStop sleep.
    let refused = client.get(format!("{url}/status")).send().await;
    assert!(refused.is_err(), "{refused:?}");
    // Well after the kubelet saw the deletion, well before the sleep ends.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        running_containers_of(&image).len(),
        1,
        "ended before its preStop sleep"
    );
    // Then SIGTERM ends it well within the grace period, and the container is removed.
    let start = Instant::now();
    while !containers_of(&image).is_empty() {
        assert!(
            start.elapsed() < DOCKER_PATIENCE,
            "the container was never removed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    cluster.running.shutdown().await.unwrap();
    remove_images(&[&image]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_container_gets_its_environment_from_config_maps_secrets_and_its_pod() {
    let repository = unique_repository().await;
    let image = push_sample_image(&repository, "v1", &[]);
    let cluster = start_docker_cluster().await;
    let manifest = format!(
        r#"
apiVersion: v1
kind: ConfigMap
metadata: {{name: settings}}
data: {{ENVIRONMENT: from-config-map, LOG_LEVEL: debug}}
---
apiVersion: v1
kind: Secret
metadata: {{name: credentials}}
stringData: {{url: "postgres://db/kyb", LOG_LEVEL: from-secret}}
---
apiVersion: v1
kind: Pod
metadata: {{name: configured}}
spec:
  containers:
  - name: api
    image: "{image}"
    envFrom:
    - configMapRef: {{name: settings}}
    - secretRef: {{name: credentials}}
      prefix: SECRET_
    env:
    - {{name: LOG_LEVEL, value: info}}
    - name: DATABASE_URL
      valueFrom: {{secretKeyRef: {{name: credentials, key: url}}}}
    - name: POD_NAME
      valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}
    - name: MISSING
      valueFrom: {{configMapKeyRef: {{name: absent, key: k, optional: true}}}}
"#
    );
    let file = cluster.file("configured.yaml", &manifest);
    cluster
        .kubectl(&["apply", "-f", file.to_str().unwrap()])
        .await
        .ok();
    wait_for_pods(&cluster, "the pod to run", |_| {
        !running_containers_of(&image).is_empty()
    })
    .await;
    let id = running_containers_of(&image).remove(0);
    let env: Vec<String> = serde_json::from_str(&docker(&[
        "inspect",
        "--format",
        "{{json .Config.Env}}",
        &id,
    ]))
    .unwrap();
    for expected in [
        "ENVIRONMENT=from-config-map",
        "SECRET_url=postgres://db/kyb",
        "LOG_LEVEL=info",
        "DATABASE_URL=postgres://db/kyb",
        "POD_NAME=configured",
    ] {
        assert!(
            env.iter().any(|e| e == expected),
            "{expected} missing: {env:?}"
        );
    }
    assert!(!env.iter().any(|e| e.starts_with("MISSING=")), "{env:?}");

    cluster.running.shutdown().await.unwrap();
    remove_images(&[&image]);
}
