//! The kubelet's steps for a container of the Docker-backed runtime: the same [`Step`]s,
//! events and back-offs as the virtual runtime (`runtime`), but a pull, a start, an exit
//! and readiness happen when the container's agent reports them rather than after fixed
//! simulated times. Commands go to the agent without waiting; its reports are applied at
//! the next pass, timed at that pass.
//!
//! Image faults still apply on top: `ImagePullBackOff` fails the pull without asking the
//! engine, `CrashLoop` removes the container as soon as it runs and records the fault's
//! exit code, `NeverReady` keeps it unready, `SlowStart` delays the start.

use std::time::SystemTime;

use serde_json::Value;

use super::super::docker::{Command, DockerPods, Report};
use super::events::Note;
use super::json::uid;
use super::runtime::{
    Container, EXIT_NOTICED, Exit, ImageFaults, PULL, PULL_ERROR_SHOWN, Step, backoff, go_duration,
};

/// What the kubelet remembers of the agent of a pod's first container.
#[derive(Debug, Default)]
pub(super) struct Real {
    /// The number of the last command sent; reports of earlier ones are stale.
    seq: u64,
    /// The step the last command was sent for: the current one's command is in flight.
    sent_for: Option<Step>,
    /// Whether the image was pulled for the start in flight (else it was already present).
    pulled: bool,
    /// What the readiness probe last said of the running container.
    ready: bool,
}

impl Real {
    fn send(&mut self, docker: &DockerPods, pod_uid: &str, step: &Step, command: Command) {
        self.seq += 1;
        self.sent_for = Some(step.clone());
        docker.send(pod_uid, self.seq, command);
    }

    fn sent(&self, step: &Step) -> bool {
        self.sent_for.as_ref() == Some(step)
    }
}

/// Moves the container through what its agent reported and every step due by `now`.
#[expect(
    clippy::too_many_arguments,
    reason = "the virtual runtime's `Container::advance` inputs, plus the agent and its memory"
)]
pub(super) fn advance(
    c: &mut Container,
    real: &mut Real,
    docker: &DockerPods,
    pod: &Value,
    faults: ImageFaults,
    now: SystemTime,
    pod_ref: &str,
    out: &mut Vec<Note>,
) {
    let pod_uid = uid(pod);
    for (seq, report) in docker.take_reports(pod_uid) {
        if seq == real.seq {
            apply(c, real, report, faults, now, out);
        }
    }
    let image = c.image.clone();
    // Every step but a crash moves time forward or waits; the bound guards against a bug.
    for _ in 0..1_000 {
        let next = match c.step.clone() {
            Step::Pulling { since } if faults.pull_fails => {
                if since + PULL > now {
                    break;
                }
                let at = since + PULL;
                c.pull_failures += 1;
                c.pull_message = None;
                let message = format!("Failed to pull image \"{image}\": {}", c.pull_error());
                out.push(c.note(at, true, "Failed", message));
                out.push(c.note(at, true, "Failed", "Error: ErrImagePull".into()));
                Step::PullFailed { at }
            }
            step @ Step::Pulling { .. } if !real.sent(&step) => {
                let command = Command::Pull {
                    image: image.clone(),
                };
                real.send(docker, pod_uid, &step, command);
                break;
            }
            Step::PullFailed { at } if at + PULL_ERROR_SHOWN <= now => {
                let shown = at + PULL_ERROR_SHOWN;
                let message = format!("Back-off pulling image \"{image}\"");
                out.push(c.note(shown, false, "BackOff", message));
                out.push(c.note(shown, true, "Failed", "Error: ImagePullBackOff".into()));
                Step::PullBackOff {
                    retry: at + backoff(c.pull_failures),
                }
            }
            Step::PullBackOff { retry } if retry <= now => {
                let message = format!("Pulling image \"{image}\"");
                out.push(c.note(retry, false, "Pulling", message));
                Step::Pulling { since: retry }
            }
            step @ Step::Starting { at } if at <= now && !real.sent(&step) => {
                let launch = Box::new(docker.launch(pod));
                real.send(docker, pod_uid, &step, Command::Start(launch));
                break;
            }
            step @ Step::Running { started } if faults.crash.is_some() => {
                real.send(docker, pod_uid, &step, Command::Stop);
                exited(c, faults.crash.unwrap_or(1), started, now);
                Step::Exited { at: now }
            }
            Step::Exited { at } if at + EXIT_NOTICED <= now => {
                // The first restart is immediate; later ones wait, counted from the exit.
                let noticed = at + EXIT_NOTICED;
                if c.restarts == 0 {
                    c.restarts += 1;
                    Step::Starting { at: noticed }
                } else {
                    let delay = backoff(c.restarts);
                    let message = format!(
                        "Back-off restarting failed container {} in pod {pod_ref}",
                        c.name
                    );
                    out.push(c.note(noticed, true, "BackOff", message));
                    Step::CrashBackOff {
                        until: (at + delay).max(noticed),
                        delay,
                    }
                }
            }
            Step::CrashBackOff { until, .. } if until <= now => {
                c.restarts += 1;
                Step::Starting { at: until }
            }
            _ => break,
        };
        c.step = next;
    }
    match c.step {
        Step::Running { .. } if real.ready && !faults.never_ready => {
            c.ready_since.get_or_insert(now);
        }
        _ => c.ready_since = None,
    }
}

/// Applies one report of the agent to the container, if it fits its step.
fn apply(
    c: &mut Container,
    real: &mut Real,
    report: Report,
    faults: ImageFaults,
    now: SystemTime,
    out: &mut Vec<Note>,
) {
    let image = c.image.clone();
    match (report, c.step.clone()) {
        (Report::Pulled, Step::Pulling { since }) => {
            let took = go_duration(now.duration_since(since).unwrap_or_default());
            let message = format!(
                "Successfully pulled image \"{image}\" in {took} ({took} including waiting)"
            );
            out.push(c.note(now, false, "Pulled", message));
            real.pulled = true;
            c.step = Step::Starting {
                at: now + faults.extra,
            };
        }
        (Report::PullFailed(message), Step::Pulling { .. }) => {
            c.pull_failures += 1;
            c.pull_message = Some(message);
            let message = format!("Failed to pull image \"{image}\": {}", c.pull_error());
            out.push(c.note(now, true, "Failed", message));
            out.push(c.note(now, true, "Failed", "Error: ErrImagePull".into()));
            c.step = Step::PullFailed { at: now };
        }
        (Report::Started { id }, Step::Starting { .. }) => {
            c.runtime_id = Some(id);
            if std::mem::take(&mut real.pulled) {
                c.start(now, out);
            } else {
                c.start_again(now, out);
            }
            real.ready = false;
            c.step = Step::Running { started: now };
        }
        (Report::StartFailed(message), Step::Starting { .. }) => {
            // As containerd reports a container that cannot start: exit code 128.
            out.push(c.note(now, true, "Failed", format!("Error: {message}")));
            real.pulled = false;
            exited(c, 128, now, now);
            c.step = Step::Exited { at: now };
        }
        (Report::Exited(code), Step::Running { started }) => {
            exited(c, code, started, now);
            c.step = Step::Exited { at: now };
        }
        (Report::Ready(ready), Step::Running { .. }) => real.ready = ready,
        _ => {}
    }
}

/// Records an exit of the run that started at `started`.
fn exited(c: &mut Container, code: i32, started: SystemTime, at: SystemTime) {
    c.earlier_exit = c.last_exit.take();
    c.last_exit = Some(Exit {
        code,
        started,
        finished: at,
        id: c.id(),
    });
    c.ready_since = None;
}
