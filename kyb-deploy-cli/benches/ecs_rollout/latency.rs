//! Completion-detection latency: from the simulator marking a deployment COMPLETED to
//! kyb-deploy (`EcsTarget::wait`, the default `EcsPoll`) reporting success, and to
//! `aws ecs wait services-stable` returning, on the same rollouts at time scale 1.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use kyb_deploy_core::{
    CancellationToken, Release, RolloutOutcome, Stage, StageProgress, Target as _, Version,
};
use kyb_deploy_ecs::EcsPoll;
use kyb_deploy_testkit::ecs_sim::{EcsSimulator, Fault, RunningSimulator, SimHandle};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::process::aws_command;
use crate::sim::{self, REGION};
use crate::{BenchResult, median};

const CLUSTER: &str = "kyb-bench-latency";

/// Rollouts followed at once: ten give a median in about 75 s.
pub(crate) const SERVICES: usize = 10;

/// Service `i`'s rollout lasts `i` times this much longer than the ~30 s of the first
/// (a slow-start fault on its image). Both clients poll on cycles that start with the
/// rollout: the AWS CLI every 15 s, kyb-deploy every 1 s after a change backing off to 3 s.
/// With rollouts of one length, every client would see the completion at the same point of
/// its cycle and the samples would be one. Steps of 3.3 s put the ten completions at ten
/// different points of kyb-deploy's 3 s cycle (0, 0.3, ... 2.7 s) and of the CLI's 15 s one
/// (0, 3.3, 6.6, 9.9, 13.2, 1.5, 4.8, ... s), as real rollouts, whose lengths vary, do.
const STAGGER: Duration = Duration::from_millis(3300);

/// How often the watcher reads the simulator's state.
const WATCH_EVERY: Duration = Duration::from_millis(20);

/// The longest the AWS CLI may wait (its own limit is 40 polls, 10 minutes).
const CLI_LIMIT: Duration = Duration::from_secs(180);

/// A simulator with the services to roll out, created ahead so that their first rollout
/// (about 15 s of real time) runs while the benchmark measures something else.
pub(crate) struct Prepared {
    sim: RunningSimulator,
    /// The same simulator on a second port, for the AWS CLI, counting its DescribeServices
    /// calls.
    cli_url: String,
    cli_calls: Arc<AtomicU64>,
    cli_server: JoinHandle<std::io::Result<()>>,
}

/// What the rollouts measured.
pub(crate) struct Latency {
    /// kyb-deploy's latency per rollout.
    pub(crate) kyb: Vec<Duration>,
    /// The AWS CLI's latency per rollout.
    pub(crate) cli: Vec<Duration>,
    /// The largest difference between the COMPLETED moment taken from the service event and
    /// the watcher's own timestamp of it.
    pub(crate) watcher_skew: Duration,
    /// The shortest and longest rollout, UpdateService to COMPLETED.
    pub(crate) rollouts: (Duration, Duration),
    /// DescribeServices calls per service per minute while following: kyb-deploy, AWS CLI.
    pub(crate) kyb_calls_per_minute: f64,
    pub(crate) cli_calls_per_minute: f64,
}

fn service_name(i: usize) -> String {
    format!("api-{i}")
}

pub(crate) async fn prepare() -> BenchResult<Prepared> {
    let mut builder = EcsSimulator::builder().time_scale(1.0).seed(11);
    for i in 1..SERVICES {
        let name = service_name(i);
        let extra = STAGGER * u32::try_from(i)?;
        builder = builder.fault(Fault::slow_start(sim::image(&name, "v2"), extra));
    }
    let simulator = builder.build();
    let cli_calls = Arc::new(AtomicU64::new(0));
    let cli_router = simulator
        .router()
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&cli_calls),
            count_describe_services,
        ));
    let sim = simulator.serve(TcpListener::bind("127.0.0.1:0").await?)?;
    let cli_listener = TcpListener::bind("127.0.0.1:0").await?;
    let cli_url = format!("http://{}", cli_listener.local_addr()?);
    let cli_server = tokio::spawn(async move { axum::serve(cli_listener, cli_router).await });

    let client = sim::client(&sim.url());
    sim::create_cluster(&client, CLUSTER).await?;
    for i in 0..SERVICES {
        let name = service_name(i);
        // No health check at first: the set-up rollout takes 15 s, not 25 s.
        sim::create_service(&client, CLUSTER, &name, &sim::image(&name, "v1"), false).await?;
    }
    Ok(Prepared {
        sim,
        cli_url,
        cli_calls,
        cli_server,
    })
}

