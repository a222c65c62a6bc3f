//! How fast the JSON-lines ledger answers at 100,000 runs, against reading it whole.
//!
//! It writes a ledger of 100,000 runs (each an `in_progress` line and a final line, about
//! 1.5 KB, four environments, the last known-good release of `production` far from the end,
//! a few runs killed long ago) into a temporary directory, then measures in the same run:
//!
//! - the baseline: `load()` of the whole ledger, then `last_known_good` on the snapshot;
//! - `find_latest` for the last known-good release (the target: under 100 ms);
//! - `recent(…, 20)` of one environment and of all, as `status` and `history` read them;
//! - `in_progress`, as every deploy and rollback asks it (read back to the environment's
//!   newest deploy), and `find_latest` in an environment with no runs (the worst case: the
//!   whole ledger read backwards);
//!
//! each the median of several runs on a warm page cache, with the peak memory each one adds
//! measured in a fresh child process (`VmHWM` of `/proc/self/status`, Linux only).
//!
//! ```text
//! cargo bench -p kyb-deploy-core --bench ledger
//! ```
//!
//! It takes about a minute and fails only on errors or when a lookup disagrees with the
//! baseline: a missed target is printed as MISSED. See docs/performance.md.

#![expect(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a benchmark reports on the terminal: progress on stderr, the table on stdout"
)]

use std::future::Future;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use kyb_deploy_core::{
    DeploymentRecord, JsonlRecordStore, Operation, Outcome, RecordStatus, RecordStore, Release,
    Stage, StageResult, StageTiming, Version,
};
use time::OffsetDateTime;

type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

const RUNS: usize = 100_000;
/// The environments, each with its share of the runs (out of 20).
const ENVIRONMENTS: [(&str, usize); 4] = [
    ("development", 8),
    ("staging", 6),
    ("production", 4),
    ("sandbox", 2),
];
/// How many of the latest `production` runs failed and were rolled back: the last known-good
/// one is about five times as many runs from the end of the ledger.
const FAILED_AT_THE_END: usize = 300;
const TARGET: Duration = Duration::from_millis(100);
const FAST_REPEATS: usize = 21;
const SLOW_REPEATS: usize = 5;
/// The argument that makes the binary measure one lookup's peak memory and exit.
const CHILD: &str = "--measure-one";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).is_some_and(|a| a == CHILD) {
        return child(&args[2..]);
    }
    // `cargo test --benches` runs this binary without `--bench`: a benchmark that writes
    // 200 MB has no place in a test run.
    if !args.iter().any(|a| a == "--bench") {
        eprintln!("ledger is a benchmark: cargo bench -p kyb-deploy-core --bench ledger");
        return ExitCode::SUCCESS;
    }
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The lookups measured, by name.
#[derive(Clone, Copy, Debug)]
enum Lookup {
    Baseline,
    LastKnownGood,
    RecentOne,
    RecentAll,
    InProgress,
    Absent,
}

impl Lookup {
    const ALL: [Self; 6] = [
        Self::Baseline,
        Self::LastKnownGood,
        Self::RecentOne,
        Self::RecentAll,
        Self::InProgress,
        Self::Absent,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Baseline => "baseline",
            Self::LastKnownGood => "last-known-good",
            Self::RecentOne => "recent-one",
            Self::RecentAll => "recent-all",
            Self::InProgress => "in-progress",
            Self::Absent => "absent",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Baseline => "baseline: load() + last_known_good, production",
            Self::LastKnownGood => "find_latest, last known-good of production",
            Self::RecentOne => "recent(production, 20) (status)",
            Self::RecentAll => "recent(all, 20) (history)",
            Self::InProgress => "in_progress(production), back to its newest deploy",
            Self::Absent => "find_latest in an environment with no runs",
        }
    }

    fn repeats(self) -> usize {
        match self {
            Self::Baseline | Self::InProgress | Self::Absent => SLOW_REPEATS,
            Self::LastKnownGood | Self::RecentOne | Self::RecentAll => FAST_REPEATS,
        }
    }

    /// Runs the lookup once; says what it found, to compare with the baseline.
    async fn run(self, store: &JsonlRecordStore) -> BenchResult<String> {
        let found = match self {
            Self::Baseline => {
                let snapshot = store.load().await?;
                describe(snapshot.last_known_good("production"))
            }
            Self::LastKnownGood => describe(
                store
                    .find_latest("production", &DeploymentRecord::is_known_good)
                    .await?
                    .as_ref(),
            ),
            Self::RecentOne => ids(&store.recent(Some("production"), 20).await?.records),
            Self::RecentAll => ids(&store.recent(None, 20).await?.records),
            Self::InProgress => ids(&store.in_progress("production").await?),
            Self::Absent => describe(store.find_latest("qa", &|_| true).await?.as_ref()),
        };
        Ok(found)
    }
}

fn describe(record: Option<&DeploymentRecord>) -> String {
    record.map_or_else(|| "none".to_owned(), |r| format!("{} {}", r.id, r.version))
}

