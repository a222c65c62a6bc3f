//! What the target reads off the cluster's objects, as pure functions: the release a pod
//! template runs, the handle of a rollout, and a failed rollout in words.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use kyb_deploy_core::{DeployHandle, Release, Version};
use time::OffsetDateTime;

use crate::manifests::{MANIFESTS_ANNOTATION, VERSION_ANNOTATION};
use crate::verdict::{RolloutFailure, VERSION_LABEL, revision};

/// The release a pod template runs: its exact version annotation (else its version
/// label) and its first container's image; `revision` is the platform's reference.
pub(super) fn release_of(template: &PodTemplateSpec, revision: Option<&str>) -> Option<Release> {
    let meta = template.metadata.as_ref()?;
    let version = meta
        .annotations
        .as_ref()
        .and_then(|a| a.get(VERSION_ANNOTATION))
        .or_else(|| meta.labels.as_ref().and_then(|l| l.get(VERSION_LABEL)))?;
    let version = Version::parse(version).ok()?;
    let image = template
        .spec
        .as_ref()?
        .containers
        .first()
        .and_then(|c| c.image.clone())
        .unwrap_or_default();
    // The record of its manifests names it; a template without one (applied by an
    // older kyb-deploy, or by hand) is named by its revision.
    let recorded = meta
        .annotations
        .as_ref()
        .and_then(|a| a.get(MANIFESTS_ANNOTATION))
        .cloned();
    Some(Release {
        platform_ref: recorded.or_else(|| revision.map(|r| format!("revision {r}"))),
        ..Release::new(version, image)
    })
}

pub(super) fn release_of_deployment(deployment: &Deployment) -> Option<Release> {
    let template = &deployment.spec.as_ref()?.template;
    release_of(template, revision(&deployment.metadata))
}

pub(super) fn release_of_replica_set(set: &ReplicaSet) -> Option<Release> {
    let template = set.spec.as_ref()?.template.as_ref()?;
    release_of(template, revision(&set.metadata))
}

/// The handle of the rollout of `release` that generation `generation` started.
pub(super) fn handle(release: &Release, generation: i64) -> DeployHandle {
    DeployHandle {
        rollout_id: generation.to_string(),
        release: release.clone(),
        started_at: OffsetDateTime::now_utc(),
        candidate_endpoint: None,
        cursor: None,
    }
}

/// A failed rollout in words: what failed, and what the kubelet or the controller said.
pub(super) fn failure_reason(deployment: &str, failure: &RolloutFailure) -> String {
    match failure {
        RolloutFailure::ProgressDeadlineExceeded { message } => {
            format!("{deployment} exceeded its progress deadline: {message}")
        }
        RolloutFailure::PodsDoomed(pods) => {
            let first = &pods[0];
            let said = first
                .message
                .as_deref()
                .map_or_else(String::new, |m| format!(": {m}"));
            let more = match pods.len() {
                1 => String::new(),
                n => format!(" (and {} more pods)", n - 1),
            };
            format!(
                "no pod of the new ReplicaSet of {deployment} can start: pod {} container {}: {}{said}{more}",
                first.pod, first.container, first.reason
            )
        }
        RolloutFailure::Paused => format!(
            "{deployment} is paused and will not roll out; resume it (kubectl rollout resume) or deploy again"
        ),
        RolloutFailure::Replaced { by } => format!(
            "another release ({}) replaced this one in {deployment} while it rolled out",
            by.as_deref().unwrap_or("without a version label")
        ),
    }
}

#[cfg(test)]
mod tests;
