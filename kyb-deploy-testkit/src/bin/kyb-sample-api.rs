//! `kyb-sample-api`: the "KYB Platform API" sample service that kyb-deploy deploys.
//!
//! Configured by environment variables (`PORT`, `BIND_ADDR`, `KYB_SAMPLE_VERSION`, the
//! `KYB_SAMPLE_FAULT_*` switches, ...; see `kyb_deploy_testkit::sample_api`). Prints
//! `listening on ADDR:PORT` to stdout once bound and serves until SIGTERM or SIGINT, then
//! exits 0. Exit codes: 1 when binding or serving fails, 2 for an invalid configuration,
//! 3 for the crash injected by `KYB_SAMPLE_FAULT_EXIT_AFTER`.
//!
//! `kyb-sample-api healthcheck` asks the server on `127.0.0.1:$PORT` for `/health` and
//! exits 0 when it answers 200, else 1: a container health check for images without a
//! shell or curl (`"command": ["CMD", "/kyb-sample-api", "healthcheck"]`).

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

use kyb_deploy_testkit::sample_api::{self, SampleApiConfig};
use kyb_deploy_testkit::shutdown_signal;
use tokio::net::TcpListener;

/// Exit code of an invalid configuration.
const EXIT_CONFIG: u8 = 2;
/// Exit code of the injected crash.
const EXIT_FAULT: u8 = 3;

/// How long the health check waits for an answer.
const HEALTHCHECK_TIMEOUT: Duration = Duration::from_secs(3);

#[tokio::main]
async fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some("healthcheck") {
        return healthcheck();
    }
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

/// `GET /health` on the local server; exit 0 on 200.
fn healthcheck() -> ExitCode {
    let port = std::env::var("PORT").unwrap_or_else(|_| "8080".to_owned());
    let answer = (|| -> std::io::Result<String> {
        let address: SocketAddr = format!("127.0.0.1:{port}")
            .parse()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let mut stream = TcpStream::connect_timeout(&address, HEALTHCHECK_TIMEOUT)?;
        stream.set_read_timeout(Some(HEALTHCHECK_TIMEOUT))?;
        stream.write_all(b"GET /health HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        Ok(response)
    })();
    match answer {
        Ok(response)
            if response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.1 200") =>
        {
            ExitCode::SUCCESS
        }
        Ok(response) => {
            report(&format!(
                "health check failed: {}",
                response.lines().next().unwrap_or("no answer")
            ));
            ExitCode::FAILURE
        }
        Err(error) => {
            report(&format!("health check failed: 127.0.0.1:{port}: {error}"));
            ExitCode::FAILURE
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