fn ids(records: &[DeploymentRecord]) -> String {
    let ids: Vec<&str> = records.iter().map(|r| r.id.as_str()).collect();
    ids.join(",")
}

fn run() -> BenchResult<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("ledger.jsonl");
    eprintln!("writing a ledger of {RUNS} runs...");
    let started = Instant::now();
    let written = write_ledger(&path)?;
    let size = std::fs::metadata(&path)?.len();
    eprintln!(
        "wrote {} lines, {:.1} MB (final lines {} bytes on average) in {:.1} s",
        written.lines,
        size as f64 / 1e6,
        written.final_bytes / RUNS as u64,
        started.elapsed().as_secs_f64()
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let store = JsonlRecordStore::new(&path);
    // Warm the page cache, and know the answers the lookups must agree with.
    let snapshot = runtime.block_on(store.load())?;
    let expected = |lookup: Lookup| -> String {
        match lookup {
            Lookup::Baseline | Lookup::LastKnownGood => {
                describe(snapshot.last_known_good("production"))
            }
            Lookup::RecentOne => ids(&snapshot.recent(Some("production"), 20).records),
            Lookup::RecentAll => ids(&snapshot.recent(None, 20).records),
            Lookup::InProgress => ids(&snapshot.unresolved("production")),
            Lookup::Absent => "none".to_owned(),
        }
    };
    let distance = snapshot
        .records
        .iter()
        .rev()
        .position(|r| r.environment == "production" && r.is_known_good())
        .unwrap_or(0);

    let mut rows = Vec::new();
    for lookup in Lookup::ALL {
        eprintln!("measuring {} x{}...", lookup.label(), lookup.repeats());
        let mut times = Vec::new();
        for _ in 0..lookup.repeats() {
            let (found, took) = timed(&runtime, lookup.run(&store))?;
            if found != expected(lookup) {
                return Err(format!(
                    "{} answered {found}, the snapshot says {}",
                    lookup.label(),
                    expected(lookup)
                )
                .into());
            }
            times.push(took);
        }
        times.sort();
        let peak = peak_memory(&path, lookup);
        rows.push((lookup, times[times.len() / 2], peak));
    }
    drop(snapshot);

    let baseline = rows[0].1;
    println!();
    println!(
        "ledger: {RUNS} runs, {} lines, {:.1} MB; the last known-good run of production is the \
         {distance}th run from the end",
        written.lines,
        size as f64 / 1e6
    );
    println!();
    println!("| lookup | median | vs baseline | peak memory added |");
    println!("|---|---|---|---|");
    for (lookup, median, peak) in &rows {
        println!(
            "| {} | {} | {:.4} | {} |",
            lookup.label(),
            millis(*median),
            median.as_secs_f64() / baseline.as_secs_f64(),
            peak.map_or_else(|| "n/a".to_owned(), |p| format!("{:.1} MB", p as f64 / 1e6))
        );
    }
    let last_known_good = rows[1].1;
    println!();
    println!(
        "target: last known-good lookup under {}: {} ({}, {:.0}x faster than the baseline)",
        millis(TARGET),
        if last_known_good < TARGET {
            "met"
        } else {
            "MISSED"
        },
        millis(last_known_good),
        baseline.as_secs_f64() / last_known_good.as_secs_f64()
    );
    Ok(())
}

/// Runs `work` on `runtime`, timed.
fn timed<T>(
    runtime: &tokio::runtime::Runtime,
    work: impl Future<Output = BenchResult<T>>,
) -> BenchResult<(T, Duration)> {
    let started = Instant::now();
    let value = runtime.block_on(work)?;
    Ok((value, started.elapsed()))
}

