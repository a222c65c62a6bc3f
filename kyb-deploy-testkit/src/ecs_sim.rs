//! A simulated Amazon ECS endpoint: the ECS JSON 1.1 API over HTTP, with rollouts that
//! progress on a simulated clock, a deployment circuit breaker that rolls back, and injected
//! faults. The ECS backend, the CLI and users' own tests drive it like the real service,
//! with `--endpoint-url` or an SDK endpoint override; the `kyb-sim ecs` binary serves it.
//!
//! # Protocol
//!
//! `POST /` with `X-Amz-Target: AmazonEC2ContainerServiceV20141113.<Operation>` and a JSON
//! body, as the AWS SDKs and CLI send it. Requests need an `Authorization` header (its
//! signature is not checked; the region comes from its credential scope, default
//! `us-east-1`); every region is a separate world and every ARN names account
//! `123456789012`. Errors are `{"__type": "<Code>", "message": "..."}` with status 400, or
//! 500 for `ServerException`.
//!
//! Every answer carries an `x-amzn-RequestId` header (a UUID).
//!
//! Operations: CreateCluster, DescribeClusters, ListClusters, DeleteCluster,
//! RegisterTaskDefinition, DescribeTaskDefinition, ListTaskDefinitions,
//! ListTaskDefinitionFamilies, DeregisterTaskDefinition, CreateService, UpdateService,
//! DescribeServices, ListServices, DeleteService, ListServiceDeployments,
//! DescribeServiceDeployments, DescribeServiceRevisions, RunTask, StopTask, ListTasks,
//! DescribeTasks, TagResource, UntagResource, ListTagsForResource.
//!
//! RunTask's tasks go through the lifecycle below like a service's, and stop when their
//! essential container exits; awsvpc tasks get an `ElasticNetworkInterface` attachment with a
//! private IP in their first subnet. Subnet and security group ids are checked against
//! [`EcsSimulatorBuilder::known_subnets`] and
//! [`EcsSimulatorBuilder::known_security_groups`] when given.
//!
//! # Rollouts
//!
//! A new task definition or `forceNewDeployment` starts a PRIMARY deployment. Tasks go
//! PROVISIONING (5 s) -> PENDING (10 s, the image pull) -> RUNNING, and count as healthy
//! once the health check grace period, or 10 s when a container has a health check, has
//! passed. The scheduler starts tasks within `maximumPercent`, stops the older deployments'
//! tasks (STOPPING, 5 s) within `minimumHealthyPercent`, and completes the deployment with
//! the events ECS writes. The circuit breaker fails a deployment after
//! `ceil(desired / 2)` failed tasks (at least 3, at most 200) and, with rollback, starts a
//! deployment of the last completed task definition. All times are simulated: see
//! [`SimClock`].
//!
//! # Docker-backed runtime
//!
//! With [`EcsSimulatorBuilder::docker_runtime`] every task is a real container, run through
//! the local engine's `docker` CLI. The controller keeps its simulated clock for ECS's own
//! phases (PROVISIONING, the pull time, STOPPING, grace periods); the containers live in
//! real time, and the controller applies what they did at its next step, which runs
//! whenever the simulator is called (so keep polling, as ECS clients do). Concretely:
//!
//! - When a task is launched (by a service or RunTask), its first essential container's
//!   image is pulled (`127.0.0.1:5000/app@sha256:...` or `:tag` from a local registry) and
//!   run with the container definition's `environment` and `command` (RunTask's container
//!   override replaces the command and adds to the environment), its first
//!   `portMappings.containerPort` published on an ephemeral 127.0.0.1 port, and the labels
//!   `io.kyb-sim.cluster`, `io.kyb-sim.service` (empty for RunTask), `io.kyb-sim.group`,
//!   `io.kyb-sim.task` (and `io.kyb-sim.simulator`, which cleanup uses). Other containers
//!   are not run.
//! - PENDING -> RUNNING happens once the simulated pull time has passed *and* the container
//!   runs.
//! - A failed pull stops the task with `stoppedReason` `CannotPullContainerError: <engine
//!   message>`; a container that exits stops it with `Essential container in task exited`
//!   and the exit code in `containers[].exitCode`.
//! - A container definition with a `healthCheck` is checked with HTTP GETs of `/health` on
//!   the published port (the check's command itself is not run): healthy after
//!   [`DockerRuntimeConfig::healthy_threshold`] consecutive successes; after
//!   [`DockerRuntimeConfig::unhealthy_threshold`] consecutive failures, past the grace
//!   period, the task stops with `Task failed container health checks`. Without a
//!   `healthCheck` a task is healthy once RUNNING and past its grace period.
//! - Every service gets a stable local URL, [`SimHandle::service_url`] (also `serviceUrl`
//!   in the snapshot): a TCP proxy that round-robins connections over the service's
//!   RUNNING, healthy tasks and closes them while there is none, standing in for the load
//!   balancer.
//! - A stopped task's container is removed; [`RunningSimulator::shutdown`] (or dropping the
//!   [`RunningSimulator`], which blocks on `docker rm -f`) removes them all.
//!
//! Task [`Fault`]s still apply on top of the containers.
//!
//! # Admin endpoint
//!
//! Next to the ECS API, on the same port, `/_kyb-sim/` lets a test in another process look
//! and steer; these requests are not in the request log:
//!
//! - `GET /_kyb-sim/state`: the [`SimHandle::snapshot`] JSON.
//! - `GET /_kyb-sim/requests`: `{"requests": [{"operation", "at", "mutating", "status",
//!   "error"}], "counts": {"<Operation>": N}}`, the request log (`at` in epoch seconds).
//! - `POST /_kyb-sim/faults` with one [`FaultSpec`] as JSON adds a fault (201, `{"fault":
//!   ...}`); a body that is not one answers 400 with `{"message": "..."}`. API faults:
//!   `{"api": {"throttle_every": 3, "operation": "DescribeServices"}}`,
//!   `{"api": {"throttle_probability": 0.3}}`, `{"api": {"server_errors": 5}}`,
//!   `{"api": {"latency_ms": 200}}`. Task faults: `{"task": {"image": "*:broken",
//!   "fail_to_start": "CannotPullContainerError: ..."}}`, `{"task": {"image": "...",
//!   "essential_exit": {"code": 1, "after_secs": 5}}}`, `{"task": {"image": "...",
//!   "health_check_fails": true}}`, `{"task": {"image": "...", "slow_start_secs": 30}}`.
//! - `DELETE /_kyb-sim/faults` removes every fault (204).
//! - `POST /_kyb-sim/advance` with `{"secs": 30}` moves a manual clock (200, `{"now":
//!   ...}`); 409 when the clock follows real time.
//!
//! # API
//!
//! - [`EcsSimulator::builder`] -> [`EcsSimulatorBuilder`]: `time_scale`, `manual_clock`,
//!   `seed`, `fault`, `known_subnets`, `known_security_groups`, `docker_runtime`
//!   ([`DockerRuntimeConfig`]); then `build`.
//! - [`EcsSimulator::serve`] -> [`RunningSimulator`] (`url`, `handle`, `shutdown`).
//! - [`SimHandle`]: `request_log` ([`LoggedRequest`]), `operation_counts`,
//!   `mutating_calls`, `snapshot`, `advance` (manual clock), `add_fault`, `clear_faults`,
//!   `service_url` (Docker-backed).
//! - [`Fault`]: API faults per operation ([`ApiFaultKind`]) and task faults per image
//!   ([`TaskFaultKind`]); [`FaultSpec`] is its data shape (admin JSON, `kyb-sim` config).
//!
//! # Example
//!
//! ```
//! use kyb_deploy_testkit::ecs_sim::EcsSimulator;
//! use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//! let sim = EcsSimulator::builder().time_scale(60.0).seed(7).build().serve(listener).unwrap();
//!
//! let body = r#"{"clusterName":"staging"}"#;
//! let request = format!(
//!     "POST / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
//!      X-Amz-Target: AmazonEC2ContainerServiceV20141113.CreateCluster\r\n\
//!      Content-Type: application/x-amz-json-1.1\r\n\
//!      Authorization: AWS4-HMAC-SHA256 Credential=AKID/20261126/eu-west-1/ecs/aws4_request, SignedHeaders=host, Signature=0\r\n\
//!      Content-Length: {len}\r\n\r\n{body}",
//!     addr = sim.addr(),
//!     len = body.len(),
//! );
//! let mut stream = tokio::net::TcpStream::connect(sim.addr()).await.unwrap();
//! stream.write_all(request.as_bytes()).await.unwrap();
//! let mut response = String::new();
//! stream.read_to_string(&mut response).await.unwrap();
//!
//! assert!(response.starts_with("HTTP/1.1 200"));
//! assert!(response.contains(r#""clusterArn":"arn:aws:ecs:eu-west-1:123456789012:cluster/staging""#));
//! assert_eq!(sim.handle().operation_counts()["CreateCluster"], 1);
//! sim.shutdown().await.unwrap();
//! # });
//! ```

mod admin;
mod api;
mod docker_runtime;
mod faults;
mod handle;
mod lifecycle;
mod model;
mod network;
mod render;
mod rollout;
mod server;
mod service_deployments;
mod shared;
mod simulator;
mod validate;

pub use self::admin::{ApiFaultSpec, ExitSpec, FaultSpec, InvalidFault, TaskFaultSpec};
pub use self::docker_runtime::DockerRuntimeConfig;
pub use self::faults::{ApiFault, ApiFaultKind, Fault, TaskFault, TaskFaultKind};
pub use self::handle::{LoggedRequest, SimHandle};
pub use self::simulator::{EcsSimulator, EcsSimulatorBuilder, RunningSimulator};
pub use crate::sim_runtime::SimClock;
