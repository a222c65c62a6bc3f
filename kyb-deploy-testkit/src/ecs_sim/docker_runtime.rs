//! The Docker-backed runtime: every task is a real container of its essential container's
//! image, run through the local engine's `docker` CLI, and every service gets a stable
//! local URL (a [`Proxy`]) over its healthy tasks.
//!
//! The controller still runs on the simulated clock; this runtime only reports what the
//! engine did, and the controller applies it at its next step:
//!
//! - A task's agent starts with the task: `docker pull`, then `docker run` with the
//!   container definition's `environment` and `command` (with RunTask's container
//!   override applied), its first `containerPort` published on an ephemeral 127.0.0.1
//!   port, and the labels `io.kyb-sim.simulator`, `io.kyb-sim.cluster`,
//!   `io.kyb-sim.service` (empty for RunTask's tasks), `io.kyb-sim.group` and
//!   `io.kyb-sim.task`.
//! - PENDING -> RUNNING waits for both the simulated pull time and the real container.
//! - A failed pull stops the task with `CannotPullContainerError: <engine message>`, a
//!   failed `docker run` with `CannotStartContainerError: ...`, an exit with
//!   `Essential container in task exited` and the exit code.
//! - With a `healthCheck` in the container definition, health comes from HTTP GETs of
//!   `/health` on the published port (the check's command is not run): healthy after
//!   [`DockerRuntimeConfig::healthy_threshold`] consecutive successes, and after
//!   [`DockerRuntimeConfig::unhealthy_threshold`] consecutive failures (once the grace
//!   period has passed) the task stops with `Task failed container health checks`.
//! - A task that stops, for whatever reason, has its container removed.

mod agent;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use serde_json::Value;

use self::agent::{Failure, Launch, Observed, Shared};
use super::lifecycle::{FailedTask, fail};
use super::model::{Phase, Task, TaskDefinition, find_task_definition};
use super::shared::Core;
use crate::sim_runtime::container::ContainerSpec;
use crate::sim_runtime::fleet::{Fleet, Members};
use crate::sim_runtime::proxy::{Backends, Proxy};

/// Settings of the Docker-backed runtime; see
/// [`EcsSimulatorBuilder::docker_runtime`](super::EcsSimulatorBuilder::docker_runtime).
///
/// ```
/// use std::time::Duration;
/// use kyb_deploy_testkit::ecs_sim::DockerRuntimeConfig;
///
/// let config = DockerRuntimeConfig {
///     health_check_interval: Duration::from_millis(200),
///     ..DockerRuntimeConfig::default()
/// };
/// assert_eq!(config.healthy_threshold, 2);
/// ```
#[derive(Clone, Debug)]
pub struct DockerRuntimeConfig {
    /// The Docker CLI to run (default `docker`, found on `PATH`).
    pub docker: PathBuf,
    /// Real time between two health checks of a task.
    pub health_check_interval: Duration,
    /// Real time a health check may take.
    pub health_check_timeout: Duration,
    /// Consecutive passed checks after which a task is healthy.
    pub healthy_threshold: u32,
    /// Consecutive failed checks after which a task is unhealthy and stopped.
    pub unhealthy_threshold: u32,
}

impl Default for DockerRuntimeConfig {
    fn default() -> Self {
        Self {
            docker: PathBuf::from("docker"),
            health_check_interval: Duration::from_millis(500),
            health_check_timeout: Duration::from_secs(2),
            healthy_threshold: 2,
            unhealthy_threshold: 3,
        }
    }
}

/// Names a service: region, cluster name, service name.
type ServiceKey = (String, String, String);

/// The runtime of one simulator: an agent per task (sharing what it saw), a proxy per
/// service.
#[derive(Debug)]
pub(crate) struct DockerRuntime {
    config: DockerRuntimeConfig,
    core: Weak<Core>,
    fleet: Fleet<Shared, ServiceKey>,
}

