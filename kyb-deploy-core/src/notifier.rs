//! The [`Notifier`] seam: telling people about runs.

use async_trait::async_trait;
use serde::Serialize;

use crate::error::Result;
use crate::outcome::Outcome;

/// What a notification says about a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Notification {
    /// One-line human summary; sent as Slack's `text`.
    pub text: String,
    /// The project (service) name.
    pub project: String,
    /// Environment name.
    pub environment: String,
    /// The version deployed.
    pub version: String,
    /// Who ran it.
    pub actor: String,
    /// The CI run it ran in (GitHub Actions: the run's page), when in one.
    pub ci_run_url: Option<String>,
    /// The run's record id.
    pub run_id: String,
    /// How it ended.
    pub outcome: Outcome,
}

/// Tells people about runs. A failing notifier only warns; it never fails a deployment.
#[async_trait]
pub trait Notifier: Send + Sync {
    /// A name safe to show (no secrets), for warnings.
    fn name(&self) -> String;

    /// Delivers `notification`, retrying as the notifier sees fit.
    async fn notify(&self, notification: &Notification) -> Result<()>;
}
