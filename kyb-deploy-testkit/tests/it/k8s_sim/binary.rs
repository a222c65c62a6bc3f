//! The `kyb-sim k8s` binary: the kubeconfig it writes, kubectl against it, image faults
//! from flags, and SIGTERM.

use std::process::Stdio;

use tokio::io::{AsyncBufReadExt as _, BufReader};

use super::{PATIENCE, kubectl};

#[tokio::test]
async fn kyb_sim_k8s_writes_a_kubeconfig_kubectl_uses_and_exits_0_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_kyb-sim"))
        .args([
            "k8s",
            "--port",
            "0",
            "--time-scale",
            "20",
            "--image-pull-backoff",
            "*:broken",
            "--forbid",
            "list:secrets:default",
            "--cpu-load",
            "reg.test/*=100",
            "--kubeconfig",
        ])
        .arg(&kubeconfig)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = tokio::time::timeout(PATIENCE, BufReader::new(stdout).lines().next_line())
        .await
        .expect("kyb-sim never printed its listening line")
        .unwrap()
        .unwrap();
    assert!(line.starts_with("listening on 127.0.0.1:"), "{line}");
    // Written before the listening line: it is there now, with a token and the CA.
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&kubeconfig).unwrap()).unwrap();
    assert_eq!(config["current-context"], "kyb-sim");
    assert!(
        config["users"][0]["user"]["token"]
            .as_str()
            .is_some_and(|t| t.len() >= 32)
    );
    assert!(
        config["clusters"][0]["cluster"]["server"]
            .as_str()
            .unwrap()
            .starts_with("https://127.0.0.1:")
    );

    let home = dir.path().to_path_buf();
    let (k, h) = (kubeconfig.clone(), home.clone());
    let namespaces = tokio::task::spawn_blocking(move || {
        kubectl(
            &k,
            &h,
            &[
                "get".into(),
                "namespaces".into(),
                "-o".into(),
                "name".into(),
            ],
        )
    })
    .await
    .unwrap();
    let listed = String::from_utf8_lossy(&namespaces.stdout);
    assert!(listed.contains("namespace/default"), "{namespaces:?}");
    let (k, h) = (kubeconfig.clone(), home.clone());
    let secrets =
        tokio::task::spawn_blocking(move || kubectl(&k, &h, &["get".into(), "secrets".into()]))
            .await
            .unwrap();
    assert!(
        String::from_utf8_lossy(&secrets.stderr).contains("secrets is forbidden"),
        "{secrets:?}"
    );

    let pod = r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                  "spec": {"containers": [{"name": "app", "image": "reg.test/app:broken"}]}}"#;
    std::fs::write(dir.path().join("pod.json"), pod).unwrap();
    let (k, h, file) = (
        kubeconfig.clone(),
        home.clone(),
        dir.path().join("pod.json"),
    );
    let created = tokio::task::spawn_blocking(move || {
        kubectl(
            &k,
            &h,
            &["create".into(), "-f".into(), file.display().to_string()],
        )
    })
    .await
    .unwrap();
    assert!(created.status.success(), "{created:?}");
    let reason = tokio::time::timeout(PATIENCE, async {
        loop {
            let (k, h) = (kubeconfig.clone(), home.clone());
            let got = tokio::task::spawn_blocking(move || {
                kubectl(
                    &k,
                    &h,
                    &[
                        "get".into(),
                        "pod".into(),
                        "p".into(),
                        "-o".into(),
                        "jsonpath={.status.containerStatuses[0].state.waiting.reason}".into(),
                    ],
                )
            })
            .await
            .unwrap();
            let reason = String::from_utf8_lossy(&got.stdout).into_owned();
            if reason == "ImagePullBackOff" || reason == "ErrImagePull" {
                return reason;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the pull fault shows on the pod");
    assert!(!reason.is_empty());

    nix_kill(&child);
    let status = tokio::time::timeout(PATIENCE, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

/// Sends SIGTERM to the child.
fn nix_kill(child: &tokio::process::Child) {
    let pid = child.id().expect("running");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn malformed_fault_flags_are_refused_naming_the_form() {
    for (flag, value, form) in [
        ("--forbid", "list-secrets", "VERB:RESOURCE:NAMESPACE"),
        ("--cpu-load", "reg.test/*", "PATTERN=PERCENT"),
        ("--cpu-load", "reg.test/*=lots", "PATTERN=PERCENT"),
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_kyb-sim"))
            .args([
                "k8s",
                "--kubeconfig",
                "/nonexistent/kubeconfig",
                flag,
                value,
            ])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{flag} {value}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(form), "{flag} {value}: {stderr}");
    }
}
