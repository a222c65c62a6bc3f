//! `kyb-deploy status`: what runs in an environment, and its latest runs.

use kyb_deploy_core::{DeploymentRecord, LedgerProblem, Release, Serving, TargetDescription};
use serde::Serialize;

use crate::args::{GlobalArgs, OutputFormat, StatusArgs};
use crate::context::CliContext;
use crate::error::CliError;
use crate::exit_codes::ExitCodes;
use crate::output::{errors, format, json, table};
use crate::project::{Project, cancellable};

/// The JSON payload of `status`.
#[derive(Serialize)]
struct Status {
    environment: String,
    /// The target kind configured for the environment.
    target_kind: String,
    /// What the target says about itself; null when it could not be reached.
    target: Option<TargetDescription>,
    /// The release that answers requests now: the one the platform is moving to when it has
    /// anything running, else the one that still has. Null when nothing runs (or unknown).
    running: Option<Release>,
    /// Every release the platform runs or is rolling out, with its counts: what serves, not
    /// what was asked for.
    serving: Vec<Serving>,
    /// The latest verified deployment in the ledger.
    last_known_good: Option<DeploymentRecord>,
    /// The latest runs, oldest first.
    recent: Vec<DeploymentRecord>,
    /// Runs still marked in progress.
    unfinished: Vec<DeploymentRecord>,
    /// Lines of the ledger that could not be read.
    ledger_problems: Vec<LedgerProblem>,
    /// Why the target could not be described, if it could not.
    error: Option<String>,
}

pub(crate) async fn run(
    args: StatusArgs,
    global: &GlobalArgs,
    ctx: &mut CliContext,
) -> Result<i32, CliError> {
    let project = Project::load(ctx, global)?;
    let env = project.environment(&args.environment, None)?;
    // Only the end of the ledger is read: the latest runs, the last known-good one, and the
    // runs never finished since the newest deploy.
    let ledger = project.state(&env).await?.records;
    let mut recent = ledger.recent(Some(&env.name), args.limit).await?;
    let last_known_good = ledger
        .find_latest_verified(&env.name, &DeploymentRecord::is_known_good)
        .await?;
    let unfinished = ledger.in_progress(&env.name).await?;

    // The ledger part is shown even when the target cannot be reached.
    let described = match project.target(ctx, &env).await {
        Err(e) => Err(e),
        Ok(target) => {
            cancellable(&ctx.cancel, async {
                let description = target.describe().await?;
                let serving = target.serving().await?;
                Ok::<_, CliError>((description, serving))
            })
            .await?
        }
    };
    let (target, serving, failure) = match described {
        Ok((description, serving)) => (Some(description), serving, None),
        Err(e) => (None, Vec::new(), Some(e)),
    };
    let running = answering(&serving).map(|s| s.release.clone());

    recent.records.sort_by_key(|r| r.started_at);
    let status = Status {
        environment: env.name.clone(),
        target_kind: env.settings.target.to_string(),
        target,
        running,
        serving,
        last_known_good,
        recent: recent.records,
        unfinished,
        ledger_problems: recent.problems,
        error: failure.as_ref().map(ToString::to_string),
    };
    let code = failure
        .as_ref()
        .map_or(ExitCodes::SUCCESS, CliError::exit_code);

    let mut out = ctx.stdout.clone();
    if global.output == OutputFormat::Json {
        json::write_document(&mut out, code, "status", &status).map_err(CliError::Output)?;
        return Ok(code);
    }
    for problem in &status.ledger_problems {
        let _ = ctx.stderr.write_text(&format!(
            "{} ledger {problem}\n",
            ctx.style.warn("warning:"),
        ));
    }
    ctx.stdout
        .write_text(&render(&status))
        .map_err(CliError::Output)?;
    if let Some(error) = &failure {
        let _ = ctx.stderr.write_text(&errors::render(error, ctx.style));
    }
    Ok(code)
}

/// The release that answers requests: the primary one if anything of it runs, else the
/// first (newest) that has something running.
fn answering(serving: &[Serving]) -> Option<&Serving> {
    serving
        .iter()
        .find(|s| s.primary && s.answers())
        .or_else(|| serving.iter().find(|s| s.answers()))
}

