//! The Docker-backed pod runtime: the first container of every pod is a real container of
//! its image, run through the local engine's `docker` CLI by an agent per pod, and every
//! Service with a selector gets a stable local URL (a TCP proxy) over its ready pods.
//!
//! The kubelet (`controller/pods.rs`, `controller/real.rs`) keeps the pod's status on the
//! simulated clock, as with the virtual runtime, but its steps wait for what the agent
//! reports: it sends commands (pull, start, stop) without waiting, and applies the reports
//! at its next pass. No engine call is made under the cluster's lock.

mod agent;
mod probe;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc::{self, UnboundedSender};

pub(crate) use self::agent::{Command, Launch, Report};
use self::agent::{Observed, Shared, Termination};
use self::probe::{Probe, container_port};
use super::cluster::Cluster;
use super::resources::kind;
use super::selector::{FieldSelector, LabelSelector};
use crate::sim_runtime::container::ContainerSpec;
use crate::sim_runtime::docker_cli;
use crate::sim_runtime::fleet::{Fleet, Members};
use crate::sim_runtime::proxy::{Backends, Proxy};

/// Settings of the Docker-backed pod runtime; see
/// [`K8sSimulatorBuilder::docker_runtime`](super::K8sSimulatorBuilder::docker_runtime).
///
/// ```
/// use std::time::Duration;
/// use kyb_deploy_testkit::k8s_sim::DockerPodsConfig;
///
/// let config = DockerPodsConfig {
///     min_probe_period: Duration::from_millis(50),
///     ..DockerPodsConfig::default()
/// };
/// assert_eq!(config.docker.to_str(), Some("docker"));
/// ```
#[derive(Clone, Debug)]
pub struct DockerPodsConfig {
    /// The Docker CLI to run (default `docker`, found on `PATH`).
    pub docker: PathBuf,
    /// The shortest real time between two readiness probes of a container (default
    /// 100 ms). A probe's `periodSeconds` and `initialDelaySeconds` are simulated time, so
    /// a time scale above 1 shortens them; this keeps a fast clock from hammering the
    /// container.
    pub min_probe_period: Duration,
}

impl Default for DockerPodsConfig {
    fn default() -> Self {
        Self {
            docker: PathBuf::from("docker"),
            min_probe_period: Duration::from_millis(100),
        }
    }
}

/// The longest real time a deleted pod's container is given to end gracefully, so a
/// fast clock's or a large `terminationGracePeriodSeconds` cannot keep containers around
/// for long.
const MAX_GRACE: Duration = Duration::from_secs(10);

/// Names a Service: namespace, name.
type ServiceKey = (String, String);

/// The pod runtime of one simulator: an agent per pod, a proxy per Service.
#[derive(Debug)]
pub(crate) struct DockerPods {
    config: DockerPodsConfig,
    cluster: Weak<Cluster>,
    fleet: Fleet<Agent, ServiceKey>,
}

/// What the runtime keeps of a pod's agent.
struct Agent {
    commands: UnboundedSender<(u64, Command)>,
    observed: Shared,
}

impl DockerPods {
    /// # Panics
    ///
    /// Outside a Tokio runtime: agents and proxies are spawned on it.
    pub(crate) fn new(config: DockerPodsConfig, cluster: Weak<Cluster>) -> Self {
        let fleet = Fleet::new(config.docker.clone(), "Kubernetes");
        Self {
            config,
            cluster,
            fleet,
        }
    }

