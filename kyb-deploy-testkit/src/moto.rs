//! `moto_server`, a third-party AWS emulator, as a test peer: found, started on a free port
//! of 127.0.0.1 and killed when dropped (also when a test panics); and the real AWS CLI run
//! against it, so that neither side of a check is kyb-deploy's own code.
//!
//! The README's test command installs both into `.kyb-deploy/venv` and exports
//! `KYB_MOTO_SERVER`. A missing one fails the test with the fix; it never skips.

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;

/// How long moto may take to answer after it is started.
const MOTO_START: Duration = Duration::from_secs(30);

/// The longest one AWS CLI command may take.
const PATIENCE: Duration = Duration::from_secs(60);

/// How to get what these tests need: the README's test command installs it.
pub const INSTALL: &str = "run scripts/test.sh (it installs moto, and the AWS CLI when none \
                           is on PATH, into .kyb-deploy/venv and exports KYB_MOTO_SERVER), or \
                           pip install 'moto[server]>=5,<6' awscli";

/// The workspace root.
fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate lives in the workspace")
}

/// `name` in a directory of PATH, else in the project virtualenv.
fn executable(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .or_else(|| {
            let venv = workspace().join(".kyb-deploy/venv/bin").join(name);
            venv.is_file().then_some(venv)
        })
}

/// The `moto_server` executable: `KYB_MOTO_SERVER`, else PATH, else the project
/// virtualenv's. A missing one panics, saying how to install it.
pub fn moto_server_path() -> PathBuf {
    if let Some(path) = std::env::var_os("KYB_MOTO_SERVER") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "KYB_MOTO_SERVER names {}, which is not a file; {INSTALL}",
            path.display()
        );
        return path;
    }
    executable("moto_server").unwrap_or_else(|| {
        panic!(
            "moto_server was not found (KYB_MOTO_SERVER, PATH, .kyb-deploy/venv/bin): the \
             tests against AWS APIs need it; {INSTALL}"
        )
    })
}

/// The AWS CLI (`aws`, v1) on PATH or in the project virtualenv. A missing one panics,
/// saying how to install it.
pub fn aws_cli_path() -> PathBuf {
    executable("aws").unwrap_or_else(|| {
        panic!(
            "the AWS CLI (`aws`) was not found (PATH, .kyb-deploy/venv/bin): the tests read \
             what kyb-deploy did through it; {INSTALL}"
        )
    })
}

/// A running `moto_server`, killed (and reaped) when dropped, also when a test panics.
pub struct MotoServer {
    child: Child,
    addr: SocketAddr,
    /// Holds moto's log, shown when it fails to start.
    _logs: TempDir,
}

impl MotoServer {
    /// Starts `moto_server` on a free port of 127.0.0.1 and waits until it answers.
    ///
    /// # Panics
    ///
    /// When it is not installed, exits, or does not answer within 30 s: with its output.
    pub async fn start() -> Self {
        let executable = moto_server_path();
        // A free port: bind, read, release; moto binds it right after.
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|listener| listener.local_addr())
            .expect("a free port on 127.0.0.1")
            .port();
        let logs = tempfile::tempdir().expect("a temporary directory");
        let log_path = logs.path().join("moto.log");
        let log = File::create(&log_path).expect("moto's log file");
        let child = Command::new(&executable)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("moto's log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|error| {
                panic!("cannot start {}: {error}; {INSTALL}", executable.display())
            });
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        // From here on the guard owns the process: a failed start still kills it.
        let mut moto = Self {
            child,
            addr,
            _logs: logs,
        };
        let deadline = tokio::time::Instant::now() + MOTO_START;
        loop {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return moto;
            }
            let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
            if let Some(status) = moto.child.try_wait().expect("moto's status") {
                panic!(
                    "{} exited at start ({status}); {INSTALL}. Its output:\n{}",
                    executable.display(),
                    log()
                );
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} did not answer on {addr} within {MOTO_START:?}. Its output:\n{}",
                executable.display(),
                log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its endpoint URL, `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        // Only our own child, by its handle; an error means it is gone already.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The real AWS CLI against an endpoint, with static test credentials and an empty home,
/// so that no user configuration (nor any real account) is involved.
pub struct AwsCli {
    cli: PathBuf,
    home: TempDir,
    url: String,
}

impl AwsCli {
    /// The CLI against `url` (moto's, or a proxy in front of it).
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            cli: aws_cli_path(),
            home: tempfile::tempdir().expect("a temporary directory"),
            url: url.into(),
        }
    }

    /// Runs `aws --endpoint-url <url> --region us-east-1 --output json <args>` and returns
    /// what it printed (`Value::Null` when it printed nothing).
    ///
    /// # Panics
    ///
    /// When the command fails or takes longer than a minute: with its output.
    pub async fn json(&self, args: &[&str]) -> Value {
        let home = self.home.path();
        let mut command = tokio::process::Command::new(&self.cli);
        command
            .args([
                "--endpoint-url",
                &self.url,
                "--region",
                "us-east-1",
                "--output",
                "json",
            ])
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home)
            .env("AWS_CONFIG_FILE", home.join("config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", home.join("credentials"))
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_PAGER", "")
            .current_dir(home)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let output = tokio::time::timeout(PATIENCE, command.output())
            .await
            .unwrap_or_else(|_| panic!("aws {args:?} did not finish within {PATIENCE:?}"))
            .unwrap_or_else(|error| panic!("cannot run {}: {error}", self.cli.display()));
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "aws {args:?} failed ({}):\n{stdout}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        if stdout.trim().is_empty() {
            return Value::Null;
        }
        serde_json::from_str(&stdout)
            .unwrap_or_else(|error| panic!("aws {args:?}: {error}: {stdout}"))
    }
}
