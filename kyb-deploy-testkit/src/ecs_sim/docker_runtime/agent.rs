//! The agent of one task: pulls the image, runs the container through the `docker` CLI,
//! watches it exit, checks its health over HTTP, and removes it when released.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::DockerRuntimeConfig;
use crate::sim_runtime::docker_cli::{docker, http_status, parse_host_port};

/// What the agent needs to run a task's essential container.
#[derive(Clone, Debug)]
pub(super) struct Launch {
    /// The container name, unique per simulator and task.
    pub(super) name: String,
    pub(super) image: String,
    pub(super) environment: Vec<(String, String)>,
    /// The container definition's `command`, appended to the image's entrypoint.
    pub(super) command: Vec<String>,
    /// The first `portMappings.containerPort`, published on an ephemeral 127.0.0.1 port.
    pub(super) port: Option<u16>,
    pub(super) labels: Vec<(String, String)>,
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
pub(super) type Shared = Arc<Mutex<Observed>>;

pub(super) fn update(shared: &Shared, change: impl FnOnce(&mut Observed)) {
    change(&mut shared.lock().unwrap_or_else(PoisonError::into_inner));
}

/// Runs the task's container until `cancel`, then removes it.
pub(super) async fn run(
    config: DockerRuntimeConfig,
    launch: Launch,
    observed: Shared,
    cancel: CancellationToken,
) {
    tokio::select! {
        () = cancel.cancelled() => {}
        () = drive(&config, &launch, &observed) => cancel.cancelled().await,
    }
    // By name: a `docker run` cut short by the cancellation may still have created it.
    let _ = docker(&config.docker, ["rm", "-f", launch.name.as_str()]).await;
}

async fn drive(config: &DockerRuntimeConfig, launch: &Launch, observed: &Shared) {
    if let Err(message) = docker(&config.docker, ["pull", launch.image.as_str()]).await {
        update(observed, |o| o.failure = Some(Failure::Pull(message)));
        return;
    }
    if let Err(message) = docker(&config.docker, run_args(launch)).await {
        update(observed, |o| o.failure = Some(Failure::Start(message)));
        return;
    }
    let mut host_port = None;
    if let Some(port) = launch.port {
        let published = docker(
            &config.docker,
            ["port", launch.name.as_str(), &format!("{port}/tcp")],
        )
        .await
        .map_err(Some)
        .and_then(|out| parse_host_port(&out).ok_or(None));
        match published {
            Ok(port) => host_port = Some(port),
            Err(message) => {
                let message =
                    message.unwrap_or_else(|| format!("container port {port} is not published"));
                update(observed, |o| o.failure = Some(Failure::Start(message)));
                return;
            }
        }
    }
    update(observed, |o| {
        o.started = true;
        o.host_port = host_port;
    });
    tokio::select! {
        exited = docker(&config.docker, ["wait", launch.name.as_str()]) => {
            // `docker wait` prints the exit code; a wait that fails means the container is
            // gone, which ECS reports like a crash.
            let code = exited.ok().and_then(|out| out.trim().parse().ok()).unwrap_or(137);
            update(observed, |o| o.failure = Some(Failure::Exited(code)));
        }
        () = check_health(config, launch, host_port, observed) => {}
    }
}

fn run_args(launch: &Launch) -> Vec<String> {
    let mut args = vec!["run".to_owned(), "-d".to_owned(), "--name".to_owned()];
    args.push(launch.name.clone());
    for (key, value) in &launch.labels {
        args.push("--label".into());
        args.push(format!("{key}={value}"));
    }
    for (key, value) in &launch.environment {
        args.push("-e".into());
        args.push(format!("{key}={value}"));
    }
    if let Some(port) = launch.port {
        args.push("-p".into());
        args.push(format!("127.0.0.1::{port}"));
    }
    args.push(launch.image.clone());
    args.extend(launch.command.iter().cloned());
    args
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
pub(super) async fn health_get(port: u16, timeout: Duration) -> bool {
    http_status(port, "/health", timeout)
        .await
        .is_some_and(|status| (200..300).contains(&status))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_arguments_publish_the_port_on_loopback() {
        let launch = Launch {
            name: "n".into(),
            image: "r/x:v1".into(),
            environment: vec![("A".into(), "1".into())],
            command: vec!["serve".into()],
            port: Some(8080),
            labels: vec![("io.kyb-sim.task".into(), "t".into())],
            health_check: false,
        };
        assert_eq!(
            run_args(&launch).join(" "),
            "run -d --name n --label io.kyb-sim.task=t -e A=1 -p 127.0.0.1::8080 r/x:v1 serve"
        );
    }
}
