//! [`K8sSimulator`], its builder, and [`RunningK8sSimulator`], the simulator served over HTTP.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use rand::SeedableRng as _;
use rand::rngs::StdRng;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::api;
use super::cluster::Cluster;
use super::controller;
use super::docker::{DockerPods, DockerPodsConfig};
use super::faults::{Fault, FaultSet};
use super::handle::K8sHandle;
use super::tls::Tls;
use crate::sim_runtime::SimClock;
use crate::sim_runtime::serve::Served;

/// A simulated Kubernetes API server with a Deployment controller.
///
/// ```
/// use kyb_deploy_testkit::k8s_sim::K8sSimulator;
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
/// let sim = K8sSimulator::builder().token("s3cret").build().serve(listener).unwrap();
/// let kubeconfig = sim.kubeconfig();
/// assert!(kubeconfig.contains(&sim.url()));
/// sim.shutdown().await.unwrap();
/// # });
/// ```
#[derive(Debug)]
pub struct K8sSimulator {
    cluster: Arc<Cluster>,
}

/// Settings of a [`K8sSimulator`]; from [`K8sSimulator::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct K8sSimulatorBuilder {
    time_scale: f64,
    manual: bool,
    seed: Option<u64>,
    token: Option<String>,
    faults: Vec<Fault>,
    docker: Option<DockerPodsConfig>,
}

impl Default for K8sSimulatorBuilder {
    fn default() -> Self {
        Self {
            time_scale: 1.0,
            manual: false,
            seed: None,
            token: None,
            faults: Vec::new(),
            docker: None,
        }
    }
}

impl K8sSimulatorBuilder {
    /// Simulated time runs `scale` times faster than real time (default 1).
    pub fn time_scale(mut self, scale: f64) -> Self {
        self.time_scale = scale;
        self
    }

    /// Simulated time stands still until [`K8sHandle::advance`] moves it.
    pub fn manual_clock(mut self) -> Self {
        self.manual = true;
        self
    }

    /// Seeds the generator of names, uids and random faults.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Requires `Authorization: Bearer <token>` on every request (401 otherwise), and
    /// serves HTTPS with a certificate authority generated at start (clients such as
    /// kubectl send bearer tokens only over TLS; the kubeconfig carries the CA). Without a
    /// token the API is plain HTTP and every request is accepted.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Adds a fault.
    pub fn fault(mut self, fault: Fault) -> Self {
        self.faults.push(fault);
        self
    }

    /// Runs the first container of every pod as a real container through the local Docker
    /// engine, and gives every Service with a selector a stable local URL
    /// ([`RunningK8sSimulator::service_url`]) over its ready pods. See the [module
    /// docs](super#docker-backed-pods) for the model. Without it (the default) pods are
    /// state only.
    ///
    /// # Panics
    ///
    /// [`build`](Self::build) panics outside a Tokio runtime.
    pub fn docker_runtime(mut self, config: DockerPodsConfig) -> Self {
        self.docker = Some(config);
        self
    }

    /// Builds the simulator.
    #[must_use]
    pub fn build(self) -> K8sSimulator {
        let clock = if self.manual {
            SimClock::manual()
        } else {
            SimClock::scaled(self.time_scale)
        };
        let rng = match self.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        let mut faults = FaultSet::default();
        for fault in self.faults {
            faults.add(fault);
        }
        let (token, docker) = (self.token, self.docker);
        // The Services' proxies look the pods up through the cluster, which owns them.
        let cluster = Arc::new_cyclic(|cluster| {
            let docker = docker.map(|config| DockerPods::new(config, cluster.clone()));
            Cluster::new(clock, rng, token, faults, docker)
        });
        K8sSimulator { cluster }
    }
}

impl K8sSimulator {
    /// The settings: real time, a random seed, no token.
    pub fn builder() -> K8sSimulatorBuilder {
        K8sSimulatorBuilder::default()
    }

    /// In-process access to the cluster.
    #[must_use]
    pub fn handle(&self) -> K8sHandle {
        K8sHandle {
            cluster: Arc::clone(&self.cluster),
        }
    }

    /// The HTTP routes, to mount in a server of one's own (the controllers do not run).
    pub fn router(&self) -> axum::Router {
        axum::Router::new()
            .fallback(api::handle)
            .with_state(Arc::clone(&self.cluster))
    }

