//! The containers and proxies of one Docker-backed simulator: an agent task per task or
//! pod, a [`Proxy`] per service, a label that marks every container this simulator made,
//! and the shutdown that removes them all (also on drop, so no container outlives its
//! simulator).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rand::Rng as _;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::docker_cli;
use super::proxy::Proxy;

/// How long shutdown waits for the agents to remove their containers.
const SHUTDOWN_PATIENCE: Duration = Duration::from_secs(30);

/// The agents (keyed by task or pod), with `A` what each simulator keeps per agent, and
/// the service proxies, keyed by `K`.
pub(crate) struct Fleet<A, K> {
    docker: PathBuf,
    /// Labels this simulator's containers (`io.kyb-sim.simulator`), so cleanup removes
    /// only those.
    id: String,
    runtime: Handle,
    members: Mutex<Members<A, K>>,
}

/// What a [`Fleet`] holds, behind its lock.
pub(crate) struct Members<A, K> {
    pub(crate) agents: HashMap<String, Agent<A>>,
    pub(crate) proxies: HashMap<K, Proxy>,
    /// Agents stopped or released before shutdown that may still be removing their
    /// containers (a `docker run` is let finish first, a graceful termination its grace):
    /// shutdown cuts them short and waits for them too.
    retired: Vec<(JoinHandle<()>, CancellationToken)>,
    /// Shut down: nothing more is launched or proxied.
    pub(crate) closed: bool,
}

impl<A, K> Members<A, K> {
    /// Stops the agent of `key`, which removes its container; shutdown still waits for it.
    pub(crate) fn retire(&mut self, key: &str) {
        if let Some(agent) = self.agents.remove(key) {
            agent.stop();
            self.keep_until_done(agent);
        }
    }

    #[cfg(feature = "k8s-sim")]
    /// Lets go of the agent of `key` without stopping it: the caller has told it how to
    /// end (a graceful termination), and shutdown still waits for it, or cuts it short.
    pub(crate) fn release(&mut self, key: &str) -> Option<A> {
        let agent = self.agents.remove(key)?;
        Some(self.keep_until_done(agent))
    }

    /// Keeps the agent's task for shutdown to wait on; the agent's state.
    fn keep_until_done(&mut self, agent: Agent<A>) -> A {
        self.retired.retain(|(task, _)| !task.is_finished());
        self.retired.push((agent.task, agent.cancel));
        agent.state
    }
}

/// One agent: the task that drives a container, and how to stop it.
pub(crate) struct Agent<A> {
    pub(crate) state: A,
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

impl<A> Agent<A> {
    /// Stops the agent, which then removes its container.
    pub(crate) fn stop(&self) {
        self.cancel.cancel();
    }
}

impl<A, K> Fleet<A, K> {
    /// A fleet whose agents and proxies run on the current Tokio runtime; `simulator`
    /// names the simulator in the panic message.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime: agents and proxies are spawned on it.
    pub(crate) fn new(docker: PathBuf, simulator: &str) -> Self {
        let runtime = Handle::try_current().unwrap_or_else(|_| {
            panic!("the docker runtime of the {simulator} simulator must be built inside a Tokio runtime")
        });
        Self {
            docker,
            id: format!("{:016x}", rand::rng().random::<u64>()),
            runtime,
            members: Mutex::new(Members {
                agents: HashMap::new(),
                proxies: HashMap::new(),
                retired: Vec::new(),
                closed: false,
            }),
        }
    }

    /// The value of the `io.kyb-sim.simulator` label on this fleet's containers.
    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    /// The runtime agents and proxies are spawned on.
    pub(crate) fn runtime(&self) -> &Handle {
        &self.runtime
    }

    pub(crate) fn members(&self) -> MutexGuard<'_, Members<A, K>> {
        self.members.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// An agent running `drive` until it is stopped, keeping `state` beside it.
    /// `drive` gets the cancellation token; it must remove its container once cancelled.
    pub(crate) fn spawn<F>(&self, state: A, drive: impl FnOnce(CancellationToken) -> F) -> Agent<A>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let cancel = CancellationToken::new();
        let task = self.runtime.spawn(drive(cancel.clone()));
        Agent {
            state,
            cancel,
            task,
        }
    }

    /// Stops launching, the proxies and the agents; returns the agents, which are removing
    /// their containers.
    fn close(&self) -> Vec<JoinHandle<()>> {
        let mut members = self.members();
        members.closed = true;
        // A proxy stops when it is dropped.
        members.proxies.clear();
        let mut tasks: Vec<JoinHandle<()>> = members
            .agents
            .drain()
            .map(|(_, agent)| {
                agent.stop();
                agent.task
            })
            .collect();
        // Shutdown does not wait out a released agent's graceful termination.
        tasks.extend(members.retired.drain(..).map(|(task, cancel)| {
            cancel.cancel();
            task
        }));
        tasks
    }

    /// Removes every container of this simulator and stops its proxies.
    pub(crate) async fn shutdown(&self) {
        // Let the agents remove their own containers first: removing a container twice at
        // once fails, and the sweep below would miss one still being removed.
        let agents = self.close();
        let _ = tokio::time::timeout(SHUTDOWN_PATIENCE, futures::future::join_all(agents)).await;
        docker_cli::remove_labelled(&self.docker, &self.id).await;
    }

    /// [`shutdown`](Self::shutdown) for `Drop`: blocks on the `docker` CLI.
    pub(crate) fn shutdown_blocking(&self) {
        drop(self.close());
        docker_cli::remove_labelled_blocking(&self.docker, &self.id);
    }
}

impl<A, K> std::fmt::Debug for Fleet<A, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl<A, K> Drop for Fleet<A, K> {
    fn drop(&mut self) {
        // Without an explicit shutdown the containers would outlive the simulator.
        let cleaned = {
            let members = self.members();
            members.closed && members.agents.is_empty()
        };
        if !cleaned {
            self.shutdown_blocking();
        }
    }
}
