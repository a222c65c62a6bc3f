//! The virtual container runtime: what the kubelet of the simulated node remembers about
//! each container (as the real kubelet keeps its back-off state in memory), advanced step
//! by step in simulated time.
//!
//! A container pulls its image (2 s), is created and started (1 s, plus any `SlowStart`),
//! and runs. With an `ImagePullBackOff` fault every pull fails and is retried after a
//! back-off of 10 s, 20 s, 40 s ... up to 5 min; with `CrashLoop` the container exits as
//! soon as it starts, shows as terminated for a second, and is restarted at once the first
//! time and then after the same back-off, counted from the exit.

use std::time::{Duration, SystemTime};

use super::super::faults::{Fault, FaultSet};
use super::events::Note;
use super::hash::hex_id;

/// How long an image pull takes.
pub(super) const PULL: Duration = Duration::from_secs(2);
/// How long creating and starting a container takes after the pull.
pub(super) const START: Duration = Duration::from_secs(1);
/// How long an exited container shows as terminated before the kubelet acts.
pub(super) const EXIT_NOTICED: Duration = Duration::from_secs(1);
/// How long `ErrImagePull` shows before `ImagePullBackOff`.
pub(super) const PULL_ERROR_SHOWN: Duration = Duration::from_secs(1);
const BACKOFF_START: u64 = 10;
const BACKOFF_MAX: u64 = 300;

/// The image faults that apply to one container.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct ImageFaults {
    pub(super) pull_fails: bool,
    pub(super) crash: Option<i32>,
    pub(super) never_ready: bool,
    pub(super) extra: Duration,
}

impl ImageFaults {
    /// The faults in force for `image`.
    pub(super) fn of(faults: &FaultSet, image: &str) -> Self {
        let mut out = Self::default();
        for fault in faults.for_image(image) {
            match fault {
                Fault::ImagePullBackOff { .. } => out.pull_fails = true,
                Fault::CrashLoop { exit_code, .. } => out.crash = Some(exit_code),
                Fault::NeverReady { .. } => out.never_ready = true,
                Fault::SlowStart { extra, .. } => out.extra += extra,
                _ => {}
            }
        }
        out
    }
}

/// Where a container is in its life.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Step {
    /// Pulling the image since `since`.
    Pulling { since: SystemTime },
    /// The pull failed at `at`: `ErrImagePull`.
    PullFailed { at: SystemTime },
    /// Waiting to pull again at `retry`: `ImagePullBackOff`.
    PullBackOff { retry: SystemTime },
    /// Pulled; being created, started at `at`.
    Starting { at: SystemTime },
    /// Running since `started`.
    Running { started: SystemTime },
    /// Exited at `at` (shown as terminated until the kubelet notices).
    Exited { at: SystemTime },
    /// Exited; restarted at `until`: `CrashLoopBackOff`.
    CrashBackOff { until: SystemTime, delay: Duration },
}

/// How a container last exited.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Exit {
    /// The exit code.
    pub(super) code: i32,
    /// When that run started.
    pub(super) started: SystemTime,
    /// When it exited.
    pub(super) finished: SystemTime,
    /// The ID of the exited container.
    pub(super) id: String,
}

/// One container of a pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Container {
    /// The container's name.
    pub(super) name: String,
    /// Its image.
    pub(super) image: String,
    /// Where it is.
    pub(super) step: Step,
    /// How many times it was restarted.
    pub(super) restarts: u32,
    /// Its last exit.
    pub(super) last_exit: Option<Exit>,
    /// The exit before the last, shown as the last state while the container is exited.
    pub(super) earlier_exit: Option<Exit>,
    /// Since when it is ready.
    pub(super) ready_since: Option<SystemTime>,
    /// Failed pulls so far.
    pub(super) pull_failures: u32,
    /// Unique per pod and container, for IDs.
    seed: String,
    /// The engine's message of the last failed pull (Docker-backed runtime).
    pub(super) pull_message: Option<String>,
    /// The engine's ID of the current container (Docker-backed runtime).
    pub(super) runtime_id: Option<String>,
}

/// The back-off after `n` failures: 10 s doubled each time, at most 5 min.
pub(super) fn backoff(n: u32) -> Duration {
    let doublings = n.saturating_sub(1).min(10);
    Duration::from_secs((BACKOFF_START << doublings).min(BACKOFF_MAX))
}

/// Go's `time.Duration` printing of whole seconds: `10s`, `1m20s`, `5m0s`.
pub(super) fn go_duration(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, m, s) => format!("{h}h{m}m{s}s"),
    }
}

