//! Asking the user to confirm a change to a guarded environment.

use crate::context::CliContext;
use crate::error::CliError;

/// Whether the run is confirmed for an environment with `guards.confirm`:
///
/// - `--yes`, or a dry run (which changes nothing): confirmed without asking;
/// - stdin is a terminal: asks `<question> [y/N]` on stderr; anything but `y`/`yes` refuses
///   with [`CliError::NotConfirmed`];
/// - otherwise (CI, pipes): not confirmed, and the pipeline's guard refuses with a message
///   that says to pass `--yes`.
pub(crate) async fn confirm(
    ctx: &mut CliContext,
    required: bool,
    yes: bool,
    dry_run: bool,
    question: &str,
    action: &str,
) -> Result<bool, CliError> {
    if !required || yes || dry_run {
        return Ok(yes);
    }
    if !ctx.stdin_is_tty {
        return Ok(false);
    }
    let Some(mut stdin) = ctx.stdin.take() else {
        return Ok(false);
    };
    ctx.stderr
        .write_text(&format!("{question} [y/N] "))
        .map_err(CliError::Prompt)?;
    // Read on a blocking thread so that Ctrl-C can abandon the prompt.
    let answer = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        stdin.read_line(&mut line).map(|_| line)
    });
    let line = tokio::select! {
        () = ctx.cancel.cancelled() => return Err(CliError::Interrupted),
        joined = answer => joined
            .map_err(|e| CliError::Prompt(std::io::Error::other(e)))?
            .map_err(CliError::Prompt)?,
    };
    if matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        Ok(true)
    } else {
        Err(CliError::NotConfirmed {
            action: action.to_owned(),
        })
    }
}
