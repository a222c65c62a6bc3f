//! [`SampleApiProcess`]: runs the real `kyb-sample-api` binary as the "deployed" service of a
//! [`crate::FakeTarget`].

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kyb_deploy_core::{Error, Release, Result, Url};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::fake_target::ActivateHook;

/// Fault environment variables given to releases whose version ends with a suffix.
type FaultRule = (String, Vec<(String, String)>);

/// Runs `kyb-sample-api` on one local port, one release at a time: activating a release
/// stops the running process and starts the binary with `KYB_SAMPLE_VERSION` set to the
/// release's version. Versions can be given fault switches (see [`crate::sample_api`]), so a
/// "broken release" really misbehaves. The process is killed when the last clone is dropped.
///
/// ```no_run
/// use kyb_deploy_testkit::{FakeTarget, SampleApiProcess};
///
/// let sample = SampleApiProcess::new("target/release/kyb-sample-api", 18080)
///     .with_faults_for("-broken", &[("KYB_SAMPLE_FAULT_CLASSIFY_500", "1")]);
/// let target = FakeTarget::new()
///     .with_endpoint(sample.endpoint())
///     .on_activate(sample.activate_hook());
/// ```
#[derive(Clone, Debug)]
pub struct SampleApiProcess {
    binary: PathBuf,
    port: u16,
    faults: Vec<FaultRule>,
    running: Arc<Mutex<Option<Child>>>,
}

impl SampleApiProcess {
    /// The binary at `binary`, served on `127.0.0.1:port`.
    pub fn new(binary: impl Into<PathBuf>, port: u16) -> Self {
        Self {
            binary: binary.into(),
            port,
            faults: Vec::new(),
            running: Arc::default(),
        }
    }

    /// Releases whose version ends with `suffix` start with these environment variables.
    pub fn with_faults_for(mut self, suffix: &str, env: &[(&str, &str)]) -> Self {
        let env = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.faults.push((suffix.to_owned(), env));
        self
    }

    /// Where the service answers.
    pub fn endpoint(&self) -> Url {
        Url::parse(&format!("http://127.0.0.1:{}", self.port)).expect("a valid URL")
    }

    /// A [`crate::FakeTarget`] hook that starts the release's process when it becomes current.
    pub fn activate_hook(&self) -> ActivateHook {
        let this = self.clone();
        Arc::new(move |release: Release| {
            let this = this.clone();
            Box::pin(async move { this.start(&release).await })
        })
    }

    /// Stops the running process, if any.
    pub async fn stop(&self) {
        let child = self.lock().take();
        if let Some(mut child) = child {
            let _ = child.kill().await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Child>> {
        self.running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn start(&self, release: &Release) -> Result<()> {
        self.stop().await;
        let version = release.version.as_str();
        let mut command = Command::new(&self.binary);
        command
            .env("PORT", self.port.to_string())
            .env("BIND_ADDR", "127.0.0.1")
            .env("KYB_SAMPLE_VERSION", version)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        for (suffix, env) in &self.faults {
            if version.ends_with(suffix.as_str()) {
                command.envs(env.iter().map(|(k, v)| (k, v)));
            }
        }
        let fail = |message: String| Error::target("sample process", message);
        let mut child = command
            .spawn()
            .map_err(|e| fail(format!("cannot start {}: {e}", self.binary.display())))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        // The binary prints one line once it listens; anything else means it did not start.
        match tokio::time::timeout(Duration::from_secs(10), lines.next_line()).await {
            Ok(Ok(Some(line))) if line.starts_with("listening on") => {}
            Ok(Ok(other)) => {
                return Err(fail(format!(
                    "kyb-sample-api {version} did not start (first output: {other:?})"
                )));
            }
            Ok(Err(e)) => return Err(fail(format!("reading kyb-sample-api's output: {e}"))),
            Err(_) => {
                return Err(fail(format!(
                    "kyb-sample-api {version} did not start within 10s"
                )));
            }
        }
        *self.lock() = Some(child);
        Ok(())
    }
}

/// `kyb-sample-api` in the same build directory as the running executable (a binary in
/// `target/<profile>/`, or an example or test in a subdirectory of it).
pub fn sample_api_beside_current_exe() -> std::result::Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    exe.ancestors()
        .skip(1)
        .take(2)
        .map(|dir| dir.join("kyb-sample-api"))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            format!(
                "kyb-sample-api not found next to {}; build it first: cargo build -p kyb-deploy-testkit --bins",
                exe.parent().map_or_else(|| exe.clone(), Path::to_path_buf).display()
            )
        })
}
