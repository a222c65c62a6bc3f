//! How kyb-deploy's ECS backend performs against the testkit's ECS simulator, with the AWS
//! CLI measured in the same run as the baseline:
//!
//! - completion-detection latency, from the simulator marking a deployment COMPLETED to
//!   kyb-deploy reporting success, beside `aws ecs wait services-stable` on the same rollouts;
//! - DescribeServices calls during 5-minute rollouts, of one service and of 100 services
//!   deployed together;
//! - `kyb-deploy --version` start-up time and the peak memory of a full staging deploy,
//!   beside `aws --version`.
//!
//! ```text
//! cargo bench -p kyb-deploy-cli --bench ecs_rollout
//! ```
//!
//! It builds the release binaries it runs (`cargo build --release ...`, a no-op when they are
//! up to date) and needs the AWS CLI, the Docker engine and the registry on 127.0.0.1:5000
//! (`bash scripts/setup.sh`). It takes about 2.5 minutes, prints a table of value, target and
//! ratio (value / target) per figure, and fails only on errors: a missed target is printed
//! as MISSED. See docs/performance.md.

#![expect(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a benchmark reports on the terminal: progress on stderr, the table on stdout"
)]

mod calls;
mod latency;
mod process;
mod sim;
#[path = "../support/mod.rs"]
mod support;

use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

pub(crate) use crate::support::{
    BenchResult, Row, cpu_model, list, median, megabytes, millis, minutes, print_table, ratio, secs,
};

/// `kyb-deploy --version` runs timed; the median is reported.
const STARTUP_RUNS: usize = 21;
/// `aws --version` runs timed (each takes about half a second).
const AWS_STARTUP_RUNS: usize = 5;

const LATENCY_TARGET: Duration = Duration::from_secs(2);
const CALLS_PER_SECOND_TARGET: f64 = 10.0;
const STARTUP_TARGET: Duration = Duration::from_millis(10);
const MEMORY_TARGET: u64 = 40_000_000;

fn main() -> ExitCode {
    support::main_of("ecs_rollout", run)
}

async fn run() -> BenchResult<()> {
    let started = Instant::now();
    let binaries = support::build_binaries()?;
    let aws = Command::new("aws").arg("--version").output();
    if !aws.is_ok_and(|o| o.status.success()) {
        return Err("the AWS CLI (`aws`) is missing; it is the baseline of this benchmark".into());
    }
    // The latency rollouts' services start now; their first rollout runs during the next two
    // measures, which need little of the machine.
    let prepared = latency::prepare().await?;

    eprintln!("start-up: kyb-deploy --version x{STARTUP_RUNS}, aws --version x{AWS_STARTUP_RUNS}");
    let kyb_startup = process::startup(
        || {
            let mut c = Command::new(&binaries.kyb_deploy);
            c.arg("--version");
            c
        },
        STARTUP_RUNS,
    )?;
    let aws_startup = process::startup(
        || {
            let mut c = process::aws_command();
            c.arg("--version");
            c
        },
        AWS_STARTUP_RUNS,
    )?;
    let (aws_rss, _) = support::max_rss(process::aws_command().arg("--version"))?;

    eprintln!("peak memory: kyb-deploy deploy -e staging (Docker build and push, ECS simulator)");
    let staging = process::staging_deploy(&binaries).await?;

    eprintln!(
        "latency: {} rollouts at time scale 1, kyb-deploy and aws ecs wait services-stable (about 75 s)",
        latency::SERVICES
    );
    let latency = latency::run(prepared).await?;

    eprintln!(
        "calls: 1 service, a {}-minute rollout at time scale {}",
        calls::ROLLOUT.as_secs() / 60,
        calls::SCALE
    );
    let one = calls::run(1).await?;
    eprintln!("calls: 100 services deployed together, sharing one poller");
    let fleet = calls::run(100).await?;

    report(&Figures {
        binaries: &binaries,
        kyb_startup: &kyb_startup,
        aws_startup: &aws_startup,
        aws_rss,
        staging: &staging,
        latency: &latency,
        one: &one,
        fleet: &fleet,
        took: started.elapsed(),
    });
    Ok(())
}

struct Figures<'a> {
    binaries: &'a support::Binaries,
    kyb_startup: &'a process::Startup,
    aws_startup: &'a process::Startup,
    aws_rss: u64,
    staging: &'a process::StagingDeploy,
    latency: &'a latency::Latency,
    one: &'a calls::Rates,
    fleet: &'a calls::Rates,
    took: Duration,
}