    /// Serves the API on `listener` and runs the controllers, in spawned tasks, until
    /// [`RunningK8sSimulator::shutdown`] or until it is dropped. Needs a Tokio runtime.
    ///
    /// # Errors
    ///
    /// Fails when the listener's address cannot be read.
    pub fn serve(self, listener: TcpListener) -> std::io::Result<RunningK8sSimulator> {
        let addr = listener.local_addr()?;
        let shutdown = self.cluster.shutdown.clone();
        // Open watches end when the cluster shuts down.
        let on_stop = move || shutdown.cancel();
        let tls = match &self.cluster.token {
            Some(_) => Some(Tls::generate().map_err(std::io::Error::other)?),
            None => None,
        };
        let served = match &tls {
            Some(tls) => Served::spawn(tls.listener(listener), self.router(), on_stop),
            None => Served::spawn(listener, self.router(), on_stop),
        };
        let controllers = tokio::spawn(controller::run(Arc::clone(&self.cluster)));
        Ok(RunningK8sSimulator {
            addr,
            tls,
            cluster: self.cluster,
            served,
            controllers: Some(controllers),
        })
    }
}

/// A simulator served over HTTP; stops when dropped.
#[derive(Debug)]
pub struct RunningK8sSimulator {
    addr: SocketAddr,
    tls: Option<Tls>,
    cluster: Arc<Cluster>,
    served: Served,
    controllers: Option<JoinHandle<()>>,
}

impl RunningK8sSimulator {
    /// The API server's URL: `https://127.0.0.1:43125` with a token, else `http://...`.
    #[must_use]
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The PEM certificate of the authority that signed the server's certificate, when
    /// serving HTTPS.
    #[must_use]
    pub fn ca_pem(&self) -> Option<&str> {
        self.tls.as_ref().map(|t| t.ca_pem.as_str())
    }

    /// The address served.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// In-process access to the cluster.
    #[must_use]
    pub fn handle(&self) -> K8sHandle {
        K8sHandle {
            cluster: Arc::clone(&self.cluster),
        }
    }

    /// A kubeconfig for this server, its current context `kyb-sim` with namespace
    /// `default`, the token and the CA when there are (JSON, which kubectl and kube-rs read
    /// as YAML).
    #[must_use]
    pub fn kubeconfig(&self) -> String {
        use base64::Engine as _;
        let mut user = json!({});
        if let Some(token) = &self.cluster.token {
            user["token"] = json!(token);
        }
        let mut cluster = json!({"server": self.url()});
        if let Some(tls) = &self.tls {
            cluster["certificate-authority-data"] =
                json!(base64::engine::general_purpose::STANDARD.encode(&tls.ca_pem));
        }
        let config = json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "kyb-sim", "cluster": cluster}],
            "users": [{"name": "kyb-sim", "user": user}],
            "contexts": [{"name": "kyb-sim", "context": {"cluster": "kyb-sim", "user": "kyb-sim", "namespace": "default"}}],
            "current-context": "kyb-sim",
            "preferences": {},
        });
        serde_json::to_string_pretty(&config).expect("a kubeconfig serializes")
    }

    /// Writes [`RunningK8sSimulator::kubeconfig`] to `path`.
    ///
    /// # Errors
    ///
    /// When the file cannot be written.
    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig())
    }

    /// The stable local URL of a Service with a selector, like `http://127.0.0.1:41234`,
    /// with the Docker-backed runtime: a TCP proxy that spreads connections over the ready
    /// pods the Service selects, on the port its first `ports` entry targets, and closes
    /// them while there is none. `None` without the runtime, or for a Service that does
    /// not exist (yet: the URL appears at the controllers' next pass) or has no selector.
    #[must_use]
    pub fn service_url(&self, namespace: &str, name: &str) -> Option<String> {
        self.handle().service_url(namespace, name)
    }

    /// Stops serving (ending open watches) and the controllers, removes the containers of
    /// the Docker-backed runtime, and returns.
    ///
    /// # Errors
    ///
    /// Fails when serving failed.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        self.cluster.shutdown.cancel();
        self.served.stop();
        if let Some(controllers) = self.controllers.take() {
            let _ = controllers.await;
        }
        if let Some(docker) = &self.cluster.docker {
            docker.shutdown().await;
        }
        self.served.finish().await
    }
}

impl Drop for RunningK8sSimulator {
    fn drop(&mut self) {
        self.cluster.shutdown.cancel();
        // Not shut down: remove the containers now (this blocks on the `docker` CLI).
        if self.served.stop()
            && let Some(docker) = &self.cluster.docker
        {
            docker.shutdown_blocking();
        }
    }
}
