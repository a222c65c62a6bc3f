//! The Kubernetes API simulator, judged by the real `kubectl` and by kube-rs.

mod access;
mod basics;
mod binary;
mod docker;
mod kube_client;
mod printing;
mod rollouts;
mod validation;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use kyb_deploy_testkit::k8s_sim::{K8sSimulator, K8sSimulatorBuilder, RunningK8sSimulator};
use serde_json::Value;
use tempfile::TempDir;
use tokio::net::TcpListener;

/// Guards against a hang; never an assertion on speed.
const PATIENCE: Duration = Duration::from_secs(60);

/// The bearer token of every test cluster.
const TOKEN: &str = "kyb-sim-test-token";

/// A served simulator, its kubeconfig, and a home for kubectl's caches.
struct Cluster {
    running: RunningK8sSimulator,
    dir: TempDir,
}

/// What a kubectl run printed and how it ended.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        assert_eq!(self.code, Some(0), "{self:#?}");
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {}", self.stdout))
    }

    #[track_caller]
    fn ok(&self) -> &str {
        assert_eq!(self.code, Some(0), "{self:#?}");
        &self.stdout
    }
}

impl Cluster {
    async fn start(builder: K8sSimulatorBuilder) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let running = builder.token(TOKEN).build().serve(listener).unwrap();
        let dir = tempfile::tempdir().unwrap();
        running
            .write_kubeconfig(&dir.path().join("kubeconfig"))
            .unwrap();
        Self { running, dir }
    }

    async fn default() -> Self {
        Self::start(K8sSimulator::builder().time_scale(20.0).seed(1)).await
    }

    /// An HTTP client that trusts the simulator's CA.
    fn http(&self) -> reqwest::Client {
        let ca = reqwest::Certificate::from_pem(self.running.ca_pem().unwrap().as_bytes()).unwrap();
        reqwest::Client::builder()
            .add_root_certificate(ca)
            .build()
            .unwrap()
    }

    fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// Writes `text` to a file in the cluster's directory and returns its path.
    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// `kubectl create -f` of a manifest, which must succeed.
    async fn create(&self, manifest: &str) {
        let file = self.file("manifest.json", manifest);
        self.kubectl(&["create", "-f", file.to_str().unwrap()])
            .await
            .ok();
    }

    /// Runs the real kubectl against the simulator, in a blocking thread.
    async fn kubectl(&self, args: &[&str]) -> Run {
        let kubeconfig = self.kubeconfig();
        let home = self.dir.path().to_path_buf();
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        let output = tokio::time::timeout(
            PATIENCE,
            tokio::task::spawn_blocking(move || kubectl(&kubeconfig, &home, &args)),
        )
        .await
        .expect("kubectl finished")
        .unwrap();
        Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// kubectl with only the simulator's kubeconfig and a private cache directory.
fn kubectl(kubeconfig: &Path, home: &Path, args: &[String]) -> Output {
    Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .env_remove("KUBECONFIG")
        .env("HOME", home)
        .env("KUBECACHEDIR", home.join("cache"))
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run kubectl ({e}); install kubectl v1.32 (it is the judge of the simulator)"
            )
        })
}
