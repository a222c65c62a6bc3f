//! The local Docker engine as the workspace's image tests meet it: the `docker` CLI, and
//! the statically linked sample service that test images built `FROM scratch` copy (no
//! base image can be pulled where these tests run).

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// How to start the Docker engine and the registry on 127.0.0.1:5000 the image tests use.
pub const ENGINE_SETUP_HINT: &str =
    "run `bash scripts/setup.sh` to start the Docker engine and the registry on 127.0.0.1:5000";

/// The registry the image tests push to.
pub const TEST_REGISTRY: &str = "127.0.0.1:5000";

/// The command that builds [`static_sample_api`].
pub const STATIC_SAMPLE_API_BUILD: &str = "RUSTFLAGS=\"-C target-feature=+crt-static\" cargo build --release --target x86_64-unknown-linux-gnu -p kyb-deploy-testkit --bin kyb-sample-api";

/// Runs `docker` with `args` and returns its stdout.
///
/// # Panics
///
/// When the CLI cannot run (with [`ENGINE_SETUP_HINT`]) or the command fails (with the
/// engine's message): a test that needs the engine fails loudly, it is never skipped.
pub fn docker(args: &[&str]) -> String {
    let output = Command::new("docker")
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("cannot run docker ({ENGINE_SETUP_HINT}): {error}"));
    assert!(
        output.status.success(),
        "docker {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The statically linked `kyb-sample-api` of the kyb-deploy workspace's build:
/// `x86_64-unknown-linux-gnu/release/kyb-sample-api` under `CARGO_TARGET_DIR`, else under
/// the workspace's `target/` (where `scripts/test.sh` builds it).
///
/// # Panics
///
/// When it has not been built, with [`STATIC_SAMPLE_API_BUILD`].
#[must_use]
pub fn static_sample_api() -> PathBuf {
    let target_dir = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    );
    let binary = target_dir.join("x86_64-unknown-linux-gnu/release/kyb-sample-api");
    assert!(
        binary.is_file(),
        "the static kyb-sample-api is missing at {}; build it with: {STATIC_SAMPLE_API_BUILD} (scripts/test.sh does)",
        binary.display()
    );
    binary
}

/// Checks what every test that builds and runs images needs: the static sample service, the
/// Docker engine, and a registry answering on [`TEST_REGISTRY`].
///
/// # Panics
///
/// When one is missing, naming it and the fix: such a test fails, it is never skipped.
pub fn require_image_peers() {
    let _ = static_sample_api();
    let engine = Command::new("docker").arg("info").output();
    assert!(
        engine.is_ok_and(|output| output.status.success()),
        "the Docker engine is not running: {ENGINE_SETUP_HINT}"
    );
    assert!(
        registry_answers(),
        "no registry answers on {TEST_REGISTRY}: {ENGINE_SETUP_HINT}"
    );
}

/// Whether `GET /v2/` on the test registry answers 200 (plain HTTP, blocking: the callers
/// may have no runtime).
fn registry_answers() -> bool {
    let Ok(addr) = TEST_REGISTRY.parse::<SocketAddr>() else {
        return false;
    };
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(5)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let request = format!("GET /v2/ HTTP/1.0\r\nHost: {TEST_REGISTRY}\r\n\r\n");
    let mut status_line = [0_u8; 12];
    stream.write_all(request.as_bytes()).is_ok()
        && stream.read_exact(&mut status_line).is_ok()
        && status_line.starts_with(b"HTTP/1.")
        && &status_line[9..12] == b"200"
}
