//! `kyb-sim`: simulated cloud endpoints for tests and demos.
//!
//! `kyb-sim ecs --port N` serves the simulated ECS API (see
//! `kyb_deploy_testkit::ecs_sim`) on 127.0.0.1:N, prints `listening on 127.0.0.1:PORT` to
//! stdout once bound, and serves until SIGINT or SIGTERM, then exits 0. `--config FILE`
//! reads a TOML file of settings and faults (flags override it).
//!
//! `kyb-sim k8s --port N --kubeconfig PATH` serves a simulated Kubernetes API server (see
//! `kyb_deploy_testkit::k8s_sim`) the same way, and writes a kubeconfig for it to PATH (its
//! current context points at the simulator, with a bearer token) before announcing itself.
//!
//! Exit code 1 when binding or serving fails; 2 for invalid arguments (clap's usage errors)
//! or an invalid config file.

use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kyb_deploy_testkit::ecs_sim::{
    DockerRuntimeConfig, EcsSimulator, EcsSimulatorBuilder, Fault, FaultSpec,
};
use kyb_deploy_testkit::k8s_sim::{DockerPodsConfig, Fault as K8sFault, K8sSimulator};
use kyb_deploy_testkit::shutdown_signal;
use serde::Deserialize;
use tokio::net::TcpListener;

/// The exit code of invalid arguments or config, like clap's usage errors.
const USAGE: u8 = 2;

/// Simulated cloud endpoints for tests and demos.
#[derive(Debug, Parser)]
#[command(name = "kyb-sim", version)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the simulated Amazon ECS API (JSON 1.1 protocol) on 127.0.0.1.
    Ecs(EcsArgs),
    /// Serve a simulated Kubernetes API server with a Deployment controller on 127.0.0.1.
    K8s(K8sArgs),
}

#[derive(Debug, clap::Args)]
struct K8sArgs {
    /// Port to listen on; 0 picks a free one (the line on stdout tells which).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Where to write the kubeconfig for the simulator.
    #[arg(long, value_name = "PATH")]
    kubeconfig: PathBuf,
    /// Simulated time runs this many times faster than real time.
    #[arg(long, value_parser = positive_scale, default_value_t = 1.0)]
    time_scale: f64,
    /// Seed of the generator of names, uids and random faults.
    #[arg(long)]
    seed: Option<u64>,
    /// The bearer token clients must send [default: a random one, written to the kubeconfig].
    #[arg(long)]
    token: Option<String>,
    /// Pods whose image matches PATTERN (`*` wildcards) stay in ImagePullBackOff. Repeatable.
    #[arg(long, value_name = "PATTERN")]
    image_pull_backoff: Vec<String>,
    /// Containers whose image matches PATTERN crash at once: CrashLoopBackOff. Repeatable.
    #[arg(long, value_name = "PATTERN")]
    crash_loop: Vec<String>,
    /// The user may not VERB RESOURCE in NAMESPACE (each may be `*`; an empty namespace is
    /// the cluster scope): 403, and `kubectl auth can-i` says no. Repeatable.
    #[arg(long, value_name = "VERB:RESOURCE:NAMESPACE", value_parser = forbid_rule)]
    forbid: Vec<(String, String, String)>,
    /// Pods whose image matches PATTERN share a CPU load of PERCENT of one pod's request,
    /// which autoscalers read. Repeatable.
    #[arg(long, value_name = "PATTERN=PERCENT", value_parser = cpu_load_rule)]
    cpu_load: Vec<(String, u32)>,
    /// Run the first container of every pod as a real container through the local Docker
    /// engine, and give every Service a local URL over its ready pods.
    #[arg(long)]
    docker: bool,
}