fn millis(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// The peak memory one run of `lookup` adds, measured in a fresh process.
fn peak_memory(path: &Path, lookup: Lookup) -> Option<u64> {
    let output = Command::new(std::env::current_exe().ok()?)
        .args([CHILD, lookup.name()])
        .arg(path)
        .output()
        .ok()?;
    String::from_utf8(output.stdout).ok()?.trim().parse().ok()
}

/// In the child: runs one lookup and prints the bytes by which the peak resident set grew.
fn child(args: &[String]) -> ExitCode {
    let [name, path] = args else {
        return ExitCode::FAILURE;
    };
    let Some(lookup) = Lookup::ALL.into_iter().find(|l| l.name() == name) else {
        return ExitCode::FAILURE;
    };
    let Ok(runtime) = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    else {
        return ExitCode::FAILURE;
    };
    let store = JsonlRecordStore::new(path);
    let (Some(before), Ok(_), Some(after)) = (
        status_kb("VmRSS:"),
        runtime.block_on(lookup.run(&store)),
        status_kb("VmHWM:"),
    ) else {
        return ExitCode::FAILURE;
    };
    println!("{}", after.saturating_sub(before) * 1024);
    ExitCode::SUCCESS
}

/// A `kB` figure of `/proc/self/status`.
fn status_kb(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

struct Written {
    lines: usize,
    final_bytes: u64,
}

/// Writes the ledger: runs spread over the environments in a fixed pattern, each an
/// `in_progress` line then its final line (a few runs, killed, only the first).
fn write_ledger(path: &Path) -> BenchResult<Written> {
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let pattern: Vec<&str> = ENVIRONMENTS
        .iter()
        .flat_map(|(name, share)| std::iter::repeat_n(*name, *share))
        .collect();
    let production_runs = RUNS * 4 / 20;
    let mut production_seen = 0;
    let mut written = Written {
        lines: 0,
        final_bytes: 0,
    };
    let start = time::macros::datetime!(2024-01-01 00:00:00 UTC);
    for i in 0..RUNS {
        // Interleave the environments so that each one's runs are spread over the file.
        let environment = pattern[(i * 7) % pattern.len()];
        let started_at = start + time::Duration::minutes(i as i64 * 7);
        let mut record = run_record(i, environment, started_at)?;
        serde_json::to_writer(&mut out, &record)?;
        out.write_all(b"\n")?;
        written.lines += 1;
        // Runs killed mid-deploy, long ago and recently; the latest deploys mark them
        // abandoned in real life, but these were never found.
        if i == RUNS / 10 || i == RUNS - 50 {
            continue;
        }
        let failed = environment == "production" && {
            production_seen += 1;
            production_seen > production_runs - FAILED_AT_THE_END || i % 9 == 0
        };
        finish(&mut record, failed, started_at);
        let line = serde_json::to_vec(&record)?;
        written.final_bytes += line.len() as u64 + 1;
        out.write_all(&line)?;
        out.write_all(b"\n")?;
        written.lines += 1;
    }
    out.flush()?;
    out.get_ref().sync_all()?;
    Ok(written)
}

fn release(i: usize, version: &Version) -> Release {
    let mut release = Release::new(
        version.clone(),
        format!(
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/kyb-api@sha256:{:064x}",
            i as u128 * 0x9e37_79b9_7f4a_7c15
        ),
    );
    release.platform_ref = Some(format!(
        "arn:aws:ecs:eu-west-1:123456789012:task-definition/kyb-api:{}",
        i + 1
    ));
    release.record_id = Some(run_id(i));
    release
}

fn run_id(i: usize) -> String {
    format!(
        "2024{i:011}Z-{:08x}",
        (i as u32).wrapping_mul(2_654_435_761)
    )
}

fn run_record(
    i: usize,
    environment: &str,
    started_at: OffsetDateTime,
) -> BenchResult<DeploymentRecord> {
    let version = Version::parse(&format!("v1.{}.{}", i / 1000, i % 1000))?;
    let previous = Version::parse(&format!(
        "v1.{}.{}",
        i.saturating_sub(1) / 1000,
        i.saturating_sub(1) % 1000
    ))?;
    let mut record = DeploymentRecord::start(
        run_id(i),
        Operation::Deploy,
        environment,
        "ecs",
        version.clone(),
    );
    record.started_at = started_at;
    record.actor = "github-actions[bot]".to_owned();
    record.pid = 4000 + (i % 30000) as u32;
    record.commit = Some(format!("{:040x}", i as u128 * 0x2545_f491_4f6c_dd1d));
    record.release = Some(release(i, &version));
    record.previous = Some(release(i.saturating_sub(1), &previous));
    Ok(record)
}

fn finish(record: &mut DeploymentRecord, failed: bool, started_at: OffsetDateTime) {
    let stages = [
        Stage::Preflight,
        Stage::Version,
        Stage::Tests,
        Stage::Build,
        Stage::Scan,
        Stage::Push,
        Stage::Lock,
        Stage::Plan,
        Stage::Record,
        Stage::Deploy,
        Stage::Wait,
        Stage::Verify,
    ];
    for (n, stage) in stages.into_iter().enumerate() {
        let result = if failed && stage == Stage::Verify {
            StageResult::Failed {
                message: "GET https://api.example.com/healthz answered 503 three times".to_owned(),
            }
        } else {
            StageResult::Succeeded
        };
        record.stages.push(StageTiming::new(
            stage,
            Duration::from_millis(150 + 37 * n as u64),
            result,
        ));
    }
    record.rollout_id = Some("ecs-svc/4715928357265411891".to_owned());
    let release = record.release.clone().expect("every run has a release");
    let outcome = if failed {
        Outcome::RolledBack {
            stage: Stage::Verify,
            reason: "the service answered 503 at https://api.example.com/healthz".to_owned(),
            to: record
                .previous
                .clone()
                .expect("every run has a previous release"),
            by_platform: false,
        }
    } else {
        Outcome::Succeeded {
            release,
            dry_run: false,
        }
    };
    record
        .warnings
        .push("tests were skipped (--skip-tests)".to_owned());
    record.skipped_tests = true;
    record.finish(outcome);
    record.finished_at = Some(started_at + time::Duration::seconds(95));
    debug_assert!(record.status != RecordStatus::InProgress);
}