/// `running     v2 (image) 2/2 running, COMPLETED` or, for a rollout with nothing up yet,
/// `rolling out v3 (image) 0/2 running, IN_PROGRESS: not serving yet`.
fn serving_line(serving: &Serving) -> String {
    let label = match (serving.primary, serving.answers()) {
        (_, true) => "running",
        (true, false) => "rolling out",
        (false, false) => "draining",
    };
    let mut line = format!(
        "{label:<12}{} ({})",
        serving.release.version, serving.release.image
    );
    match (serving.running, serving.desired) {
        (Some(running), Some(desired)) => line.push_str(&format!(" {running}/{desired} running")),
        (Some(running), None) => line.push_str(&format!(" {running} running")),
        _ => {}
    }
    if let Some(state) = &serving.state {
        line.push_str(&format!(", {state}"));
    }
    if !serving.answers() {
        line.push_str(": not serving");
    }
    line
}

fn render(status: &Status) -> String {
    let mut lines = vec![format!(
        "{:<12}{} ({} target)",
        "environment", status.environment, status.target_kind
    )];
    match &status.target {
        Some(target) => {
            lines.push(format!("{:<12}{}", "target", target.name));
            if let Some(endpoint) = &target.endpoint {
                lines.push(format!("{:<12}{endpoint}", "endpoint"));
            }
            for (key, value) in &target.details {
                lines.push(format!("{:<12}{key}: {value}", ""));
            }
            if status.serving.is_empty() {
                lines.push(format!("{:<12}nothing", "running"));
            }
            for serving in &status.serving {
                lines.push(serving_line(serving));
            }
        }
        None => lines.push(format!(
            "{:<12}unknown: the target could not be reached (below)",
            "running"
        )),
    }
    lines.push(format!(
        "{:<12}{}",
        "last good",
        status.last_known_good.as_ref().map_or_else(
            || "none recorded".to_owned(),
            |r| format!(
                "{} (run {} by {}, {})",
                r.version,
                r.id,
                r.actor,
                format::timestamp(r.started_at)
            )
        )
    ));
    for run in &status.unfinished {
        lines.push(format!(
            "{:<12}run {} ({} by {}, pid {}, started {}) never finished: still running, or killed",
            "unfinished",
            run.id,
            run.version,
            run.actor,
            run.pid,
            format::timestamp(run.started_at)
        ));
    }
    let mut text = lines.join("\n");
    text.push('\n');
    if status.recent.is_empty() {
        text.push_str("no runs recorded\n");
    } else {
        let recent: Vec<&DeploymentRecord> = status.recent.iter().collect();
        text.push_str("\nrecent runs:\n");
        text.push_str(&table::records(&recent));
    }
    text
}

#[cfg(test)]
mod tests {
    use kyb_deploy_core::Version;

    use super::*;

    fn serving(v: &str, running: Option<u32>, primary: bool, state: &str) -> Serving {
        Serving {
            release: Release::new(Version::parse(v).unwrap(), format!("repo:{v}")),
            running,
            desired: running.map(|_| 2),
            primary,
            state: Some(state.to_owned()),
        }
    }

    #[test]
    fn a_rollout_with_nothing_running_is_not_what_serves() {
        let rolling = [
            serving("v2", Some(0), true, "IN_PROGRESS"),
            serving("v1", Some(2), false, "COMPLETED"),
        ];
        assert_eq!(answering(&rolling).unwrap().release.version.as_str(), "v1");
        assert_eq!(
            serving_line(&rolling[0]),
            "rolling out v2 (repo:v2) 0/2 running, IN_PROGRESS: not serving"
        );
        assert_eq!(
            serving_line(&rolling[1]),
            "running     v1 (repo:v1) 2/2 running, COMPLETED"
        );

        let both = [
            serving("v2", Some(1), true, "IN_PROGRESS"),
            serving("v1", Some(2), false, "COMPLETED"),
        ];
        assert_eq!(answering(&both).unwrap().release.version.as_str(), "v2");

        let drained = [
            serving("v2", Some(2), true, "COMPLETED"),
            serving("v1", Some(0), false, "COMPLETED"),
        ];
        assert_eq!(
            serving_line(&drained[1]),
            "draining    v1 (repo:v1) 0/2 running, COMPLETED: not serving"
        );

        let nothing = [serving("v2", Some(0), true, "IN_PROGRESS")];
        assert!(answering(&nothing).is_none());
        // A target that cannot count (the fake, a plain container): what it reports serves.
        let uncounted = [serving("v3", None, true, "running")];
        assert_eq!(
            answering(&uncounted).unwrap().release.version.as_str(),
            "v3"
        );
        assert_eq!(
            serving_line(&uncounted[0]),
            "running     v3 (repo:v3), running"
        );
    }
}
