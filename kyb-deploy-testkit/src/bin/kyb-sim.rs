//! `kyb-sim`: simulated cloud endpoints for tests and demos.
//!
//! `kyb-sim ecs --port N` serves the simulated ECS API (see
//! `kyb_deploy_testkit::ecs_sim`) on 127.0.0.1:N, prints `listening on 127.0.0.1:PORT` to
//! stdout once bound, and serves until SIGINT or SIGTERM, then exits 0. Exit code 1 when
//! binding or serving fails; 2 for invalid arguments (clap's usage errors).

use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kyb_deploy_testkit::ecs_sim::{EcsSimulator, Fault};
use kyb_deploy_testkit::shutdown_signal;
use tokio::net::TcpListener;

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
}

#[derive(Debug, clap::Args)]
struct EcsArgs {
    /// Port to listen on; 0 picks a free one (the line on stdout tells which).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Simulated time runs this many times faster than real time.
    #[arg(long, default_value_t = 1.0, value_parser = positive_scale)]
    time_scale: f64,
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
    let Args {
        command: Command::Ecs(args),
    } = Args::parse();
    let mut builder = EcsSimulator::builder().time_scale(args.time_scale);
    if let Some(seed) = args.seed {
        builder = builder.seed(seed);
    }
    if let Some(every) = args.throttle_every {
        builder = builder.fault(Fault::throttle_every(every));
    }
    for (pattern, reason) in args.fail_image {
        builder = builder.fault(Fault::fail_to_start(pattern, reason));
    }
    let shutdown = match shutdown_signal() {
        Ok(shutdown) => shutdown,
        Err(error) => {
            report(&format!("cannot listen for shutdown signals: {error}"));
            return ExitCode::FAILURE;
        }
    };
    let listener = match TcpListener::bind((Ipv4Addr::LOCALHOST, args.port)).await {
        Ok(listener) => listener,
        Err(error) => {
            report(&format!(
                "cannot bind 127.0.0.1:{} (--port): {error}",
                args.port
            ));
            return ExitCode::FAILURE;
        }
    };
    if let Err(error) = listener.local_addr().and_then(announce) {
        report(&format!("cannot announce the listening address: {error}"));
        return ExitCode::FAILURE;
    }
    let simulator = builder.build();
    let served = axum::serve(listener, simulator.router())
        .with_graceful_shutdown(shutdown)
        .await;
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
