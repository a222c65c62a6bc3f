//! [`EcsSimulator`], its builder, and [`RunningSimulator`], the simulator served over HTTP.

use std::net::SocketAddr;
use std::sync::Arc;

use rand::SeedableRng as _;
use rand::rngs::StdRng;
use tokio::net::TcpListener;

use super::docker_runtime::DockerRuntimeConfig;
use super::faults::{Fault, FaultSet};
use super::handle::SimHandle;
use super::model::KnownNetwork;
use super::server;
use super::shared::Core;
use crate::sim_runtime::SimClock;
use crate::sim_runtime::serve::Served;

/// A simulated Amazon ECS endpoint. With the virtual runtime (the default) tasks are state
/// only, and what happens to them comes from [`Fault`] rules per image; with
/// [`EcsSimulatorBuilder::docker_runtime`] every task is a real container.
///
/// Build one with [`EcsSimulator::builder`], then [`serve`](EcsSimulator::serve) it on a
/// listener, or drive it in process through its [`handle`](EcsSimulator::handle).
#[derive(Debug)]
pub struct EcsSimulator {
    handle: SimHandle,
}

/// Settings of an [`EcsSimulator`]; from [`EcsSimulator::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct EcsSimulatorBuilder {
    time_scale: f64,
    manual: bool,
    seed: Option<u64>,
    faults: Vec<Fault>,
    docker: Option<DockerRuntimeConfig>,
    network: KnownNetwork,
}

impl Default for EcsSimulatorBuilder {
    fn default() -> Self {
        Self {
            time_scale: 1.0,
            manual: false,
            seed: None,
            faults: Vec::new(),
            docker: None,
            network: KnownNetwork::default(),
        }
    }
}

impl EcsSimulatorBuilder {
    /// Simulated time runs `scale` times faster than real time (default 1). Ignored with
    /// [`manual_clock`](Self::manual_clock).
    ///
    /// # Panics
    ///
    /// [`build`](Self::build) panics when `scale` is not a finite positive number.
    pub fn time_scale(mut self, scale: f64) -> Self {
        self.time_scale = scale;
        self
    }

    /// Simulated time stands still until [`SimHandle::advance`] moves it.
    pub fn manual_clock(mut self) -> Self {
        self.manual = true;
        self
    }

    /// Seeds the generator of ids and random faults, for reproducible runs.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Adds a fault.
    pub fn fault(mut self, fault: Fault) -> Self {
        self.faults.push(fault);
        self
    }

    /// The subnets that exist: a network configuration naming another one is refused with
    /// ECS's `InvalidParameterException`. Without this, any `subnet-...` id is accepted.
    ///
    /// ```
    /// use kyb_deploy_testkit::ecs_sim::EcsSimulator;
    ///
    /// let sim = EcsSimulator::builder()
    ///     .known_subnets(["subnet-0a1b2c3d"])
    ///     .known_security_groups(["sg-0a1b2c3d"])
    ///     .build();
    /// # drop(sim);
    /// ```
    pub fn known_subnets<I, S>(mut self, subnets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.network.subnets = Some(subnets.into_iter().map(Into::into).collect());
        self
    }

    /// The security groups that exist, like [`known_subnets`](Self::known_subnets); without
    /// this, any `sg-...` id is accepted.
    pub fn known_security_groups<I, S>(mut self, groups: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.network.security_groups = Some(groups.into_iter().map(Into::into).collect());
        self
    }

    /// Runs every task as a real container through the local Docker engine, and gives
    /// every service a stable local URL ([`SimHandle::service_url`]) over its healthy tasks.
    /// See the [module docs](super#docker-backed-runtime) for the model.
    ///
    /// # Panics
    ///
    /// [`build`](Self::build) panics outside a Tokio runtime.
    pub fn docker_runtime(mut self, config: DockerRuntimeConfig) -> Self {
        self.docker = Some(config);
        self
    }

    /// Builds the simulator.
    #[must_use]
    pub fn build(self) -> EcsSimulator {
        let clock = if self.manual {
            SimClock::manual()
        } else {
            SimClock::scaled(self.time_scale)
        };
        let rng = match self.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        let mut faults = FaultSet::default();
        for fault in self.faults {
            faults.add(fault);
        }
        EcsSimulator {
            handle: SimHandle {
                core: Core::new(clock, rng, faults, self.docker, self.network),
            },
        }
    }
}

impl Default for EcsSimulator {
    fn default() -> Self {
        Self::builder().build()
    }
}

impl EcsSimulator {
    /// The settings, starting from real time, a random seed and no faults.
    pub fn builder() -> EcsSimulatorBuilder {
        EcsSimulatorBuilder::default()
    }

    /// In-process access to the clock, faults, request log and state.
    #[must_use]
    pub fn handle(&self) -> SimHandle {
        self.handle.clone()
    }

    /// The HTTP routes, to mount in a server of one's own.
    pub fn router(&self) -> axum::Router {
        server::router(Arc::clone(&self.handle.core))
    }

    /// Serves the API on `listener` in a spawned task until [`RunningSimulator::shutdown`]
    /// or until the [`RunningSimulator`] is dropped. Needs a Tokio runtime.
    ///
    /// # Errors
    ///
    /// Fails when the listener's address cannot be read.
    pub fn serve(self, listener: TcpListener) -> std::io::Result<RunningSimulator> {
        let addr = listener.local_addr()?;
        let served = Served::spawn(listener, self.router(), || {});
        Ok(RunningSimulator {
            addr,
            handle: self.handle,
            served,
        })
    }
}

/// A simulator served over HTTP; stops serving when dropped.
#[derive(Debug)]
pub struct RunningSimulator {
    addr: SocketAddr,
    handle: SimHandle,
    served: Served,
}

impl RunningSimulator {
    /// The endpoint URL, like `http://127.0.0.1:43125`, for `--endpoint-url` or an SDK's
    /// endpoint setting.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address served.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// In-process access to the served simulator.
    #[must_use]
    pub fn handle(&self) -> &SimHandle {
        &self.handle
    }

    /// Stops accepting connections, finishes the requests in flight, removes the
    /// containers of a Docker-backed simulator, and returns.
    ///
    /// # Errors
    ///
    /// Fails when serving failed.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        self.served.stop();
        if let Some(docker) = &self.handle.core.docker {
            docker.shutdown().await;
        }
        self.served.finish().await
    }
}

impl Drop for RunningSimulator {
    fn drop(&mut self) {
        // Not shut down: remove the containers now (this blocks on the `docker` CLI).
        if self.served.stop()
            && let Some(docker) = &self.handle.core.docker
        {
            docker.shutdown_blocking();
        }
    }
}
