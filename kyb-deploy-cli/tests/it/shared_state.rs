//! Shared release state, as CI uses it: every run a fresh runner in its own directory, all
//! of them deploying one staging environment and sharing its records and its lock. Each
//! scenario runs twice: on the ECS simulator with the state in moto's S3, and on the
//! Kubernetes simulator with the state as Secrets and a Lease in the environment's
//! namespace (both simulators Docker-backed: real containers of the sample service behind
//! a stable URL). The `kyb-deploy` binary runs as a user would; the state is read back
//! with the store, kubectl and HTTP.
//!
//! Needs the Docker engine, the registry, the static sample binary, moto and kubectl (the
//! README's test command sets all of them up); without them the tests fail, they never skip.

use std::time::Duration;

use kyb_deploy_core::RecordStore as _;
use kyb_deploy_core::config::{StateBackendKind, StateConfig};
use kyb_deploy_core::shared_state::ObjectRecordStore;
use kyb_deploy_k8s::Credentials;
use kyb_deploy_testkit::ecs_sim::{DockerRuntimeConfig, EcsSimulator, RunningSimulator};
use kyb_deploy_testkit::k8s_sim::{DockerPodsConfig, K8sSimulator, RunningK8sSimulator};
use kyb_deploy_testkit::moto::{AwsCli, MotoServer};
use kyb_deploy_testkit::{docker, static_sample_api};
use serde_json::Value;

use crate::ecs_e2e::setup::{
    Cleanup, REGISTRY, TEMPLATE, config, create_service, dockerfile, require_peers, sdk_client,
    unique,
};
use crate::ecs_e2e::{TIME_SCALE, kyb_deploy_command, wait_steady};
use crate::k8s_e2e::{config_for, kubectl};
use crate::support::{Project, Run, get_json, moto_s3, output_within};

const BUCKET: &str = "kyb-deploy-state";
/// The Kubernetes environment's namespace, which holds its state too.
const NAMESPACE: &str = "kyb-shared";
/// Bounds every run of the binary: a bound, never an assertion on speed.
const PATIENCE: Duration = Duration::from_secs(300);

/// The platform the runners deploy to, and where its state lives.
enum Platform {
    /// The ECS simulator; the state in moto's S3.
    Ecs {
        sim: RunningSimulator,
        moto: MotoServer,
    },
    /// The Kubernetes simulator; the state in its namespace. `kubeconfig` is the directory
    /// holding the simulator's kubeconfig.
    Kubernetes {
        sim: RunningK8sSimulator,
        kubeconfig: tempfile::TempDir,
    },
}

/// The platform and the state every runner shares, and what a runner's directory holds.
struct Fleet {
    name: String,
    platform: Platform,
    config: String,
    _cleanup: Cleanup,
}

impl Fleet {
    /// A staging service running v0 on the ECS simulator, and an empty state bucket in moto.
    async fn ecs(prefix: &str) -> Self {
        require_peers();
        let name = unique(prefix);
        let repository = format!("{REGISTRY}/{name}");
        let cleanup = Cleanup {
            cluster: name.clone(),
            repository: repository.clone(),
        };
        let moto = MotoServer::start().await;
        AwsCli::new(moto.url())
            .json(&["s3api", "create-bucket", "--bucket", BUCKET])
            .await;
        let sim = EcsSimulator::builder()
            .time_scale(TIME_SCALE)
            .seed(23)
            .docker_runtime(DockerRuntimeConfig {
                health_check_interval: Duration::from_millis(200),
                ..DockerRuntimeConfig::default()
            })
            .build()
            .serve(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap())
            .unwrap();
        // v0 exists before any runner: built and pushed here, running healthy.
        let seed = Project::empty();
        std::fs::copy(static_sample_api(), seed.path().join("kyb-sample-api")).unwrap();
        std::fs::write(seed.path().join("Dockerfile"), dockerfile(&name)).unwrap();
        let v0 = format!("{repository}:v0");
        let context = seed.path().to_str().unwrap();
        docker(&[
            "build",
            "-q",
            "--build-arg",
            "VERSION=v0",
            "-t",
            &v0,
            context,
        ]);
        docker(&["push", "-q", &v0]);
        let client = sdk_client(&sim);
        let arn = create_service(&client, &name, &v0).await;
        wait_steady(&client, &name, &arn).await;
        let url = sim
            .handle()
            .service_url("us-east-1", &name, &name)
            .expect("a docker-backed service has a URL");
        let config = format!(
            "{}\n[environments.staging.state]\nbackend = \"s3\"\nbucket = \"{BUCKET}\"\nregion = \"us-east-1\"\nendpoint_url = \"{}\"\nlock_ttl = \"3s\"\n",
            config(&repository, &name, &sim.url(), &url),
            moto.url()
        );
        Self {
            name,
            platform: Platform::Ecs { sim, moto },
            config,
            _cleanup: cleanup,
        }
    }

