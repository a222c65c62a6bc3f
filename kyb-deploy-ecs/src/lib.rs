//! The AWS ECS (Fargate) target of kyb-deploy: [`EcsTarget`] deploys a release by
//! registering a task definition (only when it changed) and updating the service, follows
//! the rollout until ECS completes *this* deployment, and treats a circuit-breaker
//! rollback as the failure it is.
//!
//! Every AWS call goes through an `aws_sdk_ecs::Client` on rustls with ring, the crypto
//! provider of the whole kyb-deploy graph. Build one from configuration with
//! [`EcsTarget::from_config`], or inject your own (tests, simulators) with
//! [`EcsTarget::new`]. See `docs/ecs.md` for settings, permissions and troubleshooting.

mod backend;
mod client;
mod ecr;
mod error;
mod fargate;
mod poller;
mod settings;
mod state;
mod target;
mod task_definition;

pub use crate::backend::EcsBackend;
pub use crate::client::{FailureClass, ThrottleRetry, https_client, load_sdk_config};
pub use crate::ecr::{EcrLogin, ecr_region};
pub use crate::error::{CallError, TaskDefinitionError};
pub use crate::poller::{Observation, ServicePoller, Subscription};
pub use crate::settings::{EcsDeployment, EcsPoll, EcsSettings, MAX_CALLS_PER_SECOND};
pub use crate::state::{s3_client, s3_state, s3_state_with_client};
pub use crate::target::{EcsTarget, EcsTargetSpec};
pub use crate::task_definition::{TaskDefinitionSpec, VERSION_LABEL};
