//! The whole `kyb-deploy` binary deploying to Kubernetes: the testkit's Kubernetes simulator
//! (virtual pods) behind a proxy that counts the API requests, with kubectl measured in the
//! same run as the baseline:
//!
//! - the peak memory of `kyb-deploy deploy -e k8s` (Docker build and push, server-side
//!   apply, the watched rollout, verification of a local `kyb-sample-api`), beside
//!   `kubectl rollout status` on the same Deployment;
//! - 50 services deployed at once by 50 `kyb-deploy deploy` processes: the API requests each
//!   deploy makes (watches, reads, writes), beside those of one deploy alone, and the peak
//!   memory of the largest process.
//!
//! ```text
//! cargo bench -p kyb-deploy-cli --bench k8s_deploy
//! ```
//!
//! It builds the release binaries it runs and needs kubectl, the Docker engine and the
//! registry on 127.0.0.1:5000 (`bash scripts/setup.sh`). It takes about a minute, prints a
//! table of value, target and ratio (value / target) per figure, and fails only on errors: a
//! missed target is printed as MISSED. See docs/performance.md.

#![expect(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a benchmark reports on the terminal: progress on stderr, the table on stdout"
)]

#[path = "support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Output};
use std::time::{Duration, Instant};

use kyb_deploy_core::{Release, Version};
use kyb_deploy_testkit::k8s_sim::K8sSimulator;
use kyb_deploy_testkit::{FaultProxy, ProxiedRequest, SampleApiProcess};

use crate::support::{
    BenchResult, Binaries, DOCKERFILE, REGISTRY, Row, cpu_model, free_port, megabytes, print_table,
    require_docker, secs,
};

/// Processes deploying at once.
const PROCESSES: usize = 50;
const MEMORY_TARGET: u64 = 40_000_000;
/// One watch of each kind the rollout reads: the Deployment, its ReplicaSets, their pods.
const WATCHES_TARGET: f64 = 3.0;
/// A deploy among 50 makes no more requests than one alone (no polling, no retry storms),
/// within this ratio.
const CONCURRENCY_TARGET: f64 = 1.1;
const NAMESPACE: &str = "bench";
const REPOSITORY: &str = "kyb-bench-k8s";

fn main() -> ExitCode {
    support::main_of("k8s_deploy", run)
}

/// The API requests of some deploys, by what they do.
#[derive(Clone, Copy, Debug, Default)]
struct Requests {
    watches: usize,
    reads: usize,
    writes: usize,
}

impl Requests {
    fn of(requests: &[ProxiedRequest]) -> Self {
        let mut counted = Self::default();
        for r in requests {
            if r.path.contains("watch=true") || r.path.contains("watch=1") {
                counted.watches += 1;
            } else if r.method == "GET" {
                counted.reads += 1;
            } else {
                counted.writes += 1;
            }
        }
        counted
    }

    fn total(self) -> usize {
        self.watches + self.reads + self.writes
    }

    #[expect(clippy::cast_precision_loss, reason = "small counts")]
    fn per(self, deploys: usize) -> (f64, f64, f64, f64) {
        let n = deploys as f64;
        (
            self.total() as f64 / n,
            self.watches as f64 / n,
            self.reads as f64 / n,
            self.writes as f64 / n,
        )
    }
}

/// What the benchmark measured.
struct Figures {
    alone: Requests,
    alone_rss: u64,
    kubectl_rss: u64,
    together: Requests,
    together_rss: u64,
    together_took: Duration,
    took: Duration,
}