async fn count_describe_services(
    State(calls): State<Arc<AtomicU64>>,
    request: Request,
    next: Next,
) -> Response {
    let describe = request
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.ends_with(".DescribeServices"));
    if describe {
        calls.fetch_add(1, Ordering::Relaxed);
    }
    next.run(request).await
}

/// One service's rollout, as both clients saw it.
struct Run {
    service: String,
    rollout_id: String,
    started: Instant,
    kyb_done: Instant,
    cli_done: Instant,
    kyb_calls: u64,
}

pub(crate) async fn run(prepared: Prepared) -> BenchResult<Latency> {
    let Prepared {
        sim,
        cli_url,
        cli_calls,
        cli_server,
    } = prepared;
    let handle = sim.handle().clone();
    sim::wait_steady(&handle, CLUSTER, SERVICES, Duration::from_secs(60)).await?;
    handle.clear_request_log();
    cli_calls.store(0, Ordering::Relaxed);

    // Simulated time runs at real speed from this anchor on (time scale 1).
    let anchor = (Instant::now(), sim_seconds(handle.now()));
    let rollout_ids: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = tokio::spawn(watch_completions(
        handle.clone(),
        Arc::clone(&rollout_ids),
        Arc::clone(&stop),
    ));

    let client = sim::client(&sim.url());
    let mut runs = Vec::new();
    for i in 0..SERVICES {
        let service = service_name(i);
        // The default pace, as users get it; one poller per target, as one CLI run has.
        let target = sim::target(
            &client,
            CLUSTER,
            &service,
            Some(sim::template(&service)?),
            EcsPoll::default(),
        );
        let cli_url = cli_url.clone();
        let rollout_ids = Arc::clone(&rollout_ids);
        runs.push(tokio::spawn(async move {
            let release = Release::new(Version::parse("v2")?, sim::image(&service, "v2"));
            let started = Instant::now();
            let deployed = target.deploy(&release).await?;
            // Both clients start following the moment UpdateService has answered.
            let cli = tokio::spawn(cli_wait(cli_url, service.clone()));
            rollout_ids
                .lock()
                .expect("rollout ids")
                .insert(service.clone(), deployed.rollout_id.clone());
            let outcome = target
                .wait(
                    &deployed,
                    &StageProgress::discard(Stage::Wait),
                    &CancellationToken::new(),
                )
                .await?;
            let kyb_done = Instant::now();
            if outcome != RolloutOutcome::Completed {
                return Err(format!("the rollout of {service} ended {outcome:?}").into());
            }
            let cli_done = cli.await??;
            BenchResult::Ok(Run {
                service,
                rollout_id: deployed.rollout_id,
                started,
                kyb_done,
                cli_done,
                kyb_calls: target.poller().describe_calls(),
            })
        }));
    }
    let mut done = Vec::new();
    for run in runs {
        done.push(run.await??);
    }
    stop.store(true, Ordering::Relaxed);
    let watched = watcher.await?;
    let snapshot = handle.snapshot();
    cli_server.abort();
    sim.shutdown().await?;

    let mut latency = Latency {
        kyb: Vec::new(),
        cli: Vec::new(),
        watcher_skew: Duration::ZERO,
        rollouts: (Duration::MAX, Duration::ZERO),
        kyb_calls_per_minute: 0.0,
        cli_calls_per_minute: 0.0,
    };
    let (mut kyb_minutes, mut cli_minutes, mut kyb_calls) = (0.0, 0.0, 0);
    for run in &done {
        // The COMPLETED moment is the createdAt of the service event "(deployment X)
        // deployment completed.", in simulated time, mapped onto real time through the
        // anchor: it is the very step of the simulator's controller that completed the
        // deployment, whoever's call ran that step. The controller runs lazily, in steps
        // of 1 simulated second from the last call; the watcher calls it every 20 ms, which
        // keeps it as prompt as ECS's own scheduler, so the event's time is within 20 ms of
        // the moment the rollout's last task settled. Without the watcher, the moment
        // would depend on when the clients under test happen to call, and could be marked
        // up to 1 s late, shortening their measured latency by as much. The watcher's own
        // timestamp (the first snapshot showing COMPLETED) is up to 20 ms late and is kept
        // as a cross-check.
        let created = completed_event_time(&snapshot, &run.service, &run.rollout_id)
            .ok_or_else(|| format!("no completion event for {}", run.service))?;
        let completed = anchor.0 + Duration::from_secs_f64((created - anchor.1).max(0.0));
        let seen = watched
            .get(&run.service)
            .copied()
            .ok_or_else(|| format!("the watcher never saw {} complete", run.service))?;
        latency.watcher_skew = latency.watcher_skew.max(abs_diff(seen, completed));
        latency
            .kyb
            .push(run.kyb_done.saturating_duration_since(completed));
        latency
            .cli
            .push(run.cli_done.saturating_duration_since(completed));
        let rollout = completed.saturating_duration_since(run.started);
        latency.rollouts = (
            latency.rollouts.0.min(rollout),
            latency.rollouts.1.max(rollout),
        );
        kyb_minutes += (run.kyb_done - run.started).as_secs_f64() / 60.0;
        cli_minutes += (run.cli_done - run.started).as_secs_f64() / 60.0;
        kyb_calls += run.kyb_calls;
    }
    latency.kyb_calls_per_minute = kyb_calls as f64 / kyb_minutes;
    latency.cli_calls_per_minute = cli_calls.load(Ordering::Relaxed) as f64 / cli_minutes;
    Ok(latency)
}

