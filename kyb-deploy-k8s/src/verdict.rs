//! The rollout verdict: what one view of a Deployment, its ReplicaSets and its pods says
//! about our release, as a pure function so that every rule has a table test.
//!
//! The rules are kubectl's `rollout status` (the controller has observed the spec; every
//! replica is updated; no old replica is left; every updated replica is available; a
//! progress deadline exceeded is a failure), made strict about *whose* rollout it is: the
//! controller must have observed at least the generation our apply produced, and the
//! Deployment and its newest ReplicaSet must carry our version. Two rules fail fast where
//! kubectl would wait for the deadline: a paused Deployment, and a new ReplicaSet whose
//! every pod is doomed (it can never start without a new release).

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// The label that carries the release's version on the Deployment's pod template, and so
/// on its ReplicaSets and pods.
pub const VERSION_LABEL: &str = "app.kubernetes.io/version";

/// The annotation with which the Deployment controller numbers a Deployment's revisions
/// and their ReplicaSets.
const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";

/// Waiting reasons of a container that cannot start until the release changes (or, for
/// a missing image, until someone pushes it, which a deploy should not wait for).
const DOOMED_WAITING: [&str; 6] = [
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImageNeverPull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
];

/// The release whose rollout is judged: what our apply wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppliedRelease {
    /// The version, as the pod template's [`VERSION_LABEL`] carries it.
    pub version: String,
    /// `metadata.generation` of the Deployment as our apply returned it.
    pub generation: i64,
}

/// What a view says about the release's rollout.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RolloutVerdict {
    /// Still rolling out, for this reason.
    InProgress(Waiting),
    /// Rolled out: every replica of the Deployment is ours, updated and available.
    Complete,
    /// The rollout cannot succeed.
    Failed(RolloutFailure),
}

/// Why a rollout is not complete yet; each displays as kubectl's `rollout status` line.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Waiting {
    /// The Deployment controller has not observed our spec yet.
    SpecNotObserved,
    /// Not every replica runs the new pod template yet.
    Updating {
        /// Replicas of the new template.
        updated: i32,
        /// Replicas wanted.
        desired: i32,
    },
    /// Replicas of older templates are still running or terminating.
    OldReplicasPending {
        /// How many.
        count: i32,
    },
    /// Not every updated replica is available yet.
    Available {
        /// Updated replicas available.
        available: i32,
        /// Updated replicas.
        updated: i32,
    },
    /// The Deployment reports completion, but its new ReplicaSet is not in the view yet.
    NewReplicaSetUnseen,
}

/// Why a rollout failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RolloutFailure {
    /// The Deployment's `Progressing` condition says `ProgressDeadlineExceeded`.
    ProgressDeadlineExceeded {
        /// The condition's message.
        message: String,
    },
    /// Every pod of the new ReplicaSet is stuck for good; at least one.
    PodsDoomed(Vec<DoomedPod>),
    /// The Deployment is paused: it will not roll out until someone resumes it.
    Paused,
    /// Another release replaced ours: the Deployment or its newest ReplicaSet carries
    /// another version (`None`: no version label).
    Replaced {
        /// The version found instead of ours.
        by: Option<String>,
    },
}

/// A pod that cannot start, and what the kubelet says about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DoomedPod {
    /// The pod's name.
    pub pod: String,
    /// The container's name.
    pub container: String,
    /// The kubelet's reason, like `CrashLoopBackOff` or `ImagePullBackOff`.
    pub reason: String,
    /// The kubelet's message, when it gave one.
    pub message: Option<String>,
}

/// What one view of `deployment`, its `replica_sets` and their `pods` (others in the
/// slices are ignored) says about `release`.
#[must_use]
pub fn judge_rollout(
    release: &AppliedRelease,
    deployment: &Deployment,
    replica_sets: &[ReplicaSet],
    pods: &[Pod],
) -> RolloutVerdict {
    let spec = deployment.spec.as_ref();
    let status = deployment.status.clone().unwrap_or_default();
    // First, whether this view describes our write at all: a view older than our apply (the
    // controller cannot have observed a generation the view does not have yet), or one whose
    // status the controller has not brought up to date, says nothing yet.
    let generation = deployment.metadata.generation.unwrap_or(0);
    let observed = status.observed_generation.unwrap_or(0);
    if generation > observed || release.generation > observed {
        return RolloutVerdict::InProgress(Waiting::SpecNotObserved);
    }
    let template_version = spec
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| label(m, VERSION_LABEL));
    if template_version != Some(release.version.as_str()) {
        return RolloutVerdict::Failed(RolloutFailure::Replaced {
            by: template_version.map(str::to_owned),
        });
    }
    let new_set = new_replica_set(deployment, replica_sets);
    let progressing = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Progressing");
    // The controller names the ReplicaSet that timed out (`ReplicaSet "web-2" has timed out
    // progressing.`); a deadline left over from an earlier rollout (back to a ReplicaSet
    // that existed before) is not this rollout's.
    let ours_timed_out = |message: &str| {
        new_set
            .and_then(|set| set.metadata.name.as_deref())
            .is_none_or(|name| message.contains(&format!("\"{name}\"")))
    };
    if let Some(condition) = progressing.filter(|c| {
        c.reason.as_deref() == Some(DEADLINE)
            && ours_timed_out(c.message.as_deref().unwrap_or_default())
    }) {
        return RolloutVerdict::Failed(RolloutFailure::ProgressDeadlineExceeded {
            message: condition.message.clone().unwrap_or_default(),
        });
    }
    let new_version = new_set.map(|set| {
        set.spec
            .as_ref()
            .and_then(|s| s.template.as_ref())
            .and_then(|t| t.metadata.as_ref())
            .and_then(|m| label(m, VERSION_LABEL))
    });
    let ours = new_version == Some(Some(release.version.as_str()));
    let updated = status.updated_replicas.unwrap_or(0);
    let desired = spec.and_then(|s| s.replicas).unwrap_or(1);
    let waiting = if updated < desired {
        Some(Waiting::Updating { updated, desired })
    } else if status.replicas.unwrap_or(0) > updated {
        Some(Waiting::OldReplicasPending {
            count: status.replicas.unwrap_or(0) - updated,
        })
    } else {
        let available = status.available_replicas.unwrap_or(0);
        (available < updated).then_some(Waiting::Available { available, updated })
    };
    // A paused Deployment makes no new ReplicaSet for our template: its newest one is the
    // previous release's, which is no sign that another release replaced ours.
    if spec.and_then(|s| s.paused) == Some(true) {
        return if waiting.is_none() && ours {
            RolloutVerdict::Complete
        } else {
            RolloutVerdict::Failed(RolloutFailure::Paused)
        };
    }
    if let Some(version) = new_version.filter(|_| !ours) {
        return RolloutVerdict::Failed(RolloutFailure::Replaced {
            by: version.map(str::to_owned),
        });
    }
    match (waiting, new_set) {
        (None, Some(_)) => RolloutVerdict::Complete,
        (None, None) => RolloutVerdict::InProgress(Waiting::NewReplicaSetUnseen),
        (Some(waiting), _) => {
            let doomed = new_set
                .map(|set| doomed_pods(set, pods))
                .unwrap_or_default();
            if doomed.is_empty() {
                RolloutVerdict::InProgress(waiting)
            } else {
                RolloutVerdict::Failed(RolloutFailure::PodsDoomed(doomed))
            }
        }
    }
}

