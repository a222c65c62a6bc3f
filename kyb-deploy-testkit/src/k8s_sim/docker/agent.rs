//! The agent of one pod's container: a task that does what the kubelet asks of the engine
//! (pull, run, remove), one command at a time, and reports what happened: the outcome of
//! each command, the container's exit, and the readiness probe's verdicts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;
use tokio_util::sync::CancellationToken;

use super::probe::{self, Probe};
use crate::sim_runtime::container::{self, ContainerSpec, update};
use crate::sim_runtime::docker_cli::docker;

/// What to run for a pod's first container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Launch {
    /// The container's `env` entries with a `value`; the first word of its `command` as
    /// the entrypoint; the rest of `command`, then `args`, as the arguments; its TCP
    /// container ports and the probe's port as the ports.
    pub(crate) container: ContainerSpec,
    /// The readiness probe; without one the container is ready once it runs.
    pub(crate) probe: Option<Probe>,
    /// How the container ends when its pod is deleted.
    pub(crate) termination: Termination,
}

/// The kubelet's termination of a deleted pod's container, in real time: the `preStop`
/// sleep (the container keeps serving, out of the Service's endpoints), then SIGTERM,
/// then SIGKILL once the grace period (which the sleep counts against) has passed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Termination {
    pub(crate) pre_stop_sleep: Duration,
    pub(crate) grace: Duration,
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

pub(crate) type Shared = container::Shared<Observed>;

fn report(shared: &Shared, seq: u64, report: Report) {
    update(shared, |o| o.reports.push((seq, report)));
}

/// Serves the kubelet's commands until `cancel` or until the kubelet lets go of the
/// channel, then removes the container: at once when cancelled, after the running
/// container's [`Termination`] when let go of (its pod was deleted).
pub(crate) async fn run(
    program: PathBuf,
    name: String,
    mut commands: UnboundedReceiver<(u64, Command)>,
    observed: Shared,
    cancel: CancellationToken,
) {
    let running = serve(&program, &name, &mut commands, &observed, &cancel).await;
    if let Some(termination) = running.filter(|_| !cancel.is_cancelled()) {
        tokio::select! {
            () = cancel.cancelled() => {}
            () = terminate(&program, &name, termination) => {}
        }
    }
    container::remove(&program, &name).await;
}

async fn terminate(program: &Path, name: &str, termination: Termination) {
    tokio::time::sleep(termination.pre_stop_sleep.min(termination.grace)).await;
    let left = termination.grace.saturating_sub(termination.pre_stop_sleep);
    container::stop(program, name, left).await;
}

/// The next command, or `None` once cancelled or let go of.
async fn next_command(
    commands: &mut UnboundedReceiver<(u64, Command)>,
    cancel: &CancellationToken,
) -> Option<(u64, Command)> {
    tokio::select! {
        () = cancel.cancelled() => None,
        command = commands.recv() => command,
    }
}

/// Serves commands until cancelled or let go of; the termination of the container still
/// running then, if any.
async fn serve(
    program: &Path,
    name: &str,
    commands: &mut UnboundedReceiver<(u64, Command)>,
    observed: &Shared,
    cancel: &CancellationToken,
) -> Option<Termination> {
    let mut next = next_command(commands, cancel).await;
    while let Some((seq, command)) = next.take() {
        update(observed, |o| o.ports.clear());
        match command {
            Command::Pull { image } => {
                let pulled = tokio::select! {
                    () = cancel.cancelled() => return None,
                    pulled = docker(program, ["pull", image.as_str()]) => pulled,
                };
                let outcome = match pulled {
                    Ok(_) => Report::Pulled,
                    Err(message) => Report::PullFailed(message),
                };
                report(observed, seq, outcome);
            }
            Command::Stop => container::remove(program, name).await,
            Command::Start(launch) => {
                container::remove(program, name).await;
                // `docker run` is never cut short: killed halfway, the engine may still
                // create the container after the removal meant for it.
                let started = container::start(program, &launch.container).await;
                if cancel.is_cancelled() {
                    return None;
                }
                match started {
                    Err(message) => report(observed, seq, Report::StartFailed(message)),
                    Ok((id, ports)) => {
                        update(observed, |o| o.ports.clone_from(&ports));
                        report(observed, seq, Report::Started { id });
                        let verdicts = |ready| report(observed, seq, Report::Ready(ready));
                        tokio::select! {
                            () = cancel.cancelled() => return None,
                            command = commands.recv() => {
                                next = command;
                                if next.is_none() {
                                    return Some(launch.termination);
                                }
                                continue;
                            }
                            code = container::wait_exit(program, name) => {
                                update(observed, |o| o.ports.clear());
                                report(observed, seq, Report::Exited(code));
                            }
                            () = probe::watch(program, name, launch.probe.as_ref(), &ports, verdicts) => {}
                        }
                    }
                }
            }
        }
        next = next_command(commands, cancel).await;
    }
    None
}
