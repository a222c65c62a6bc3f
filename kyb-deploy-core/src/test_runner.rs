//! The [`TestRunner`] seam: the test suites a run runs before it builds.

use std::path::PathBuf;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::error::Result;
use crate::event::StageProgress;

/// A test suite to run before building.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestSuite {
    /// Name (`unit`, `integration`).
    pub name: String,
    /// Shell command.
    pub command: String,
    /// Working directory.
    pub workdir: PathBuf,
}

/// How a suite ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestReport {
    /// The suite's name.
    pub suite: String,
    /// Whether it passed.
    pub passed: bool,
    /// The command's exit code, when it exited normally.
    pub exit_code: Option<i32>,
    /// Wall time in milliseconds.
    pub elapsed_ms: u64,
}

/// Runs test suites.
#[async_trait]
pub trait TestRunner: Send + Sync {
    /// Runs `suite`, streaming its output through `progress`. A failing suite is a report with
    /// `passed == false`; `Err` means it could not be run at all.
    async fn run(
        &self,
        suite: &TestSuite,
        progress: &StageProgress,
        cancel: &CancellationToken,
    ) -> Result<TestReport>;
}
