//! `kyb-deploy completions SHELL` and `kyb-deploy man`: the shell completion script and the
//! manual page, generated from the same definition as `--help` (clap's generators), so they
//! never drift from the commands.

use clap::CommandFactory as _;

use crate::args::Cli;
use crate::context::CliContext;
use crate::error::CliError;
use crate::exit_codes::ExitCodes;

/// Writes the completion script of `shell` to stdout.
pub(crate) fn completions(shell: clap_complete::Shell, ctx: &CliContext) -> Result<i32, CliError> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "kyb-deploy", &mut script);
    ctx.stdout
        .write_text(&String::from_utf8_lossy(&script))
        .map_err(CliError::Output)?;
    Ok(ExitCodes::SUCCESS)
}

/// Writes the manual page (roff) to stdout.
pub(crate) fn man(ctx: &CliContext) -> Result<i32, CliError> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut page)
        .map_err(CliError::Output)?;
    ctx.stdout
        .write_text(&String::from_utf8_lossy(&page))
        .map_err(CliError::Output)?;
    Ok(ExitCodes::SUCCESS)
}
