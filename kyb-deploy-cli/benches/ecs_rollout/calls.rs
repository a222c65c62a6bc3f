//! DescribeServices calls while following 5-minute rollouts: one service, and 100 services
//! deployed together through one shared `ServicePoller`.
//!
//! Simulated time runs [`SCALE`] times faster than real time, and the poll intervals are
//! divided (the call budget multiplied) by the same factor, so that the calls per simulated
//! minute are those the default `EcsPoll` makes per real minute.

use std::time::{Duration, SystemTime};

use kyb_deploy_core::{
    CancellationToken, Release, RolloutOutcome, Stage, StageProgress, Target as _, Version,
};
use kyb_deploy_ecs::{EcsPoll, ServicePoller, ThrottleRetry};
use kyb_deploy_testkit::ecs_sim::{EcsSimulator, Fault};

use crate::BenchResult;
use crate::sim::{self, REPO};

/// Simulated seconds per real second.
pub(crate) const SCALE: f64 = 10.0;

/// How long a rollout lasts, in simulated time.
pub(crate) const ROLLOUT: Duration = Duration::from_secs(300);

/// A rollout of two tasks with a health check takes 30 simulated seconds (PROVISIONING 5,
/// PENDING 10, healthy 10, the old tasks STOPPING 5); a slow start stretches it to
/// [`ROLLOUT`].
const NATURAL_ROLLOUT: Duration = Duration::from_secs(30);

/// What one run measured, in simulated time.
pub(crate) struct Rates {
    pub(crate) services: usize,
    /// DescribeServices calls of the shared poller (kyb-deploy following the rollouts).
    pub(crate) poller_calls: u64,
    /// DescribeServices calls the simulator answered from the first deploy to the last
    /// completion: the poller's, plus each deploy's one read of its service.
    pub(crate) simulator_calls: usize,
    /// From the first wait's start to the last wait's end.
    pub(crate) following: Duration,
    /// The shortest and longest rollout, deploy to completion.
    pub(crate) rollouts: (Duration, Duration),
    /// From the first deploy's start to the last deploy's end, and the DescribeServices
    /// calls the simulator answered meanwhile (the deploys' own reads and the poller's).
    pub(crate) deploying: Duration,
    pub(crate) deploying_calls: usize,
}

impl Rates {
    /// kyb-deploy's DescribeServices calls per second (of simulated time), all services.
    pub(crate) fn per_second(&self) -> f64 {
        self.poller_calls as f64 / self.following.as_secs_f64()
    }

    /// DescribeServices calls per second of real time while the deploys ran: they are
    /// not paced by the poller (nor scaled), so this is the burst ECS would see.
    pub(crate) fn deploying_per_real_second(&self) -> f64 {
        self.deploying_calls as f64 / (self.deploying.as_secs_f64() / SCALE)
    }

    /// kyb-deploy's DescribeServices calls per service per (simulated) minute.
    pub(crate) fn per_service_minute(&self) -> f64 {
        self.per_second() * 60.0 / self.services as f64
    }
}

/// The default `EcsPoll`, sped up like simulated time.
pub(crate) fn scaled_poll() -> EcsPoll {
    let default = EcsPoll::default();
    EcsPoll {
        interval: default.interval.div_f64(SCALE),
        max_interval: default.max_interval.div_f64(SCALE),
        max_calls_per_second: (f64::from(default.max_calls_per_second) * SCALE).round() as u32,
    }
}

/// Rolls `services` services of one cluster out together, their targets sharing one
/// poller, each rollout lasting [`ROLLOUT`] of simulated time.
pub(crate) async fn run(services: usize) -> BenchResult<Rates> {
    let cluster = format!("kyb-bench-{services}");
    let prefix = format!("svc{services}");
    let name = |i: usize| format!("{prefix}-{i:03}");
    let sim = sim::serve(EcsSimulator::builder().time_scale(SCALE).seed(5).fault(
        Fault::slow_start(format!("{REPO}/{prefix}-*:v2"), ROLLOUT - NATURAL_ROLLOUT),
    ))
    .await?;
    let handle = sim.handle().clone();
    let client = sim::client(&sim.url());
    sim::create_cluster(&client, &cluster).await?;
    for i in 0..services {
        let service = name(i);
        sim::create_service(
            &client,
            &cluster,
            &service,
            &sim::image(&service, "v1"),
            true,
        )
        .await?;
    }
    sim::wait_steady(&handle, &cluster, services, Duration::from_secs(60)).await?;
    handle.clear_request_log();

    let poll = scaled_poll();
    let poller = ServicePoller::new(client.clone(), poll.clone(), ThrottleRetry::default());
    let mut runs = Vec::new();
    for i in 0..services {
        let service = name(i);
        let target = sim::target(&client, &cluster, &service, None, poll.clone())
            .with_poller(poller.clone());
        let handle = handle.clone();
        runs.push(tokio::spawn(async move {
            let release = Release::new(Version::parse("v2")?, sim::image(&service, "v2"));
            let deployed_at = handle.now();
            let deployed = target.deploy(&release).await?;
            let waiting_from = handle.now();
            let outcome = target
                .wait(
                    &deployed,
                    &StageProgress::discard(Stage::Wait),
                    &CancellationToken::new(),
                )
                .await?;
            let done = handle.now();
            if outcome != RolloutOutcome::Completed {
                return Err(format!("the rollout of {service} ended {outcome:?}").into());
            }
            BenchResult::Ok((deployed_at, waiting_from, done))
        }));
    }
    let mut times = Vec::new();
    for run in runs {
        times.push(run.await??);
    }
    let log = handle.request_log();
    let poller_calls = poller.describe_calls();
    sim.shutdown().await?;

    let first_deploy = times.iter().map(|t| t.0).min().ok_or("no services")?;
    let last_deployed = times.iter().map(|t| t.1).max().ok_or("no services")?;
    let first_wait = times.iter().map(|t| t.1).min().ok_or("no services")?;
    let last_done = times.iter().map(|t| t.2).max().ok_or("no services")?;
    let describe = log.iter().filter(|r| r.operation == "DescribeServices");
    let simulator_calls = describe.clone().count();
    let deploying_calls = describe
        .filter(|r| r.at >= first_deploy && r.at <= last_deployed)
        .count();
    let rollouts: Vec<Duration> = times.iter().map(|t| since(t.2, t.0)).collect();
    Ok(Rates {
        services,
        poller_calls,
        simulator_calls,
        following: since(last_done, first_wait),
        deploying: since(last_deployed, first_deploy),
        deploying_calls,
        rollouts: (
            rollouts.iter().copied().min().unwrap_or_default(),
            rollouts.iter().copied().max().unwrap_or_default(),
        ),
    })
}

fn since(later: SystemTime, earlier: SystemTime) -> Duration {
    later.duration_since(earlier).unwrap_or_default()
}