async fn run() -> BenchResult<()> {
    let started = Instant::now();
    let binaries = support::build_binaries()?;
    require_docker().await?;
    if !Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return Err("kubectl is missing; it is the baseline of this benchmark".into());
    }
    let sim = K8sSimulator::builder()
        .time_scale(10.0)
        .seed(11)
        .build()
        .serve(tokio::net::TcpListener::bind("127.0.0.1:0").await?)?;
    let proxy = FaultProxy::start(sim.addr()).await?;
    let work = tempfile::tempdir()?;
    let kubeconfig = work.path().join("kubeconfig");
    std::fs::write(&kubeconfig, kubeconfig_text(&proxy.url()))?;
    let namespace = work.path().join("namespace.json");
    std::fs::write(
        &namespace,
        format!(
            r#"{{"apiVersion": "v1", "kind": "Namespace", "metadata": {{"name": "{NAMESPACE}"}}}}"#
        ),
    )?;
    kubectl(
        &kubeconfig,
        &["apply", "-f", &namespace.to_string_lossy()],
        "create the namespace",
    )?;

    // One local sample service, reporting v1, verified by every deploy.
    let port = free_port()?;
    let sample = SampleApiProcess::new(&binaries.sample_api, port);
    (sample.activate_hook())(Release::new(Version::parse("v1")?, "sample")).await?;
    let base_url = sample.endpoint().to_string();

    eprintln!(
        "one deploy alone: kyb-deploy deploy -e k8s -v v1 (build, push, apply, rollout, verification)"
    );
    let project = Project::new(work.path(), &binaries, &kubeconfig, 0, &base_url)?;
    let before = proxy.requests().len();
    let (alone_rss, out) = project.deploy("v1")?;
    check(&out, "the deploy alone")?;
    let alone = Requests::of(&proxy.requests()[before..]);
    let (kubectl_rss, out) = support::max_rss(
        Command::new("kubectl")
            .env("KUBECONFIG", &kubeconfig)
            .args(["rollout", "status", "deployment/svc-0", "-n", NAMESPACE]),
    )?;
    check(&out, "kubectl rollout status")?;

    eprintln!("{PROCESSES} deploys at once, one process each");
    let projects = (1..=PROCESSES)
        .map(|i| Project::new(work.path(), &binaries, &kubeconfig, i, &base_url))
        .collect::<BenchResult<Vec<_>>>()?;
    let before = proxy.requests().len();
    let together_started = Instant::now();
    let runs: Vec<_> = projects
        .into_iter()
        .map(|p| tokio::task::spawn_blocking(move || p.deploy("v1")))
        .collect();
    let mut together_rss = 0;
    for (i, run) in runs.into_iter().enumerate() {
        let (rss, out) = run.await??;
        check(&out, &format!("deploy {} of {PROCESSES}", i + 1))?;
        together_rss = together_rss.max(rss);
    }
    let together_took = together_started.elapsed();
    let together = Requests::of(&proxy.requests()[before..]);
    sample.stop().await;
    sim.shutdown().await?;

    report(&Figures {
        alone,
        alone_rss,
        kubectl_rss,
        together,
        together_rss,
        together_took,
        took: started.elapsed(),
    });
    Ok(())
}

/// A project deploying service `svc-<i>` to the simulator.
struct Project {
    dir: PathBuf,
    kyb_deploy: PathBuf,
    kubeconfig: PathBuf,
}

impl Project {
    fn new(
        work: &Path,
        binaries: &Binaries,
        kubeconfig: &Path,
        i: usize,
        base_url: &str,
    ) -> BenchResult<Self> {
        let dir = work.join(format!("project-{i}"));
        let context = dir.join("context");
        std::fs::create_dir_all(&context)?;
        std::fs::copy(&binaries.sample_api, context.join("kyb-sample-api"))?;
        std::fs::write(context.join("Dockerfile"), DOCKERFILE)?;
        std::fs::write(dir.join("kyb-deploy.toml"), config(i, base_url))?;
        Ok(Self {
            dir,
            kyb_deploy: binaries.kyb_deploy.clone(),
            kubeconfig: kubeconfig.to_path_buf(),
        })
    }

    /// `kyb-deploy deploy -e k8s -v VERSION --skip-tests`: its peak RSS and output.
    fn deploy(&self, version: &str) -> BenchResult<(u64, Output)> {
        let mut command = Command::new(&self.kyb_deploy);
        command
            .args(["deploy", "-e", "k8s", "-v", version, "--skip-tests"])
            .current_dir(&self.dir)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("NO_COLOR", "1");
        support::max_rss(&command)
    }
}

fn config(i: usize, base_url: &str) -> String {
    format!(
        r#"[project]
name = "{REPOSITORY}"

[image]
# A repository per service: concurrent builds of one repository move each other's tags,
# which each deploy rightly refuses.
repository = "{REGISTRY}/{REPOSITORY}-{i}"
context = "context"
port = 8080
scan = "policy"

[image.build_args]
VERSION = "{{version}}"

[ledger]
path = "ledger.jsonl"

[environments.k8s]
target = "kubernetes"
rollback = "auto"

[environments.k8s.kubernetes]
namespace = "{NAMESPACE}"
app = "svc-{i}"
create_namespace = false
replicas = 2

[environments.k8s.kubernetes.rollout]
max_surge = "1"
max_unavailable = "0"
progress_deadline = "120s"

[environments.k8s.kubernetes.probes.readiness]
path = "/ready"
initial_delay = "1s"
period = "1s"
timeout = "1s"
failure_threshold = 3

[environments.k8s.verify]
base_url = "{base_url}"
soak = "1s"

[environments.k8s.verify.readiness]
period = "200ms"

[environments.k8s.verify.liveness]
period = "200ms"
"#
    )
}

