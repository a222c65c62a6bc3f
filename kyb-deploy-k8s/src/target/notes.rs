//! The verification note: two annotations on the Deployment, written with a field manager
//! of their own so that applying the manifests (which do not carry them) leaves them.

use kube::api::{Patch, PatchParams};
use kyb_deploy_core::{Release, Result};

use super::KubernetesTarget;
use crate::error::Error;

/// The field manager of the verification note: not the manifests' own, so that applying
/// the manifests (which do not carry the note) leaves it in place.
const NOTE_MANAGER: &str = "kyb-deploy-verification";
/// The note's annotations on the Deployment: the run that verified, and the release (JSON).
const NOTE_RUN: &str = "kyb-deploy.io/verified-run";
const NOTE_RELEASE: &str = "kyb-deploy.io/verified-release";

impl KubernetesTarget {
    /// Leaves the note that run `run_id` verified `release` (see `Target::mark_verified`).
    pub(super) async fn leave_note(&self, release: &Release, run_id: &str) -> Result<()> {
        let note = serde_json::to_string(release).map_err(|e| {
            kyb_deploy_core::Error::target("kubernetes", format!("cannot write the note: {e}"))
        })?;
        let patch = serde_json::json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": self.settings().app,
                "annotations": {NOTE_RUN: run_id, NOTE_RELEASE: note},
            },
        });
        // Applying the same note twice leaves it as it is: a retry after a lost answer is
        // harmless. Metadata only: no new generation, no rollout.
        let params = PatchParams::apply(NOTE_MANAGER).force();
        self.deployments()
            .patch(&self.settings().app, &params, &Patch::Apply(&patch))
            .await
            .map_err(|e| {
                Error::api(
                    format!("leave the verification note on {}", self.deployment_name()),
                    e,
                )
            })?;
        Ok(())
    }

    /// The release run `run_id` verified, when the Deployment holds its note.
    pub(super) async fn read_note(&self, run_id: &str) -> Result<Option<Release>> {
        let Some(deployment) = self.deployment().await? else {
            return Ok(None);
        };
        let annotations = deployment.metadata.annotations.unwrap_or_default();
        if annotations.get(NOTE_RUN).map(String::as_str) != Some(run_id) {
            return Ok(None);
        }
        let note = annotations.get(NOTE_RELEASE).ok_or_else(|| {
            kyb_deploy_core::Error::target(
                "kubernetes",
                format!(
                    "the note of run {run_id} on {} names no release",
                    self.deployment_name()
                ),
            )
        })?;
        serde_json::from_str(note).map(Some).map_err(|e| {
            kyb_deploy_core::Error::target(
                "kubernetes",
                format!(
                    "the note of run {run_id} on {} does not parse: {e}",
                    self.deployment_name()
                ),
            )
        })
    }
}
