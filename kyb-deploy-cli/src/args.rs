//! The command line, as clap derive types. Doc comments here are the `--help` text.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use kyb_deploy_core::config::Config;

const EXIT_CODES: &str = "\
Exit codes:
  0    success
  1    internal error
  2    usage or configuration error (nothing was attempted)
  3    failed before anything was deployed (the environment is unchanged)
  4    failed and rolled back to a verified earlier release
  5    failed and the rollback failed, was impossible or is disabled (needs attention)
  6    timed out
  8    verification failed (verify)
  130  interrupted (Ctrl-C)

Environment: KYB_DEPLOY_CONFIG (the configuration file), KYB_DEPLOY_<KEY>__<KEY> (override
configuration keys, like KYB_DEPLOY_ENVIRONMENTS__STAGING__ROLLBACK=never), NO_COLOR.
Reference: docs/cli.md";

/// `--version`: the package version, the commit and the build date (build.rs).
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("KYB_DEPLOY_COMMIT"),
    ", built ",
    env!("KYB_DEPLOY_BUILD_DATE"),
    ")"
);

/// Deploy the KYB Platform API: test, build, deploy, verify, and roll back when verification
/// fails.
#[derive(Debug, Parser)]
#[command(
    name = "kyb-deploy",
    version = VERSION,
    max_term_width = 100,
    arg_required_else_help = true,
    after_long_help = EXIT_CODES
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: GlobalArgs,

    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Options every command accepts.
#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub(crate) struct GlobalArgs {
    /// Configuration file [default: kyb-deploy.toml in the current directory]
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        env = "KYB_DEPLOY_CONFIG",
        hide_env_values = true
    )]
    pub(crate) config: Option<PathBuf>,

    /// Output format: `human` (progress on stderr, results on stdout) or `json` (one JSON
    /// document on stdout, events as JSON lines on stderr)
    #[arg(long, global = true, value_enum, value_name = "FORMAT", default_value_t = OutputFormat::Human)]
    pub(crate) output: OutputFormat,

    /// CI integration: `github` writes a job summary, step outputs and annotations
    /// (docs/ci.md); `auto` does so when GITHUB_ACTIONS=true; `none` never
    #[arg(long, global = true, value_enum, value_name = "CI", default_value_t = CiMode::Auto)]
    pub(crate) ci: CiMode,
}

/// Which CI system a run reports to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum CiMode {
    /// GitHub Actions when GITHUB_ACTIONS=true, else nothing
    Auto,
    /// Summary, step outputs and annotations for GitHub Actions
    Github,
    /// Nothing for a CI system
    None,
}

/// How results are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum OutputFormat {
    /// Progress and results for people.
    Human,
    /// One JSON document on stdout for scripts.
    Json,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Test, build, deploy and verify a release; roll back when it fails
    #[command(after_long_help = "\
Examples:
  kyb-deploy deploy -e staging                 deploy the current git commit
  kyb-deploy deploy -e production -v v1.4.0    deploy a tagged release (asks to confirm)
  kyb-deploy deploy -e staging -d              show what would change, change nothing")]
    Deploy(DeployArgs),

    /// Show what a deployment would change, changing nothing (deploy --dry-run)
    Plan(PlanArgs),

    /// Roll an environment back to its last known-good release, or to --to VERSION
    Rollback(RollbackArgs),

    /// Show what runs in an environment and its latest deployments
    Status(StatusArgs),

    /// List the deployments recorded in the ledger
    History(HistoryArgs),

    /// Probe and smoke-test what runs in an environment now
    Verify(VerifyArgs),

    /// Check the prerequisites of an environment (tools, credentials, target)
    Check(CheckArgs),

    /// Print the manifests a deployment would apply (Kubernetes), secrets redacted
    Render(RenderArgs),

    /// Break an environment's deployment lock whose holder is gone (asks to confirm)
    #[command(after_long_help = "\
The lock of a shared state backend expires on its own once its holder stops renewing it
(environments.ENV.state.lock_ttl); unlock is for a holder you know is gone and cannot wait
for. The break is recorded beside the lock, with who broke it.")]
    Unlock(UnlockArgs),

    /// Work with an environment's shared state (records and lock)
    #[command(subcommand, arg_required_else_help = true)]
    State(StateCommand),

    /// Work with the configuration file
    #[command(subcommand, arg_required_else_help = true)]
    Config(ConfigCommand),

    /// Print a shell completion script for bash, zsh, fish, elvish or powershell
    #[command(after_long_help = "\
Examples:
  kyb-deploy completions bash > /etc/bash_completion.d/kyb-deploy
  kyb-deploy completions zsh > \"${fpath[1]}/_kyb-deploy\"
  kyb-deploy completions fish > ~/.config/fish/completions/kyb-deploy.fish")]
    Completions(CompletionsArgs),

    /// Print the manual page (roff), for `man`
    #[command(after_long_help = "\