/// The `Progressing` condition's reason once the progress deadline has passed.
const DEADLINE: &str = "ProgressDeadlineExceeded";

fn label<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.labels.as_ref()?.get(key).map(String::as_str)
}

/// The revision the Deployment controller gave an object (its annotation).
pub(crate) fn revision(meta: &ObjectMeta) -> Option<&str> {
    meta.annotations
        .as_ref()?
        .get(REVISION_ANNOTATION)
        .map(String::as_str)
}

/// Whether `owned` names `owner` (by uid) as its controller.
fn controlled_by(owned: &ObjectMeta, owner: &ObjectMeta) -> bool {
    owner.uid.as_deref().is_some_and(|uid| {
        owned
            .owner_references
            .iter()
            .flatten()
            .any(|r| r.uid == uid && r.controller == Some(true))
    })
}

/// The ReplicaSet of `deployment` whose revision is the Deployment's.
fn new_replica_set<'a>(
    deployment: &Deployment,
    replica_sets: &'a [ReplicaSet],
) -> Option<&'a ReplicaSet> {
    let current = revision(&deployment.metadata)?;
    replica_sets
        .iter()
        .filter(|set| controlled_by(&set.metadata, &deployment.metadata))
        .find(|set| revision(&set.metadata) == Some(current))
}

/// The pods of `set` that cannot start, if that is every one of its pods (and there is at
/// least one); otherwise none.
fn doomed_pods(set: &ReplicaSet, pods: &[Pod]) -> Vec<DoomedPod> {
    let mut doomed = Vec::new();
    for pod in pods
        .iter()
        .filter(|p| controlled_by(&p.metadata, &set.metadata))
    {
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let statuses = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref());
        match statuses.into_iter().flatten().find_map(stuck) {
            Some((container, reason, message)) => doomed.push(DoomedPod {
                pod: pod.metadata.name.clone().unwrap_or_default(),
                container,
                reason,
                message,
            }),
            None => return Vec::new(),
        }
    }
    doomed
}

/// Why a container cannot start, if it cannot: a waiting reason that only a new release
/// cures, or an image that does not exist, or a runtime that refused to run it.
fn stuck(status: &ContainerStatus) -> Option<(String, String, Option<String>)> {
    let state = status.state.as_ref()?;
    let (reason, message) = if let Some(waiting) = &state.waiting {
        let reason = waiting.reason.as_deref()?;
        let missing_image = reason == "ErrImagePull"
            && waiting
                .message
                .as_deref()
                .is_some_and(names_a_missing_image);
        if !DOOMED_WAITING.contains(&reason) && !missing_image {
            return None;
        }
        (reason, waiting.message.clone())
    } else if let Some(terminated) = &state.terminated {
        let reason = terminated.reason.as_deref()?;
        if reason != "ContainerCannotRun" {
            return None;
        }
        (reason, terminated.message.clone())
    } else {
        return None;
    };
    Some((status.name.clone(), reason.to_owned(), message))
}

/// Whether a pull error says the image is not there (as opposed to a registry that could
/// not be reached, which the kubelet retries).
fn names_a_missing_image(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    ["not found", "manifest unknown", "does not exist"]
        .iter()
        .any(|phrase| message.contains(phrase))
}

impl std::fmt::Display for Waiting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::SpecNotObserved => {
                write!(f, "waiting for the deployment spec update to be observed")
            }
            Self::Updating { updated, desired } => {
                write!(
                    f,
                    "{updated} out of {desired} new replicas have been updated"
                )
            }
            Self::OldReplicasPending { count } => {
                write!(f, "{count} old replicas are pending termination")
            }
            Self::Available { available, updated } => {
                write!(f, "{available} of {updated} updated replicas are available")
            }
            Self::NewReplicaSetUnseen => write!(f, "waiting for the new ReplicaSet to be seen"),
        }
    }
}

#[cfg(test)]
mod tests;
