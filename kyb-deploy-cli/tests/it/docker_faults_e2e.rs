//! End to end with the real Docker engine: releases that fail after they passed verification
//! (a crash, health that turns bad) and a run cancelled by SIGTERM as CI cancels jobs. Each
//! test checks the exit code, the ledger, and what really serves afterwards.
//!
//! Needs the engine, the registry and the static sample binary, like the other Docker tests.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::docker_e2e::{
    Containers, free_port, http_get, project_soaking, repo_root, require_peers, runs,
    serving_containers, unique,
};
use crate::support::{binary, output};

/// Deploys `version` with extra build arguments; returns the run.
fn deploy(
    project: &crate::support::Project,
    version: &str,
    build_args: &[&str],
) -> crate::support::Run {
    let mut command = binary(project.path());
    command.args(["deploy", "-e", "development", "-v", version]);
    for arg in build_args {
        command.args(["--build-arg", arg]);
    }
    output(&mut command)
}

fn serving_version(port: u16) -> String {
    let (_, body) = http_get(&format!("http://127.0.0.1:{port}/status")).unwrap();
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    status["version"].as_str().unwrap().to_owned()
}

/// A release that crashes seconds after it passed verification, and one whose /health turns
/// 503 seconds after: both fail their soak, never become "last good", and v1 keeps serving.
#[test]
fn releases_that_fail_after_verification_fail_their_soak() {
    require_peers();
    let name = unique("kyb-e2e-soak");
    let _cleanup = Containers(name.clone());
    let port = free_port();
    let project = project_soaking(&repo_root(), Some("prebuilt"), port, &name, "6s");

    let v1 = deploy(&project, "v1", &[]);
    assert_eq!(v1.code, 0, "{}", v1.all());
    let v1_container = serving_containers(&name);

    let crashing = deploy(&project, "v2", &["FAULT_EXIT_AFTER=3"]);
    assert_eq!(crashing.code, 4, "{}", crashing.all());
    assert!(
        crashing.all().contains("failed at soak"),
        "{}",
        crashing.all()
    );
    assert!(
        crashing.all().contains("v1 still serves") || crashing.all().contains("rolled back to v1"),
        "{}",
        crashing.all()
    );

    let flapping = deploy(&project, "v3", &["FAULT_UNHEALTHY_AFTER=3"]);
    assert_eq!(flapping.code, 4, "{}", flapping.all());
    assert!(
        flapping.all().contains("failed at soak"),
        "{}",
        flapping.all()
    );
    assert!(flapping.all().contains("503"), "{}", flapping.all());

    assert_eq!(serving_version(port), "v1");
    assert_eq!(serving_containers(&name), v1_container);
    let all = runs(&project);
    let statuses: Vec<&str> = all.iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["succeeded", "rolled_back", "rolled_back"]);
    for failed in &all[1..] {
        let checks = failed["outcome"]["stage"].as_str().unwrap();
        assert_eq!(checks, "soak", "{failed:#}");
    }
}

/// SIGTERM in the middle of verification, as CI systems cancel a job: the run stops at the
/// next safe point, removes the release that never took over, verifies v1 still serves,
/// finalizes its record as cancelled and exits 130.
#[test]
fn sigterm_stops_the_run_applies_the_rollback_policy_and_records_it() {
    require_peers();
    let name = unique("kyb-e2e-sigterm");
    let _cleanup = Containers(name.clone());
    let port = free_port();
    let project = project_soaking(&repo_root(), Some("prebuilt"), port, &name, "1s");

    let v1 = deploy(&project, "v1", &[]);
    assert_eq!(v1.code, 0, "{}", v1.all());

    // v2 is never ready, so verification waits; SIGTERM arrives while it does.
    let mut child = binary(project.path())
        .args([
            "--output",
            "json",
            "deploy",
            "-e",
            "development",
            "-v",
            "v2",
        ])
        .args(["--build-arg", "FAULT_READY_AFTER=600"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (lines_tx, lines_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    loop {
        let line = lines_rx
            .recv_timeout(Duration::from_secs(180))
            .unwrap_or_else(|_| panic!("verification never started: {seen:#?}"));
        let started_verify =
            line.contains(r#""event":"stage_started""#) && line.contains(r#""stage":"verify""#);
        seen.push(line);
        if started_verify {
            break;
        }
    }
    std::thread::sleep(Duration::from_secs(1));
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());

    // Bounded: the run has its grace period, the test a little more.
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let out = child.wait_with_output();
        let _ = done_tx.send(out);
    });
    let out = done_rx
        .recv_timeout(Duration::from_secs(120))
        .expect("the run did not end after SIGTERM")
        .unwrap();
    let rest: Vec<String> = lines_rx.try_iter().collect();
    assert_eq!(out.status.code(), Some(130), "{seen:#?}\n{rest:#?}");
    let document: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(document["exit_code"], 130);
    let outcome = &document["report"]["outcome"];
    assert_eq!(outcome["outcome"], "cancelled", "{outcome:#}");
    assert_eq!(outcome["rollback"]["status"], "rolled_back", "{outcome:#}");
    assert_eq!(outcome["rollback"]["to"]["version"], "v1", "{outcome:#}");

    let all = runs(&project);
    assert_eq!(all.len(), 2);
    assert_eq!(all[1]["status"], "cancelled", "{:#}", all[1]);
    assert_eq!(serving_version(port), "v1");
    // The candidate of v2 is gone: only the serving container is left.
    let filter = format!("label=io.kyb-deploy.container={name}");
    let left = Command::new("docker")
        .args(["ps", "-aq", "--filter", &filter])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&left.stdout)
            .split_whitespace()
            .count(),
        1,
        "a candidate container was left behind"
    );
}
