//! Shared helpers: temporary projects, the binary, and an in-process harness.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kyb_deploy_cli::{CliContext, TargetFactory, run_with};
use kyb_deploy_core::config::{Config, Environment};
use kyb_deploy_core::{Error, Target};
use kyb_deploy_testkit::{FakeTarget, ScriptedProbe};
use serde_json::Value;
use tempfile::TempDir;

/// Two environments on a `docker` target whose service answers (in these tests: a scripted
/// probe that never connects) at 127.0.0.1:9; production requires confirmation.
/// Environments of a kind this build has no target for (ECS), so that the real target
/// factory fails before changing anything; the in-process tests replace the target anyway.
pub(crate) const CONFIG: &str = r#"
[environments.staging]
target = "ecs"
[environments.staging.ecs]
cluster = "kyb-staging"
service = "kyb-api"
[environments.staging.verify]
base_url = "http://127.0.0.1:9"

[environments.production]
target = "ecs"
[environments.production.guards]
confirm = true
[environments.production.ecs]
cluster = "kyb-production"
service = "kyb-api"
[environments.production.verify]
base_url = "http://127.0.0.1:9"
"#;

/// A temporary project directory holding `kyb-deploy.toml`.
pub(crate) struct Project {
    dir: TempDir,
}

impl Project {
    pub(crate) fn new(config: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("kyb-deploy.toml"), config).unwrap();
        Self { dir }
    }

    /// A directory with no configuration file.
    pub(crate) fn empty() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The default ledger file.
    pub(crate) fn ledger(&self) -> PathBuf {
        self.path().join(".kyb-deploy/ledger.jsonl")
    }
}

/// What a run printed and how it ended.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    /// The stdout JSON document.
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{}", self.stdout))
    }

    /// Both streams, for assertions on what a person sees.
    pub(crate) fn all(&self) -> String {
        format!("{}{}", self.stderr, self.stdout)
    }
}

/// The `kyb-deploy` binary running in `dir`, isolated from the caller's environment.
pub(crate) fn binary(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kyb-deploy"));
    command
        .current_dir(dir)
        .env("COLUMNS", "100")
        .env("NO_COLOR", "1");
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("KYB_DEPLOY_") {
            command.env_remove(key);
        }
    }
    // Tests that run inside GitHub Actions must not write to its files or annotate its run.
    for key in ["GITHUB_ACTIONS", "GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY"] {
        command.env_remove(key);
    }
    command
}

/// Runs `command` to completion.
pub(crate) fn output(command: &mut Command) -> Run {
    let out = command.output().unwrap();
    Run {
        code: out.status.code().expect("exited normally"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// Snapshot settings replacing `dir` with `[TMP]`.
pub(crate) fn settings_for(dir: &Path) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    settings.add_filter(&regex_escape(&dir.display().to_string()), "[TMP]");
    settings
}

fn regex_escape(text: &str) -> String {
    let mut escaped = String::new();
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// An in-memory output stream.
#[derive(Clone, Default)]
pub(crate) struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Buffer {
    pub(crate) fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Hands every environment the same fake target.
struct FakeTargets(FakeTarget);

#[kyb_deploy_core::async_trait]
impl TargetFactory for FakeTargets {
    async fn create(&self, _env: &Environment, _config: &Config) -> Result<Arc<dyn Target>, Error> {
        Ok(Arc::new(self.0.clone()))
    }
}

/// A project with a fake target and a scripted probe, run in process. Clones of `target` and
/// `probe` share their state, so tests script and inspect them between runs.
pub(crate) struct Harness {
    pub(crate) project: Project,
    pub(crate) target: FakeTarget,
    pub(crate) probe: ScriptedProbe,
}

impl Harness {
    pub(crate) fn new(config: &str) -> Self {
        Self {
            project: Project::new(config),
            target: FakeTarget::new(),
            probe: ScriptedProbe::new(),
        }
    }

    fn context(&self, stdout: &Buffer, stderr: &Buffer) -> CliContext {
        CliContext::new(stdout.clone(), stderr.clone())
            .with_cwd(self.project.path())
            .with_targets(Arc::new(FakeTargets(self.target.clone())))
            .with_probe(Arc::new(self.probe.clone()))
            .with_prebuilt_images()
    }

    /// Runs `kyb-deploy <args>` with no terminal.
    pub(crate) fn run(&self, args: &[&str]) -> Run {
        self.run_in(args, |ctx| ctx)
    }

    /// Runs with stdin a terminal that answers `answer`.
    pub(crate) fn run_answering(&self, args: &[&str], answer: &str) -> Run {
        let input = std::io::Cursor::new(answer.as_bytes().to_vec());
        self.run_in(args, |ctx| ctx.with_stdin(input, true))
    }

    /// Runs with the context adjusted by `adjust`.
    pub(crate) fn run_in(
        &self,
        args: &[&str],
        adjust: impl FnOnce(CliContext) -> CliContext,
    ) -> Run {
        let (stdout, stderr) = (Buffer::default(), Buffer::default());
        let mut ctx = adjust(self.context(&stdout, &stderr));
        let code = run_with(
            std::iter::once("kyb-deploy").chain(args.iter().copied()),
            &mut ctx,
        );
        Run {
            code,
            stdout: stdout.text(),
            stderr: stderr.text(),
        }
    }

    /// The versions of the ledger's records, in file order, with their status.
    pub(crate) fn ledger_lines(&self) -> Vec<(String, String)> {
        let text = std::fs::read_to_string(self.project.ledger()).unwrap_or_default();
        text.lines()
            .map(|line| {
                let record: serde_json::Value = serde_json::from_str(line).unwrap();
                (
                    record["version"].as_str().unwrap().to_owned(),
                    record["status"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }
}

/// The last state of each run in the project's ledger, in order.
pub(crate) fn runs(project: &Project) -> Vec<Value> {
    let text = std::fs::read_to_string(project.ledger()).unwrap();
    let mut last: Vec<Value> = Vec::new();
    for record in text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
    {
        match last.iter_mut().find(|r| r["id"] == record["id"]) {
            Some(existing) => *existing = record,
            None => last.push(record),
        }
    }
    last
}

/// `GET url` (a service's stable URL): status and JSON body.
pub(crate) async fn get_json(url: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Runs `command` (the binary, with `args` for the message) to its end, killing it after
/// `patience`: a bound, never an assertion on speed.
pub(crate) async fn output_within(command: Command, args: &[&str], patience: Duration) -> Run {
    let mut command = tokio::process::Command::from(command);
    command.kill_on_drop(true);
    let out = tokio::time::timeout(patience, command.output())
        .await
        .unwrap_or_else(|_| panic!("kyb-deploy {} did not finish in time", args.join(" ")))
        .unwrap();
    Run {
        code: out.status.code().expect("exited normally"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// An S3 client for moto at `url` (path-style, static test credentials), on the CLI's own
/// HTTP client (rustls with ring), to read back what the binary wrote.
pub(crate) fn moto_s3(url: &str) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                "test", "test", None, None, "static",
            ))
            .endpoint_url(url)
            .force_path_style(true)
            .http_client(kyb_deploy_ecs::https_client())
            .build(),
    )
}
