//! The `kyb-sim ecs` binary: the listening line, faults from flags and the config file,
//! signals, usage errors.

use std::process::Stdio;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, BufReader};

use super::{AUTHORIZATION, PATIENCE, TARGET_PREFIX};

fn kyb_sim(args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_kyb-sim"));
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

async fn call(base: &str, operation: &str, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(base)
        .header("x-amz-target", format!("{TARGET_PREFIX}{operation}"))
        .header("content-type", "application/x-amz-json-1.1")
        .header("authorization", AUTHORIZATION)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn kyb_sim_ecs_serves_until_sigterm_and_exits_0() {
    let mut child = kyb_sim(&[
        "ecs",
        "--port",
        "0",
        "--time-scale",
        "100",
        "--seed",
        "3",
        "--throttle-every",
        "2",
        "--fail-image",
        "*:broken=CannotPullContainerError: not found",
    ])
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = tokio::time::timeout(PATIENCE, BufReader::new(stdout).lines().next_line())
        .await
        .expect("kyb-sim never printed its listening line")
        .unwrap()
        .unwrap();
    let address = line
        .strip_prefix("listening on 127.0.0.1:")
        .unwrap_or_else(|| panic!("{line:?}"));
    let base = format!("http://127.0.0.1:{address}");

    let (status, body) = call(&base, "CreateCluster", json!({"clusterName": "c"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["cluster"]["clusterArn"],
        "arn:aws:ecs:us-east-1:123456789012:cluster/c"
    );
    let (status, body) = call(&base, "DescribeClusters", json!({"clusters": ["c"]})).await;
    assert_eq!(
        (status, body["__type"].as_str()),
        (400, Some("ThrottlingException"))
    );

    let killed = tokio::process::Command::new("kill")
        .args(["-TERM", &child.id().unwrap().to_string()])
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
async fn kyb_sim_rejects_bad_flags_with_usage_exit_code() {
    for args in [
        &["ecs", "--fail-image", "no-reason"][..],
        &["ecs", "--time-scale", "0"],
        &["ecs", "--throttle-every", "0"],
        &["s3"],
    ] {
        let output = kyb_sim(args).output().await.unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(output.stdout.is_empty(), "{args:?}");
        assert!(!output.stderr.is_empty(), "{args:?}");
    }
}

#[tokio::test]
async fn kyb_sim_ecs_applies_the_faults_and_network_of_its_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sim.toml");
    std::fs::write(
        &config,
        r#"
time_scale = 50
seed = 4
runtime = "virtual"
subnets = ["subnet-known"]
security_groups = ["sg-known"]

[[faults]]
api = { throttle_every = 1, operation = "CreateCluster" }

[[faults]]
task = { image = "*:broken", fail_to_start = "CannotPullContainerError: not found" }
"#,
    )
    .unwrap();
    let mut child = kyb_sim(&["ecs", "--config", config.to_str().unwrap()])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = tokio::time::timeout(PATIENCE, BufReader::new(stdout).lines().next_line())
        .await
        .expect("kyb-sim never printed its listening line")
        .unwrap()
        .unwrap();
    let base = format!(
        "http://{}",
        line.strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("{line:?}"))
    );

    let (status, body) = call(&base, "CreateCluster", json!({"clusterName": "c"})).await;
    assert_eq!(
        (status, body["__type"].as_str()),
        (400, Some("ThrottlingException"))
    );
    let state: Value = reqwest::get(format!("{base}/_kyb-sim/state"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        state["faults"]["api"].as_array().unwrap().len(),
        1,
        "{state}"
    );
    assert_eq!(
        state["faults"]["task"].as_array().unwrap().len(),
        1,
        "{state}"
    );
    // Only the subnets and security groups of the file exist.
    let definition = json!({"family": "web", "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"], "cpu": "256", "memory": "512",
        "containerDefinitions": [{"name": "web", "image": "example/web:v1"}]});
    let (status, _) = call(&base, "RegisterTaskDefinition", definition).await;
    assert_eq!(status, 200);
    let run = |subnet: &str| {
        json!({"cluster": "c", "taskDefinition": "web", "launchType": "FARGATE",
               "networkConfiguration": {"awsvpcConfiguration": {
                   "subnets": [subnet], "securityGroups": ["sg-known"]}}})
    };
    let (status, body) = call(&base, "RunTask", run("subnet-other")).await;
    assert_eq!(status, 400);
    assert_eq!(body["__type"], "InvalidParameterException");
    assert!(
        body["message"].as_str().unwrap().contains("subnet-other"),
        "{body}"
    );
    // A known subnet passes the check; the call then fails on the cluster, which could not
    // be created.
    let (_, body) = call(&base, "RunTask", run("subnet-known")).await;
    assert_eq!(body["__type"], "ClusterNotFoundException", "{body}");
    child.kill().await.unwrap();
}

#[tokio::test]
async fn kyb_sim_rejects_an_invalid_config_file_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    for (text, named) in [
        ("time_scale = 10\nspeed = 2\n", "speed"),
        ("[[faults]]\napi = { throttle = 2 }\n", "throttle"),
        (
            "[[faults]]\napi = { server_errors = 1, latency_ms = 5 }\n",
            "exactly one",
        ),
        ("runtime = \"kubernetes\"\n", "kubernetes"),
        ("time_scale = 0\n", "time_scale"),
    ] {
        let config = dir.path().join("sim.toml");
        std::fs::write(&config, text).unwrap();
        let output = kyb_sim(&["ecs", "--config", config.to_str().unwrap()])
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{text}: {stderr}");
        assert!(output.stdout.is_empty(), "{text}");
        assert!(stderr.contains(named), "{text}: {stderr}");
    }
    let output = kyb_sim(&["ecs", "--config", "does-not-exist.toml"])
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}
