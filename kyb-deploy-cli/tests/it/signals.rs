//! The real binary under signals and with a secret in its URL, against a service on the
//! loopback interface that never becomes ready (plain HTTP answered by a thread).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::support::{Project, binary, output};

/// A service answering every request `503` until the test ends; counts the requests.
fn never_ready() -> (u16, Arc<AtomicU32>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let requests = Arc::new(AtomicU32::new(0));
    let counted = Arc::clone(&requests);
    std::thread::spawn(move || {
        for mut stream in listener.incoming().map_while(Result::ok) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buffer = [0u8; 4096];
            let _ = stream.read(&mut buffer);
            counted.fetch_add(1, Ordering::SeqCst);
            let _ = stream.write_all(
                b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            );
        }
    });
    (port, requests)
}

/// A project whose staging service is at `http://ci:hunter2@127.0.0.1:port/?token=t0ps3cret`,
/// with readiness checked every 100 ms up to `failures` times.
fn project(port: u16, failures: u32) -> Project {
    Project::new(&format!(
        r#"
[environments.staging]
target = "ecs"
[environments.staging.ecs]
cluster = "kyb-staging"
service = "kyb-api"
[environments.staging.verify]
base_url = "http://ci:hunter2@127.0.0.1:{port}/?token=t0ps3cret"
[environments.staging.verify.readiness]
period = "100ms"
failure_threshold = {failures}
"#
    ))
}

#[test]
fn verify_never_shows_the_credentials_of_its_url() {
    let (port, _) = never_ready();
    let project = project(port, 2);
    for args in [
        &["verify", "-e", "staging", "--expect-version", "v1"][..],
        &[
            "--output",
            "json",
            "verify",
            "-e",
            "staging",
            "--expect-version",
            "v1",
        ],
    ] {
        let run = output(binary(project.path()).args(args));
        assert_eq!(run.code, 8, "{run:?}");
        let all = run.all();
        assert!(all.contains(&format!("127.0.0.1:{port}")), "{all}");
        for secret in ["hunter2", "t0ps3cret"] {
            assert!(!all.contains(secret), "{secret} shown:\n{all}");
        }
    }
}

/// Runs `verify` against the never-ready service, sends `signal` once it is probing, and
/// returns the exit code and the output.
fn interrupted_by(signal: &str) -> (Option<i32>, String) {
    let (port, requests) = never_ready();
    let project = project(port, 1000);
    let mut child = binary(project.path())
        .args(["verify", "-e", "staging", "--expect-version", "v1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let give_up = Instant::now() + Duration::from_secs(60);
    while requests.load(Ordering::SeqCst) < 2 {
        assert!(Instant::now() < give_up, "verify never probed the service");
        std::thread::sleep(Duration::from_millis(20));
    }
    let sent = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let (mut out, mut err) = (stdout, stderr);
        let _ = out.read_to_string(&mut text);
        let _ = err.read_to_string(&mut text);
        let _ = done_tx.send((child.wait().unwrap().code(), text));
    });
    // Bounded: the signal is handled at once; the run's own limits are far away.
    done_rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("verify did not stop after SIG{signal}"))
}

#[test]
fn sigterm_and_sighup_are_handled_like_ctrl_c() {
    for signal in ["TERM", "HUP", "INT"] {
        let (code, text) = interrupted_by(signal);
        assert_eq!(code, Some(130), "SIG{signal}:\n{text}");
        assert!(text.contains("interrupted"), "SIG{signal}:\n{text}");
    }
}