    /// An empty staging namespace on the Kubernetes simulator, which keeps the state.
    async fn kubernetes(prefix: &str) -> Self {
        require_peers();
        let name = unique(prefix);
        let repository = format!("{REGISTRY}/{name}");
        let cleanup = Cleanup {
            cluster: name.clone(),
            repository: repository.clone(),
        };
        let sim = K8sSimulator::builder()
            .time_scale(10.0)
            .seed(23)
            .token("k8s-shared-state")
            .docker_runtime(DockerPodsConfig::default())
            .build()
            .serve(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap())
            .unwrap();
        let kubeconfig = tempfile::tempdir().unwrap();
        sim.write_kubeconfig(&kubeconfig.path().join("kubeconfig"))
            .unwrap();
        // The state lives in the namespace from the first run's lock on: it must exist.
        let manifest = kubeconfig.path().join("namespace.json");
        std::fs::write(
            &manifest,
            format!(r#"{{"apiVersion": "v1", "kind": "Namespace", "metadata": {{"name": "{NAMESPACE}"}}}}"#),
        )
        .unwrap();
        kubectl(
            kubeconfig.path(),
            &["create", "-f", manifest.to_str().unwrap()],
        );
        let config = format!(
            "{}\n[environments.staging.state]\nbackend = \"kubernetes\"\nlock_ttl = \"3s\"\n",
            config_for("staging", &repository, NAMESPACE)
        );
        Self {
            name,
            platform: Platform::Kubernetes { sim, kubeconfig },
            config,
            _cleanup: cleanup,
        }
    }

    /// A fresh runner: a new directory with the project's files and no `.kyb-deploy/`.
    fn runner(&self) -> Project {
        let project = Project::new(&self.config);
        let dir = project.path();
        std::fs::copy(static_sample_api(), dir.join("kyb-sample-api")).unwrap();
        std::fs::write(dir.join("Dockerfile"), dockerfile(&self.name)).unwrap();
        // Empty AWS files: the command points the AWS chain at them (nothing of this machine).
        std::fs::create_dir(dir.join("aws")).unwrap();
        std::fs::write(dir.join("aws/config"), "").unwrap();
        std::fs::write(dir.join("aws/credentials"), "").unwrap();
        match &self.platform {
            Platform::Ecs { .. } => {
                std::fs::create_dir(dir.join("ecs")).unwrap();
                std::fs::write(
                    dir.join("ecs/task-definition.json"),
                    TEMPLATE.replace("FAMILY", &self.name),
                )
                .unwrap();
            }
            Platform::Kubernetes { kubeconfig, .. } => {
                std::fs::copy(kubeconfig.path().join("kubeconfig"), dir.join("kubeconfig"))
                    .unwrap();
            }
        }
        project
    }

    /// `kyb-deploy <args>` in `project`, with nothing of this machine's AWS or Kubernetes
    /// settings: the project's own.
    fn command(&self, project: &Project, args: &[&str]) -> std::process::Command {
        let mut command = kyb_deploy_command(project, args);
        command
            .env("KUBECONFIG", project.path().join("kubeconfig"))
            .env("HOME", project.path());
        command
    }

    /// [`Fleet::command`], run to its end (killed after [`PATIENCE`]).
    async fn run(&self, project: &Project, args: &[&str]) -> Run {
        output_within(self.command(project, args), args, PATIENCE).await
    }

    /// The staging records, read with the store (not through the binary).
    async fn store(&self) -> ObjectRecordStore {
        match &self.platform {
            Platform::Ecs { moto, .. } => {
                let state = StateConfig {
                    backend: StateBackendKind::S3,
                    bucket: Some(BUCKET.into()),
                    region: Some("us-east-1".into()),
                    endpoint_url: Some(moto.url()),
                    ..StateConfig::default()
                };
                kyb_deploy_ecs::s3_state_with_client(moto_s3(&moto.url()), &state, "staging")
                    .unwrap()
                    .0
            }
            Platform::Kubernetes { kubeconfig, .. } => {
                let credentials = Credentials::Kubeconfig {
                    paths: vec![kubeconfig.path().join("kubeconfig")],
                    context: None,
                };
                let client = credentials.client().await.unwrap();
                let state = StateConfig {
                    backend: StateBackendKind::Kubernetes,
                    ..StateConfig::default()
                };
                kyb_deploy_k8s::kubernetes_state_with_client(client, NAMESPACE, &state).0
            }
        }
    }

    /// Where `history` says the records are.
    fn location(&self) -> String {
        match &self.platform {
            Platform::Ecs { .. } => format!("s3://{BUCKET}/kyb-deploy/staging"),
            Platform::Kubernetes { .. } => {
                format!("Kubernetes namespace {NAMESPACE}: kyb-deploy/staging")
            }
        }
    }

    /// What the service's URL says it runs.
    async fn serving(&self) -> Value {
        let url = match &self.platform {
            Platform::Ecs { sim, .. } => sim
                .handle()
                .service_url("us-east-1", &self.name, &self.name)
                .expect("a docker-backed service has a URL"),
            Platform::Kubernetes { sim, .. } => sim
                .service_url(NAMESPACE, "kyb-api")
                .expect("a Service with a selector has a URL"),
        };
        get_json(&format!("{url}/status")).await.1["version"].clone()
    }

    async fn shutdown(self) {
        match self.platform {
            Platform::Ecs { sim, .. } => sim.shutdown().await.unwrap(),
            Platform::Kubernetes { sim, kubeconfig } => {
                // kubectl agrees with the store: no lock is left behind.
                let leases = kubectl(kubeconfig.path(), &["get", "leases", "-n", NAMESPACE]);
                assert!(leases.trim().is_empty(), "a lease is left: {leases}");
                sim.shutdown().await.unwrap();
            }
        }
    }
}

/// `--output json <command> -e staging` in `project`.
async fn json(fleet: &Fleet, project: &Project, command: &str) -> Value {
    let run = fleet
        .run(project, &["--output", "json", command, "-e", "staging"])
        .await;
    assert_eq!(run.code, 0, "{command}: {}", run.all());
    run.json()
}

/// The run ids and statuses a `history` document lists.
fn listed(history: &Value) -> Vec<(String, String)> {
    history["history"]["records"]
        .as_array()
        .unwrap_or_else(|| panic!("no records: {history:#}"))
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_owned(),
                r["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn deploy<'a>(version: &'a str, more: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["deploy", "-e", "staging", "-v", version, "--skip-tests"];
    args.extend_from_slice(more);
    args
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fresh_runner_rolls_back_to_the_release_another_runner_verified_ecs_s3() {
    fresh_runner(Fleet::ecs("kyb-shared-fresh").await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fresh_runner_rolls_back_to_the_release_another_runner_verified_kubernetes() {
    fresh_runner(Fleet::kubernetes("kyb-shared-fresh-k8s").await).await;
}

/// A fresh runner that never deployed before rolls a failed release back to what another
/// runner deployed, and every runner then tells the same story.
async fn fresh_runner(fleet: Fleet) {
    let a = fleet.runner();
    for version in ["v1", "v2"] {
        let run = fleet.run(&a, &deploy(version, &[])).await;
        assert_eq!(run.code, 0, "{version}: {}", run.all());
    }
    assert_eq!(fleet.serving().await, "v2");

    // Runner B has no .kyb-deploy/ at all; v3 never becomes ready.
    let b = fleet.runner();
    let v3 = fleet
        .run(&b, &deploy("v3", &["--build-arg", "FAULT_NEVER_READY=1"]))
        .await;
    let all = v3.all();
    assert_eq!(v3.code, 4, "{all}");
    assert!(all.contains("rolled back to v2"), "{all}");
    assert!(!all.contains("no known-good release"), "{all}");
    assert!(!b.ledger().exists(), "B keeps nothing of its own");
    assert_eq!(fleet.serving().await, "v2");

    // The same answers from A and from B.
    let (status_a, status_b) = (
        json(&fleet, &a, "status").await,
        json(&fleet, &b, "status").await,
    );
    assert_eq!(
        status_a["status"]["last_known_good"]["version"], "v2",
        "{status_a:#}"
    );
    assert_eq!(
        status_a["status"]["last_known_good"], status_b["status"]["last_known_good"],
        "{status_a:#}\n{status_b:#}"
    );
    assert_eq!(status_a["status"]["recent"], status_b["status"]["recent"]);
    let (history_a, history_b) = (
        json(&fleet, &a, "history").await,
        json(&fleet, &b, "history").await,
    );
    let runs = listed(&history_a);
    assert_eq!(
        runs.iter().map(|(_, s)| s.as_str()).collect::<Vec<_>>(),
        ["succeeded", "succeeded", "rolled_back"],
        "{history_a:#}"
    );
    assert_eq!(runs, listed(&history_b));
    assert!(
        history_a["history"]["ledger"]
            .as_str()
            .is_some_and(|l| l.starts_with(&fleet.location())),
        "{history_a:#}"
    );

    // B rolls back to v1, which only A ever deployed.
    let rollback = fleet
        .run(&b, &["rollback", "-e", "staging", "--to", "v1", "--yes"])
        .await;
    assert_eq!(rollback.code, 0, "{}", rollback.all());
    assert_eq!(fleet.serving().await, "v1");
    let after = json(&fleet, &a, "status").await;
    assert_eq!(after["status"]["running"]["version"], "v1", "{after:#}");
    fleet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_runners_deploy_one_at_a_time_ecs_s3() {
    racing_runners(Fleet::ecs("kyb-shared-race").await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_runners_deploy_one_at_a_time_kubernetes() {
    racing_runners(Fleet::kubernetes("kyb-shared-race-k8s").await).await;
}

/// Two runners in two directories deploy the same environment at the same moment, ten
/// times: one proceeds, the other stops before building, naming the holder; with
/// `--wait-for-lock` both deploy, one after the other. One history results.
async fn racing_runners(fleet: Fleet) {
    let (a, b) = (fleet.runner(), fleet.runner());
    let mut winners = Vec::new();
    for round in 0..10 {
        let (va, vb) = (format!("r{round}-a"), format!("r{round}-b"));
        let (args_a, args_b) = (deploy(&va, &[]), deploy(&vb, &[]));
        let (ra, rb) = tokio::join!(fleet.run(&a, &args_a), fleet.run(&b, &args_b));
        let (won, lost, version): (&Run, &Run, &String) = match (ra.code, rb.code) {
            (0, 3) => (&ra, &rb, &va),
            (3, 0) => (&rb, &ra, &vb),
            _ => panic!(
                "round {round}: exactly one runner must proceed and the other exit 3\nA ({}):\n{}\nB ({}):\n{}",
                ra.code,
                ra.all(),
                rb.code,
                rb.all()
            ),
        };
        let refused = lost.all();
        assert!(
            refused.contains("staging is locked by another deployment"),
            "{refused}"
        );
        assert!(refused.contains("pid "), "the holder is named: {refused}");
        assert!(
            !refused.contains("▸ build"),
            "the loser built an image: {refused}"
        );
        assert!(
            !refused.contains("▸ push"),
            "the loser pushed an image: {refused}"
        );
        assert!(
            won.stdout.contains(&format!("deployed {version}")),
            "{}",
            won.all()
        );
        winners.push(version.clone());
    }
    // Waiting for the lock, both deploy.
    let (args_a, args_b) = (
        deploy("w-a", &["--wait-for-lock", "3m"]),
        deploy("w-b", &["--wait-for-lock", "3m"]),
    );
    let (ra, rb) = tokio::join!(fleet.run(&a, &args_a), fleet.run(&b, &args_b));
    assert_eq!(
        (ra.code, rb.code),
        (0, 0),
        "A:\n{}\nB:\n{}",
        ra.all(),
        rb.all()
    );
    assert!(
        ra.all().contains("waiting up to 3m") || rb.all().contains("waiting up to 3m"),
        "one of them waited:\nA:\n{}\nB:\n{}",
        ra.all(),
        rb.all()
    );

    // One consistent history: the winners deployed, in order, then both waiting runs; each
    // refused run recorded as failed at the lock stage, having deployed nothing.
    let history = fleet
        .store()
        .await
        .recent(Some("staging"), 100)
        .await
        .unwrap();
    let deployed: Vec<&str> = history
        .records
        .iter()
        .filter(|r| r.status.as_str() == "succeeded")
        .map(|r| r.version.as_str())
        .collect();
    let mut expected: Vec<&str> = winners.iter().map(String::as_str).collect();
    assert_eq!(&deployed[..10], expected, "{:#?}", history.records);
    expected.extend(&deployed[10..]);
    assert_eq!(deployed.len(), 12, "{deployed:?}");
    let refused: Vec<_> = history
        .records
        .iter()
        .filter(|r| r.status.as_str() != "succeeded")
        .collect();
    assert_eq!(refused.len(), 10, "{:#?}", history.records);
    for record in refused {
        assert_eq!(
            record.status.as_str(),
            "failed_before_deploy",
            "{record:#?}"
        );
        assert!(
            record.release.is_none(),
            "a refused run deployed nothing: {record:#?}"
        );
        assert!(
            !winners.contains(&record.version.to_string()),
            "{record:#?}"
        );
    }
    assert_eq!(
        listed(&json(&fleet, &a, "history").await),
        listed(&json(&fleet, &b, "history").await)
    );
    fleet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_runner_s_lock_expires_and_the_next_runner_reports_it_ecs_s3() {
    killed_runner(Fleet::ecs("kyb-shared-kill").await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_runner_s_lease_expires_and_the_next_runner_reports_it_kubernetes() {
    killed_runner(Fleet::kubernetes("kyb-shared-kill-k8s").await).await;
}

/// A runner killed (SIGKILL) mid-rollout leaves its lock and an unfinished record; the next
/// runner, from another directory, takes the lock over once it expires and resolves the
/// record as abandoned.
async fn killed_runner(fleet: Fleet) {
    let (a, b) = (fleet.runner(), fleet.runner());
    let store = fleet.store().await;
    let mut killed = tokio::process::Command::from(fleet.command(&a, &deploy("k1", &[])))
        .kill_on_drop(true)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Killed once its record says it is deploying.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let unfinished = store.in_progress("staging").await.unwrap();
        if unfinished.iter().any(|r| r.release.is_some()) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "k1 never started deploying"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    killed.start_kill().unwrap();
    killed.wait().await.unwrap();

    // At once: the lock has not expired yet.
    let early = fleet.run(&b, &deploy("k2", &[])).await;
    assert_eq!(early.code, 3, "{}", early.all());
    assert!(early.all().contains("expires"), "{}", early.all());
    // Waiting: taken over after the 3 s time to live.
    let next = fleet
        .run(&b, &deploy("k2", &["--wait-for-lock", "1m"]))
        .await;
    let all = next.all();
    assert_eq!(next.code, 0, "{all}");
    assert!(
        all.contains("took over the expired lock of staging"),
        "{all}"
    );
    assert!(
        all.contains("an earlier run never finished its record"),
        "{all}"
    );
    assert!(all.contains("marking it abandoned"), "{all}");
    let history = store.recent(Some("staging"), 10).await.unwrap();
    let states: Vec<(&str, &str)> = history
        .records
        .iter()
        .map(|r| (r.version.as_str(), r.status.as_str()))
        .collect();
    // In the order written: the refused attempt, k1 resolved by the run that took over, and
    // that run.
    assert_eq!(
        states,
        [
            ("k2", "failed_before_deploy"),
            ("k1", "abandoned"),
            ("k2", "succeeded")
        ]
    );
    assert_eq!(fleet.serving().await, "k2");
    fleet.shutdown().await;
}
