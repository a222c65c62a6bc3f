//! The core of kyb-deploy: domain types, the seams every backend plugs into, and the
//! deployment pipeline engine.
//!
//! A deployment runs through one pipeline (preflight, version, tests, build, scan, push, lock,
//! record, deploy, wait, verify, rollback on failure, finalize, notify) against a [`Target`].
//! Every seam is a trait, so a program can embed a whole deployment and tests can swap any
//! piece for a fake (see the `kyb-deploy-testkit` crate).
//!
//! The API: at the root, the domain types ([`Version`], [`Release`], [`DeploymentRecord`],
//! [`Outcome`]), the seams ([`Target`], [`RecordStore`], [`DeployLock`], [`Notifier`],
//! [`ImageBuilder`], ...) with their default implementations, and the [`Pipeline`];
//! [`config`]: the configuration file and its environments; [`verify`]: the health-probe
//! seam, the HTTP probe and the verify stage.
//!
//! ```
//! use kyb_deploy_core::Version;
//! use kyb_deploy_core::config::Config;
//!
//! let config = Config::from_toml(r#"
//!     [environments.development]
//!     target = "docker"
//!     [environments.development.docker]
//! "#).unwrap();
//! let env = config.environment("development").unwrap();
//! assert_eq!(env.settings.verify.readiness.path, "/ready");
//! assert!(Version::parse("v1.2.3").is_ok());
//! ```

mod backend;
mod command_test_runner;
pub mod config;
mod deploy_lock;
mod error;
mod event;
mod file_lock;
mod git_version;
mod image;
mod image_builder;
mod ledger;
mod notifier;
mod outcome;
mod pipeline;
mod preflight;
mod record;
mod record_store;
mod redact;
mod registry;
mod registry_login;
mod release;
mod scan_chain;
mod scanner;
pub mod shared_state;
mod stage;
mod target;
mod test_runner;
pub mod verify;
mod version;
mod version_source;
mod webhook;

pub use crate::backend::{TargetBackend, TargetBackends};
pub use crate::command_test_runner::CommandTestRunner;
pub use crate::deploy_lock::{DeployLock, LockGuard};
pub use crate::error::{Error, Result};
pub use crate::event::{Event, EventSink, StageProgress};
pub use crate::file_lock::FileDeployLock;
pub use crate::git_version::GitVersionSource;
pub use crate::image::{BuiltImage, PlatformImage, preflight_image_seams};
pub use crate::image_builder::{BuildRequest, ImageBuilder};
pub use crate::ledger::{JsonlRecordStore, LedgerProblem, LedgerSnapshot};
pub use crate::notifier::{Notification, Notifier};
pub use crate::outcome::{Outcome, RollbackSummary};
pub use crate::pipeline::{
    DeployRequest, Pipeline, RollbackRequest, RunControl, RunReport, service_url,
};
pub use crate::preflight::{Check, check_prerequisites};
pub use crate::record::{
    DeploymentRecord, Operation, RecordStatus, RollbackDetails, StageTiming, ci_run_url,
    current_actor, current_host,
};
pub use crate::record_store::RecordStore;
pub use crate::redact::{redact_text, redact_url};
pub use crate::registry::{PushedImage, Registry};
pub use crate::release::Release;
pub use crate::scanner::{Finding, ScanReport, Scanner};
pub use crate::stage::{Stage, StageResult};
pub use crate::target::{
    DeployHandle, Plan, PlannedChange, Revision, RolloutOutcome, Serving, Target, TargetDescription,
};
pub use crate::test_runner::{TestReport, TestRunner, TestSuite};
pub use crate::version::Version;
pub use crate::version_source::{ResolvedVersion, VersionOrigin, VersionSource};
pub use crate::webhook::WebhookNotifier;

pub use crate::registry_login::{Credentials, RegistryLogin};
pub use crate::scan_chain::ScanChain;

/// Re-exported so that implementers of the seams need not depend on these crates directly.
pub use async_trait::async_trait;
pub use tokio_util::sync::CancellationToken;
pub use url::Url;