#[derive(Debug, clap::Args)]
struct EcsArgs {
    /// Port to listen on; 0 picks a free one (the line on stdout tells which).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Simulated time runs this many times faster than real time [default: 1, or the
    /// config file's `time_scale`].
    #[arg(long, value_parser = positive_scale)]
    time_scale: Option<f64>,
    /// Seed of the generator of ids and random faults.
    #[arg(long)]
    seed: Option<u64>,
    /// Every Nth API call fails with ThrottlingException.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    throttle_every: Option<u32>,
    /// Tasks whose image matches PATTERN (`*` wildcards) fail to start with REASON as their
    /// stoppedReason. Repeatable.
    #[arg(long, value_name = "PATTERN=REASON", value_parser = image_failure)]
    fail_image: Vec<(String, String)>,
    /// Run every task as a real container through the local Docker engine.
    #[arg(long)]
    docker: bool,
    /// TOML file of settings: `time_scale`, `seed`, `runtime` ("virtual" or "docker"),
    /// `subnets` and `security_groups` (the ids that exist; any id when absent) and
    /// `[[faults]]` entries shaped like the admin endpoint's JSON; flags override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

/// The `--config` file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    time_scale: Option<f64>,
    seed: Option<u64>,
    runtime: Option<Runtime>,
    subnets: Option<Vec<String>>,
    security_groups: Option<Vec<String>>,
    #[serde(default)]
    faults: Vec<FaultSpec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Runtime {
    Virtual,
    Docker,
}

/// Reads the config file; the error says which file and what is wrong in it.
fn read_config(path: &Path) -> Result<Config, String> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("cannot read the config file {shown}: {error}"))?;
    let config: Config =
        toml::from_str(&text).map_err(|error| format!("invalid config file {shown}: {error}"))?;
    if let Some(scale) = config.time_scale {
        positive_scale(&scale.to_string())
            .map_err(|error| format!("invalid config file {shown}: time_scale {error}"))?;
    }
    Ok(config)
}

/// The simulator's settings: the config file, then the flags over it.
fn settings(args: EcsArgs) -> Result<EcsSimulatorBuilder, String> {
    let config = match &args.config {
        Some(path) => read_config(path)?,
        None => Config::default(),
    };
    let time_scale = args.time_scale.or(config.time_scale).unwrap_or(1.0);
    let mut builder = EcsSimulator::builder().time_scale(time_scale);
    if let Some(seed) = args.seed.or(config.seed) {
        builder = builder.seed(seed);
    }
    if args.docker || config.runtime == Some(Runtime::Docker) {
        builder = builder.docker_runtime(DockerRuntimeConfig::default());
    }
    if let Some(subnets) = config.subnets {
        builder = builder.known_subnets(subnets);
    }
    if let Some(groups) = config.security_groups {
        builder = builder.known_security_groups(groups);
    }
    for (index, spec) in config.faults.into_iter().enumerate() {
        let fault = Fault::try_from(spec)
            .map_err(|error| format!("invalid config file: faults[{index}]: {error}"))?;
        builder = builder.fault(fault);
    }
    if let Some(every) = args.throttle_every {
        builder = builder.fault(Fault::throttle_every(every));
    }
    for (pattern, reason) in args.fail_image {
        builder = builder.fault(Fault::fail_to_start(pattern, reason));
    }
    Ok(builder)
}

fn positive_scale(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(scale) if scale.is_finite() && scale > 0.0 => Ok(scale),
        _ => Err(format!("{text:?} is not a positive number")),
    }
}

fn image_failure(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((pattern, reason)) if !pattern.is_empty() && !reason.is_empty() => {
            Ok((pattern.to_owned(), reason.to_owned()))
        }
        _ => Err(format!("{text:?} is not PATTERN=REASON")),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    match Args::parse().command {
        Command::Ecs(args) => ecs(args).await,
        Command::K8s(args) => k8s(args).await,
    }
}

async fn k8s(args: K8sArgs) -> ExitCode {
    let token = args.token.unwrap_or_else(|| {
        use rand::Rng as _;
        let bytes: [u8; 16] = rand::rng().random();
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    });
    let mut builder = K8sSimulator::builder()
        .time_scale(args.time_scale)
        .token(token);
    if let Some(seed) = args.seed {
        builder = builder.seed(seed);
    }
    for pattern in args.image_pull_backoff {
        builder = builder.fault(K8sFault::image_pull_backoff(pattern));
    }
    for pattern in args.crash_loop {
        builder = builder.fault(K8sFault::crash_loop(pattern, 1));
    }
    for (verb, resource, namespace) in args.forbid {
        builder = builder.fault(K8sFault::forbidden(verb, resource, namespace));
    }
    for (pattern, percent) in args.cpu_load {
        builder = builder.fault(K8sFault::cpu_load(pattern, percent));
    }
    if args.docker {
        builder = builder.docker_runtime(DockerPodsConfig::default());
    }
    let (listener, shutdown) = match listen(args.port).await {
        Ok(listening) => listening,
        Err(code) => return code,
    };
    let running = match builder.build().serve(listener) {
        Ok(running) => running,
        Err(error) => {
            report(&format!("serving failed: {error}"));
            return ExitCode::FAILURE;
        }
    };
    if let Err(error) = running.write_kubeconfig(&args.kubeconfig) {
        report(&format!(
            "cannot write the kubeconfig {} (--kubeconfig): {error}",
            args.kubeconfig.display()
        ));
        return ExitCode::FAILURE;
    }
    if let Err(error) = announce(running.addr()) {
        report(&format!("cannot announce the listening address: {error}"));
        return ExitCode::FAILURE;
    }
    shutdown.await;
    stopped(running.shutdown().await)
}

