//! The Kubernetes target against the Kubernetes API simulator, in process.

mod apply;
mod lost_answers;
mod pipeline;
mod prune;
mod rollout;
mod state;

use std::collections::BTreeMap;

use kube::Client;
use kyb_deploy_core::{Release, Version};
use kyb_deploy_k8s::{
    Credentials, KubernetesSettings, Manifest, ManifestInput, SecretValues, built_in,
};
use kyb_deploy_testkit::FaultProxy;
use kyb_deploy_testkit::k8s_sim::{K8sSimulator, RunningK8sSimulator};
use tokio::net::TcpListener;

/// The simulator's resourceVersion once its controllers have stopped writing (no change for
/// 200 ms, waited for at most 10 s): from then on, every change is a client's write.
async fn settled_revision(sim: &kyb_deploy_testkit::k8s_sim::K8sHandle) -> u64 {
    let mut revision = sim.resource_version();
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        if sim.resource_version() == revision {
            break;
        }
        revision = sim.resource_version();
    }
    revision
}

/// A simulator, its kubeconfig's directory, and a client from that kubeconfig (or through
/// a fault proxy).
struct Cluster {
    running: RunningK8sSimulator,
    _dir: tempfile::TempDir,
    client: Client,
    proxy: Option<FaultProxy>,
}

impl Cluster {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let running = K8sSimulator::builder()
            .time_scale(20.0)
            .seed(7)
            .token("k8s-target-test")
            .build()
            .serve(listener)
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("kubeconfig");
        running.write_kubeconfig(&file).unwrap();
        let credentials = Credentials::Kubeconfig {
            paths: vec![file],
            context: None,
        };
        let client = credentials.client().await.unwrap_or_else(|e| panic!("{e}"));
        Self {
            running,
            _dir: dir,
            client,
            proxy: None,
        }
    }

    /// A simulator serving plain HTTP (no token), reached through a fault proxy.
    async fn behind_proxy() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let running = K8sSimulator::builder()
            .time_scale(20.0)
            .seed(7)
            .build()
            .serve(listener)
            .unwrap();
        let proxy = FaultProxy::start(running.addr()).await.unwrap();
        let config = kube::Config::new(proxy.url().parse().unwrap());
        let client = Client::try_from(config).unwrap();
        Self {
            running,
            _dir: tempfile::tempdir().unwrap(),
            client,
            proxy: Some(proxy),
        }
    }
}

fn settings(extra: &str) -> KubernetesSettings {
    toml::from_str(&format!("namespace = \"kyb\"\napp = \"web\"\n{extra}")).unwrap()
}

fn release(version: &str) -> Release {
    Release::new(
        Version::parse(version).unwrap(),
        format!("registry.test/web:{version}"),
    )
}

/// The built-in manifests of `release` with `settings`, secret values resolved.
fn manifests(settings: &KubernetesSettings, release: &Release) -> Vec<Manifest> {
    let env = BTreeMap::from([("LOG_LEVEL".to_owned(), "info".to_owned())]);
    let input = ManifestInput {
        environment: "staging",
        settings,
        release,
        env: &env,
    };
    let values = settings
        .secrets
        .keys()
        .map(|k| (k.clone(), format!("value-of-{k}")))
        .collect();
    built_in(&input, &SecretValues::Resolved(values))
}
