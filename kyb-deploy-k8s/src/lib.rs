//! The Kubernetes target of kyb-deploy: settings, built-in manifests, server-side apply,
//! pruning, the rollout verdict and the watches that feed it, plans from dry runs, and the
//! [`KubernetesTarget`] and [`KubernetesBackend`] that put them behind the `Target` seam.
//!
//! At its heart is the rollout verdict: [`judge_rollout`] says, from one consistent view
//! of a Deployment, its ReplicaSets and its pods, whether *our* release has rolled out, is
//! still rolling out, or has failed, with kubectl's `rollout status` rules plus the
//! fail-fast rules a deployment tool needs (pods that can never start). It decides and
//! fetches nothing: the watch that feeds it is separate, so every rule has a table test.
//!
//! ```
//! use k8s_openapi::api::apps::v1::Deployment;
//! use kyb_deploy_k8s::{AppliedRelease, RolloutVerdict, Waiting, judge_rollout};
//!
//! // Our apply made generation 2 with version v2; the controller has seen only generation 1.
//! let deployment: Deployment = serde_json::from_value(serde_json::json!({
//!     "metadata": {"name": "web", "generation": 2},
//!     "spec": {
//!         "selector": {"matchLabels": {"app": "web"}},
//!         "template": {"metadata": {"labels": {"app.kubernetes.io/version": "v2"}}},
//!     },
//!     "status": {"observedGeneration": 1},
//! }))?;
//! let release = AppliedRelease { version: "v2".into(), generation: 2 };
//! assert_eq!(
//!     judge_rollout(&release, &deployment, &[], &[]),
//!     RolloutVerdict::InProgress(Waiting::SpecNotObserved)
//! );
//! # Ok::<(), serde_json::Error>(())
//! ```

mod apply;
mod backend;
mod client;
mod error;
mod manifests;
mod own_manifests;
mod plan;
mod recorded;
mod rollout;
mod settings;
mod state;
mod target;
mod verdict;

pub use crate::apply::{ApplyMode, FIELD_MANAGER, apply_all};
pub use crate::backend::KubernetesBackend;
pub use crate::client::Credentials;
pub use crate::error::{ApiCause, Error};
pub use crate::manifests::{
    CONFIG_ANNOTATION, ENVIRONMENT_LABEL, MANAGED_BY_LABEL, MANIFESTS_ANNOTATION, Manifest,
    ManifestInput, NAME_LABEL, REDACTED, SecretValues, VERSION_ANNOTATION, built_in, label_value,
};
pub use crate::own_manifests::{ManifestError, Position, WrittenObject, fill_in, read_manifests};
pub use crate::plan::object_changes;
pub use crate::rollout::{RolloutEnd, RolloutScope, follow_rollout};
pub use crate::settings::{
    Autoscaling, DisruptionBudget, IngressSettings, KubernetesSettings, NetworkPolicySettings,
    Probe, Probes, Resources, RolloutSettings, SecretSource,
};
pub use crate::state::{
    DIRECTORY_LABEL, HOLDER_ANNOTATION, KEY_ANNOTATION, ROOT_LABEL, SECRET_TYPE, STATE_LABEL,
    kubernetes_objects, kubernetes_state, kubernetes_state_with_client, state_namespace,
};
pub use crate::target::{KubernetesTarget, KubernetesTargetSpec};
pub use crate::verdict::{
    AppliedRelease, DoomedPod, RolloutFailure, RolloutVerdict, VERSION_LABEL, Waiting,
    judge_rollout,
};
