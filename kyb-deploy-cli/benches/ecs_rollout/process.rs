//! The processes the benchmark runs: the release binaries it builds, `kyb-deploy --version`
//! and `aws --version` start-up, and the peak memory of a full staging deploy.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Output, Stdio};
use std::time::{Duration, Instant};

use kyb_deploy_core::{Release, Version};
use kyb_deploy_testkit::SampleApiProcess;
use kyb_deploy_testkit::ecs_sim::EcsSimulator;
use nix::sys::resource::{UsageWho, getrusage};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::BenchResult;
use crate::sim;

/// The first argument that turns the benchmark binary into [`rss_wrapper`].
pub(crate) const RSS_WRAPPER: &str = "__max-rss";

/// The release binaries the benchmark runs, built by the benchmark itself.
pub(crate) const BUILD_ARGS: &[&str] = &[
    "build",
    "--release",
    "--locked",
    "-p",
    "kyb-deploy-cli",
    "-p",
    "kyb-deploy-testkit",
    "--bin",
    "kyb-deploy",
    "--bin",
    "kyb-sample-api",
];

const REGISTRY: &str = "127.0.0.1:5000";

/// The release binaries.
pub(crate) struct Binaries {
    pub(crate) kyb_deploy: PathBuf,
    pub(crate) sample_api: PathBuf,
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Builds (or finds up to date) the release binaries, in the build directory of this
/// benchmark (`target/release`, where `cargo bench` puts it in `deps/`): figures never come
/// from a stale `kyb-deploy`.
pub(crate) fn build_binaries() -> BenchResult<Binaries> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let command = format!("cargo {}", BUILD_ARGS.join(" "));
    eprintln!("building the release binaries: {command}");
    let mut build = Command::new(&cargo);
    build.args(BUILD_ARGS).current_dir(workspace_root());
    // `cargo bench` gives this process the variables of the package it runs
    // (CARGO_MANIFEST_DIR, CARGO_PKG_*, ...). Some build scripts track them (ring's does
    // CARGO_MANIFEST_DIR), so the inner build must not see them: with them, it and a build
    // from a shell would rebuild each other's dependencies every time.
    // The user's own settings (CARGO_HOME, CARGO_TARGET_DIR, CARGO_PROFILE_*, ...) stay.
    for (key, _) in std::env::vars_os() {
        let key_text = key.to_string_lossy();
        let set_for_the_run = key_text.starts_with("CARGO_PKG_")
            || matches!(
                &*key_text,
                "CARGO_MANIFEST_DIR"
                    | "CARGO_MANIFEST_PATH"
                    | "CARGO_CRATE_NAME"
                    | "CARGO_BIN_NAME"
                    | "CARGO_PRIMARY_PACKAGE"
                    | "CARGO_TARGET_TMPDIR"
                    | "CARGO_RUSTC_CURRENT_DIR"
            );
        if set_for_the_run {
            build.env_remove(&key);
        }
    }
    let status = build
        .status()
        .map_err(|e| format!("cannot run cargo ({e}); build the binaries with: {command}"))?;
    if !status.success() {
        return Err(format!("{command} failed ({status})").into());
    }
    let exe = std::env::current_exe()?;
    let release = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("the benchmark binary has no build directory")?;
    let binaries = Binaries {
        kyb_deploy: release.join("kyb-deploy"),
        sample_api: release.join("kyb-sample-api"),
    };
    for binary in [&binaries.kyb_deploy, &binaries.sample_api] {
        if !binary.is_file() {
            return Err(format!(
                "{} is missing after the build; build it with: {command}",
                binary.display()
            )
            .into());
        }
    }
    Ok(binaries)
}

/// The `aws` command, with test credentials and no user configuration: the simulator
/// accepts any signature, and nothing of the machine's AWS set-up may leak in.
pub(crate) fn aws_command() -> Command {
    let mut command = Command::new("aws");
    aws_environment(&mut command);
    command
}