async fn ecs(args: EcsArgs) -> ExitCode {
    let port = args.port;
    let builder = match settings(args) {
        Ok(builder) => builder,
        Err(message) => {
            report(&message);
            return ExitCode::from(USAGE);
        }
    };
    let (listener, shutdown) = match listen(port).await {
        Ok(listening) => listening,
        Err(code) => return code,
    };
    if let Err(error) = listener.local_addr().and_then(announce) {
        report(&format!("cannot announce the listening address: {error}"));
        return ExitCode::FAILURE;
    }
    let running = match builder.build().serve(listener) {
        Ok(running) => running,
        Err(error) => {
            report(&format!("serving failed: {error}"));
            return ExitCode::FAILURE;
        }
    };
    shutdown.await;
    // Shutting down also removes the containers of the Docker-backed runtime.
    stopped(running.shutdown().await)
}

/// Listens for SIGINT/SIGTERM and binds 127.0.0.1:`port`; the exit code when either fails.
async fn listen(
    port: u16,
) -> Result<(TcpListener, impl Future<Output = ()> + Send + 'static), ExitCode> {
    let shutdown = shutdown_signal().map_err(|error| {
        report(&format!("cannot listen for shutdown signals: {error}"));
        ExitCode::FAILURE
    })?;
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))
        .await
        .map_err(|error| {
            report(&format!("cannot bind 127.0.0.1:{port} (--port): {error}"));
            ExitCode::FAILURE
        })?;
    Ok((listener, shutdown))
}

/// The exit code once the simulator has stopped.
fn stopped(served: std::io::Result<()>) -> ExitCode {
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            report(&format!("serving failed: {error}"));
            ExitCode::FAILURE
        }
    }
}

/// Prints the one line of stdout, which tells the real port when `--port 0`.
#[expect(
    clippy::print_stdout,
    reason = "the listening line on stdout is the binary's interface to its callers"
)]
fn announce(address: SocketAddr) -> std::io::Result<()> {
    println!("listening on {address}");
    std::io::stdout().flush()
}

/// Prints a diagnostic to stderr.
#[expect(
    clippy::print_stderr,
    reason = "stderr is where the binary reports why it stops"
)]
fn report(message: &str) {
    eprintln!("kyb-sim: {message}");
}

/// `--forbid VERB:RESOURCE:NAMESPACE`.
fn forbid_rule(text: &str) -> Result<(String, String, String), String> {
    match text.split(':').collect::<Vec<_>>().as_slice() {
        [verb, resource, namespace] if !verb.is_empty() && !resource.is_empty() => Ok((
            (*verb).to_owned(),
            (*resource).to_owned(),
            (*namespace).to_owned(),
        )),
        _ => Err(
            "expected VERB:RESOURCE:NAMESPACE, like list:secrets:default (each may be *; an empty namespace is the cluster scope, like list:clusterroles:)"
                .to_owned(),
        ),
    }
}

/// `--cpu-load PATTERN=PERCENT`.
fn cpu_load_rule(text: &str) -> Result<(String, u32), String> {
    let fix = "expected PATTERN=PERCENT, like 'registry.test/web:*=200' (two pods' worth of load)";
    let (pattern, percent) = text.rsplit_once('=').ok_or_else(|| fix.to_owned())?;
    let percent = percent.parse().map_err(|_| fix.to_owned())?;
    if pattern.is_empty() {
        return Err(fix.to_owned());
    }
    Ok((pattern.to_owned(), percent))
}
