//! The Docker side of kyb-deploy: the image pipeline through a Docker engine (build, push by
//! digest, registry credentials, the built-in image policy, the Trivy adapter) and the local
//! Docker target, all over the engine's API (bollard, with the API version negotiated).
//!
//! Each piece implements a seam of `kyb-deploy-core`: [`DockerImageBuilder`] is an
//! `ImageBuilder`, [`DockerRegistry`] a `Registry`, [`ImagePolicyScanner`] and
//! [`TrivyScanner`] are `Scanner`s, and [`DockerTarget`] is a `Target`.
//!
//! ```no_run
//! # async fn example(env: kyb_deploy_core::config::Environment) -> kyb_deploy_core::Result<()> {
//! use kyb_deploy_core::Target as _;
//! use kyb_deploy_docker::{DockerEngine, DockerTarget};
//!
//! let engine = DockerEngine::connect().await?;
//! let target = DockerTarget::new(engine, &env)?;
//! println!("{:?}", target.current_release().await?);
//! # Ok(()) }
//! ```

mod backend;
mod builder;
mod context;
mod credentials;
mod engine;
mod policy;
mod registry;
mod settings;
mod target;
mod trivy;

pub use self::backend::DockerBackend;
pub use self::builder::DockerImageBuilder;
pub use self::credentials::{CredentialSource, REGISTRY_PASSWORD_ENV, REGISTRY_USERNAME_ENV};
pub use self::engine::DockerEngine;
pub use self::policy::{ImagePolicyScanner, PolicySettings};
pub use self::registry::DockerRegistry;
pub use self::settings::{ContainerSecurity, DockerSettings, SecretSource};
pub use self::target::DockerTarget;
pub use self::trivy::TrivyScanner;

pub(crate) use self::engine::{engine_error, runs_as_root, split_reference};