/// A kubeconfig for the API server at `url`, without credentials (the simulator without a
/// token serves plain HTTP).
fn kubeconfig_text(url: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: sim\n  cluster: {{server: \"{url}\"}}\nusers:\n- name: sim\n  user: {{}}\ncontexts:\n- name: sim\n  context: {{cluster: sim, user: sim}}\ncurrent-context: sim\n"
    )
}

fn kubectl(kubeconfig: &Path, args: &[&str], what: &str) -> BenchResult<()> {
    let out = Command::new("kubectl")
        .env("KUBECONFIG", kubeconfig)
        .args(args)
        .output()?;
    check(&out, what)
}

fn check(out: &Output, what: &str) -> BenchResult<()> {
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
    .into())
}

#[expect(clippy::cast_precision_loss, reason = "megabytes")]
fn report(f: &Figures) {
    let (alone_total, alone_watches, alone_reads, alone_writes) = f.alone.per(1);
    let (total, watches, reads, writes) = f.together.per(PROCESSES);
    let concurrency = total / alone_total;
    let rows = vec![
        Row {
            figure: "peak RSS, kyb-deploy deploy -e k8s".into(),
            value: megabytes(f.alone_rss),
            target: Some((
                format!("<= {}", megabytes(MEMORY_TARGET)),
                f.alone_rss as f64 / MEMORY_TARGET as f64,
                f.alone_rss <= MEMORY_TARGET,
            )),
            baseline: format!("{} (kubectl rollout status)", megabytes(f.kubectl_rss)),
        },
        Row {
            figure: format!("peak RSS, largest of {PROCESSES} deploys at once"),
            value: megabytes(f.together_rss),
            target: Some((
                format!("<= {}", megabytes(MEMORY_TARGET)),
                f.together_rss as f64 / MEMORY_TARGET as f64,
                f.together_rss <= MEMORY_TARGET,
            )),
            baseline: String::new(),
        },
        Row {
            figure: format!("watches per deploy, {PROCESSES} at once"),
            value: format!("{watches:.2}"),
            target: Some((
                format!("<= {WATCHES_TARGET:.0}"),
                watches / WATCHES_TARGET,
                watches <= WATCHES_TARGET,
            )),
            baseline: format!("{alone_watches:.0} (one deploy alone)"),
        },
        Row {
            figure: format!("API requests per deploy, {PROCESSES} at once / alone"),
            value: format!("{concurrency:.2}"),
            target: Some((
                format!("<= {CONCURRENCY_TARGET:.1}"),
                concurrency / CONCURRENCY_TARGET,
                concurrency <= CONCURRENCY_TARGET,
            )),
            baseline: String::new(),
        },
        Row {
            figure: "  API requests per deploy: all (reads, writes)".into(),
            value: format!("{total:.1} ({reads:.1}, {writes:.1})"),
            target: None,
            baseline: format!("{alone_total:.0} ({alone_reads:.0}, {alone_writes:.0}) alone"),
        },
    ];
    print_table(&rows);
    let cpus = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    println!();
    println!(
        "machine: {cpus} cores{}",
        cpu_model().map_or_else(String::new, |m| format!(" ({m})"))
    );
    println!(
        "each deploy: Docker build (FROM scratch, cached) and push to {REGISTRY}, preflight, the record of its manifests, server-side apply of its objects, the rollout of 2 replicas (surge 1) on the simulator's virtual pods at time scale 10 followed by watches, verification of a local kyb-sample-api, pruning; requests counted by a proxy in front of the simulator (kubectl's not counted)"
    );
    println!(
        "{PROCESSES} deploys at once took {}; peak RSS from getrusage(RUSAGE_CHILDREN) of a wrapper process per kyb-deploy",
        secs(f.together_took)
    );
    println!("benchmark took {}", secs(f.took));
}
