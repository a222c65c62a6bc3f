//! The agent of one pod's container: a task that does what the kubelet asks of the engine
//! (pull, run, remove), one command at a time, and reports what happened: the outcome of
//! each command, the container's exit, and the readiness probe's verdicts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::mpsc::UnboundedReceiver;
use tokio_util::sync::CancellationToken;

use super::probe::{self, Probe};
use crate::sim_runtime::docker_cli::{docker, parse_host_port};

/// What to run for a pod's first container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Launch {
    /// The container name, unique per simulator and pod.
    pub(crate) name: String,
    pub(crate) image: String,
    /// The container's `env` entries with a `value`.
    pub(crate) env: Vec<(String, String)>,
    /// The first word of the container's `command`, which replaces the image's entrypoint.
    pub(crate) entrypoint: Option<String>,
    /// The rest of `command`, then `args`: what follows the image on `docker run`.
    pub(crate) args: Vec<String>,
    /// Container ports published on ephemeral 127.0.0.1 ports.
    pub(crate) ports: Vec<u16>,
    pub(crate) labels: Vec<(String, String)>,
    /// The readiness probe; without one the container is ready once it runs.
    pub(crate) probe: Option<Probe>,
}

/// What the kubelet asks the agent to do; each ends the container running before.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Command {
    /// `docker pull` of the image.
    Pull { image: String },
    /// `docker run` of the launch, then watching it.
    Start(Box<Launch>),
    /// Removes the container.
    Stop,
}

/// What the agent saw, tagged with the sequence number of the command it answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Report {
    Pulled,
    PullFailed(String),
    Started { id: String },
    StartFailed(String),
    Exited(i32),
    Ready(bool),
}

/// Shared between the agent, which writes, and the kubelet and the Service proxies, which
/// read.
#[derive(Debug, Default)]
pub(crate) struct Observed {
    /// Reports not yet taken by the kubelet, oldest first.
    pub(crate) reports: Vec<(u64, Report)>,
    /// Container port -> published 127.0.0.1 port, while the container runs.
    pub(crate) ports: BTreeMap<u16, u16>,
}

pub(crate) type Shared = Arc<Mutex<Observed>>;

fn update(shared: &Shared, change: impl FnOnce(&mut Observed)) {
    change(&mut shared.lock().unwrap_or_else(PoisonError::into_inner));
}

fn report(shared: &Shared, seq: u64, report: Report) {
    update(shared, |o| o.reports.push((seq, report)));
}

/// Serves the kubelet's commands until `cancel` or until the kubelet lets go of the
/// channel, then removes the container.
pub(crate) async fn run(
    program: PathBuf,
    name: String,
    mut commands: UnboundedReceiver<(u64, Command)>,
    observed: Shared,
    cancel: CancellationToken,
) {
    tokio::select! {
        () = cancel.cancelled() => {}
        () = serve(&program, &name, &mut commands, &observed) => {}
    }
    // By name: a `docker run` cut short by the cancellation may still have created it.
    let _ = docker(&program, ["rm", "-f", name.as_str()]).await;
}

async fn serve(
    program: &Path,
    name: &str,
    commands: &mut UnboundedReceiver<(u64, Command)>,
    observed: &Shared,
) {
    let mut next = commands.recv().await;
    while let Some((seq, command)) = next.take() {
        update(observed, |o| o.ports.clear());
        match command {
            Command::Pull { image } => {
                let outcome = match docker(program, ["pull", image.as_str()]).await {
                    Ok(_) => Report::Pulled,
                    Err(message) => Report::PullFailed(message),
                };
                report(observed, seq, outcome);
            }
            Command::Stop => {
                let _ = docker(program, ["rm", "-f", name]).await;
            }
            Command::Start(launch) => {
                let _ = docker(program, ["rm", "-f", name]).await;
                match start(program, &launch).await {
                    Err(message) => report(observed, seq, Report::StartFailed(message)),
                    Ok((id, ports)) => {
                        update(observed, |o| o.ports.clone_from(&ports));
                        report(observed, seq, Report::Started { id });
                        let verdicts = |ready| report(observed, seq, Report::Ready(ready));
                        tokio::select! {
                            command = commands.recv() => {
                                next = command;
                                if next.is_none() {
                                    return;
                                }
                                continue;
                            }
                            exited = docker(program, ["wait", name]) => {
                                // `docker wait` prints the exit code; a wait that fails means
                                // the container is gone, which the kubelet sees as a kill.
                                let code = exited.ok().and_then(|out| out.trim().parse().ok());
                                update(observed, |o| o.ports.clear());
                                report(observed, seq, Report::Exited(code.unwrap_or(137)));
                            }
                            () = probe::watch(program, name, launch.probe.as_ref(), &ports, verdicts) => {}
                        }
                    }
                }
            }
        }
        next = commands.recv().await;
    }
}

/// `docker run`, then the published ports; the container ID and the ports.
async fn start(program: &Path, launch: &Launch) -> Result<(String, BTreeMap<u16, u16>), String> {
    let id = docker(program, run_args(launch)).await?.trim().to_owned();
    let mut ports = BTreeMap::new();
    for port in &launch.ports {
        let published = docker(program, ["port", &launch.name, &format!("{port}/tcp")]).await?;
        let host = parse_host_port(&published)
            .ok_or_else(|| format!("container port {port} is not published"))?;
        ports.insert(*port, host);
    }
    Ok((id, ports))
}

fn run_args(launch: &Launch) -> Vec<String> {
    let mut args = vec!["run".to_owned(), "-d".to_owned(), "--name".to_owned()];
    args.push(launch.name.clone());
    for (key, value) in &launch.labels {
        args.push("--label".into());
        args.push(format!("{key}={value}"));
    }
    for (key, value) in &launch.env {
        args.push("-e".into());
        args.push(format!("{key}={value}"));
    }
    for port in &launch.ports {
        args.push("-p".into());
        args.push(format!("127.0.0.1::{port}"));
    }
    if let Some(entrypoint) = &launch.entrypoint {
        args.push("--entrypoint".into());
        args.push(entrypoint.clone());
    }
    args.push(launch.image.clone());
    args.extend(launch.args.iter().cloned());
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_arguments_publish_ports_on_loopback_and_override_the_entrypoint() {
        let launch = Launch {
            name: "n".into(),
            image: "r/x:v1".into(),
            env: vec![("A".into(), "1".into())],
            entrypoint: Some("/bin/app".into()),
            args: vec!["serve".into(), "--fast".into()],
            ports: vec![8080, 9090],
            labels: vec![("io.kyb-sim.pod".into(), "p".into())],
            probe: None,
        };
        assert_eq!(
            run_args(&launch).join(" "),
            "run -d --name n --label io.kyb-sim.pod=p -e A=1 -p 127.0.0.1::8080 \
             -p 127.0.0.1::9090 --entrypoint /bin/app r/x:v1 serve --fast"
        );
    }
}