impl Latency {
    pub(crate) fn kyb_median(&self) -> Duration {
        median(&self.kyb)
    }

    pub(crate) fn cli_median(&self) -> Duration {
        median(&self.cli)
    }
}

fn abs_diff(a: Instant, b: Instant) -> Duration {
    a.saturating_duration_since(b)
        .max(b.saturating_duration_since(a))
}

/// Reads the simulator's state every [`WATCH_EVERY`] until stopped; returns when each
/// service's rollout was first seen COMPLETED.
async fn watch_completions(
    handle: SimHandle,
    rollout_ids: Arc<Mutex<HashMap<String, String>>>,
    stop: Arc<AtomicBool>,
) -> HashMap<String, Instant> {
    let mut seen = HashMap::new();
    while !stop.load(Ordering::Relaxed) {
        let snapshot = handle.snapshot();
        let now = Instant::now();
        let ids = rollout_ids.lock().expect("rollout ids").clone();
        for service in sim::services(&snapshot, CLUSTER) {
            let name = service["serviceName"].as_str().unwrap_or_default();
            let Some(id) = ids.get(name) else { continue };
            let completed = service["deployments"].as_array().is_some_and(|ds| {
                ds.iter()
                    .any(|d| d["id"] == id.as_str() && d["rolloutState"] == "COMPLETED")
            });
            if completed {
                seen.entry(name.to_owned()).or_insert(now);
            }
        }
        tokio::time::sleep(WATCH_EVERY).await;
    }
    seen
}

/// The simulated time (epoch seconds) of the event completing `rollout_id`.
fn completed_event_time(snapshot: &Value, service: &str, rollout_id: &str) -> Option<f64> {
    let wanted = format!("(deployment {rollout_id}) deployment completed.");
    sim::services(snapshot, CLUSTER)
        .into_iter()
        .filter(|s| s["serviceName"] == service)
        .flat_map(|s| s["events"].as_array().cloned().unwrap_or_default())
        .find(|e| e["message"].as_str().is_some_and(|m| m.ends_with(&wanted)))
        .and_then(|e| e["createdAt"].as_f64())
}

fn sim_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// Runs `aws ecs wait services-stable` for `service`; when it returned.
async fn cli_wait(url: String, service: String) -> BenchResult<Instant> {
    let mut command = tokio::process::Command::from(aws_command());
    command
        .args(["ecs", "wait", "services-stable", "--cluster", CLUSTER])
        .args(["--services", &service, "--endpoint-url", &url])
        .args(["--region", REGION])
        .kill_on_drop(true);
    let out = tokio::time::timeout(CLI_LIMIT, command.output())
        .await
        .map_err(|_| {
            format!("aws ecs wait services-stable did not return within {CLI_LIMIT:?}")
        })??;
    let done = Instant::now();
    if !out.status.success() {
        return Err(format!(
            "aws ecs wait services-stable --services {service} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    Ok(done)
}
