//! [`CliContext`]: everything a command touches outside its arguments.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use kyb_deploy_core::CancellationToken;
use kyb_deploy_core::verify::HealthProbe;

use crate::output::progress::Progress;
use crate::output::style::{Style, color_allowed};
use crate::output::writer::{PipeSafe, SharedWriter};
use crate::signals::Grace;
use crate::targets::{BuiltinTargets, TargetFactory};

/// The world a command runs in: output streams, terminal facts, the target factory and the
/// other seams, the cancellation token and the working directory.
///
/// [`crate::main`] builds one for the real process. Tests and embedding programs build their
/// own, capturing output and swapping in fakes:
///
/// ```
/// use kyb_deploy_cli::{CliContext, run_with};
///
/// let mut ctx = CliContext::new(Vec::new(), Vec::new());
/// assert_eq!(run_with(["kyb-deploy", "deploy", "--no-such-flag"], &mut ctx), 2);
/// ```
pub struct CliContext {
    pub(crate) stdout: SharedWriter,
    pub(crate) stderr: SharedWriter,
    pub(crate) stdin: Option<Box<dyn BufRead + Send>>,
    pub(crate) stdin_is_tty: bool,
    pub(crate) stderr_is_tty: bool,
    pub(crate) style: Style,
    pub(crate) targets: Arc<dyn TargetFactory>,
    pub(crate) probe: Option<Arc<dyn HealthProbe>>,
    /// Whether `deploy` builds, scans and pushes the image with the Docker engine.
    pub(crate) build_images: bool,
    pub(crate) cancel: CancellationToken,
    pub(crate) cwd: PathBuf,
    /// Whether SIGINT, SIGTERM and SIGHUP stop the run (the real process only).
    pub(crate) handle_signals: bool,
    /// How long an interrupted run may take to stop.
    pub(crate) grace: Grace,
    /// The renderer of the run in progress, if any.
    pub(crate) active_progress: Arc<Mutex<Option<Progress>>>,
    /// The CI system's variables (`GITHUB_ACTIONS`, `GITHUB_OUTPUT`, ...): the process's
    /// for the real process, none unless given otherwise.
    pub(crate) ci_variables: CiVariables,
}

/// Where the CI system's variables come from.
#[derive(Clone, Debug)]
pub(crate) enum CiVariables {
    /// The process environment.
    Process,
    /// These.
    Given(std::collections::BTreeMap<String, String>),
}

impl std::fmt::Debug for CliContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CliContext")
            .field("stdin_is_tty", &self.stdin_is_tty)
            .field("stderr_is_tty", &self.stderr_is_tty)
            .field("color", &self.style.color())
            .field("probe_override", &self.probe.is_some())
            .field("cwd", &self.cwd)
            .finish_non_exhaustive()
    }
}

impl CliContext {
    /// A context writing results to `stdout` and progress to `stderr`, with no terminal (plain
    /// lines, no colour, no confirmation prompt), the [`BuiltinTargets`], the HTTP health
    /// probe, a fresh cancellation token and the process's current directory.
    ///
    /// A broken pipe on `stdout` ends output quietly instead of failing the command.
    pub fn new(stdout: impl Write + Send + 'static, stderr: impl Write + Send + 'static) -> Self {
        Self {
            stdout: SharedWriter::new(PipeSafe::new(stdout)),
            stderr: SharedWriter::new(stderr),
            stdin: None,
            stdin_is_tty: false,
            stderr_is_tty: false,
            style: Style::new(false),
            targets: Arc::new(BuiltinTargets::default()),
            probe: None,
            build_images: true,
            cancel: CancellationToken::new(),
            cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
            handle_signals: false,
            grace: Grace::default(),
            active_progress: Arc::new(Mutex::new(None)),
            ci_variables: CiVariables::Given(std::collections::BTreeMap::new()),
        }
    }

    /// Reads the CI system's variables (`GITHUB_ACTIONS`, `GITHUB_STEP_SUMMARY`,
    /// `GITHUB_OUTPUT`) from `variables` instead of seeing none.
    pub fn with_ci_variables(
        mut self,
        variables: impl IntoIterator<Item = (String, String)>,
    ) -> Self {
        self.ci_variables = CiVariables::Given(variables.into_iter().collect());
        self
    }

    /// The CI variable `name`, if set.
    pub(crate) fn var(&self, name: &str) -> Option<String> {
        match &self.ci_variables {
            CiVariables::Process => std::env::var(name).ok(),
            CiVariables::Given(variables) => variables.get(name).cloned(),
        }
    }

    /// The context of the real process: its stdout, stderr and stdin, colour unless `NO_COLOR`
    /// is set or stderr is not a terminal, and handlers of SIGINT, SIGTERM and SIGHUP.
    pub(crate) fn for_process() -> Self {
        let stderr_is_tty = std::io::stderr().is_terminal();
        let color = stderr_is_tty && color_allowed(std::env::var_os("NO_COLOR"));
        let mut ctx = Self::new(std::io::stdout(), std::io::stderr())
            .with_terminal(stderr_is_tty, color)
            .with_stdin(
                std::io::BufReader::new(std::io::stdin()),
                std::io::stdin().is_terminal(),
            );
        ctx.handle_signals = true;
        ctx.ci_variables = CiVariables::Process;
        ctx
    }

    /// Whether stderr is a terminal (spinners instead of plain lines) and whether to colour it.
    pub fn with_terminal(mut self, stderr_is_tty: bool, color: bool) -> Self {
        self.stderr_is_tty = stderr_is_tty;
        self.style = Style::new(color);
        self
    }

    /// Where answers to the confirmation prompt come from. The prompt is shown only when
    /// `is_tty`; otherwise an environment that requires confirmation needs `--yes`.
    pub fn with_stdin(mut self, stdin: impl BufRead + Send + 'static, is_tty: bool) -> Self {
        self.stdin = Some(Box::new(stdin));
        self.stdin_is_tty = is_tty;
        self
    }

    /// Creates targets with `targets` instead of the [`BuiltinTargets`].
    pub fn with_targets(mut self, targets: Arc<dyn TargetFactory>) -> Self {
        self.targets = targets;
        self
    }

    /// Deploys `<image.repository>:<version>` as it is, without building, scanning or pushing
    /// it: for tests and programs that bring their own image.
    pub fn with_prebuilt_images(mut self) -> Self {
        self.build_images = false;
        self
    }

    /// Verifies with `probe` instead of an HTTP probe built from each environment's
    /// `verify` settings.
    pub fn with_probe(mut self, probe: Arc<dyn HealthProbe>) -> Self {
        self.probe = Some(probe);
        self
    }

    /// Resolves relative paths (`--config`, the default `kyb-deploy.toml`) against `cwd`.
    pub fn with_cwd(mut self, cwd: impl Into<PathBuf>) -> Self {
        self.cwd = cwd.into();
        self
    }

    /// Stops runs when `cancel` fires, as the first Ctrl-C does.
    pub fn with_cancel_token(mut self, cancel: CancellationToken) -> Self {
        self.cancel = cancel;
        self
    }

    /// The token that stops the running command at its next safe point.
    pub fn cancel_token(&self) -> &CancellationToken {
        &self.cancel
    }
}
