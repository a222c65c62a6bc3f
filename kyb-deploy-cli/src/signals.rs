//! Interruptions: SIGINT (Ctrl-C), SIGTERM and SIGHUP all stop a run at its next safe point.
//!
//! CI systems cancel a job with SIGTERM (GitHub Actions sends SIGINT, then SIGTERM, then
//! SIGKILL), and a closed terminal sends SIGHUP: each gets the handling of a first Ctrl-C.
//! The run stops at its next safe point, applies the environment's rollback policy, finalizes
//! its record and exits 130. A second Ctrl-C exits at once; further SIGTERMs and SIGHUPs do
//! not cut the rollback short. Whatever happens, the process ends within the grace period
//! after the first signal.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use kyb_deploy_core::CancellationToken;
use kyb_deploy_core::config::Environment;

use crate::args::OutputFormat;
use crate::exit_codes::ExitCodes;
use crate::output::progress::Progress;
use crate::output::writer::SharedWriter;

/// The grace period before a command knows its environment: enough to finish writing.
const DEFAULT_GRACE: Duration = Duration::from_secs(60);

/// Added to an environment's deploy and rollback limits for the grace period: the final
/// record and the notifications (whose budget is below it).
const GRACE_MARGIN: Duration = Duration::from_secs(60);

/// How long an interrupted run may take to stop, shared by the command (which knows the
/// environment) and the signal watcher.
#[derive(Clone, Debug)]
pub(crate) struct Grace(Arc<Mutex<Duration>>);

impl Default for Grace {
    fn default() -> Self {
        Self(Arc::new(Mutex::new(DEFAULT_GRACE)))
    }
}

impl Grace {
    /// Sets the grace period for a run in `env`: a deploy call that must not be abandoned,
    /// then the rollback (its verification included), then the record and notifications.
    pub(crate) fn set_for(&self, env: &Environment) {
        let timeouts = &env.settings.timeouts;
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = timeouts
            .deploy
            .saturating_add(timeouts.rollback)
            .saturating_add(GRACE_MARGIN);
    }

    fn get(&self) -> Duration {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Which interruption arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Interruption {
    Interrupt,
    Terminate,
    Hangup,
}

impl Interruption {
    fn name(self) -> &'static str {
        match self {
            Self::Interrupt => "SIGINT",
            Self::Terminate => "SIGTERM",
            Self::Hangup => "SIGHUP",
        }
    }
}

/// The process's interruption signals, as one stream.
struct Signals {
    #[cfg(unix)]
    streams: [(Interruption, tokio::signal::unix::Signal); 3],
}

impl Signals {
    #[cfg(unix)]
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            streams: [
                (Interruption::Interrupt, signal(SignalKind::interrupt())?),
                (Interruption::Terminate, signal(SignalKind::terminate())?),
                (Interruption::Hangup, signal(SignalKind::hangup())?),
            ],
        })
    }

    #[cfg(not(unix))]
    fn install() -> std::io::Result<Self> {
        Ok(Self {})
    }

    #[cfg(unix)]
    async fn next(&mut self) -> Option<Interruption> {
        let [(a, sa), (b, sb), (c, sc)] = &mut self.streams;
        tokio::select! {
            r = sa.recv() => r.map(|()| *a),
            r = sb.recv() => r.map(|()| *b),
            r = sc.recv() => r.map(|()| *c),
        }
    }

    #[cfg(not(unix))]
    async fn next(&mut self) -> Option<Interruption> {
        tokio::signal::ctrl_c()
            .await
            .ok()
            .map(|()| Interruption::Interrupt)
    }
}

/// Watches for interruptions for the rest of the process: the first cancels the run; a
/// second SIGINT, or the end of the grace period, exits at once.
pub(crate) async fn watch(
    cancel: CancellationToken,
    stderr: SharedWriter,
    active: Arc<Mutex<Option<Progress>>>,
    format: OutputFormat,
    grace: Grace,
) {
    // Notes go above the spinners of the run in progress, when there is one. With
    // `--output json`, stderr carries only JSON lines: the report says the run was cancelled.
    let note = move |text: &str| {
        if format == OutputFormat::Json {
            return;
        }
        let progress = active
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match progress {
            Some(progress) => progress.line(text),
            None => {
                let _ = stderr.write_text(&format!("{text}\n"));
            }
        }
    };
    let Ok(mut signals) = Signals::install() else {
        return;
    };
    let Some(first) = signals.next().await else {
        return;
    };
    cancel.cancel();
    let grace_period = grace.get();
    note(&format!(
        "interrupted ({}): stopping at the next safe point and applying the rollback policy, within {} (press Ctrl-C again to exit at once)",
        first.name(),
        humantime::format_duration(grace_period)
    ));
    let deadline = tokio::time::sleep(grace_period);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            () = &mut deadline => {
                note("the interrupted run did not stop within its grace period: exiting now; its ledger record may stay in_progress until the next run resolves it");
                exit_now();
            }
            again = signals.next() => match again {
                Some(Interruption::Interrupt) => {
                    note("interrupted again: exiting now; the run's ledger record may stay in_progress until the next run resolves it");
                    exit_now();
                }
                Some(other) => note(&format!(
                    "{} received: already stopping (press Ctrl-C to exit at once)",
                    other.name()
                )),
                None => return,
            },
        }
    }
}

#[expect(
    clippy::exit,
    reason = "a second Ctrl-C, or a run that overstays its grace period, must end the process without waiting for a safe point"
)]
fn exit_now() -> ! {
    std::process::exit(ExitCodes::INTERRUPTED)
}
