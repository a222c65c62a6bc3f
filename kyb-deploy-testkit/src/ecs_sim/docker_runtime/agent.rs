//! The agent of one task: pulls the image, runs the container through the `docker` CLI,
//! watches it exit, checks its health over HTTP, and removes it when released.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::DockerRuntimeConfig;
use crate::sim_runtime::container::{self, ContainerSpec, update};
use crate::sim_runtime::docker_cli::{docker, http_status};

/// What the agent needs to run a task's essential container.
#[derive(Clone, Debug)]
pub(super) struct Launch {
    /// The container definition's `environment`; its `command` as the arguments (after the
    /// image's entrypoint); its first `portMappings.containerPort` as the one port.
    pub(super) container: ContainerSpec,
    /// Whether the container definition has a `healthCheck`.
    pub(super) health_check: bool,
}

/// What the agent has seen of the container so far.
#[derive(Clone, Debug, Default)]
pub(super) struct Observed {
    /// The container was started (the gate of PENDING -> RUNNING).
    pub(super) started: bool,
    pub(super) host_port: Option<u16>,
    /// `Some` once the health check decided; it can change later.
    pub(super) healthy: Option<bool>,
    pub(super) failure: Option<Failure>,
}

/// How a container failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Failure {
    /// `docker pull` failed with this engine message.
    Pull(String),
    /// `docker run` failed with this engine message.
    Start(String),
    /// The container exited with this code.
    Exited(i32),
}

/// Shared between the agent, which writes, and the controller, which reads.
pub(super) type Shared = container::Shared<Observed>;

/// Runs the task's container until `cancel`, then removes it.
pub(super) async fn run(
    config: DockerRuntimeConfig,
    launch: Launch,
    observed: Shared,
    cancel: CancellationToken,
) {
    drive(&config, &launch, &observed, &cancel).await;
    cancel.cancelled().await;
    container::remove(&config.docker, &launch.container.name).await;
}

async fn drive(
    config: &DockerRuntimeConfig,
    launch: &Launch,
    observed: &Shared,
    cancel: &CancellationToken,
) {
    let spec = &launch.container;
    let pulled = tokio::select! {
        () = cancel.cancelled() => return,
        pulled = docker(&config.docker, ["pull", spec.image.as_str()]) => pulled,
    };
    if let Err(message) = pulled {
        update(observed, |o| o.failure = Some(Failure::Pull(message)));
        return;
    }
    // `docker run` is never cut short: killed halfway, the engine may still create the
    // container after the removal meant for it, and it would outlive the simulator.
    let started = container::start(&config.docker, spec).await;
    if cancel.is_cancelled() {
        return;
    }
    let host_port = match started {
        Ok((_, ports)) => spec.ports.first().and_then(|port| ports.get(port).copied()),
        Err(message) => {
            update(observed, |o| o.failure = Some(Failure::Start(message)));
            return;
        }
    };
    update(observed, |o| {
        o.started = true;
        o.host_port = host_port;
    });
    tokio::select! {
        () = cancel.cancelled() => {}
        code = container::wait_exit(&config.docker, &spec.name) => {
            update(observed, |o| o.failure = Some(Failure::Exited(code)));
        }
        () = check_health(config, launch, host_port, observed) => {}
    }
}

/// Decides health from HTTP GETs of `/health`; never returns.
async fn check_health(
    config: &DockerRuntimeConfig,
    launch: &Launch,
    host_port: Option<u16>,
    observed: &Shared,
) {
    let Some(port) = host_port.filter(|_| launch.health_check) else {
        if launch.health_check {
            // Nothing to reach without a published port: the container counts as healthy
            // while it runs.
            update(observed, |o| o.healthy = Some(true));
        }
        return std::future::pending().await;
    };
    let (mut successes, mut failures) = (0_u32, 0_u32);
    loop {
        tokio::time::sleep(config.health_check_interval).await;
        if health_get(port, config.health_check_timeout).await {
            successes += 1;
            failures = 0;
        } else {
            failures += 1;
            successes = 0;
        }
        if successes >= config.healthy_threshold.max(1) {
            update(observed, |o| o.healthy = Some(true));
        } else if failures >= config.unhealthy_threshold.max(1) {
            update(observed, |o| o.healthy = Some(false));
        }
    }
}

/// Whether `GET /health` on 127.0.0.1:`port` answers 2xx within `timeout`.
async fn health_get(port: u16, timeout: Duration) -> bool {
    http_status(port, "/health", timeout)
        .await
        .is_some_and(|status| (200..300).contains(&status))
}