impl Container {
    /// A container starting to pull its image at `now`.
    pub(super) fn new(
        pod_uid: &str,
        name: &str,
        image: &str,
        now: SystemTime,
        out: &mut Vec<Note>,
    ) -> Self {
        let c = Self {
            name: name.to_owned(),
            image: image.to_owned(),
            step: Step::Pulling { since: now },
            restarts: 0,
            last_exit: None,
            earlier_exit: None,
            ready_since: None,
            pull_failures: 0,
            seed: format!("{pod_uid}/{name}"),
            pull_message: None,
            runtime_id: None,
        };
        out.push(c.note(now, false, "Pulling", format!("Pulling image \"{image}\"")));
        c
    }

    /// A container found running since `started`, when the kubelet's memory of it is lost.
    pub(super) fn resumed(
        pod_uid: &str,
        name: &str,
        image: &str,
        started: SystemTime,
        restarts: u32,
        ready: bool,
    ) -> Self {
        Self {
            name: name.to_owned(),
            image: image.to_owned(),
            step: Step::Running { started },
            restarts,
            last_exit: None,
            earlier_exit: None,
            ready_since: ready.then_some(started),
            pull_failures: 0,
            seed: format!("{pod_uid}/{name}"),
            pull_message: None,
            runtime_id: None,
        }
    }

    /// The ID of the container of the current run (`restarts`).
    pub(super) fn id(&self) -> String {
        if let Some(id) = &self.runtime_id {
            return id.clone();
        }
        hex_id(&format!("{}/{}", self.seed, self.restarts), 64)
    }

    /// A digest for the image.
    pub(super) fn image_digest(&self) -> String {
        hex_id(&self.image, 64)
    }

    /// Whether it ever ran.
    pub(super) fn ran(&self) -> bool {
        matches!(
            self.step,
            Step::Running { .. } | Step::Exited { .. } | Step::CrashBackOff { .. }
        ) || self.last_exit.is_some()
    }

    /// The message of the pull error.
    pub(super) fn pull_error(&self) -> String {
        if let Some(message) = &self.pull_message {
            return message.clone();
        }
        let image = &self.image;
        format!(
            "rpc error: code = NotFound desc = failed to pull and unpack image \"{image}\": failed to resolve reference \"{image}\": {image}: not found"
        )
    }

    pub(super) fn note(
        &self,
        at: SystemTime,
        warning: bool,
        reason: &'static str,
        message: String,
    ) -> Note {
        Note {
            at,
            warning,
            reason,
            message,
            field_path: Some(format!("spec.containers{{{}}}", self.name)),
        }
    }

    /// Restarts the container with a new definition (an image changed in place).
    pub(super) fn replace_image(&mut self, image: &str, now: SystemTime, out: &mut Vec<Note>) {
        let message = format!(
            "Container {} definition changed, will be restarted",
            self.name
        );
        out.push(self.note(now, false, "Killing", message));
        self.image = image.to_owned();
        self.restarts += u32::from(self.ran());
        self.step = Step::Pulling { since: now };
        self.ready_since = None;
        self.pull_failures = 0;
        out.push(self.note(now, false, "Pulling", format!("Pulling image \"{image}\"")));
    }

