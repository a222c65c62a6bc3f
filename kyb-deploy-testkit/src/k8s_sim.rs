//! A Kubernetes API server simulator: enough of the API and of the Deployment controller
//! that the real `kubectl` and kube-rs work against it unchanged.
//!
//! # Docker-backed pods
//!
//! By default pods are state only: the kubelet of the one simulated node moves their
//! containers through pulls, starts and readiness on the simulated clock, and [`Fault`]s
//! decide what goes wrong. With [`K8sSimulatorBuilder::docker_runtime`] the first container
//! of every pod is a real container, run through the local engine's `docker` CLI:
//!
//! - Its image is pulled (`127.0.0.1:5000/app:v1` from a local registry, or any registry
//!   the engine reaches) and run with the container's `env` entries that have a `value`,
//!   its `command` (as the entrypoint) and `args`, each TCP `ports[].containerPort` and the
//!   readiness probe's port published on an ephemeral 127.0.0.1 port, and the labels
//!   `io.kyb-sim.simulator`, `io.kyb-sim.namespace`, `io.kyb-sim.pod`,
//!   `io.kyb-sim.pod-uid` and `io.kyb-sim.container`.
//! - A failed pull shows as `ErrImagePull` with the engine's message, then
//!   `ImagePullBackOff`, retried with the kubelet's back-off; a container that exits (or
//!   cannot start: exit code 128) shows as terminated, is restarted at once the first time,
//!   then after `CrashLoopBackOff` back-offs, with the restart count.
//! - Readiness comes from the `readinessProbe` run against the container: `httpGet` (a
//!   status 200-399 on the published port), `tcpSocket`, or `exec` (`docker exec`), with
//!   `initialDelaySeconds`, `periodSeconds` (default 10), `timeoutSeconds` (default 1),
//!   `successThreshold` (1) and `failureThreshold` (3). The delay and the period are
//!   simulated seconds, so a time scale shortens them (never below
//!   [`DockerPodsConfig::min_probe_period`]); the timeout is real time. Without a probe the
//!   container is ready once it runs.
//! - Every Service with a selector gets a stable local URL,
//!   [`RunningK8sSimulator::service_url`]: a TCP proxy that spreads connections
//!   round-robin over the ready pods it selects, on the port its first `ports` entry
//!   targets (`targetPort` a number, or the name of a port of the pod's first container),
//!   and closes them while no pod is ready. The controllers also write it into the
//!   Service's status as a load balancer's ingress (`status.loadBalancer.ingress[0]`: `ip`
//!   `127.0.0.1` and `ports[0].port`), so that clients in other processes find it.
//! - A deleted pod's container is removed; [`RunningK8sSimulator::shutdown`] (or dropping
//!   the [`RunningK8sSimulator`], which blocks on `docker rm -f`) removes them all.
//!
//! The kubelet keeps the pods' status on the simulated clock: it asks the container's agent
//! to pull, start or stop without waiting, and applies what the agent reports at its next
//! pass. Other containers of a pod stay virtual, and image [`Fault`]s still apply on top.

mod api;
mod cluster;
mod controller;
mod discovery;
mod docker;
mod error;
mod faults;
mod handle;
pub(crate) mod patch;
mod resources;
mod route;
mod selector;
mod simulator;
mod store;
mod table;
mod tls;
mod typed;
mod validation;

pub use self::docker::DockerPodsConfig;
pub use self::faults::Fault;
pub use self::handle::K8sHandle;
pub use self::simulator::{K8sSimulator, K8sSimulatorBuilder, RunningK8sSimulator};
