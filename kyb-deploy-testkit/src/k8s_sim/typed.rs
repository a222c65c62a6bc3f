//! The typed schema of each kind the simulator validates and documents: k8s-openapi's types
//! stand in for the API server's Go structs, both to decode writes as the server does and
//! to serve the OpenAPI schemas `kubectl explain` reads.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{
    ConfigMap, Endpoints, Event, LimitRange, Namespace, Node, PersistentVolumeClaim, Pod,
    ResourceQuota, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Something to do with a kind's typed schema.
pub(crate) trait WithType {
    type Output;

    fn with<T: DeserializeOwned + Serialize + JsonSchema>(self) -> Self::Output;
}

/// Does `action` with the typed schema of `kind`; `None` for a kind without one here.
pub(crate) fn with_type<A: WithType>(kind: &str, action: A) -> Option<A::Output> {
    Some(match kind {
        "Namespace" => action.with::<Namespace>(),
        "Pod" => action.with::<Pod>(),
        "Service" => action.with::<Service>(),
        "ConfigMap" => action.with::<ConfigMap>(),
        "Secret" => action.with::<Secret>(),
        "ServiceAccount" => action.with::<ServiceAccount>(),
        "Event" => action.with::<Event>(),
        "Deployment" => action.with::<Deployment>(),
        "ReplicaSet" => action.with::<ReplicaSet>(),
        "Ingress" => action.with::<Ingress>(),
        "NetworkPolicy" => action.with::<NetworkPolicy>(),
        "HorizontalPodAutoscaler" => action.with::<HorizontalPodAutoscaler>(),
        "Role" => action.with::<Role>(),
        "RoleBinding" => action.with::<RoleBinding>(),
        "Lease" => action.with::<Lease>(),
        "PodDisruptionBudget" => action.with::<PodDisruptionBudget>(),
        "Job" => action.with::<Job>(),
        "CronJob" => action.with::<CronJob>(),
        "StatefulSet" => action.with::<StatefulSet>(),
        "DaemonSet" => action.with::<DaemonSet>(),
        "ClusterRole" => action.with::<ClusterRole>(),
        "ClusterRoleBinding" => action.with::<ClusterRoleBinding>(),
        "Endpoints" => action.with::<Endpoints>(),
        "EndpointSlice" => action.with::<EndpointSlice>(),
        "PersistentVolumeClaim" => action.with::<PersistentVolumeClaim>(),
        "LimitRange" => action.with::<LimitRange>(),
        "ResourceQuota" => action.with::<ResourceQuota>(),
        "Node" => action.with::<Node>(),
        _ => return None,
    })
}
