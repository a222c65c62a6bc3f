//! How the lists and maps of the built-in kinds merge, looked up by field path.
//!
//! The real API server reads this from the Go struct tags (`patchStrategy`, `patchMergeKey`)
//! and the OpenAPI extensions (`x-kubernetes-list-type`, `-list-map-keys`, `-map-type`). The
//! simulator serves a handful of kinds whose paths do not collide, so the path alone decides:
//! `spec.ports` is a Service's port list, `spec.template.spec.containers[].ports` a
//! container's, whatever the kind. A list not in the table is atomic (replaced as a whole),
//! as it is for the real server.

use serde_json::Value;

/// How a list field merges in strategic merge patch and server-side apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ListKind {
    /// Replaced as a whole; a leaf for field ownership.
    Atomic,
    /// Scalars merged as a set (`metadata.finalizers`); each value is owned separately.
    Set,
    /// Objects merged by key.
    Map {
        /// The `patchMergeKey` strategic merge patch matches items by.
        patch_key: &'static str,
        /// The `x-kubernetes-list-map-keys` that identify an item for server-side apply.
        apply_keys: &'static [&'static str],
    },
}

const fn by(key: &'static str, apply_keys: &'static [&'static str]) -> ListKind {
    ListKind::Map {
        patch_key: key,
        apply_keys,
    }
}

const NAME: ListKind = by("name", &["name"]);
const CONTAINER_PORTS: ListKind = by("containerPort", &["containerPort", "protocol"]);
const SERVICE_PORTS: ListKind = by("port", &["port", "protocol"]);
const TYPE: ListKind = by("type", &["type"]);
const IP: ListKind = by("ip", &["ip"]);

/// The fields of a pod spec that hold containers.
const CONTAINER_LISTS: [&str; 3] = ["containers", "initContainers", "ephemeralContainers"];

/// Where a pod spec sits in the kinds that embed one, longest first so that a Deployment's
/// `spec.template.spec` is not mistaken for a Pod's `spec`.
const POD_SPEC_PREFIXES: [&[&str]; 4] = [
    &["spec", "jobTemplate", "spec", "template", "spec"],
    &["spec", "template", "spec"],
    &["template", "spec"],
    &["spec"],
];

/// How the list at `path` (field names from the object root, list positions left out)
/// merges.
pub(crate) fn list_kind(path: &[String]) -> ListKind {
    let names: Vec<&str> = path.iter().map(String::as_str).collect();
    let in_pod_spec = POD_SPEC_PREFIXES.iter().find_map(|prefix| {
        names
            .starts_with(prefix)
            .then(|| pod_spec_list(&names[prefix.len()..]))
            .flatten()
    });
    if let Some(kind) = in_pod_spec {
        return kind;
    }
    match names.as_slice() {
        [.., "metadata", "finalizers"] => ListKind::Set,
        [.., "metadata", "ownerReferences"] => by("uid", &["uid"]),
        ["spec", "ports"] => SERVICE_PORTS,
        [.., "status", "conditions"] => TYPE,
        ["status", "podIPs" | "hostIPs"] => IP,
        ["status", "addresses"] => TYPE,
        _ => ListKind::Atomic,
    }
}

/// The lists of a pod spec, by their path relative to it.
///
/// Tolerations are atomic, as in the real API (`+listType=atomic`, no `patchMergeKey`): a
/// toleration need not have a `key` at all.
fn pod_spec_list(rest: &[&str]) -> Option<ListKind> {
    let kind = match rest {
        [list] if CONTAINER_LISTS.contains(list) => NAME,
        ["volumes" | "imagePullSecrets" | "resourceClaims" | "schedulingGates"] => NAME,
        ["hostAliases"] => IP,
        ["topologySpreadConstraints"] => by("topologyKey", &["topologyKey", "whenUnsatisfiable"]),
        [list, field] if CONTAINER_LISTS.contains(list) => match *field {
            "ports" => CONTAINER_PORTS,
            "env" => NAME,
            "volumeMounts" => by("mountPath", &["mountPath"]),
            "volumeDevices" => by("devicePath", &["devicePath"]),
            _ => return None,
        },
        [list, "resources", "claims"] if CONTAINER_LISTS.contains(list) => NAME,
        _ => return None,
    };
    Some(kind)
}

/// Whether the map at `path` is atomic for server-side apply (`+structType=atomic` label
/// selectors, `+mapType=atomic` node and Service selectors): owned and replaced as a whole.
pub(crate) fn is_atomic_map(path: &[String]) -> bool {
    matches!(
        path.last().map(String::as_str),
        Some("selector" | "nodeSelector" | "labelSelector" | "namespaceSelector")
    )
}

/// The default of a list-map key an item may leave out: ports are TCP unless they say so.
pub(crate) fn key_default(key: &str) -> Option<Value> {
    (key == "protocol").then(|| Value::from("TCP"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(path: &str) -> ListKind {
        let path: Vec<String> = path.split('.').map(str::to_owned).collect();
        list_kind(&path)
    }

    fn patch_key(path: &str) -> Option<&'static str> {
        match kind(path) {
            ListKind::Map { patch_key, .. } => Some(patch_key),
            _ => None,
        }
    }

    #[test]
    fn the_path_decides_between_container_and_service_ports() {
        assert_eq!(patch_key("spec.ports"), Some("port"));
        assert_eq!(patch_key("spec.containers.ports"), Some("containerPort"));
        assert_eq!(
            patch_key("spec.template.spec.containers.ports"),
            Some("containerPort")
        );
        assert_eq!(
            kind("spec.template.spec.initContainers.ports"),
            CONTAINER_PORTS
        );
    }

    #[test]
    fn pod_templates_of_every_workload_kind_share_the_table() {
        for prefix in [
            "spec",
            "spec.template.spec",
            "spec.jobTemplate.spec.template.spec",
            "template.spec",
        ] {
            assert_eq!(
                patch_key(&format!("{prefix}.containers")),
                Some("name"),
                "{prefix}"
            );
            assert_eq!(patch_key(&format!("{prefix}.containers.env")), Some("name"));
            assert_eq!(
                patch_key(&format!("{prefix}.containers.volumeMounts")),
                Some("mountPath")
            );
            assert_eq!(patch_key(&format!("{prefix}.volumes")), Some("name"));
            assert_eq!(patch_key(&format!("{prefix}.hostAliases")), Some("ip"));
            assert_eq!(
                kind(&format!("{prefix}.containers.envFrom")),
                ListKind::Atomic
            );
            assert_eq!(kind(&format!("{prefix}.containers.args")), ListKind::Atomic);
            assert_eq!(kind(&format!("{prefix}.tolerations")), ListKind::Atomic);
        }
    }

    #[test]
    fn metadata_and_status_lists() {
        assert_eq!(kind("metadata.finalizers"), ListKind::Set);
        assert_eq!(kind("spec.template.metadata.finalizers"), ListKind::Set);
        assert_eq!(patch_key("metadata.ownerReferences"), Some("uid"));
        assert_eq!(patch_key("status.conditions"), Some("type"));
        assert_eq!(kind("spec.rules"), ListKind::Atomic);
        assert_eq!(kind("spec.metrics"), ListKind::Atomic);
        assert_eq!(kind("status.loadBalancer.ingress"), ListKind::Atomic);
    }

    #[test]
    fn selectors_are_atomic_maps_for_apply() {
        let path = |p: &str| p.split('.').map(str::to_owned).collect::<Vec<_>>();
        assert!(is_atomic_map(&path("spec.selector")));
        assert!(is_atomic_map(&path("spec.template.spec.nodeSelector")));
        assert!(!is_atomic_map(&path("metadata.labels")));
        assert_eq!(key_default("protocol"), Some(Value::from("TCP")));
        assert_eq!(key_default("name"), None);
    }
}