impl DockerRuntime {
    /// # Panics
    ///
    /// Panics outside a Tokio runtime: agents and proxies are spawned on it.
    pub(crate) fn new(config: DockerRuntimeConfig, core: Weak<Core>) -> Self {
        let fleet = Fleet::new(config.docker.clone(), "ECS");
        Self {
            config,
            core,
            fleet,
        }
    }

    fn inner(&self) -> MutexGuard<'_, Members<Shared, ServiceKey>> {
        self.fleet.members()
    }

    /// Brings `task` up to date with its container before its lifecycle step at `at`:
    /// launches the container of a new task, applies what the engine reported, and removes
    /// the container of a stopped task. Tells whether the task failed, and whether its
    /// container has started (the gate of PENDING -> RUNNING).
    pub(crate) fn sync_task(
        &self,
        task: &mut Task,
        at: f64,
        grace: f64,
        region: &str,
        families: &BTreeMap<String, Vec<TaskDefinition>>,
    ) -> (Option<FailedTask>, bool) {
        let mut inner = self.inner();
        let wanted = task.desired_running && task.phase != Phase::Stopped;
        if wanted && !inner.agents.contains_key(&task.id) && !inner.closed {
            let definition = find_task_definition(families, &task.task_definition);
            if let Some(launch) = definition.and_then(|d| self.launch(task, d, region)) {
                let observed = Shared::default();
                let config = self.config.clone();
                let agent = self.fleet.spawn(Arc::clone(&observed), |cancel| {
                    agent::run(config, launch, observed, cancel)
                });
                inner.agents.insert(task.id.clone(), agent);
            }
        }
        let Some(agent) = inner.agents.get(&task.id) else {
            return (None, false);
        };
        let observed = agent
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let failed = if wanted {
            apply(task, &observed, at, grace)
        } else {
            None
        };
        if !task.desired_running {
            inner.retire(&task.id);
        }
        (failed, observed.started)
    }

    /// What to run for `task`: its first essential container.
    fn launch(&self, task: &Task, definition: &TaskDefinition, region: &str) -> Option<Launch> {
        let spec = task.containers.iter().find(|c| c.essential)?;
        let body = definition.body["containerDefinitions"]
            .as_array()
            .and_then(|all| all.iter().find(|c| c["name"] == spec.name.as_str()))
            .cloned()
            .unwrap_or(Value::Null);
        // RunTask's container override replaces the command and adds to (or replaces
        // entries of) the environment.
        let override_ = task
            .overrides
            .as_ref()
            .and_then(|o| o["containerOverrides"].as_array())
            .and_then(|all| all.iter().find(|c| c["name"] == spec.name.as_str()))
            .cloned()
            .unwrap_or(Value::Null);
        let pairs = |value: &Value| -> Vec<(String, String)> {
            value
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|pair| Some((pair["name"].as_str()?, pair["value"].as_str()?)))
                .map(|(name, value)| (name.to_owned(), value.to_owned()))
                .collect()
        };
        let mut environment = pairs(&body["environment"]);
        for (name, value) in pairs(&override_["environment"]) {
            environment.retain(|(existing, _)| *existing != name);
            environment.push((name, value));
        }
        let command_source = if override_["command"].is_array() {
            &override_["command"]
        } else {
            &body["command"]
        };
        let command = command_source
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|arg| arg.as_str().map(str::to_owned))
            .collect();
        let port = body["portMappings"][0]["containerPort"]
            .as_u64()
            .and_then(|port| u16::try_from(port).ok());
        let cluster = task.cluster_arn.rsplit('/').next().unwrap_or_default();
        let id = self.fleet.id();
        let container = ContainerSpec {
            name: format!("kyb-sim-{id}-{}", task.id),
            image: spec.image.clone(),
            env: environment,
            entrypoint: None,
            args: command,
            ports: port.into_iter().collect(),
            labels: vec![
                ("io.kyb-sim.simulator".into(), id.to_owned()),
                ("io.kyb-sim.region".into(), region.to_owned()),
                ("io.kyb-sim.cluster".into(), cluster.to_owned()),
                ("io.kyb-sim.service".into(), task.service.clone()),
                ("io.kyb-sim.group".into(), task.group.clone()),
                ("io.kyb-sim.task".into(), task.arn.clone()),
            ],
        };
        Some(Launch {
            container,
            health_check: spec.has_health_check,
        })
    }

    /// The published host port of a task's container.
    fn host_port(&self, task: &str) -> Option<u16> {
        let inner = self.inner();
        let observed = inner.agents.get(task)?.state.lock();
        observed.unwrap_or_else(PoisonError::into_inner).host_port
    }

    /// The address of the service's proxy, started on first use.
    pub(crate) fn ensure_proxy(
        &self,
        region: &str,
        cluster: &str,
        service: &str,
    ) -> Option<SocketAddr> {
        let key: ServiceKey = (region.to_owned(), cluster.to_owned(), service.to_owned());
        let mut inner = self.inner();
        if let Some(proxy) = inner.proxies.get(&key) {
            return Some(proxy.addr());
        }
        if inner.closed {
            return None;
        }
        let core = Weak::clone(&self.core);
        let source = key.clone();
        let backends: Backends = Arc::new(move || healthy_backends(&core, &source));
        let proxy = Proxy::start(self.fleet.runtime(), backends).ok()?;
        let addr = proxy.addr();
        inner.proxies.insert(key, proxy);
        Some(addr)
    }

    /// The address of the service's proxy, if it was started.
    pub(crate) fn proxy_addr(
        &self,
        region: &str,
        cluster: &str,
        service: &str,
    ) -> Option<SocketAddr> {
        let key: ServiceKey = (region.to_owned(), cluster.to_owned(), service.to_owned());
        self.inner().proxies.get(&key).map(Proxy::addr)
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

/// Applies the engine's report to a task that should run; tells when it failed.
fn apply(task: &mut Task, observed: &Observed, at: f64, grace: f64) -> Option<FailedTask> {
    if let Some(failure) = &observed.failure {
        let (reason, code, exit_code) = match failure {
            Failure::Pull(message) => (
                format!("CannotPullContainerError: {message}"),
                "TaskFailedToStart",
                None,
            ),
            Failure::Start(message) => (
                format!("CannotStartContainerError: {message}"),
                "TaskFailedToStart",
                None,
            ),
            Failure::Exited(code) => (
                "Essential container in task exited".to_owned(),
                "EssentialContainerExited",
                Some(*code),
            ),
        };
        return Some(fail(task, at, reason, code, exit_code));
    }
    if task.phase != Phase::Running || !task.containers.iter().any(|c| c.has_health_check) {
        return None;
    }
    match observed.healthy {
        Some(true) => task.healthy = true,
        Some(false) => {
            let started = task.times.started.unwrap_or(at);
            if at >= started + grace {
                let reason = "Task failed container health checks".to_owned();
                return Some(fail(task, at, reason, "TaskFailedToStart", None));
            }
        }
        None => {}
    }
    None
}

/// The published addresses of the service's RUNNING, healthy tasks.
fn healthy_backends(core: &Weak<Core>, key: &ServiceKey) -> Vec<SocketAddr> {
    let Some(core) = core.upgrade() else {
        return Vec::new();
    };
    let (region, cluster, service) = key;
    let ids: Vec<String> = {
        let inner = core.lock();
        let tasks = inner
            .state
            .regions
            .get(region)
            .and_then(|r| r.clusters.get(cluster))
            .map(|c| c.tasks.as_slice())
            .unwrap_or_default();
        tasks
            .iter()
            .filter(|t| &t.service == service && t.is_active() && t.phase == Phase::Running)
            .filter(|t| t.healthy)
            .map(|t| t.id.clone())
            .collect()
    };
    let Some(docker) = core.docker.as_ref() else {
        return Vec::new();
    };
    ids.iter()
        .filter_map(|id| docker.host_port(id))
        .map(|port| SocketAddr::from(([127, 0, 0, 1], port)))
        .collect()
}