    fn inner(&self) -> MutexGuard<'_, Members<Agent, ServiceKey>> {
        self.fleet.members()
    }

    /// Hands `command` (number `seq`) to the agent of the pod, started on first use.
    /// Returns at once; the outcome comes back through [`take_reports`](Self::take_reports).
    pub(crate) fn send(&self, pod_uid: &str, seq: u64, command: Command) {
        let mut inner = self.inner();
        if inner.closed {
            return;
        }
        let agent = inner.agents.entry(pod_uid.to_owned()).or_insert_with(|| {
            let (commands, receiver) = mpsc::unbounded_channel();
            let observed = Shared::default();
            let state = Agent {
                commands,
                observed: Arc::clone(&observed),
            };
            let (docker, name) = (self.config.docker.clone(), self.container_name(pod_uid));
            self.fleet.spawn(state, |cancel| {
                agent::run(docker, name, receiver, observed, cancel)
            })
        });
        let _ = agent.state.commands.send((seq, command));
    }

    /// The reports of the pod's agent since the last call, oldest first.
    pub(crate) fn take_reports(&self, pod_uid: &str) -> Vec<(u64, Report)> {
        let inner = self.inner();
        let Some(agent) = inner.agents.get(pod_uid) else {
            return Vec::new();
        };
        let mut observed = agent
            .state
            .observed
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        std::mem::take(&mut observed.reports)
    }

    /// Lets go of the agents of pods not in `alive` (deleted pods): each terminates its
    /// container as the kubelet would (`preStop` sleep, SIGTERM, SIGKILL after the grace
    /// period), then removes it.
    pub(crate) fn release_all_but(&self, alive: &HashSet<String>) {
        let mut inner = self.inner();
        let gone: Vec<String> = inner
            .agents
            .keys()
            .filter(|pod_uid| !alive.contains(*pod_uid))
            .cloned()
            .collect();
        for pod_uid in gone {
            // Dropping the agent's command channel is what tells it to terminate.
            drop(inner.release(&pod_uid));
        }
    }

    /// What the pod's container wrote (`docker logs`).
    pub(crate) async fn logs(&self, pod_uid: &str) -> Result<String, String> {
        docker_cli::logs(&self.config.docker, &self.container_name(pod_uid)).await
    }

    /// The container name of a pod: unique per simulator and pod uid.
    fn container_name(&self, pod_uid: &str) -> String {
        let short: String = pod_uid
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect();
        format!("kyb-sim-{}-{short}", self.fleet.id())
    }

    /// What to run for the first container of `pod`.
    pub(crate) fn launch(&self, pod: &Value) -> Launch {
        let container = &pod["spec"]["containers"][0];
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        };
        let env = container["env"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| Some((e["name"].as_str()?, e["value"].as_str()?)))
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect();
        let mut command = strings(&container["command"]).into_iter();
        let entrypoint = command.next();
        let args = command.chain(strings(&container["args"])).collect();
        let real = |simulated: Duration| match self.cluster.upgrade() {
            Some(cluster) if !cluster.clock.is_manual() => cluster.clock.real_time_for(simulated),
            _ => simulated,
        };
        let probe = Probe::of(container, real, self.config.min_probe_period);
        let mut ports: Vec<u16> = container["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["protocol"].as_str().is_none_or(|p| p == "TCP"))
            .filter_map(|p| p["containerPort"].as_u64())
            .filter_map(|p| u16::try_from(p).ok())
            .collect();
        ports.extend(probe.as_ref().and_then(Probe::port));
        ports.sort_unstable();
        ports.dedup();
        let meta = &pod["metadata"];
        let label = |key: &str, value: &Value| {
            (
                format!("io.kyb-sim.{key}"),
                value.as_str().unwrap_or_default().to_owned(),
            )
        };
        let spec = ContainerSpec {
            name: self.container_name(meta["uid"].as_str().unwrap_or_default()),
            image: container["image"].as_str().unwrap_or_default().to_owned(),
            env,
            entrypoint,
            args,
            ports,
            labels: vec![
                ("io.kyb-sim.simulator".into(), self.fleet.id().to_owned()),
                label("namespace", &meta["namespace"]),
                label("pod", &meta["name"]),
                label("pod-uid", &meta["uid"]),
                label("container", &container["name"]),
            ],
        };
        let seconds = |v: &Value| Duration::from_secs(v.as_u64().unwrap_or(0));
        let termination = Termination {
            pre_stop_sleep: real(seconds(
                &container["lifecycle"]["preStop"]["sleep"]["seconds"],
            )),
            grace: real(seconds(&pod["spec"]["terminationGracePeriodSeconds"])).min(MAX_GRACE),
        };
        Launch {
            container: spec,
            probe,
            termination,
        }
    }

    /// The published 127.0.0.1 port of a container port of the pod's running container.
    fn host_port(&self, pod_uid: &str, container_port: u16) -> Option<u16> {
        let inner = self.inner();
        let observed = inner.agents.get(pod_uid)?.state.observed.lock();
        let observed: &Observed = &observed.unwrap_or_else(PoisonError::into_inner);
        observed.ports.get(&container_port).copied()
    }

    /// Gives every Service of `services` that has a selector a proxy (kept while it
    /// exists), and stops the proxies of the others.
    pub(crate) fn sync_services(&self, services: &[Value]) {
        let wanted: HashSet<ServiceKey> = services
            .iter()
            .filter(|s| {
                s["spec"]["selector"]
                    .as_object()
                    .is_some_and(|m| !m.is_empty())
            })
            .map(|s| {
                let meta = &s["metadata"];
                let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
                (text(&meta["namespace"]), text(&meta["name"]))
            })
            .collect();
        let mut inner = self.inner();
        if inner.closed {
            return;
        }
        inner.proxies.retain(|key, _| wanted.contains(key));
        for key in wanted {
            if inner.proxies.contains_key(&key) {
                continue;
            }
            let cluster = Weak::clone(&self.cluster);
            let source = key.clone();
            let backends: Backends = Arc::new(move || ready_backends(&cluster, &source));
            if let Ok(proxy) = Proxy::start(self.fleet.runtime(), backends) {
                inner.proxies.insert(key, proxy);
            }
        }
    }

    /// `http://127.0.0.1:PORT` of the Service's proxy.
    pub(crate) fn service_url(&self, namespace: &str, name: &str) -> Option<String> {
        let key = (namespace.to_owned(), name.to_owned());
        let addr = self.inner().proxies.get(&key).map(Proxy::addr)?;
        Some(format!("http://{addr}"))
    }

    /// Removes every container of this simulator and stops its proxies.
    pub(crate) async fn shutdown(&self) {
        self.fleet.shutdown().await;
    }

    /// [`shutdown`](Self::shutdown) for `Drop`: blocks on the `docker` CLI.
    pub(crate) fn shutdown_blocking(&self) {
        self.fleet.shutdown_blocking();
    }
}

