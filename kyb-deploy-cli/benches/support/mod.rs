//! What the whole-system benchmarks share: the release binaries they build and run, the
//! peak memory of a process tree, the Docker engine and registry they need, and the table
//! of figures they print.

#![allow(
    clippy::print_stderr,
    dead_code,
    unreachable_pub,
    reason = "each benchmark uses a part of what they share"
)]

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Output, Stdio};
use std::time::Duration;

use nix::sys::resource::{UsageWho, getrusage};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Errors end a benchmark; they carry their cause.
pub(crate) type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The `main` of benchmark `name`: [`rss_wrapper`] when asked to be it, a note on how to
/// run the benchmark when `cargo test --benches` runs it (a benchmark of minutes has no
/// place in a test run), else `run` on a multi-threaded runtime, reporting its error and
/// causes.
pub(crate) fn main_of<F>(name: &str, run: impl FnOnce() -> F) -> ExitCode
where
    F: std::future::Future<Output = BenchResult<()>>,
{
    let args: Vec<OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == RSS_WRAPPER) {
        return rss_wrapper(&args[2..]);
    }
    if !args.iter().any(|a| a == "--bench") {
        eprintln!("{name} is a benchmark: cargo bench -p kyb-deploy-cli --bench {name}");
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the Tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            let mut source = e.source();
            while let Some(cause) = source {
                eprintln!("caused by: {cause}");
                source = cause.source();
            }
            ExitCode::FAILURE
        }
    }
}

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

/// The local registry images are pushed to.
pub(crate) const REGISTRY: &str = "127.0.0.1:5000";

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

/// The sample service's image: `FROM scratch` with its static binary.
pub(crate) const DOCKERFILE: &str = r#"FROM scratch
ARG VERSION=dev
ENV APP_VERSION=${VERSION} PORT=8080
COPY kyb-sample-api /kyb-sample-api
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["/kyb-sample-api"]
"#;

/// The Docker engine and the registry on 127.0.0.1:5000 are this measure's peers: without
/// them it fails, it does not skip.
pub(crate) async fn require_docker() -> BenchResult<()> {
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

pub(crate) fn free_port() -> BenchResult<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// One line of the table.
pub(crate) struct Row {
    pub(crate) figure: String,
    pub(crate) value: String,
    /// The target, the ratio value / target, and whether it is met.
    pub(crate) target: Option<(String, f64, bool)>,
    pub(crate) baseline: String,
}

/// Prints `rows` as a table with a header.
pub(crate) fn print_table(rows: &[Row]) {
    let header = Row {
        figure: "figure".into(),
        value: "value".into(),
        target: None,
        baseline: "baseline, same run".into(),
    };
    let cells = |r: &Row| -> [String; 6] {
        let (target, ratio, status) = match &r.target {
            Some((t, ratio, met)) => (
                t.clone(),
                format!("{ratio:.2}"),
                if *met { "met" } else { "MISSED" }.to_owned(),
            ),
            None => (String::new(), String::new(), String::new()),
        };
        [
            r.figure.clone(),
            r.value.clone(),
            target,
            ratio,
            status,
            r.baseline.clone(),
        ]
    };
    let mut lines: Vec<[String; 6]> = vec![{
        let mut h = cells(&header);
        h[2] = "target".into();
        h[3] = "ratio".into();
        h[4] = "status".into();
        h
    }];
    lines.extend(rows.iter().map(cells));
    let mut widths = [0; 6];
    for line in &lines {
        for (w, cell) in widths.iter_mut().zip(line) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for line in &lines {
        let text: Vec<String> = line
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        println!("{}", text.join("  ").trim_end());
    }
}

/// The median of `values` (the mean of the two middle ones for an even count).
pub(crate) fn median(values: &[Duration]) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort();
    match sorted.len() {
        0 => Duration::ZERO,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2,
    }
}

pub(crate) fn ratio(value: Duration, target: Duration) -> f64 {
    value.as_secs_f64() / target.as_secs_f64()
}

pub(crate) fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

pub(crate) fn millis(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

pub(crate) fn minutes(d: Duration) -> String {
    format!("{:.2} min", d.as_secs_f64() / 60.0)
}

pub(crate) fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

pub(crate) fn list(values: &[Duration]) -> String {
    values
        .iter()
        .map(|d| format!("{:.2}", d.as_secs_f64()))
        .collect::<Vec<_>>()
        .join(", ")
        + " s"
}

pub(crate) fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_owned())
}
