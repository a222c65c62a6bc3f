//! Test support for kyb-deploy: fakes of every seam of `kyb-deploy-core`, and the
//! `kyb-sample-api` sample service.
//!
//! The fakes let a program or a test run a whole deployment with no Docker engine, cloud
//! account or cluster: a [`FakeTarget`] whose rollouts follow a script, a [`ScriptedProbe`]
//! whose verdict is set per version, an [`InMemoryRecordStore`], and fakes of the image,
//! test, version and notification seams.
//!
//! A whole deployment embedded in a program, with v3 failing verification and rolled back to
//! the last known-good release:
//!
//! ```
//! use std::sync::Arc;
//! use kyb_deploy_core::{CancellationToken, DeployRequest, Outcome, Pipeline, RunControl, Version};
//! use kyb_deploy_core::config::Config;
//! use kyb_deploy_testkit::{FakeTarget, FixedVersion, InMemoryLock, InMemoryRecordStore, ScriptedProbe};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let config = Config::from_toml(r#"
//!     [environments.staging]
//!     target = "docker"
//!     [environments.staging.docker]
//!     [environments.staging.verify]
//!     base_url = "http://127.0.0.1:8080"
//! "#).unwrap();
//! let env = config.environment("staging").unwrap();
//! let target = Arc::new(FakeTarget::new());
//! let store = Arc::new(InMemoryRecordStore::new());
//! let probe = Arc::new(ScriptedProbe::new().fail_version("v3", "liveness", "HTTP 503"));
//! let control = RunControl::new(CancellationToken::new());
//!
//! for version in ["v1", "v3"] {
//!     let pipeline = Pipeline::new(target.clone(), probe.clone(), store.clone(), Arc::new(InMemoryLock::new()))
//!         .with_version_source(Arc::new(FixedVersion::new(version)));
//!     let report = pipeline.deploy(&DeployRequest::new(env.clone()), &control).await;
//!     if version == "v3" {
//!         assert!(matches!(report.outcome, Outcome::RolledBack { ref to, .. } if to.version.as_str() == "v1"));
//!     }
//! }
//! assert_eq!(target.current().unwrap().version, Version::parse("v1").unwrap());
//! # });
//! ```

mod backend_check;
#[cfg(feature = "ecs-sim")]
pub mod ecs_sim;
mod engine;
mod fake_seams;
mod fake_target;
mod fault_proxy;
#[cfg(feature = "k8s-sim")]
pub mod k8s_sim;
mod memory_store;
pub mod moto;
pub mod sample_api;
mod sample_process;
mod scripted_probe;
mod signals;
#[cfg(any(feature = "ecs-sim", feature = "k8s-sim"))]
// `SimClock` is public through `ecs_sim`; the Kubernetes simulator alone uses less of it.
#[cfg_attr(not(feature = "ecs-sim"), allow(unreachable_pub, dead_code))]
mod sim_runtime;
pub mod state_contract;

pub use crate::backend_check::refusal;
pub use crate::engine::{
    ENGINE_SETUP_HINT, STATIC_SAMPLE_API_BUILD, TEST_REGISTRY, docker, require_image_peers,
    static_sample_api,
};
pub use crate::fake_seams::{
    FakeImageBuilder, FakeRegistry, FakeScanner, FakeTestRunner, FixedVersion, RecordingNotifier,
    fake_digest,
};
pub use crate::fake_target::{ActivateHook, FakeRollout, FakeTarget, TargetCall};
pub use crate::fault_proxy::{Fault, FaultProxy, FaultRule, ProxiedRequest, RequestMatch};
pub use crate::memory_store::{InMemoryLock, InMemoryRecordStore};
pub use crate::sample_process::{SampleApiProcess, sample_api_beside_current_exe};
pub use crate::scripted_probe::{ProbeVerdict, ScriptedProbe};
pub use crate::signals::shutdown_signal;