Example:
  kyb-deploy man > /usr/local/share/man/man1/kyb-deploy.1 && man kyb-deploy")]
    Man,
}

/// `completions`.
#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell
    #[arg(value_enum)]
    pub(crate) shell: clap_complete::Shell,
}

/// `unlock`.
#[derive(Debug, Args)]
pub(crate) struct UnlockArgs {
    /// Environment whose lock to break
    #[arg(short = 'e', long, value_name = "ENV")]
    pub(crate) environment: String,

    /// Do not ask for confirmation
    #[arg(short = 'y', long)]
    pub(crate) yes: bool,
}

/// `state ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum StateCommand {
    /// Copy an environment's runs from the local ledger file into its shared state backend
    #[command(after_long_help = "\
Runs already in the shared store (same run id) are left as they are, so importing twice
copies nothing twice. The environment's lock is held while importing.")]
    Import(StateImportArgs),
}

/// `state import`.
#[derive(Debug, Args)]
pub(crate) struct StateImportArgs {
    /// Environment whose runs to copy; its state backend must be a shared one (s3, kubernetes)
    #[arg(short = 'e', long, value_name = "ENV")]
    pub(crate) environment: String,

    /// The ledger file to copy from [default: the configured ledger.path]
    #[arg(long, value_name = "PATH")]
    pub(crate) from: Option<std::path::PathBuf>,
}

/// `deploy`.
#[derive(Debug, Args)]
pub(crate) struct DeployArgs {
    /// Environment to deploy to, as named in the configuration (like staging or production)
    #[arg(short = 'e', long, value_name = "ENV")]
    pub(crate) environment: String,

    /// Version to deploy: a Docker tag like v1.2.3 [default: the current git commit]
    #[arg(short = 'v', long, value_name = "VERSION")]
    pub(crate) version: Option<String>,

    /// Deploy despite failing tests, scan findings or uncommitted changes (recorded, with a
    /// warning)
    #[arg(short = 'f', long)]
    pub(crate) force: bool,

    /// Do not run the tests (recorded, with a warning)
    #[arg(short = 's', long)]
    pub(crate) skip_tests: bool,

    /// Change nothing: resolve the version and plan against the live target
    #[arg(short = 'd', long)]
    pub(crate) dry_run: bool,

    /// Do not ask for confirmation where the environment requires it
    #[arg(short = 'y', long)]
    pub(crate) yes: bool,

    /// Time limit of the whole run, like 30m or 1h30m [default: the environment's
    /// timeouts.overall]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) timeout: Option<Duration>,

    /// Image build argument, added to (or replacing one of) image.build_args; repeatable
    #[arg(long = "build-arg", value_name = "KEY=VALUE", value_parser = parse_build_arg)]
    pub(crate) build_args: Vec<(String, String)>,

    /// Deploy this image, built and pushed elsewhere (a CI job), instead of building one: a
    /// reference pinned by digest, like ghcr.io/acme/api@sha256:<64 hex digits>
    #[arg(long, value_name = "REF@DIGEST", value_parser = parse_pinned_image)]
    pub(crate) image: Option<String>,

    /// While another run holds the environment's lock, wait for it up to DURATION (like 10m)
    /// instead of stopping at once (exit 3, naming the holder)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) wait_for_lock: Option<Duration>,
}

/// Accepts an image reference pinned by a sha256 digest: what was built is what is deployed.
fn parse_pinned_image(raw: &str) -> Result<String, String> {
    let pinned = raw.rsplit_once("@sha256:").is_some_and(|(name, digest)| {
        !name.is_empty()
            && !name.contains(char::is_whitespace)
            && digest.len() == 64
            && digest
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    });
    if pinned {
        Ok(raw.to_owned())
    } else {
        Err("must name the image by its digest, like ghcr.io/acme/api@sha256:<64 lowercase hex digits>: a tag can move between the build and the deployment".to_owned())
    }
}

/// Parses `KEY=VALUE`.
fn parse_build_arg(raw: &str) -> Result<(String, String), String> {
    match raw.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("{raw:?} is not KEY=VALUE")),
    }
}

/// `plan`.
#[derive(Debug, Args)]
pub(crate) struct PlanArgs {
    /// Environment to plan for
    #[arg(short = 'e', long, value_name = "ENV")]
    pub(crate) environment: String,

    /// Version to plan: a Docker tag like v1.2.3 [default: the current git commit]
    #[arg(short = 'v', long, value_name = "VERSION")]
    pub(crate) version: Option<String>,

    /// Time limit of the whole run, like 5m [default: the environment's timeouts.overall]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) timeout: Option<Duration>,
}

/// `rollback`.
#[derive(Debug, Args)]
pub(crate) struct RollbackArgs {
    /// Environment to roll back
    #[arg(short = 'e', long, value_name = "ENV")]
    pub(crate) environment: String,