/// Test credentials, region and no configuration files for an AWS client process.
fn aws_environment(command: &mut Command) {
    let none = std::env::temp_dir().join("kyb-bench-no-aws-config");
    for key in [
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_ECS",
    ] {
        command.env_remove(key);
    }
    command
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", sim::REGION)
        .env("AWS_DEFAULT_REGION", sim::REGION)
        .env("AWS_CONFIG_FILE", none.join("config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", none.join("credentials"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_PAGER", "");
}

/// Start-up times of one command, run `runs` times after one warm-up run.
pub(crate) struct Startup {
    pub(crate) times: Vec<Duration>,
    /// What the command printed (its version).
    pub(crate) output: String,
}

pub(crate) fn startup(mut command: impl FnMut() -> Command, runs: usize) -> BenchResult<Startup> {
    let mut times = Vec::new();
    let mut output = String::new();
    for run in 0..=runs {
        let started = Instant::now();
        let out = command().stdin(Stdio::null()).output()?;
        let took = started.elapsed();
        if !out.status.success() {
            return Err(format!(
                "{:?} failed ({}): {}",
                command(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )
            .into());
        }
        if run == 0 {
            // Warm-up: page cache and, for `aws`, Python's bytecode cache.
            let text = [out.stdout, out.stderr].concat();
            output = String::from_utf8_lossy(&text).trim().to_owned();
        } else {
            times.push(took);
        }
    }
    Ok(Startup { times, output })
}

/// Runs `command` through [`rss_wrapper`]: its output, and the peak resident set size in
/// bytes of it and its descendants (of the largest of them).
///
/// `getrusage(RUSAGE_CHILDREN)` reports the largest peak among the children a process has
/// waited for; the benchmark itself has had others (cargo, the AWS CLI), so the measure is
/// taken in a process of its own whose only child is `command`.
pub(crate) fn max_rss(command: &Command) -> BenchResult<(u64, Output)> {
    let report = tempfile::NamedTempFile::new()?;
    let mut wrapper = Command::new(std::env::current_exe()?);
    wrapper
        .arg(RSS_WRAPPER)
        .arg(report.path())
        .arg(command.get_program())
        .args(command.get_args())
        .stdin(Stdio::null());
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => wrapper.env(key, value),
            None => wrapper.env_remove(key),
        };
    }
    if let Some(dir) = command.get_current_dir() {
        wrapper.current_dir(dir);
    }
    let output = wrapper.output()?;
    let text = std::fs::read_to_string(report.path())?;
    let kib: u64 = text.trim().parse().map_err(|_| {
        format!(
            "the memory wrapper reported {text:?}; its output: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })?;
    Ok((kib * 1024, output))
}

/// `__max-rss REPORT PROGRAM ARGS...`: runs the program, writes the peak RSS (KiB) of its
/// process tree to REPORT, and exits with the program's code.
pub(crate) fn rss_wrapper(args: &[OsString]) -> ExitCode {
    let [report, program, rest @ ..] = args else {
        eprintln!("usage: {RSS_WRAPPER} REPORT PROGRAM [ARGS...]");
        return ExitCode::from(2);
    };
    let status = match Command::new(program).args(rest).status() {
        Ok(status) => status,
        Err(e) => {
            eprintln!("cannot run {}: {e}", program.to_string_lossy());
            return ExitCode::from(127);
        }
    };
    let peak = match getrusage(UsageWho::RUSAGE_CHILDREN) {
        Ok(usage) => usage.max_rss(),
        Err(e) => {
            eprintln!("getrusage: {e}");
            return ExitCode::from(125);
        }
    };
    if let Err(e) = std::fs::write(report, peak.to_string()) {
        eprintln!("cannot write {}: {e}", report.to_string_lossy());
        return ExitCode::from(125);
    }
    ExitCode::from(status.code().map_or(1, |c| u8::try_from(c).unwrap_or(1)))
}

/// A full staging deploy by the `kyb-deploy` binary.
pub(crate) struct StagingDeploy {
    pub(crate) peak_rss: u64,
    pub(crate) took: Duration,
}

const STAGING_CLUSTER: &str = "kyb-bench-staging";
const STAGING_SERVICE: &str = "kyb-bench-api";

/// `kyb-deploy deploy -e staging -v v2 --skip-tests` in a project of its own: the image
/// (`FROM scratch` with the sample service's binary) built by the Docker engine and pushed
/// to the local registry, the ECS service of an in-process simulator updated and followed
/// to COMPLETED, and a local `kyb-sample-api` (reporting v2) verified.
pub(crate) async fn staging_deploy(binaries: &Binaries) -> BenchResult<StagingDeploy> {
    require_docker().await?;
    // Fast enough that the rollout takes a couple of seconds; memory does not depend on it.
    let sim = sim::serve(EcsSimulator::builder().time_scale(30.0).seed(3)).await?;
    let client = sim::client(&sim.url());
    sim::create_cluster(&client, STAGING_CLUSTER).await?;
    let first = format!("{REGISTRY}/{STAGING_SERVICE}:v1");
    sim::create_service(&client, STAGING_CLUSTER, STAGING_SERVICE, &first, true).await?;
    sim::wait_steady(sim.handle(), STAGING_CLUSTER, 1, Duration::from_secs(30)).await?;

    let port = free_port()?;
    let sample = SampleApiProcess::new(&binaries.sample_api, port);
    (sample.activate_hook())(Release::new(Version::parse("v2")?, "sample")).await?;

    let project = tempfile::tempdir()?;
    let context = project.path().join("context");
    std::fs::create_dir(&context)?;
    std::fs::copy(&binaries.sample_api, context.join("kyb-sample-api"))?;
    std::fs::write(context.join("Dockerfile"), DOCKERFILE)?;
    std::fs::write(
        project.path().join("kyb-deploy.toml"),
        staging_config(&sim.url(), sample.endpoint().as_str()),
    )?;

    let mut command = Command::new(&binaries.kyb_deploy);
    command
        .args(["deploy", "-e", "staging", "-v", "v2", "--skip-tests"])
        .current_dir(project.path())
        .env("NO_COLOR", "1");
    aws_environment(&mut command);
    let started = Instant::now();
    let (peak_rss, out) = tokio::task::spawn_blocking(move || max_rss(&command)).await??;
    let took = started.elapsed();
    sample.stop().await;
    sim.shutdown().await?;
    if !out.status.success() {
        return Err(format!(
            "kyb-deploy deploy -e staging failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(StagingDeploy { peak_rss, took })
}

const DOCKERFILE: &str = r#"FROM scratch
ARG VERSION=dev
ENV APP_VERSION=${VERSION} PORT=8080
COPY kyb-sample-api /kyb-sample-api
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["/kyb-sample-api"]
"#;

fn staging_config(ecs_url: &str, base_url: &str) -> String {
    format!(
        r#"[project]
name = "{STAGING_SERVICE}"

[image]
repository = "{REGISTRY}/{STAGING_SERVICE}"
context = "context"
port = 8080
scan = "policy"

[image.build_args]
VERSION = "{{version}}"

[ledger]
path = "ledger.jsonl"

[environments.staging]
target = "ecs"
rollback = "auto"

[environments.staging.ecs]
cluster = "{STAGING_CLUSTER}"
service = "{STAGING_SERVICE}"
region = "{region}"
endpoint_url = "{ecs_url}"

[environments.staging.env]
ENVIRONMENT = "staging"

[environments.staging.verify]
base_url = "{base_url}"

[environments.staging.verify.readiness]
period = "250ms"

[environments.staging.verify.liveness]
period = "250ms"

[[environments.staging.verify.smoke]]
name = "classify"
method = "POST"
path = "/v1/classify"
json = {{ business_name = "Test Corp" }}
expect_status = 200
expect_json = {{ "/business_name" = "Test Corp" }}
"#,
        region = sim::REGION,
    )
}

/// The Docker engine and the registry on 127.0.0.1:5000 are this measure's peers: without
/// them it fails, it does not skip.
async fn require_docker() -> BenchResult<()> {
    let engine = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output();
    if !engine.is_ok_and(|o| o.status.success()) {
        return Err(
            "the Docker engine is not running; start it with: bash scripts/setup.sh".into(),
        );
    }
    let registry = http_status(REGISTRY, "/v2/").await;
    if registry != Some(200) {
        return Err(
            format!("no registry on {REGISTRY}; start it with: bash scripts/setup.sh").into(),
        );
    }
    Ok(())
}

/// The status of a plain HTTP GET, or `None` when nothing answers.
async fn http_status(addr: &str, path: &str) -> Option<u16> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.ok()?;
        let text = String::from_utf8_lossy(&answer);
        text.split_whitespace().nth(1)?.parse().ok()
    };
    tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .ok()
        .flatten()
}

fn free_port() -> BenchResult<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