/// The published addresses of the ready pods the Service selects, on the port its first
/// `ports` entry targets.
fn ready_backends(cluster: &Weak<Cluster>, key: &ServiceKey) -> Vec<SocketAddr> {
    let Some(cluster) = cluster.upgrade() else {
        return Vec::new();
    };
    let (namespace, name) = key;
    let targets: Vec<(String, u16)> = {
        let state = cluster.lock();
        let Some(service) = state.store.find(kind("Service"), namespace, name) else {
            return Vec::new();
        };
        let Ok(selector) =
            LabelSelector::from_object(&json!({"matchLabels": service["spec"]["selector"]}))
        else {
            return Vec::new();
        };
        let port = &service["spec"]["ports"][0];
        let target = match &port["targetPort"] {
            Value::Null => &port["port"],
            target => target,
        };
        let pods = state.store.list(
            kind("Pod"),
            Some(namespace),
            &selector,
            &FieldSelector::default(),
        );
        pods.0
            .iter()
            .filter(|pod| is_ready(pod) && pod["metadata"]["deletionTimestamp"].is_null())
            .filter_map(|pod| {
                let port = container_port(&pod["spec"]["containers"][0], target)?;
                Some((pod["metadata"]["uid"].as_str()?.to_owned(), port))
            })
            .collect()
    };
    let Some(docker) = cluster.docker.as_ref() else {
        return Vec::new();
    };
    targets
        .iter()
        .filter_map(|(pod_uid, port)| docker.host_port(pod_uid, *port))
        .map(|port| SocketAddr::from(([127, 0, 0, 1], port)))
        .collect()
}

/// Whether the pod's `Ready` condition is `True`.
fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}
