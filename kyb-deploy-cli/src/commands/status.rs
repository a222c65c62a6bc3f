//! `kyb-deploy status`: what runs in an environment, and its latest runs.

use kyb_deploy_core::{DeploymentRecord, LedgerProblem, RecordStore, Release, TargetDescription};
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
    /// The release running now, as the target reports it.
    running: Option<Release>,
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
    let snapshot = project.ledger().load().await?;

    // The ledger part is shown even when the target cannot be reached.
    let described = match project.target(ctx, &env).await {
        Err(e) => Err(e),
        Ok(target) => {
            cancellable(&ctx.cancel, async {
                let description = target.describe().await?;
                let running = target.current_release().await?;
                Ok::<_, CliError>((description, running))
            })
            .await?
        }
    };
    let (target, running, failure) = match described {
        Ok((description, running)) => (Some(description), running, None),
        Err(e) => (None, None, Some(e)),
    };

    let mut recent: Vec<DeploymentRecord> = snapshot.for_environment(&env.name).cloned().collect();
    recent.sort_by_key(|r| r.started_at);
    let skip = recent.len().saturating_sub(args.limit);
    recent.drain(..skip);
    let status = Status {
        environment: env.name.clone(),
        target_kind: env.settings.target.to_string(),
        target,
        running,
        last_known_good: snapshot.last_known_good(&env.name).cloned(),
        recent,
        unfinished: snapshot.in_progress(&env.name).cloned().collect(),
        ledger_problems: snapshot.problems.clone(),
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
            "{} ledger line {}: {}\n",
            ctx.style.warn("warning:"),
            problem.line,
            problem.message
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
            lines.push(format!(
                "{:<12}{}",
                "running",
                status.running.as_ref().map_or_else(
                    || "nothing".to_owned(),
                    |r| format!("{} ({})", r.version, r.image)
                )
            ));
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