    /// Version to roll back to; it must be in the ledger [default: the last known-good release
    /// other than the one running]
    #[arg(long, value_name = "VERSION")]
    pub(crate) to: Option<String>,

    /// Do not ask for confirmation where the environment requires it
    #[arg(short = 'y', long)]
    pub(crate) yes: bool,

    /// Change nothing: say which release would be rolled back to
    #[arg(short = 'd', long)]
    pub(crate) dry_run: bool,

    /// Time limit of the whole run, like 20m [default: the environment's timeouts.overall]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) timeout: Option<Duration>,
}

/// `status`.
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// Environment to describe
    #[arg(short = 'e', long, value_name = "ENV")]
    pub(crate) environment: String,

    /// How many recent runs to list
    #[arg(short = 'n', long, value_name = "N", default_value_t = 5)]
    pub(crate) limit: usize,
}

/// `history`.
#[derive(Debug, Args)]
pub(crate) struct HistoryArgs {
    /// Only runs of this environment [default: every environment]
    #[arg(short = 'e', long, value_name = "ENV")]
    pub(crate) environment: Option<String>,

    /// How many runs to list, newest last
    #[arg(short = 'n', long, value_name = "N", default_value_t = 20)]
    pub(crate) limit: usize,
}

/// `verify`.
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// Environment to verify
    #[arg(short = 'e', long, value_name = "ENV")]
    pub(crate) environment: String,

    /// Version the service must report [default: the environment's last successful deployment
    /// in the ledger]
    #[arg(long, value_name = "VERSION")]
    pub(crate) expect_version: Option<String>,

    /// Time limit of the verification, like 2m [default: the environment's timeouts.verify]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) timeout: Option<Duration>,
}

/// `check`.
#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// Environment whose prerequisites to check
    #[arg(short = 'e', long, value_name = "ENV")]
    pub(crate) environment: String,
}

/// `render`.
#[derive(Debug, Args)]
pub(crate) struct RenderArgs {
    /// Environment to render for
    #[arg(short = 'e', long, value_name = "ENV")]
    pub(crate) environment: String,

    /// Version to render: a Docker tag like v1.2.3 [default: the current git commit]
    #[arg(short = 'v', long, value_name = "VERSION")]
    pub(crate) version: Option<String>,
}

/// `config` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Load and validate the configuration file (and KYB_DEPLOY_* overrides)
    Validate,
}

/// Parses `30m`, `1h30m`, `250ms` with the parser of every configured duration, so that a
/// flag accepts what the file accepts: at most [`Config::MAX_DURATION`] (7 days), and here
/// longer than zero (a time limit of nothing ends every run at once).
fn parse_duration(raw: &str) -> Result<Duration, String> {
    let parsed = Config::parse_duration(raw)?;
    if parsed.is_zero() {
        return Err("must be longer than 0s; write a duration like 30s, 5m or 1h30m".to_owned());
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn seed_flags_parse_in_short_and_long_form() {
        let short = Cli::try_parse_from([
            "kyb-deploy",
            "deploy",
            "-e",
            "staging",
            "-v",
            "v1",
            "-f",
            "-s",
            "-d",
        ])
        .unwrap();
        let long = Cli::try_parse_from([
            "kyb-deploy",
            "deploy",
            "--environment",
            "staging",
            "--version",
            "v1",
            "--force",
            "--skip-tests",
            "--dry-run",
        ])
        .unwrap();
        for cli in [short, long] {
            let Command::Deploy(args) = cli.command else {
                panic!("not deploy")
            };
            assert_eq!(args.environment, "staging");
            assert_eq!(args.version.as_deref(), Some("v1"));
            assert!(args.force && args.skip_tests && args.dry_run && !args.yes);
        }
    }

    #[test]
    fn durations_need_a_unit() {
        assert_eq!(parse_duration("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(parse_duration("200ms").unwrap(), Duration::from_millis(200));
        assert!(parse_duration("30").unwrap_err().contains("like \"30s\""));
        assert!(parse_duration("0s").unwrap_err().contains("longer than 0s"));
    }

    #[test]
    fn timeouts_are_bounded_like_configured_durations() {
        assert_eq!(parse_duration("7d").unwrap(), Config::MAX_DURATION);
        for flag in ["deploy", "plan", "rollback", "verify"] {
            let err = Cli::try_parse_from([
                "kyb-deploy",
                flag,
                "-e",
                "staging",
                "--timeout",
                "500000000000y",
            ])
            .unwrap_err();
            assert_eq!(err.exit_code(), 2, "{flag}");
            let message = err.to_string();
            assert!(
                message.contains("--timeout")
                    && message.contains("is longer than the maximum of 7 days"),
                "{flag}: {message}"
            );
        }
    }
}
