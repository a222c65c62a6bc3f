//! Applying a release's manifests: the record first, the replica count handed over to an
//! autoscaler, one object at a time with a claim that never says "nothing deployed" after a
//! write that may have gone through, and pruning once the rollout completed.

use kube::api::{Patch, PatchParams};
use kyb_deploy_core::{DeployHandle, Release, Result, StageProgress};

use super::lookup::handle;
use super::{KubernetesTarget, REPLICAS_HANDOVER};
use crate::apply::{ApplyMode, applied_by_kyb_deploy, apply, describe, prune};
use crate::error::Error;
use crate::manifests::Manifest;
use crate::recorded::{RECORD_LABEL, record_name, record_of};

impl KubernetesTarget {
    /// The error of an apply of `release` (of `total` objects) that failed at `failed`,
    /// after `applied`: the
    /// rollout may have started when the Deployment was written before, or when the failed
    /// write may have gone through (unless it was the record of the manifests: bookkeeping,
    /// which starts nothing, answered or not); otherwise nothing rolled out, and the message
    /// says which objects were written all the same.
    pub(super) fn apply_failed(
        &self,
        release: &Release,
        applied: &[serde_json::Value],
        total: usize,
        failed: &Manifest,
        error: Error,
    ) -> kyb_deploy_core::Error {
        let written: Vec<String> = applied.iter().map(describe).collect();
        let deployment_written = applied.iter().any(|o| o["kind"] == "Deployment");
        let at = describe(&failed.object);
        let record = failed.object["metadata"]["labels"]
            .get(RECORD_LABEL)
            .is_some();
        if deployment_written || (error.may_have_been_applied() && !record) {
            return kyb_deploy_core::Error::maybe_applied(
                "kubernetes",
                format!(
                    "applying the manifests of {} failed at {at} after {} of {} objects were applied",
                    release.version,
                    written.len(),
                    total
                ),
                Some(Box::new(error)),
            );
        }
        let mut core: kyb_deploy_core::Error = error.into();
        if !written.is_empty()
            && let kyb_deploy_core::Error::Target { message, .. } = &mut core
        {
            message.push_str(&format!(
                "; no rollout started, but these were applied before: {}",
                written.join(", ")
            ));
        }
        core
    }

    /// Deletes what this service's earlier manifests had and those of `release` no longer
    /// have, once its rollout completed (before, old pods may still use a ConfigMap or
    /// Secret). A failure is a warning: the release runs, only leftovers stay.
    pub(super) async fn prune_after(&self, release: &Release, progress: &StageProgress) {
        let settings = self.settings();
        let pruned = match self.applied_manifests(release, false).await {
            Ok(manifests) => {
                prune(
                    &self.client,
                    &settings.namespace,
                    &self.owned(),
                    &manifests,
                    false,
                )
                .await
            }
            Err(e) => {
                progress.warn(format!("not pruning: {}", e.chain()));
                return;
            }
        };
        match pruned {
            Ok(deleted) => {
                for what in deleted {
                    progress.progress(format!("pruned {what}: the manifests no longer have it"));
                }
            }
            Err(e) => progress.warn(format!(
                "pruning what the manifests no longer have failed: {}",
                kyb_deploy_core::Error::chain_of(&e)
            )),
        }
        if let Err(e) = self.forget_records().await {
            progress.warn(format!(
                "deleting the records of releases the cluster no longer keeps failed: {}",
                e.chain()
            ));
        }
    }

    /// Before the first apply without `spec.replicas` (an autoscaler now owns the count):
    /// when kyb-deploy's field manager still owns the field, another manager of ours takes
    /// it at its current value first. Otherwise server-side apply would remove the field,
    /// and the Deployment would drop to one replica until the autoscaler scales it back.
    pub(super) async fn hand_replicas_over(&self) -> Result<()> {
        let Some(deployment) = self.deployment().await? else {
            return Ok(());
        };
        let owned = deployment
            .metadata
            .managed_fields
            .iter()
            .flatten()
            .any(|entry| {
                applied_by_kyb_deploy(entry)
                    && entry
                        .fields_v1
                        .as_ref()
                        .is_some_and(|f| f.0["f:spec"].get("f:replicas").is_some())
            });
        let Some(replicas) = deployment
            .spec
            .as_ref()
            .and_then(|s| s.replicas)
            .filter(|_| owned)
        else {
            return Ok(());
        };
        let patch = serde_json::json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": self.settings().app},
            "spec": {"replicas": replicas},
        });
        self.deployments()
            .patch(
                &self.settings().app,
                &PatchParams::apply(REPLICAS_HANDOVER),
                &Patch::Apply(&patch),
            )
            .await
            .map_err(|e| {
                Error::api(
                    format!(
                        "hand the replica count of {} over to the autoscaler",
                        self.deployment_name()
                    ),
                    e,
                )
            })?;
        Ok(())
    }

    /// Applies the manifests of `release` (its recorded ones when it has them, else those of
    /// today's settings, recorded first) and returns the handle of its rollout, whose
    /// release names the record.
    pub(super) async fn roll_out(&self, release: &Release) -> Result<DeployHandle> {
        let (manifests, record) = match self.recorded(release, true).await? {
            Some(manifests) => (manifests, None),
            None => {
                let manifests = self.manifests(release, true)?;
                let record = record_of(
                    &manifests,
                    &self.spec.environment,
                    &self.settings().app,
                    release.version.as_str(),
                );
                (manifests, record)
            }
        };
        let mode = ApplyMode {
            dry_run: false,
            force: self.settings().force_conflicts,
        };
        if manifests
            .iter()
            .any(|m| m.kind() == "HorizontalPodAutoscaler")
        {
            self.hand_replicas_over().await?;
        }
        // The record right after the Namespace, before anything in it changes: a release
        // in service always has its record.
        let mut sequence: Vec<&Manifest> = manifests.iter().collect();
        if let Some(record) = &record {
            let at = sequence
                .iter()
                .position(|m| m.kind() != "Namespace")
                .unwrap_or(sequence.len());
            sequence.insert(at, record);
        }
        let mut applied = Vec::with_capacity(sequence.len());
        for manifest in sequence.iter().copied() {
            match apply(&self.client, manifest, mode).await {
                Ok(one) => applied.push(one),
                Err(e) => {
                    return Err(self.apply_failed(release, &applied, sequence.len(), manifest, e));
                }
            }
        }
        let generation = applied
            .iter()
            .find(|o| o["kind"] == "Deployment")
            .and_then(|d| d["metadata"]["generation"].as_i64())
            .unwrap_or(0);
        let release = Release {
            platform_ref: record_name(&manifests).map(str::to_owned),
            ..release.clone()
        };
        Ok(handle(&release, generation))
    }
}
