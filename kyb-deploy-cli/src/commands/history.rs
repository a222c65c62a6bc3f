//! `kyb-deploy history`: the runs recorded in the ledger. Needs no target.

use kyb_deploy_core::{DeploymentRecord, LedgerProblem, RecordStatus, RecordStore};
use serde::Serialize;

use crate::args::{GlobalArgs, HistoryArgs, OutputFormat};
use crate::context::CliContext;
use crate::error::CliError;
use crate::exit_codes::ExitCodes;
use crate::output::{format, json, table};
use crate::project::Project;

/// The JSON payload of `history`.
#[derive(Serialize)]
struct History<'a> {
    /// The environment asked for, or null for all.
    environment: Option<&'a str>,
    /// The ledger file, as configured.
    ledger: String,
    /// The runs, oldest first, at most `--limit`.
    records: Vec<&'a DeploymentRecord>,
    /// Lines of the ledger that could not be read.
    ledger_problems: &'a [LedgerProblem],
}

pub(crate) async fn run(
    args: HistoryArgs,
    global: &GlobalArgs,
    ctx: &mut CliContext,
) -> Result<i32, CliError> {
    let project = Project::load(ctx, global)?;
    if let Some(name) = &args.environment {
        project.environment(name, None)?;
    }
    let snapshot = project.ledger().load().await?;
    let mut records: Vec<&DeploymentRecord> = snapshot
        .records
        .iter()
        .filter(|r| {
            args.environment
                .as_deref()
                .is_none_or(|e| r.environment == e)
        })
        .collect();
    records.sort_by_key(|r| r.started_at);
    let skip = records.len().saturating_sub(args.limit);
    records.drain(..skip);
    let ledger = project.config.ledger.path.display().to_string();

    let mut out = ctx.stdout.clone();
    if global.output == OutputFormat::Json {
        let document = History {
            environment: args.environment.as_deref(),
            ledger,
            records,
            ledger_problems: &snapshot.problems,
        };
        json::write_document(&mut out, ExitCodes::SUCCESS, "history", &document)
            .map_err(CliError::Output)?;
        return Ok(ExitCodes::SUCCESS);
    }

    // A damaged line is worth knowing about, never a reason to hide the rest.
    for problem in &snapshot.problems {
        let _ = ctx.stderr.write_text(&format!(
            "{} ledger {ledger} line {}: {}\n",
            ctx.style.warn("warning:"),
            problem.line,
            problem.message
        ));
    }
    let text = if records.is_empty() {
        match &args.environment {
            Some(env) => format!("no runs of {env} recorded in {ledger}\n"),
            None => format!("no runs recorded in {ledger}\n"),
        }
    } else {
        table::records(&records)
    };
    ctx.stdout.write_text(&text).map_err(CliError::Output)?;
    let unfinished = records
        .iter()
        .filter(|r| r.status == RecordStatus::InProgress)
        .count();
    if unfinished > 0 {
        let _ = ctx.stderr.write_text(&format!(
            "note: {} never finished: still running, or killed; the next deploy to the environment marks a killed run abandoned\n",
            format::count(unfinished, "run", "runs")
        ));
    }
    Ok(ExitCodes::SUCCESS)
}
