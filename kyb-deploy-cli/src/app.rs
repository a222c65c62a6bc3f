//! Entry points: parse the command line, run the command on a tokio runtime, turn the
//! result into an exit code.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command, ConfigCommand, OutputFormat, StateCommand};
use crate::commands;
use crate::context::CliContext;
use crate::error::CliError;
use crate::exit_codes::ExitCodes;
use crate::output::{errors, json};
use crate::signals;

/// Runs `kyb-deploy` as the process: real streams, terminal detection, `NO_COLOR`, and
/// interruption handling (the first SIGINT, SIGTERM or SIGHUP stops the run at a safe point,
/// applies the rollback policy and finalizes the record; a second Ctrl-C exits at once).
/// Returns the documented exit code.
pub fn main() -> ExitCode {
    let mut ctx = CliContext::for_process();
    let code = run_with(std::env::args_os(), &mut ctx);
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// Runs `kyb-deploy` with `args` (the first is the program name) in `ctx`, and returns the
/// exit code ([`ExitCodes`]). Bad input is an exit code, never a panic or a process exit.
///
/// It runs the command on a tokio runtime of its own, so it must be called from synchronous
/// code (a plain `#[test]`, a `main`), not from within an async runtime.
pub fn run_with<I, T>(args: I, ctx: &mut CliContext) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => return clap_error(&e, ctx),
    };
    let format = cli.global.output;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return report_error(&CliError::Runtime(e), format, ctx),
    };
    let code = runtime.block_on(async {
        if ctx.handle_signals {
            tokio::spawn(signals::watch(
                ctx.cancel.clone(),
                ctx.stderr.clone(),
                ctx.active_progress.clone(),
                format,
                ctx.grace.clone(),
            ));
        }
        match dispatch(cli, ctx).await {
            Ok(code) => code,
            Err(e) => report_error(&e, format, ctx),
        }
    });
    // A confirmation prompt abandoned by Ctrl-C may still block a thread on stdin.
    runtime.shutdown_background();
    code
}

async fn dispatch(cli: Cli, ctx: &mut CliContext) -> Result<i32, CliError> {
    let global = &cli.global;
    match cli.command {
        Command::Deploy(args) => commands::deploy::run(args, global, ctx).await,
        Command::Plan(args) => commands::plan::run(args, global, ctx).await,
        Command::Rollback(args) => commands::rollback::run(args, global, ctx).await,
        Command::Status(args) => commands::status::run(args, global, ctx).await,
        Command::History(args) => commands::history::run(args, global, ctx).await,
        Command::Verify(args) => commands::verify::run(args, global, ctx).await,
        Command::Check(args) => commands::check::run(args, global, ctx).await,
        Command::Render(args) => commands::render::run(args, global, ctx).await,
        Command::Unlock(args) => commands::state::unlock(args, global, ctx).await,
        Command::State(StateCommand::Import(args)) => {
            commands::state::import(args, global, ctx).await
        }
        Command::Config(ConfigCommand::Validate) => commands::config_validate::run(global, ctx),
        Command::Completions(args) => commands::shell::completions(args.shell, ctx),
        Command::Man => commands::shell::man(ctx),
    }
}

/// Prints clap's help, version or usage error. Usage errors exit 2, as clap does.
fn clap_error(error: &clap::Error, ctx: &CliContext) -> i32 {
    let rendered = error.render();
    let written = if error.use_stderr() {
        let text = if ctx.style.color() {
            rendered.ansi().to_string()
        } else {
            rendered.to_string()
        };
        ctx.stderr.write_text(&text)
    } else {
        ctx.stdout.write_text(&rendered.to_string())
    };
    match written {
        Ok(()) => error.exit_code(),
        Err(_) => ExitCodes::INTERNAL_ERROR,
    }
}

/// Prints `error` (on stderr, or as the JSON document with `--output json`) and returns its
/// exit code.
fn report_error(error: &CliError, format: OutputFormat, ctx: &CliContext) -> i32 {
    let code = error.exit_code();
    match format {
        OutputFormat::Human => {
            // Nothing sensible is left to do when stderr itself fails.
            let _ = ctx.stderr.write_text(&errors::render(error, ctx.style));
        }
        // The error is the document; stderr keeps carrying only JSON lines.
        OutputFormat::Json => {
            let mut stdout = ctx.stdout.clone();
            let document = errors::ErrorDocument::new(error);
            if json::write_document(&mut stdout, code, "error", &document).is_err() {
                return ExitCodes::INTERNAL_ERROR;
            }
        }
    }
    code
}