    /// Moves the container through every step due by `now`. `from` is when it was last
    /// looked at: faults noticed now take effect no earlier. `pod` names the pod in
    /// messages (`name_namespace(uid)`); `readiness_delay` is the readiness probe's initial
    /// delay.
    pub(super) fn advance(
        &mut self,
        faults: ImageFaults,
        readiness_delay: Duration,
        from: SystemTime,
        now: SystemTime,
        pod: &str,
        out: &mut Vec<Note>,
    ) {
        let image = self.image.clone();
        // Every step moves time forward but a crash and its immediate first restart; the
        // bound only guards against a bug turning into a hang.
        for _ in 0..10_000 {
            let next = match self.step {
                Step::Pulling { since } if since + PULL <= now => {
                    let at = since + PULL;
                    if faults.pull_fails {
                        self.pull_failures += 1;
                        let message =
                            format!("Failed to pull image \"{image}\": {}", self.pull_error());
                        out.push(self.note(at, true, "Failed", message));
                        out.push(self.note(at, true, "Failed", "Error: ErrImagePull".into()));
                        Step::PullFailed { at }
                    } else {
                        let size = 10_000_000
                            + u64::from_str_radix(&self.image_digest()[..6], 16).unwrap_or(0) * 4;
                        let took = go_duration(PULL);
                        let message = format!(
                            "Successfully pulled image \"{image}\" in {took} ({took} including waiting). Image size: {size} bytes."
                        );
                        out.push(self.note(at, false, "Pulled", message));
                        Step::Starting {
                            at: at + START + faults.extra,
                        }
                    }
                }
                Step::PullFailed { at } if at + PULL_ERROR_SHOWN <= now => {
                    let shown = at + PULL_ERROR_SHOWN;
                    out.push(self.note(
                        shown,
                        false,
                        "BackOff",
                        format!("Back-off pulling image \"{image}\""),
                    ));
                    out.push(self.note(shown, true, "Failed", "Error: ImagePullBackOff".into()));
                    Step::PullBackOff {
                        retry: at + backoff(self.pull_failures),
                    }
                }
                Step::PullBackOff { retry } if retry <= now => {
                    out.push(self.note(
                        retry,
                        false,
                        "Pulling",
                        format!("Pulling image \"{image}\""),
                    ));
                    Step::Pulling { since: retry }
                }
                Step::Starting { at } if at <= now => {
                    self.start(at, out);
                    Step::Running { started: at }
                }
                Step::Running { started } if faults.crash.is_some() && started.max(from) <= now => {
                    let at = started.max(from);
                    self.earlier_exit = self.last_exit.take();
                    self.last_exit = Some(Exit {
                        code: faults.crash.unwrap_or(1),
                        started,
                        finished: at,
                        id: self.id(),
                    });
                    self.ready_since = None;
                    Step::Exited { at }
                }
                Step::Exited { at } if at + EXIT_NOTICED <= now => {
                    // The first restart is immediate; later ones wait, counted from the exit.
                    let noticed = at + EXIT_NOTICED;
                    if self.restarts == 0 {
                        self.restarts += 1;
                        self.start_again(noticed, out);
                        Step::Running { started: noticed }
                    } else {
                        let delay = backoff(self.restarts);
                        let message = format!(
                            "Back-off restarting failed container {} in pod {pod}",
                            self.name
                        );
                        out.push(self.note(noticed, true, "BackOff", message));
                        Step::CrashBackOff {
                            until: (at + delay).max(noticed),
                            delay,
                        }
                    }
                }
                Step::CrashBackOff { until, .. } if until <= now => {
                    self.restarts += 1;
                    self.start_again(until, out);
                    Step::Running { started: until }
                }
                _ => break,
            };
            self.step = next;
        }
        match self.step {
            Step::Running { started } if !faults.never_ready => {
                let ready_at = (started + readiness_delay).max(from);
                if self.ready_since.is_none() && started + readiness_delay <= now {
                    self.ready_since = Some(ready_at.min(now));
                }
            }
            _ => self.ready_since = None,
        }
    }

    pub(super) fn start(&self, at: SystemTime, out: &mut Vec<Note>) {
        out.push(self.note(
            at,
            false,
            "Created",
            format!("Created container: {}", self.name),
        ));
        out.push(self.note(
            at,
            false,
            "Started",
            format!("Started container {}", self.name),
        ));
    }

    pub(super) fn start_again(&self, at: SystemTime, out: &mut Vec<Note>) {
        let message = format!(
            "Container image \"{}\" already present on machine",
            self.image
        );
        out.push(self.note(at, false, "Pulled", message));
        self.start(at, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_up_to_five_minutes() {
        let secs: Vec<u64> = (1..=7).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(secs, [10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(go_duration(Duration::from_secs(80)), "1m20s");
        assert_eq!(go_duration(Duration::from_secs(300)), "5m0s");
        assert_eq!(go_duration(Duration::from_secs(3)), "3s");
    }

    #[test]
    fn a_healthy_container_pulls_starts_and_becomes_ready() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut out = Vec::new();
        let mut c = Container::new("u", "app", "web:v1", t0, &mut out);
        let faults = ImageFaults::default();
        c.advance(
            faults,
            Duration::from_secs(5),
            t0,
            t0 + Duration::from_secs(2),
            "p",
            &mut out,
        );
        assert!(matches!(c.step, Step::Starting { .. }));
        c.advance(
            faults,
            Duration::from_secs(5),
            t0,
            t0 + Duration::from_secs(4),
            "p",
            &mut out,
        );
        assert_eq!(
            c.step,
            Step::Running {
                started: t0 + Duration::from_secs(3)
            }
        );
        assert_eq!(c.ready_since, None);
        c.advance(
            faults,
            Duration::from_secs(5),
            t0,
            t0 + Duration::from_secs(9),
            "p",
            &mut out,
        );
        assert_eq!(c.ready_since, Some(t0 + Duration::from_secs(8)));
        let reasons: Vec<&str> = out.iter().map(|n| n.reason).collect();
        assert_eq!(reasons, ["Pulling", "Pulled", "Created", "Started"]);
    }
}
