//! End to end on Kubernetes: the `kyb-deploy` binary builds the sample service's image,
//! pushes it to the registry on 127.0.0.1:5000 and deploys it to an environment on the
//! testkit's Kubernetes simulator, whose Docker-backed runtime runs every pod as a real
//! container of that image behind the Service's local URL. The CLI reaches the simulator
//! through a kubeconfig (`KUBECONFIG`), verifies the service through the Service's published
//! address, and the real kubectl checks every claim afterwards: two releases roll out, a
//! release failing verification is rolled back (exit 4), and Ctrl-C during a rollout that
//! cannot finish rolls the environment back before the process exits (130).
//!
//! Needs the Docker engine, the registry (`bash scripts/setup.sh`), the static sample binary
//! (`scripts/test.sh` builds it) and kubectl; without them the test fails, it never skips.

use std::path::Path;
use std::time::Duration;

use kyb_deploy_testkit::k8s_sim::{DockerPodsConfig, K8sSimulator};
use kyb_deploy_testkit::static_sample_api;
use serde_json::Value;

use crate::ecs_e2e::setup::{Cleanup, REGISTRY, dockerfile, require_peers, unique};
use crate::support::{Project, Run, binary, get_json, output_within, runs};

/// Bounds every run of the binary: a bound, never an assertion on speed.
const PATIENCE: Duration = Duration::from_secs(240);

/// The project's configuration: the `k8s` environment in `namespace`, probes and deadline
/// short (simulated time runs 10 times faster), verified through the Service's address
/// (no `verify.base_url`: the target reports it).
fn config(repository: &str, namespace: &str) -> String {
    config_for("k8s", repository, namespace)
}

/// [`config`] with the environment named `environment`.
pub(crate) fn config_for(environment: &str, repository: &str, namespace: &str) -> String {
    format!(
        r#"
[image]
repository = "{repository}"
tags = ["{{version}}"]

[image.build_args]
VERSION = "{{version}}"

[environments.{environment}]
target = "kubernetes"
rollback = "auto"

[environments.{environment}.timeouts]
overall = "4m"
wait = "2m"
verify = "1m"
rollback = "2m"

[environments.{environment}.kubernetes]
namespace = "{namespace}"
app = "kyb-api"
replicas = 2

[environments.{environment}.kubernetes.rollout]
max_surge = "1"
max_unavailable = "0"
progress_deadline = "120s"

[environments.{environment}.kubernetes.probes.readiness]
path = "/ready"
initial_delay = "1s"
period = "2s"
timeout = "2s"
failure_threshold = 3

[environments.{environment}.env]
ENVIRONMENT = "{environment}"
LOG_LEVEL = "info"

[environments.{environment}.verify]
soak = "2s"

[environments.{environment}.verify.readiness]
period = "200ms"
failure_threshold = 50

[environments.{environment}.verify.liveness]
period = "200ms"
success_threshold = 5

[[environments.{environment}.verify.smoke]]
name = "classify"
method = "POST"
path = "/v1/classify"
json = {{ business_name = "Test Corp" }}
expect_status = 200
expect_json = {{ "/business_name" = "Test Corp" }}
"#
    )
}

/// Runs `kyb-deploy <args>` in the project with the simulator's kubeconfig only. Killed
/// after [`PATIENCE`].
async fn kyb_deploy(project: &Project, args: &[&str]) -> Run {
    let mut command = binary(project.path());
    command
        .args(args)
        .env("KUBECONFIG", project.path().join("kubeconfig"))
        .env("HOME", project.path());
    output_within(command, args, PATIENCE).await
}

