//! How the Kubernetes target follows rollouts, against the testkit's Kubernetes simulator at
//! real time, with the real `kubectl rollout status` measured on the same rollouts:
//!
//! - completion-detection latency: from the moment the Deployment's status says the
//!   rollout is complete (the simulator's own state, read every 2 ms) to the moment
//!   `follow_rollout` reports it, beside the moment `kubectl rollout status` exits;
//! - API requests per rollout, counted by a proxy in front of the simulator: the target
//!   watches, it does not poll.
//!
//! ```text
//! cargo bench -p kyb-deploy-k8s --bench k8s_rollout
//! ```
//!
//! It needs kubectl, takes about half a minute, prints value, target and ratio
//! (value / target) per figure, and fails only on errors: a missed target is printed as
//! MISSED. See docs/performance.md.

#![expect(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a benchmark reports on the terminal: progress on stderr, the table on stdout"
)]

use std::collections::BTreeMap;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use kube::Client;
use kyb_deploy_core::{Release, Version};
use kyb_deploy_k8s::{
    AppliedRelease, ApplyMode, KubernetesSettings, ManifestInput, RolloutEnd, RolloutScope,
    SecretValues, apply_all, built_in, follow_rollout, label_value,
};
use kyb_deploy_testkit::FaultProxy;
use kyb_deploy_testkit::k8s_sim::{K8sHandle, K8sSimulator};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Rollouts measured (the first creates the Deployment).
const ROLLOUTS: usize = 9;
const LATENCY_TARGET: Duration = Duration::from_millis(100);
/// A list and a watch of each of the three kinds, and room for one reconnect.
const REQUESTS_TARGET: usize = 10;
/// Bounds each rollout: a bound, never a measure.
const PATIENCE: Duration = Duration::from_secs(120);

fn main() -> ExitCode {
    // `cargo test --benches` runs this binary without `--bench`.
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("k8s_rollout is a benchmark: cargo bench -p kyb-deploy-k8s --bench k8s_rollout");
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the Tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One measured rollout.
struct Measured {
    ours: Duration,
    kubectl: Duration,
    requests: usize,
}

async fn run() -> BenchResult<()> {
    if !Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return Err("kubectl is missing; it is the baseline of this benchmark".into());
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let sim = K8sSimulator::builder().seed(5).build().serve(listener)?;
    let proxy = FaultProxy::start(sim.addr()).await?;
    let client = Client::try_from(kube::Config::new(proxy.url().parse()?))?;
    // kubectl reaches the simulator directly: the proxy counts only the target's requests.
    let dir = tempfile::tempdir()?;
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig)?;
    let settings: KubernetesSettings = toml::from_str(
        "namespace = \"bench\"\napp = \"web\"\nreplicas = 2\n\
         [rollout]\nmax_surge = \"1\"\nmax_unavailable = \"0\"\n\
         [probes.readiness]\npath = \"/ready\"\ninitial_delay = \"1s\"\nperiod = \"1s\"\ntimeout = \"1s\"\nfailure_threshold = 3\n",
    )?;

    let mut measured = Vec::new();
    for i in 0..ROLLOUTS {
        let version = format!("v{i}");
        eprintln!("rollout {}/{ROLLOUTS}: {version}", i + 1);
        measured.push(
            rollout(
                &client,
                &sim.handle(),
                &proxy,
                &kubeconfig,
                &settings,
                &version,
            )
            .await?,
        );
    }
    // The first rollout creates the objects: its requests include no earlier watch.
    let ours = median(measured.iter().map(|m| m.ours).collect());
    let kubectl = median(measured.iter().map(|m| m.kubectl).collect());
    let mut requests: Vec<usize> = measured.iter().map(|m| m.requests).collect();
    requests.sort_unstable();
    let most = *requests.last().unwrap_or(&0);

    println!("figure                                        value      target     ratio");
    row(
        "completion-detection latency, median",
        secs(ours),
        secs(LATENCY_TARGET),
        ratio(ours, LATENCY_TARGET),
        ours <= LATENCY_TARGET,
    );
    println!(
        "  kubectl rollout status, same rollouts     {:<10} (ratio ours/kubectl {:.2})",
        secs(kubectl),
        ours.as_secs_f64() / kubectl.as_secs_f64().max(1e-9)
    );
    #[expect(clippy::cast_precision_loss, reason = "small counts")]
    let request_ratio = most as f64 / REQUESTS_TARGET as f64;
    row(
        "API requests per rollout, most",
        most.to_string(),
        REQUESTS_TARGET.to_string(),
        format!("{request_ratio:.2}"),
        most <= REQUESTS_TARGET,
    );
    println!("  requests per rollout: {requests:?}");
    Ok(())
}

