//! The real `kyb-sample-api` binary: configuration from the environment, the listening
//! line, signals and exit codes.

use std::process::Stdio;

use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt as _, BufReader};

use super::PATIENCE;

/// The binary with a clean sample-api environment plus `vars`.
fn binary(vars: &[(&str, &str)]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_kyb-sample-api"));
    for name in [
        "PORT",
        "BIND_ADDR",
        "KYB_SAMPLE_VERSION",
        "APP_VERSION",
        "ENVIRONMENT",
        "KYB_SAMPLE_FAULT_UNHEALTHY_AFTER",
        "KYB_SAMPLE_FAULT_NEVER_READY",
        "KYB_SAMPLE_FAULT_READY_AFTER",
        "KYB_SAMPLE_FAULT_CLASSIFY_500",
        "KYB_SAMPLE_FAULT_LATENCY_MS",
        "KYB_SAMPLE_FAULT_EXIT_AFTER",
    ] {
        command.env_remove(name);
    }
    command
        .envs(vars.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Starts the binary on a free port and returns it with its base URL.
async fn start_binary(vars: &[(&str, &str)]) -> (tokio::process::Child, String) {
    let mut vars = vars.to_vec();
    vars.extend([("PORT", "0"), ("BIND_ADDR", "127.0.0.1")]);
    let mut child = binary(&vars).stderr(Stdio::null()).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = tokio::time::timeout(PATIENCE, BufReader::new(stdout).lines().next_line())
        .await
        .expect("the binary never printed its listening line")
        .unwrap()
        .unwrap();
    let address = line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{line:?}"));
    assert!(address.starts_with("127.0.0.1:"), "{line:?}");
    (child, format!("http://{address}"))
}

#[tokio::test]
async fn the_binary_serves_the_configured_version() {
    let (mut child, base) = start_binary(&[("KYB_SAMPLE_VERSION", "v9.9.9")]).await;
    let body: Value = reqwest::get(format!("{base}/status"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["version"], "v9.9.9");
    child.kill().await.unwrap();
}

#[cfg(unix)]
#[tokio::test]
async fn the_binary_exits_0_on_sigterm() {
    let (mut child, base) = start_binary(&[]).await;
    assert_eq!(
        reqwest::get(format!("{base}/health"))
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let pid = child.id().unwrap().to_string();
    let killed = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(PATIENCE, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

#[tokio::test]
async fn the_binary_exits_3_when_the_crash_fault_fires() {
    let (mut child, _) = start_binary(&[("KYB_SAMPLE_FAULT_EXIT_AFTER", "0.2")]).await;
    let status = tokio::time::timeout(PATIENCE, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(3));
}

#[tokio::test]
async fn the_binary_exits_2_naming_a_bad_variable() {
    let output = tokio::time::timeout(PATIENCE, binary(&[("PORT", "abc")]).output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("PORT") && stderr.contains("abc"),
        "{stderr}"
    );
}

/// Runs `kyb-sample-api healthcheck` against `port`; its exit code and stderr.
async fn healthcheck(port: &str) -> (Option<i32>, String) {
    let output = binary(&[("PORT", port)])
        .arg("healthcheck")
        .output()
        .await
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_healthcheck_mode_exits_0_for_a_healthy_server_and_1_otherwise() {
    let (mut healthy, base) = start_binary(&[]).await;
    let port = base.rsplit(':').next().unwrap().to_owned();
    assert_eq!(healthcheck(&port).await, (Some(0), String::new()));
    healthy.kill().await.unwrap();

    let (mut unhealthy, base) = start_binary(&[("KYB_SAMPLE_FAULT_UNHEALTHY_AFTER", "0")]).await;
    let port = base.rsplit(':').next().unwrap().to_owned();
    let (code, stderr) = healthcheck(&port).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("health check failed: HTTP/1.0 503 Service Unavailable"),
        "{stderr}"
    );
    unhealthy.kill().await.unwrap();

    // Nothing listening any more.
    let (code, stderr) = healthcheck(&port).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("Connection refused"), "{stderr}");
}
