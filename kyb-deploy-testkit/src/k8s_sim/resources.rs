//! The resource types the simulator serves, as discovery describes them.

/// One resource type: where it lives in the API and what it supports.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ResourceType {
    /// API group; empty for the core group.
    pub(crate) group: &'static str,
    /// API version within the group.
    pub(crate) version: &'static str,
    /// The kind of its objects.
    pub(crate) kind: &'static str,
    /// The plural name used in paths (`deployments`).
    pub(crate) plural: &'static str,
    /// The singular name (`deployment`).
    pub(crate) singular: &'static str,
    /// Whether objects live in namespaces.
    pub(crate) namespaced: bool,
    /// Short names kubectl accepts (`deploy`).
    pub(crate) short_names: &'static [&'static str],
    /// Whether the type has a `status` subresource (writes to the main resource then leave
    /// `.status` alone, and `/status` writes change only `.status`).
    pub(crate) status: bool,
    /// Whether the type has a `scale` subresource.
    pub(crate) scale: bool,
    /// Whether `metadata.generation` counts changes of the object's desired state.
    pub(crate) generation: bool,
}

impl ResourceType {
    /// `apps/v1`, or `v1` for the core group.
    pub(crate) fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_owned()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `deployments.apps`, or `pods` for the core group: the name error messages use.
    pub(crate) fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_owned()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// The path prefix of the type's group version (`/apis/apps/v1`, `/api/v1`).
    pub(crate) fn group_version_path(&self) -> String {
        if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        }
    }
}

const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// The verbs of every resource type.
pub(crate) fn verbs() -> &'static [&'static str] {
    VERBS
}

macro_rules! resource {
    ($group:expr, $version:expr, $kind:expr, $plural:expr, $singular:expr, $namespaced:expr,
     [$($short:expr),*], status: $status:expr, scale: $scale:expr, generation: $generation:expr) => {
        ResourceType {
            group: $group,
            version: $version,
            kind: $kind,
            plural: $plural,
            singular: $singular,
            namespaced: $namespaced,
            short_names: &[$($short),*],
            status: $status,
            scale: $scale,
            generation: $generation,
        }
    };
}

/// Every resource type served.
pub(crate) static RESOURCES: &[ResourceType] = &[
    resource!("", "v1", "Namespace", "namespaces", "namespace", false, ["ns"], status: true, scale: false, generation: false),
    resource!("", "v1", "Pod", "pods", "pod", true, ["po"], status: true, scale: false, generation: false),
    resource!("", "v1", "Service", "services", "service", true, ["svc"], status: true, scale: false, generation: false),
    resource!("", "v1", "ConfigMap", "configmaps", "configmap", true, ["cm"], status: false, scale: false, generation: false),
    resource!("", "v1", "Secret", "secrets", "secret", true, [], status: false, scale: false, generation: false),
    resource!("", "v1", "ServiceAccount", "serviceaccounts", "serviceaccount", true, ["sa"], status: false, scale: false, generation: false),
    resource!("", "v1", "Event", "events", "event", true, ["ev"], status: false, scale: false, generation: false),
    resource!("apps", "v1", "Deployment", "deployments", "deployment", true, ["deploy"], status: true, scale: true, generation: true),
    resource!("apps", "v1", "ReplicaSet", "replicasets", "replicaset", true, ["rs"], status: true, scale: true, generation: true),
    resource!("networking.k8s.io", "v1", "Ingress", "ingresses", "ingress", true, ["ing"], status: true, scale: false, generation: true),
    resource!("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", "networkpolicy", true, ["netpol"], status: false, scale: false, generation: true),
    resource!("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", "horizontalpodautoscaler", true, ["hpa"], status: true, scale: false, generation: true),
    resource!("rbac.authorization.k8s.io", "v1", "Role", "roles", "role", true, [], status: false, scale: false, generation: false),
    resource!("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", "rolebinding", true, [], status: false, scale: false, generation: false),
    resource!("coordination.k8s.io", "v1", "Lease", "leases", "lease", true, [], status: false, scale: false, generation: false),
    resource!("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", "poddisruptionbudget", true, ["pdb"], status: true, scale: false, generation: true),
    resource!("batch", "v1", "Job", "jobs", "job", true, [], status: true, scale: false, generation: true),
    resource!("batch", "v1", "CronJob", "cronjobs", "cronjob", true, ["cj"], status: true, scale: false, generation: true),
    resource!("apps", "v1", "StatefulSet", "statefulsets", "statefulset", true, ["sts"], status: true, scale: true, generation: true),
    resource!("apps", "v1", "DaemonSet", "daemonsets", "daemonset", true, ["ds"], status: true, scale: false, generation: true),
    resource!("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", "clusterrole", false, [], status: false, scale: false, generation: false),
    resource!("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", "clusterrolebinding", false, [], status: false, scale: false, generation: false),
    resource!("", "v1", "Endpoints", "endpoints", "endpoints", true, ["ep"], status: false, scale: false, generation: false),
    resource!("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", "endpointslice", true, [], status: false, scale: false, generation: false),
    resource!("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", "persistentvolumeclaim", true, ["pvc"], status: true, scale: false, generation: false),
    resource!("", "v1", "LimitRange", "limitranges", "limitrange", true, ["limits"], status: false, scale: false, generation: false),
    resource!("", "v1", "ResourceQuota", "resourcequotas", "resourcequota", true, ["quota"], status: true, scale: false, generation: false),
    resource!("", "v1", "Node", "nodes", "node", false, ["no"], status: true, scale: false, generation: false),
];

/// The discovery categories of a kind: `all` for those `kubectl get all` shows.
pub(crate) fn categories(kind: &str) -> &'static [&'static str] {
    match kind {
        "Pod"
        | "Service"
        | "Deployment"
        | "ReplicaSet"
        | "StatefulSet"
        | "DaemonSet"
        | "Job"
        | "CronJob"
        | "HorizontalPodAutoscaler" => &["all"],
        _ => &[],
    }
}

/// The type served at `group`/`version`/`plural`.
pub(crate) fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceType> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// Well-known types, by kind.
pub(crate) fn kind(kind: &str) -> &'static ResourceType {
    RESOURCES
        .iter()
        .find(|r| r.kind == kind)
        .unwrap_or_else(|| panic!("{kind} is a served kind"))
}

/// The API groups served, in discovery order, each with its one version.
pub(crate) fn groups() -> Vec<(&'static str, &'static str)> {
    let mut groups: Vec<(&str, &str)> = Vec::new();
    for r in RESOURCES.iter().filter(|r| !r.group.is_empty()) {
        if !groups.contains(&(r.group, r.version)) {
            groups.push((r.group, r.version));
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths() {
        let deployments = find("apps", "v1", "deployments").unwrap();
        assert_eq!(deployments.qualified(), "deployments.apps");
        assert_eq!(deployments.group_version_path(), "/apis/apps/v1");
        assert_eq!(kind("Pod").qualified(), "pods");
        assert_eq!(groups().len(), 8);
    }
}
