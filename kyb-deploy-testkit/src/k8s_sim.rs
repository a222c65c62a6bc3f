//! A Kubernetes API server simulator: enough of the API and of the Deployment controller
//! that the real `kubectl` and kube-rs work against it unchanged.

mod api;
mod cluster;
mod controller;
mod discovery;
mod error;
mod faults;
mod handle;
pub(crate) mod patch;
mod resources;
mod route;
mod selector;
mod simulator;
mod store;
mod tls;

pub use self::faults::Fault;
pub use self::handle::K8sHandle;
pub use self::simulator::{K8sSimulator, K8sSimulatorBuilder, RunningK8sSimulator};
