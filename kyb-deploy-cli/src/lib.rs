//! The `kyb-deploy` command-line tool, as a library.
//!
//! The binary is a thin wrapper around [`main`]. Everything it does goes through
//! [`run_with`] and a [`CliContext`], so tests and programs can run the whole CLI in process:
//! capture its output, inject a [`TargetFactory`] returning fake targets, script the health
//! probe, and read the documented exit code ([`ExitCodes`]).
//!
//! ```
//! use kyb_deploy_cli::{CliContext, ExitCodes, run_with};
//!
//! // A missing configuration file is a usage error: nothing is attempted.
//! let dir = std::env::temp_dir().join("kyb-deploy-cli-doctest-no-config");
//! let mut ctx = CliContext::new(Vec::new(), Vec::new()).with_cwd(&dir);
//! let code = run_with(["kyb-deploy", "history", "--config", "missing.toml"], &mut ctx);
//! assert_eq!(code, ExitCodes::USAGE);
//! ```
//!
//! The commands, flags, exit codes and JSON documents are described in `docs/cli.md`.

mod app;
mod args;
mod commands;
mod context;
mod error;
mod exit_codes;
mod output;
mod project;
mod prompt;
mod signals;
mod targets;

pub use crate::app::{main, run_with};
pub use crate::context::CliContext;
pub use crate::exit_codes::ExitCodes;
pub use crate::targets::{BuiltinTargets, TargetFactory, registered_backends};
