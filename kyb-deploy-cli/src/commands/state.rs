//! `kyb-deploy unlock` and `kyb-deploy state import`: the shared state backend's lock and
//! records, by hand.

use std::collections::HashSet;

use kyb_deploy_core::config::Environment;
use kyb_deploy_core::{
    JsonlRecordStore, RecordStore as _, ci_run_url, current_actor, current_host,
};
use serde::Serialize;

use crate::args::{GlobalArgs, OutputFormat, StateImportArgs, UnlockArgs};
use crate::context::CliContext;
use crate::error::CliError;
use crate::exit_codes::ExitCodes;
use crate::output::json;
use crate::project::{Project, cancellable};
use crate::prompt;

/// The JSON payload of `unlock`.
#[derive(Serialize)]
struct Unlocked<'a> {
    environment: &'a str,
    /// The holder whose lock was broken; null when the environment was not locked.
    broken: Option<String>,
}

/// The JSON payload of `state import`.
#[derive(Serialize)]
struct Imported<'a> {
    environment: &'a str,
    from: String,
    into: &'a str,
    /// Runs copied.
    imported: usize,
    /// Runs the shared store had already (same run id), left as they are.
    already_there: usize,
}

/// Refuses an environment whose records and lock are the project's own files: `what`
/// works on a shared backend only, and `why` says what to do instead.
fn shared(env: &Environment, what: &str, why: &str) -> Result<(), CliError> {
    if env.settings.state.backend.is_shared() {
        return Ok(());
    }
    Err(CliError::Usage {
        message: format!(
            "{what} works on a shared state backend, and environments.{}.state.backend is \"file\": {why}",
            env.name
        ),
    })
}

/// Who does this, for the records a backend keeps: actor, host and CI run.
fn who() -> String {
    format!(
        "{} on {}{}",
        current_actor(),
        current_host(),
        ci_run_url().map_or_else(String::new, |url| format!(", CI run {url}"))
    )
}

pub(crate) async fn unlock(
    args: UnlockArgs,
    global: &GlobalArgs,
    ctx: &mut CliContext,
) -> Result<i32, CliError> {
    let project = Project::load(ctx, global)?;
    let env = project.environment(&args.environment, None)?;
    shared(
        &env,
        "unlock",
        "its lock is held by the operating system for a live process and released when that process ends; stop that process instead",
    )?;
    let confirmed = prompt::confirm(
        ctx,
        true,
        args.yes,
        false,
        &format!(
            "Break the deployment lock of {}? Only when its holder is gone: a live run would go on without it.",
            env.name
        ),
        &format!("unlock of {}", env.name),
    )
    .await?;
    if !confirmed {
        return Err(CliError::Usage {
            message: format!(
                "unlock of {} needs confirmation: run it in a terminal, or pass --yes when you know the lock's holder is gone",
                env.name
            ),
        });
    }
    let state = project.state(&env).await?;
    let broken = cancellable(&ctx.cancel, state.lock.break_lock(&env.name, &who())).await??;
    let mut out = ctx.stdout.clone();
    if global.output == OutputFormat::Json {
        let document = Unlocked {
            environment: &env.name,
            broken,
        };
        json::write_document(&mut out, ExitCodes::SUCCESS, "unlock", &document)
            .map_err(CliError::Output)?;
        return Ok(ExitCodes::SUCCESS);
    }
    let text = match broken {
        Some(holder) => format!(
            "broke the lock of {} (held by {holder}); the break is recorded in {}\n",
            env.name, state.location
        ),
        None => format!("{} was not locked\n", env.name),
    };
    ctx.stdout.write_text(&text).map_err(CliError::Output)?;
    Ok(ExitCodes::SUCCESS)
}

pub(crate) async fn import(
    args: StateImportArgs,
    global: &GlobalArgs,
    ctx: &mut CliContext,
) -> Result<i32, CliError> {
    let project = Project::load(ctx, global)?;
    let env = project.environment(&args.environment, None)?;
    shared(
        &env,
        "state import",
        "set backend = \"s3\" (with a bucket) or \"kubernetes\" under [environments.NAME.state] first (docs/state.md)",
    )?;
    let ledger = match &args.from {
        Some(path) => JsonlRecordStore::new(ctx.cwd.join(path)),
        None => project.ledger(),
    };
    if !ledger.path().is_file() {
        return Err(CliError::Usage {
            message: format!(
                "no ledger file at {}: pass --from PATH to the ledger to import (ledger.path in the configuration names the default)",
                ledger.path().display()
            ),
        });
    }
    let local = ledger.load().await?;
    for problem in &local.problems {
        let _ = ctx.stderr.write_text(&format!(
            "{} {} {problem}: not imported\n",
            ctx.style.warn("warning:"),
            ledger.path().display()
        ));
    }
    let state = project.state(&env).await?;
    // No deployment writes records while they are copied.
    let guard = cancellable(&ctx.cancel, state.lock.acquire(&env.name)).await??;
    let copied = cancellable(&ctx.cancel, async {
        let there: HashSet<String> = state
            .records
            .recent(Some(&env.name), usize::MAX)
            .await?
            .records
            .into_iter()
            .map(|r| r.id)
            .collect();
        let (mut imported, mut already_there) = (0, 0);
        for record in local.for_environment(&env.name) {
            if there.contains(&record.id) {
                already_there += 1;
            } else {
                state.records.append(record).await?;
                imported += 1;
            }
        }
        Ok::<_, kyb_deploy_core::Error>((imported, already_there))
    })
    .await;
    let released = guard.release().await;
    let (imported, already_there) = copied??;
    released?;
    let from = ledger.path().display().to_string();
    let mut out = ctx.stdout.clone();
    if global.output == OutputFormat::Json {
        let document = Imported {
            environment: &env.name,
            from,
            into: &state.location,
            imported,
            already_there,
        };
        json::write_document(&mut out, ExitCodes::SUCCESS, "import", &document)
            .map_err(CliError::Output)?;
        return Ok(ExitCodes::SUCCESS);
    }
    ctx.stdout
        .write_text(&format!(
            "imported {imported} run(s) of {} from {from} into {} ({already_there} already there)\n",
            env.name, state.location
        ))
        .map_err(CliError::Output)?;
    Ok(ExitCodes::SUCCESS)
}