/// The real kubectl on the simulator: its stdout, which must be a success.
pub(crate) fn kubectl(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("kubectl")
        .args(args)
        .env("KUBECONFIG", dir.join("kubeconfig"))
        .env("HOME", dir)
        .output()
        .expect("kubectl runs (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "kubectl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// kubectl agrees that the Deployment has rolled out completely.
fn rolled_out(dir: &Path, namespace: &str) {
    let status = kubectl(
        dir,
        &[
            "rollout",
            "status",
            "deployment/kyb-api",
            "-n",
            namespace,
            "--timeout=60s",
        ],
    );
    assert!(status.contains("successfully rolled out"), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_sample_service_is_deployed_to_kubernetes_and_a_broken_release_rolled_back() {
    require_peers();
    let name = unique("kyb-k8s-e2e");
    let repository = format!("{REGISTRY}/{name}");
    let _cleanup = Cleanup {
        cluster: name.clone(),
        repository: repository.clone(),
    };
    let project = Project::empty();
    let dir = project.path();
    std::fs::copy(static_sample_api(), dir.join("kyb-sample-api")).unwrap();
    std::fs::write(dir.join("Dockerfile"), dockerfile(&name)).unwrap();
    let namespace = "kyb-e2e";
    std::fs::write(dir.join("kyb-deploy.toml"), config(&repository, namespace)).unwrap();

    let sim = K8sSimulator::builder()
        .time_scale(10.0)
        .seed(23)
        .token("k8s-e2e")
        .docker_runtime(DockerPodsConfig::default())
        .build()
        .serve(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap())
        .unwrap();
    sim.write_kubeconfig(&dir.join("kubeconfig")).unwrap();

    // v1 and v2: built, pushed, applied, rolled out, verified through the Service's URL.
    for version in ["v1", "v2"] {
        let run = kyb_deploy(
            &project,
            &["deploy", "-e", "k8s", "-v", version, "--skip-tests"],
        )
        .await;
        let all = run.all();
        assert_eq!(run.code, 0, "{all}");
        assert!(
            all.contains("kubernetes api: server v1.32.0 answers"),
            "{all}"
        );
        assert!(all.contains("▸ verify ... ok"), "{all}");
        assert!(run.stdout.contains(&format!("deployed {version}")), "{all}");
    }
    let url = sim
        .service_url(namespace, "kyb-api")
        .expect("a Service with a selector has a URL");
    let (status, body) = get_json(&format!("{url}/status")).await;
    assert_eq!(
        (status, &body["version"]),
        (200, &Value::from("v2")),
        "{body}"
    );
    assert_eq!(
        body["environment"], "k8s",
        "the ConfigMap reached the container: {body}"
    );
    let first = runs(&project);
    assert_eq!(first.len(), 2, "{first:#?}");
    assert!(
        first.iter().all(|r| r["status"] == "succeeded"),
        "{first:#?}"
    );
    assert_eq!(first[1]["target"], "kubernetes");

    // kubectl agrees: the rollout is complete, both revisions are there, and the Deployment
    // carries the labels and the hardened security context.
    rolled_out(dir, namespace);
    let history = kubectl(
        dir,
        &["rollout", "history", "deployment/kyb-api", "-n", namespace],
    );
    assert!(
        history
            .lines()
            .filter(|l| l.trim_start().starts_with(['1', '2']))
            .count()
            >= 2,
        "{history}"
    );
    let deployment: Value = serde_json::from_str(&kubectl(
        dir,
        &[
            "get",
            "deployment",
            "kyb-api",
            "-n",
            namespace,
            "-o",
            "json",
            "--show-managed-fields",
        ],
    ))
    .unwrap();
    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
    assert_eq!(labels["app.kubernetes.io/version"], "v2", "{labels}");
    assert_eq!(
        labels["app.kubernetes.io/managed-by"], "kyb-deploy",
        "{labels}"
    );
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["securityContext"]["readOnlyRootFilesystem"], true,
        "{container}"
    );
    assert_eq!(
        container["securityContext"]["capabilities"]["drop"],
        serde_json::json!(["ALL"])
    );
    assert_eq!(
        deployment["metadata"]["managedFields"][0]["manager"], "kyb-deploy",
        "{deployment:#}"
    );

    // v3's /health answers 503 from the start: its pods get ready (readiness is /ready), the
    // rollout completes, verification fails, and kyb-deploy rolls back to v2 (exit 4).
    let v3 = kyb_deploy(
        &project,
        &[
            "deploy",
            "-e",
            "k8s",
            "-v",
            "v3",
            "--skip-tests",
            "--build-arg",
            "FAULT_UNHEALTHY_AFTER=0",
        ],
    )
    .await;
    let all = v3.all();
    assert_eq!(v3.code, 4, "{all}");
    assert!(v3.stdout.contains("rolled back to v2"), "{all}");
    let all_runs = runs(&project);
    let failed = &all_runs[2];
    assert_eq!(failed["version"], "v3");
    assert_eq!(failed["status"], "rolled_back", "{failed:#}");
    assert_eq!(failed["outcome"]["stage"], "verify", "{failed:#}");
    assert_eq!(failed["rollback"]["to"]["version"], "v2", "{failed:#}");

    // The cluster runs v2 again: kubectl sees the rollout complete on v2's template, and the
    // URL answers v2.
    rolled_out(dir, namespace);
    let image = kubectl(
        dir,
        &[
            "get",
            "deployment",
            "kyb-api",
            "-n",
            namespace,
            "-o",
            "jsonpath={.spec.template.metadata.labels.app\\.kubernetes\\.io/version}",
        ],
    );
    assert_eq!(image, "v2");
    let (status, body) = get_json(&format!("{url}/status")).await;
    assert_eq!(
        (status, &body["version"]),
        (200, &Value::from("v2")),
        "{body}"
    );

    // v4 never gets ready: Ctrl-C while kyb-deploy waits for its rollout stops the run
    // (exit 130), and the environment is rolled back to v2 before the process exits.
    let mut command = binary(dir);
    command
        .args([
            "deploy",
            "-e",
            "k8s",
            "-v",
            "v4",
            "--skip-tests",
            "--build-arg",
            "FAULT_NEVER_READY=1",
        ])
        .env("KUBECONFIG", dir.join("kubeconfig"))
        .env("HOME", dir);
    let child = tokio::process::Command::from(command)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let handle = sim.handle();
    let template_version = || {
        handle.get("Deployment", namespace, "kyb-api").map(|d| {
            d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/version"].clone()
        })
    };
    let started = std::time::Instant::now();
    while template_version() != Some(Value::from("v4")) {
        assert!(started.elapsed() < PATIENCE, "v4 was never applied");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().unwrap().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let out = tokio::time::timeout(PATIENCE, child.wait_with_output())
        .await
        .expect("kyb-deploy did not stop after SIGINT")
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(out.status.code(), Some(130), "{all}");
    let interrupted = runs(&project);
    let cancelled = &interrupted[3];
    assert_eq!(cancelled["version"], "v4", "{cancelled:#}");
    assert_eq!(cancelled["status"], "cancelled", "{cancelled:#}");
    assert_eq!(
        cancelled["rollback"]["to"]["version"], "v2",
        "{cancelled:#}"
    );
    assert_eq!(template_version(), Some(Value::from("v2")));
    rolled_out(dir, namespace);
    let (status, body) = get_json(&format!("{url}/status")).await;
    assert_eq!(
        (status, &body["version"]),
        (200, &Value::from("v2")),
        "{body}"
    );

    // A rollback on request applies v1's recorded manifests: kubectl sees v1's pod
    // template (the one its record names) rolled out, and v1 answers.
    let v1_template = kubectl(
        dir,
        &[
            "get",
            "replicasets",
            "-n",
            namespace,
            "-l",
            "app.kubernetes.io/version=v1",
            "-o",
            "jsonpath={.items[0].spec.template.metadata.annotations.kyb-deploy\\.io/manifests}",
        ],
    );
    assert!(
        v1_template.starts_with("kyb-api-manifests-"),
        "{v1_template}"
    );
    let rollback = kyb_deploy(&project, &["rollback", "-e", "k8s", "--to", "v1", "-y"]).await;
    assert_eq!(rollback.code, 0, "{rollback:?}");
    assert_eq!(template_version(), Some(Value::from("v1")));
    rolled_out(dir, namespace);
    let live = kubectl(
        dir,
        &[
            "get",
            "deployment",
            "kyb-api",
            "-n",
            namespace,
            "-o",
            "jsonpath={.spec.template.metadata.annotations.kyb-deploy\\.io/manifests}",
        ],
    );
    assert_eq!(live, v1_template);
    let (status, body) = get_json(&format!("{url}/status")).await;
    assert_eq!(
        (status, &body["version"]),
        (200, &Value::from("v1")),
        "{body}"
    );

    sim.shutdown().await.unwrap();
}