/// Applies `version`, then follows its rollout while kubectl and a watcher of the
/// simulator's state time the same rollout.
async fn rollout(
    client: &Client,
    handle: &K8sHandle,
    proxy: &FaultProxy,
    kubeconfig: &std::path::Path,
    settings: &KubernetesSettings,
    version: &str,
) -> BenchResult<Measured> {
    let release = Release::new(
        Version::parse(version)?,
        format!("registry.test/web:{version}"),
    );
    let env = BTreeMap::new();
    let input = ManifestInput {
        environment: "bench",
        settings,
        release: &release,
        env: &env,
    };
    let manifests = built_in(&input, &SecretValues::Resolved(BTreeMap::new()));
    let applied = apply_all(client, &manifests, ApplyMode::default()).await?;
    let generation = applied
        .iter()
        .find(|o| o["kind"] == "Deployment")
        .and_then(|d| d["metadata"]["generation"].as_i64())
        .ok_or("the apply answered no Deployment")?;
    let before = proxy.requests().len();

    let watcher = {
        let handle = handle.clone();
        tokio::spawn(async move {
            let start = Instant::now();
            loop {
                if handle
                    .get("Deployment", "bench", "web")
                    .is_some_and(|d| complete(&d, generation))
                {
                    return Some(Instant::now());
                }
                if start.elapsed() > PATIENCE {
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    let kubectl = {
        let kubeconfig = kubeconfig.to_path_buf();
        tokio::task::spawn_blocking(move || {
            let out = Command::new("kubectl")
                .args([
                    "rollout",
                    "status",
                    "deployment/web",
                    "-n",
                    "bench",
                    "--timeout=120s",
                ])
                .env("KUBECONFIG", &kubeconfig)
                .output();
            out.ok()
                .filter(|o| o.status.success())
                .map(|_| Instant::now())
        })
    };
    let scope = RolloutScope {
        namespace: "bench".into(),
        name: "web".into(),
        selector: "app.kubernetes.io/name=web".into(),
    };
    let expected = AppliedRelease {
        version: label_value(version),
        generation,
    };
    let end = tokio::time::timeout(
        PATIENCE,
        follow_rollout(client, &scope, &expected, |_| {}, &CancellationToken::new()),
    )
    .await
    .map_err(|_| "the rollout never ended")??;
    let reported = Instant::now();
    if end != RolloutEnd::Complete {
        return Err(format!("rollout of {version} ended {end:?}").into());
    }
    let requests = proxy.requests().len() - before;
    let complete_at = watcher
        .await?
        .ok_or("the simulator never showed the rollout complete")?;
    let kubectl_at = kubectl.await?.ok_or("kubectl rollout status failed")?;
    Ok(Measured {
        ours: reported.saturating_duration_since(complete_at),
        kubectl: kubectl_at.saturating_duration_since(complete_at),
        requests,
    })
}

/// Whether the Deployment's status says its rollout (at least at `generation`) is complete.
fn complete(d: &Value, generation: i64) -> bool {
    let status = &d["status"];
    let int = |v: &Value| v.as_i64().unwrap_or(0);
    let desired = int(&d["spec"]["replicas"]);
    int(&status["observedGeneration"]) >= generation
        && int(&d["metadata"]["generation"]) <= int(&status["observedGeneration"])
        && int(&status["updatedReplicas"]) >= desired
        && int(&status["replicas"]) <= int(&status["updatedReplicas"])
        && int(&status["availableReplicas"]) >= int(&status["updatedReplicas"])
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or_default()
}

fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

fn ratio(value: Duration, target: Duration) -> String {
    format!("{:.2}", value.as_secs_f64() / target.as_secs_f64())
}

fn row(name: &str, value: String, target: String, ratio: String, met: bool) {
    let verdict = if met { "" } else { "  MISSED" };
    println!("{name:<45} {value:<10} {target:<10} {ratio}{verdict}");
}
