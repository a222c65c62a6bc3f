//! The shared core behind the HTTP server and the in-process handle: state, clock, faults
//! and the request log under one lock.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rand::rngs::StdRng;
use serde_json::{Value, json};

use super::api::{self, ApiError};
use super::docker_runtime::{DockerRuntime, DockerRuntimeConfig};
use super::faults::FaultSet;
use super::handle::LoggedRequest;
use super::model::{KnownNetwork, State};
use super::{render, rollout};
use crate::sim_runtime::SimClock;

pub(crate) struct Core {
    pub(crate) clock: SimClock,
    /// The tasks' containers, when the simulator is Docker-backed.
    pub(crate) docker: Option<DockerRuntime>,
    inner: Mutex<Inner>,
}

pub(crate) struct Inner {
    pub(crate) state: State,
    pub(crate) rng: StdRng,
    pub(crate) faults: FaultSet,
    pub(crate) log: Vec<LoggedRequest>,
}

impl Core {
    /// # Panics
    ///
    /// Panics when `docker` is given outside a Tokio runtime.
    pub(crate) fn new(
        clock: SimClock,
        rng: StdRng,
        faults: FaultSet,
        docker: Option<DockerRuntimeConfig>,
        network: KnownNetwork,
    ) -> Arc<Self> {
        let state = State {
            controller_time: clock.now_seconds(),
            network,
            ..State::default()
        };
        // The runtime's proxies look the state up through the core, which owns them.
        Arc::new_cyclic(|core| Self {
            clock,
            docker: docker.map(|config| DockerRuntime::new(config, core.clone())),
            inner: Mutex::new(Inner {
                state,
                rng,
                faults,
                log: Vec::new(),
            }),
        })
    }

    /// The state, with the controller caught up to the clock.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every mutation completes before the lock is released or panics the test anyway;
        // a poisoned lock still holds usable state for the inspection that follows.
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let Inner {
            state, rng, faults, ..
        } = &mut *inner;
        let now = self.clock.now_seconds();
        rollout::advance_with(state, now, rng, faults, self.docker.as_ref());
        inner
    }

    /// Applies the API faults to a call of `operation`: the latency to add, and the error
    /// to answer with instead of serving it.
    pub(crate) fn api_faults(&self, operation: &str) -> (Duration, Option<ApiError>) {
        let mut inner = self.lock();
        let Inner { rng, faults, .. } = &mut *inner;
        let verdict = faults.on_call(operation, rng);
        let error = verdict
            .error
            .map(|(code, message)| ApiError::new(code, message));
        (verdict.latency, error)
    }

    /// Serves one call; returns the HTTP status and the JSON body.
    pub(crate) fn call(&self, operation: &str, region: &str, request: &Value) -> (u16, Value) {
        let mut inner = self.lock();
        let now = self.clock.now_seconds();
        let Inner {
            state, rng, faults, ..
        } = &mut *inner;
        let context = api::Context {
            now,
            rng,
            faults,
            docker: self.docker.is_some(),
        };
        let result = api::dispatch(operation, state, region, request, context);
        let (status, body, error) = match result {
            Ok(body) => (200, body, None),
            Err(error) => (error.status(), error.body(), Some(error.code.to_owned())),
        };
        inner.log.push(LoggedRequest {
            operation: operation.to_owned(),
            at: to_system_time(now),
            mutating: api::is_mutating(operation),
            status,
            error,
        });
        (status, body)
    }

    /// Logs a call answered with `error` before it reached the state.
    pub(crate) fn log_rejected(&self, operation: &str, error: &ApiError) {
        let at = to_system_time(self.clock.now_seconds());
        self.lock().log.push(LoggedRequest {
            operation: operation.to_owned(),
            at,
            mutating: api::is_mutating(operation),
            status: error.status(),
            error: Some(error.code.to_owned()),
        });
    }

    /// The whole state in the API's JSON shapes.
    pub(crate) fn snapshot(&self) -> Value {
        let inner = self.lock();
        let regions: serde_json::Map<String, Value> = inner
            .state
            .regions
            .iter()
            .map(|(name, region)| {
                let clusters: Vec<Value> = region
                    .clusters
                    .values()
                    .map(|cluster| {
                        let mut value = render::cluster(cluster, true);
                        value["services"] = cluster
                            .services
                            .values()
                            .map(|service| {
                                let mut value = render::service(service, &cluster.tasks, true);
                                let proxy = self.docker.as_ref().and_then(|docker| {
                                    docker.proxy_addr(name, &cluster.name, &service.name)
                                });
                                if let Some(addr) = proxy {
                                    value["serviceUrl"] = json!(format!("http://{addr}"));
                                }
                                value
                            })
                            .collect();
                        value["tasks"] = cluster
                            .tasks
                            .iter()
                            .map(|task| render::task(task, true))
                            .collect();
                        value
                    })
                    .collect();
                let definitions: Vec<Value> = region
                    .families
                    .values()
                    .flatten()
                    .map(render::task_definition)
                    .collect();
                let region = json!({"clusters": clusters, "taskDefinitions": definitions});
                (name.clone(), region)
            })
            .collect();
        json!({
            "now": self.clock.now_seconds(),
            "regions": regions,
            "faults": serde_json::to_value(&inner.faults).unwrap_or(Value::Null),
        })
    }
}

/// Converts simulated epoch seconds to a [`SystemTime`](std::time::SystemTime).
pub(crate) fn to_system_time(seconds: f64) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(seconds.max(0.0))
}