fn report(f: &Figures<'_>) {
    let latency = f.latency;
    let kyb_latency = latency.kyb_median();
    let cli_latency = latency.cli_median();
    let kyb_start = median(&f.kyb_startup.times);
    let aws_start = median(&f.aws_startup.times);
    let rows = vec![
        Row {
            figure: format!(
                "completion latency, median of {} rollouts",
                latency.kyb.len()
            ),
            value: secs(kyb_latency),
            target: Some((
                format!("<= {}", secs(LATENCY_TARGET)),
                ratio(kyb_latency, LATENCY_TARGET),
                kyb_latency <= LATENCY_TARGET,
            )),
            baseline: format!("{} (aws ecs wait services-stable)", secs(cli_latency)),
        },
        Row {
            figure: "  DescribeServices/service/min, these rollouts".into(),
            value: format!("{:.1}", latency.kyb_calls_per_minute),
            target: None,
            baseline: format!("{:.1}", latency.cli_calls_per_minute),
        },
        Row {
            figure: format!(
                "DescribeServices/s, 1 service, {}-min rollout",
                calls::ROLLOUT.as_secs() / 60
            ),
            value: format!("{:.2}/s", f.one.per_second()),
            target: Some(calls_target(f.one.per_second())),
            baseline: format!("{:.2}/s", latency.cli_calls_per_minute / 60.0),
        },
        Row {
            figure: "  DescribeServices/service/min".into(),
            value: format!("{:.1}", f.one.per_service_minute()),
            target: None,
            baseline: format!("{:.1}", latency.cli_calls_per_minute),
        },
        Row {
            figure: format!("DescribeServices/s, {} services together", f.fleet.services),
            value: format!("{:.2}/s", f.fleet.per_second()),
            target: Some(calls_target(f.fleet.per_second())),
            baseline: format!(
                "{:.2}/s (a waiter per service; {:.2}/s with 10 services per waiter)",
                latency.cli_calls_per_minute * f.fleet.services as f64 / 60.0,
                latency.cli_calls_per_minute * f.fleet.services as f64 / 600.0
            ),
        },
        Row {
            figure: "  DescribeServices/service/min".into(),
            value: format!("{:.2}", f.fleet.per_service_minute()),
            target: None,
            baseline: format!("{:.1}", latency.cli_calls_per_minute),
        },
        Row {
            figure: format!(
                "  DescribeServices/s while the {} deploys start (real time, budget x10)",
                f.fleet.services
            ),
            value: format!("{:.1}/s", f.fleet.deploying_per_real_second()),
            target: None,
            baseline: String::new(),
        },
        Row {
            figure: format!("kyb-deploy --version, median of {STARTUP_RUNS}"),
            value: millis(kyb_start),
            target: Some((
                format!("<= {}", millis(STARTUP_TARGET)),
                ratio(kyb_start, STARTUP_TARGET),
                kyb_start <= STARTUP_TARGET,
            )),
            baseline: format!("{} (aws --version)", millis(aws_start)),
        },
        Row {
            figure: "peak RSS, kyb-deploy deploy -e staging".into(),
            value: megabytes(f.staging.peak_rss),
            target: Some((
                format!("<= {}", megabytes(MEMORY_TARGET)),
                f.staging.peak_rss as f64 / MEMORY_TARGET as f64,
                f.staging.peak_rss <= MEMORY_TARGET,
            )),
            baseline: format!("{} (aws --version)", megabytes(f.aws_rss)),
        },
    ];
    print_table(&rows);

    let cpus = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    println!();
    println!(
        "machine: {cpus} cores{}; kyb-deploy: {}; {}",
        cpu_model().map_or_else(String::new, |m| format!(" ({m})")),
        f.kyb_startup.output,
        f.aws_startup.output
    );
    println!(
        "latency: {} rollouts of {}-{} at time scale 1, each followed by kyb-deploy (EcsTarget::wait, default EcsPoll) and by aws ecs wait services-stable, both started when UpdateService answered; per rollout, kyb-deploy: {}; aws: {}",
        latency.kyb.len(),
        secs(latency.rollouts.0),
        secs(latency.rollouts.1),
        list(&latency.kyb),
        list(&latency.cli)
    );
    println!(
        "  COMPLETED moment: the simulator's completion event, mapped to real time (a watcher reading the state every 20 ms agrees within {} ms)",
        latency.watcher_skew.as_millis()
    );
    println!(
        "  kyb-deploy, slowest of the {}: {}; the AWS CLI, slowest: {}",
        latency.kyb.len(),
        secs(latency.kyb.iter().copied().max().unwrap_or_default()),
        secs(latency.cli.iter().copied().max().unwrap_or_default()),
    );
    for (name, rates) in [("1 service", f.one), ("100 services", f.fleet)] {
        println!(
            "calls, {name}: time scale {}, EcsPoll intervals / {0} and budget x {0}, so rates are per simulated second and minute; rollouts lasted {}-{} simulated; the shared poller made {} DescribeServices calls in {} simulated; the simulator answered {} in all (each deploy also reads its service once)",
            calls::SCALE,
            minutes(rates.rollouts.0),
            minutes(rates.rollouts.1),
            rates.poller_calls,
            minutes(rates.following),
            rates.simulator_calls,
        );
    }
    println!(
        "  the {} deploys (one DescribeServices each, drawing on the poller's budget: x10 here, {} at once then {} per second; at the default, 5 at once then 5 per second) took {} of real time, with {} DescribeServices calls answered meanwhile",
        f.fleet.services,
        5.0 * calls::SCALE,
        5.0 * calls::SCALE,
        secs(f.fleet.deploying.div_f64(calls::SCALE)),
        f.fleet.deploying_calls
    );
    println!(
        "  aws CLI column: its calls per service per minute measured in the latency rollouts (it polls every 15 s of real time, so it cannot follow a scaled rollout); for 100 services that rate x 100, or x 10 when each waiter follows 10 services (its limit per call)"
    );
    println!(
        "staging deploy: build, policy scan, push to the local registry, UpdateService and rollout on the ECS simulator (time scale 30), verification of a local kyb-sample-api; took {}; peak RSS from getrusage(RUSAGE_CHILDREN) of a wrapper process whose only child is kyb-deploy",
        secs(f.staging.took)
    );
    println!(
        "binaries: {} (built by this benchmark: cargo {})",
        f.binaries
            .kyb_deploy
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        support::BUILD_ARGS.join(" ")
    );
    println!("benchmark took {}", secs(f.took));
}

fn calls_target(per_second: f64) -> (String, f64, bool) {
    (
        format!("< {CALLS_PER_SECOND_TARGET:.0}/s"),
        per_second / CALLS_PER_SECOND_TARGET,
        per_second < CALLS_PER_SECOND_TARGET,
    )
}
