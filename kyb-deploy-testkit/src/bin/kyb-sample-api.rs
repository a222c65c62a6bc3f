//! `kyb-sample-api`: the "KYB Platform API" sample service that kyb-deploy deploys.
//!
//! Configured by environment variables (`PORT`, `BIND_ADDR`, `KYB_SAMPLE_VERSION`, the
//! `KYB_SAMPLE_FAULT_*` switches, ...; see `kyb_deploy_testkit::sample_api`). Prints
//! `listening on ADDR:PORT` to stdout once bound and serves until SIGTERM or SIGINT, then
//! exits 0. Exit codes: 1 when binding or serving fails, 2 for an invalid configuration,
//! 3 for the crash injected by `KYB_SAMPLE_FAULT_EXIT_AFTER`.

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;

use kyb_deploy_testkit::sample_api::{self, SampleApiConfig};
use kyb_deploy_testkit::shutdown_signal;
use tokio::net::TcpListener;

/// Exit code of an invalid configuration.
const EXIT_CONFIG: u8 = 2;
/// Exit code of the injected crash.
const EXIT_FAULT: u8 = 3;

#[tokio::main]
async fn main() -> ExitCode {
    let config = match SampleApiConfig::from_env() {
        Ok(config) => config,
        Err(error) => {
            report(&error.to_string());
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let shutdown = match shutdown_signal() {
        Ok(shutdown) => shutdown,
        Err(error) => {
            report(&format!("cannot listen for shutdown signals: {error}"));
            return ExitCode::FAILURE;
        }
    };
    let listener = match TcpListener::bind((config.bind_addr, config.port)).await {
        Ok(listener) => listener,
        Err(error) => {
            let address = SocketAddr::new(config.bind_addr, config.port);
            report(&format!("cannot bind {address} (BIND_ADDR, PORT): {error}"));
            return ExitCode::FAILURE;
        }
    };
    if let Err(error) = listener.local_addr().and_then(announce) {
        report(&format!("cannot announce the listening address: {error}"));
        return ExitCode::FAILURE;
    }

    let exit_after = config.faults.exit_after;
    let crash = async move {
        match exit_after {
            Some(after) => tokio::time::sleep(after).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        served = sample_api::serve(listener, config, shutdown) => match served {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                report(&format!("serving failed: {error}"));
                ExitCode::FAILURE
            }
        },
        () = crash => {
            report("exiting with code 3: crash injected by KYB_SAMPLE_FAULT_EXIT_AFTER");
            ExitCode::from(EXIT_FAULT)
        }
    }
}

/// Prints the one line of stdout, which tells the real port when `PORT=0`.
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
    eprintln!("kyb-sample-api: {message}");
}
