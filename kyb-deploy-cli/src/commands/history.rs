//! `kyb-deploy history`: the runs recorded in the ledger, and for one environment the
//! releases its target knows (ECS task definition revisions, Docker containers) joined
//! with the runs that deployed them. The ledger part needs no target.

use kyb_deploy_core::{
    DeploymentRecord, LedgerProblem, LedgerSnapshot, RecordStatus, RecordStore, Revision,
};
use serde::Serialize;

use crate::args::{GlobalArgs, HistoryArgs, OutputFormat};
use crate::context::CliContext;
use crate::error::CliError;
use crate::exit_codes::ExitCodes;
use crate::output::{format, json, table};
use crate::project::{Project, cancellable};

/// The JSON payload of `history`.
#[derive(Serialize)]
struct History<'a> {
    /// The environment asked for, or null for all.
    environment: Option<&'a str>,
    /// Where the records were read: the ledger file as configured, or the shared store
    /// (`s3://bucket/prefix/environment`, `Kubernetes namespace NS: prefix/environment`);
    /// several, comma-separated, without an environment.
    ledger: String,
    /// The runs, oldest first, at most `--limit`.
    records: Vec<&'a DeploymentRecord>,
    /// Lines of the ledger that could not be read.
    ledger_problems: &'a [LedgerProblem],
    /// With an environment: the releases its target knows, newest first, each with the
    /// ledger run that deployed it. Empty when the target could not be asked.
    revisions: Vec<JoinedRevision>,
    /// Why the target could not be asked, if it could not.
    target_error: Option<String>,
}

/// A release the target knows, joined with the ledger.
#[derive(Serialize)]
struct JoinedRevision {
    #[serde(flatten)]
    revision: Revision,
    /// The latest run that deployed this release (same platform reference, else same
    /// image), if the ledger has one.
    run_id: Option<String>,
}

/// How many of an environment's latest runs the target's releases are joined with: enough
/// for every release a target keeps (ECS lists its latest 10 task definition revisions),
/// without reading a long ledger to its start.
const JOINED_RUNS: usize = 1000;

/// The same for an environment whose records are in a shared store, where each run is one
/// request: still several times the releases a target keeps.
const JOINED_SHARED_RUNS: usize = 50;

fn revisions_table(revisions: &[JoinedRevision]) -> String {
    let rows: Vec<Vec<String>> = revisions
        .iter()
        .map(|j| {
            vec![
                if j.revision.active { "*" } else { "" }.to_owned(),
                j.revision.release.version.to_string(),
                j.revision
                    .deployed_at
                    .map(format::timestamp)
                    .unwrap_or_default(),
                j.run_id.clone().unwrap_or_else(|| "-".to_owned()),
                j.revision
                    .release
                    .platform_ref
                    .clone()
                    .unwrap_or_else(|| j.revision.release.image.clone()),
            ]
        })
        .collect();
    table::columns(&["", "VERSION", "CREATED", "RUN", "RELEASE"], &rows)
}

/// The newest `limit` runs of every environment, wherever each keeps its records, and
/// where that is: the ledger file for the `file` backend, one store per shared environment.
/// A shared store that cannot be read is a problem reported with the rest, never a reason
/// to show nothing.
async fn every_environment(
    project: &Project,
    limit: usize,
) -> Result<(LedgerSnapshot, String), CliError> {
    let mut shared = Vec::new();
    for name in project.config.environment_names() {
        let env = project.environment(&name, None)?;
        if env.settings.state.backend.is_shared() {
            shared.push(env);
        }
    }
    let mut snapshot = project.ledger().recent(None, limit).await?;
    let mut locations = vec![project.config.ledger.path.display().to_string()];
    for env in shared {
        let read = match project.state(&env).await {
            Ok(state) => match state.records.recent(Some(&env.name), limit).await {
                Ok(found) => {
                    locations.push(state.location);
                    Ok(found)
                }
                Err(e) => Err(format!("{}: {}", state.location, e.chain())),
            },
            Err(e) => Err(e.chain()),
        };
        match read {
            Ok(found) => {
                snapshot.records.extend(found.records);
                snapshot.problems.extend(found.problems);
            }
            Err(why) => snapshot.problems.push(LedgerProblem {
                line: 0,
                message: format!(
                    "the runs of {} are not shown: its shared state could not be read ({why}); `history -e {}` retries it alone",
                    env.name, env.name
                ),
            }),
        }
    }
    Ok((snapshot, locations.join(", ")))
}

pub(crate) async fn run(
    args: HistoryArgs,
    global: &GlobalArgs,
    ctx: &mut CliContext,
) -> Result<i32, CliError> {
    let project = Project::load(ctx, global)?;
    let environment = match &args.environment {
        Some(name) => Some(project.environment(name, None)?),
        None => None,
    };
    // Only the end of the ledger is read: the runs listed, and with an environment the runs
    // its target's releases are joined with.
    let window = match &environment {
        Some(env) if env.settings.state.backend.is_shared() => args.limit.max(JOINED_SHARED_RUNS),
        Some(_) => args.limit.max(JOINED_RUNS),
        None => args.limit,
    };
    let (snapshot, ledger) = match &environment {
        Some(env) => {
            let state = project.state(env).await?;
            let snapshot = state.records.recent(Some(&env.name), window).await?;
            (snapshot, state.location)
        }
        None => every_environment(&project, window).await?,
    };
    // The target's own history, when one environment is asked for.
    let (revisions, target_error) = match &environment {
        None => (Vec::new(), None),
        Some(env) => {
            let known = match project.target(ctx, env).await {
                Ok(target) => cancellable(&ctx.cancel, target.history())
                    .await?
                    .map_err(|e| e.chain()),
                Err(e) => Err(e.chain()),
            };
            match known {
                Ok(revisions) => (
                    revisions
                        .into_iter()
                        .map(|revision| JoinedRevision {
                            run_id: DeploymentRecord::latest_deployment_of(
                                &snapshot.records,
                                &revision.release,
                            )
                            .map(|r| r.id.clone()),
                            revision,
                        })
                        .collect(),
                    None,
                ),
                Err(e) => (Vec::new(), Some(e)),
            }
        }
    };
    let mut records: Vec<&DeploymentRecord> = snapshot.records.iter().collect();
    records.sort_by_key(|r| r.started_at);
    let skip = records.len().saturating_sub(args.limit);
    records.drain(..skip);

    let mut out = ctx.stdout.clone();
    if global.output == OutputFormat::Json {
        let document = History {
            environment: args.environment.as_deref(),
            ledger,
            records,
            ledger_problems: &snapshot.problems,
            revisions,
            target_error,
        };
        json::write_document(&mut out, ExitCodes::SUCCESS, "history", &document)
            .map_err(CliError::Output)?;
        return Ok(ExitCodes::SUCCESS);
    }

    // A damaged line is worth knowing about, never a reason to hide the rest.
    for problem in &snapshot.problems {
        let _ = ctx.stderr.write_text(&format!(
            "{} ledger {ledger} {problem}\n",
            ctx.style.warn("warning:"),
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
    if let Some(env) = &environment {
        if !revisions.is_empty() {
            let text = format!(
                "\nreleases known to the {} target, newest first (* runs now):\n{}",
                env.settings.target,
                revisions_table(&revisions)
            );
            ctx.stdout.write_text(&text).map_err(CliError::Output)?;
        }
        if let Some(e) = &target_error {
            let _ = ctx.stderr.write_text(&format!(
                "note: the {} target's own history is not shown: {e}\n",
                env.settings.target
            ));
        }
    }
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
