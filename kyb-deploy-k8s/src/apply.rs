//! Server-side apply of manifests with kyb-deploy's field manager: one object at a time, as
//! a real write or a dry run (`dryRun=All`: admitted, defaulted and merged by the API
//! server, nothing stored).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::{Client, Resource as _};
use serde_json::Value;

use crate::error::Error;
use crate::manifests::Manifest;

/// The field manager of every write kyb-deploy makes.
pub const FIELD_MANAGER: &str = "kyb-deploy";

/// How an apply is made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ApplyMode {
    /// Nothing is stored; the answer is what would be.
    pub dry_run: bool,
    /// Take over fields another field manager owns instead of failing.
    pub force: bool,
}

/// Where `apiVersion` and `kind` are served (plural, scope), for the kinds kyb-deploy
/// renders; `None` for any other.
fn api_resource(api_version: &str, kind: &str) -> Option<(ApiResource, bool)> {
    kind_resource(kind).filter(|(resource, _)| resource.api_version == api_version)
}

/// The namespaced kinds kyb-deploy applies, which pruning looks through (never the
/// Namespace: deleting it would take everything in it along).
const PRUNABLE: [&str; 11] = [
    "Ingress",
    "NetworkPolicy",
    "PodDisruptionBudget",
    "HorizontalPodAutoscaler",
    "Deployment",
    "Service",
    "Secret",
    "ConfigMap",
    "RoleBinding",
    "Role",
    "ServiceAccount",
];

/// Whether kyb-deploy applies objects of `kind` in `api_version`.
pub(crate) fn is_applied_kind(api_version: &str, kind: &str) -> bool {
    api_resource(api_version, kind).is_some()
}

/// The kinds kyb-deploy applies, as `Kind (apiVersion)`, comma-separated, for messages.
pub(crate) fn applied_kinds() -> String {
    std::iter::once("Namespace")
        .chain(PRUNABLE.iter().rev().copied())
        .filter_map(|kind| {
            kind_resource(kind).map(|(resource, _)| format!("{kind} ({})", resource.api_version))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether `entry` of an object's managed fields is a server-side apply by kyb-deploy.
pub(crate) fn applied_by_kyb_deploy(entry: &ManagedFieldsEntry) -> bool {
    entry.manager.as_deref() == Some(FIELD_MANAGER) && entry.operation.as_deref() == Some("Apply")
}

/// Where `kind` is served (plural, scope), for the kinds kyb-deploy renders.
fn kind_resource(kind: &str) -> Option<(ApiResource, bool)> {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
    use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service, ServiceAccount};
    use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
    use k8s_openapi::api::policy::v1::PodDisruptionBudget;
    use k8s_openapi::api::rbac::v1::{Role, RoleBinding};

    fn of<K: kube::Resource<DynamicType = ()>>(namespaced: bool) -> (ApiResource, bool) {
        (ApiResource::erase::<K>(&()), namespaced)
    }
    let found = match kind {
        "Namespace" => of::<Namespace>(false),
        "ServiceAccount" => of::<ServiceAccount>(true),
        "Role" => of::<Role>(true),
        "RoleBinding" => of::<RoleBinding>(true),
        "ConfigMap" => of::<ConfigMap>(true),
        "Secret" => of::<Secret>(true),
        "Service" => of::<Service>(true),
        "Deployment" => of::<Deployment>(true),
        "HorizontalPodAutoscaler" => of::<HorizontalPodAutoscaler>(true),
        "PodDisruptionBudget" => of::<PodDisruptionBudget>(true),
        "NetworkPolicy" => of::<NetworkPolicy>(true),
        "Ingress" => of::<Ingress>(true),
        _ => return None,
    };
    Some(found)
}

/// `Kind namespace/name` (or `Kind name`), for messages.
pub(crate) fn describe(object: &Value) -> String {
    let meta = &object["metadata"];
    let kind = object["kind"].as_str().unwrap_or("object");
    let name = meta["name"].as_str().unwrap_or_default();
    match meta["namespace"].as_str() {
        Some(namespace) => format!("{kind} {namespace}/{name}"),
        None => format!("{kind} {name}"),
    }
}

/// Applies `manifest` and returns the object as the API server answered (what it stores,
/// or would store in a dry run).
///
/// # Errors
///
/// [`Error::Conflict`] when another field manager owns a field the manifest changes (and
/// `mode.force` is off), [`Error::UnknownKind`] for a kind kyb-deploy does not apply, and
/// [`Error::Api`] for any other failure.
pub(crate) async fn apply(
    client: &Client,
    manifest: &Manifest,
    mode: ApplyMode,
) -> Result<Value, Error> {
    let (api, resource) = api_for(client, manifest)?;
    let object = &manifest.object;
    let what = describe(object);
    let mut params = PatchParams::apply(FIELD_MANAGER);
    if mode.force {
        params = params.force();
    }
    if mode.dry_run {
        params = params.dry_run();
    }
    // An apply is idempotent (the same desired state, whatever got through before), so a
    // failure that may pass is retried: a lost answer, a server error, throttling, or a
    // write that raced another (409 without field-manager conflicts).
    let mut attempt = 1;
    loop {
        match api
            .patch(manifest.name(), &params, &Patch::Apply(object))
            .await
        {
            Ok(applied) => return Ok(typed_value(&applied, &resource)),
            Err(kube::Error::Api(status)) if is_field_conflict(&status) => {
                return Err(Error::Conflict {
                    object: what,
                    message: status.message.clone(),
                });
            }
            Err(source) if attempt < APPLY_ATTEMPTS && is_transient(&source) => {
                tokio::time::sleep(APPLY_BACKOFF * 2_u32.pow(attempt - 1)).await;
                attempt += 1;
            }
            Err(source) => return Err(Error::api(format!("apply {what}"), source)),
        }
    }
}

/// How many times an apply is tried when it fails in a way that may pass.
const APPLY_ATTEMPTS: u32 = 4;
/// The wait before the first retry; it doubles each time.
const APPLY_BACKOFF: std::time::Duration = std::time::Duration::from_millis(100);

/// Whether a 409 is server-side apply's conflict with other field managers (which a retry
/// cannot cure), as opposed to a write that raced another one.
fn is_field_conflict(status: &kube::core::Status) -> bool {
    status.code == 409
        && status.reason == "Conflict"
        && status.message.starts_with("Apply failed with")
}

/// Whether a failed apply may pass when tried again.
fn is_transient(error: &kube::Error) -> bool {
    match error {
        // Code 0: an error body that was JSON but not a Kubernetes `Status` (a proxy's), which
        // hides the HTTP status; it may be a server error.
        kube::Error::Api(status) => {
            status.code == 0 || status.code == 409 || status.code == 429 || status.code >= 500
        }
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

/// The API of `manifest`'s kind, in its namespace when the kind is namespaced.
fn api_for(
    client: &Client,
    manifest: &Manifest,
) -> Result<(Api<DynamicObject>, ApiResource), Error> {
    let object = &manifest.object;
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let Some((resource, namespaced)) = api_resource(api_version, manifest.kind()) else {
        return Err(Error::UnknownKind {
            object: describe(object),
            api_version: api_version.to_owned(),
        });
    };
    let api = match object["metadata"]["namespace"].as_str() {
        Some(namespace) if namespaced => Api::namespaced_with(client.clone(), namespace, &resource),
        _ => Api::all_with(client.clone(), &resource),
    };
    Ok((api, resource))
}

/// The object `manifest` names as the cluster holds it now, if it exists.
pub(crate) async fn live(client: &Client, manifest: &Manifest) -> Result<Option<Value>, Error> {
    let (api, resource) = api_for(client, manifest)?;
    let found = api
        .get_opt(manifest.name())
        .await
        .map_err(|source| Error::api(format!("read {}", describe(&manifest.object)), source))?;
    Ok(found.map(|object| typed_value(&object, &resource)))
}

/// A dynamic object as JSON, with its resource's type (a dynamic object keeps what the
/// server sent; the type is the manifest's).
fn typed_value(object: &DynamicObject, resource: &ApiResource) -> Value {
    let mut value = serde_json::to_value(object).unwrap_or(Value::Null);
    value["apiVersion"] = Value::String(DynamicObject::api_version(resource).into_owned());
    value["kind"] = Value::String(resource.kind.clone());
    value
}

/// Applies `manifests` one after the other, in their order (each may need the ones
/// before: the Namespace first), and returns each object as the API server answered.
///
/// # Errors
///
/// The first failure: [`Error::Conflict`] when another field manager owns a field a
/// manifest changes (and `mode.force` is off), [`Error::UnknownKind`] for a kind kyb-deploy
/// does not apply, [`Error::Api`] for any other; the objects before it are applied.
pub async fn apply_all(
    client: &Client,
    manifests: &[Manifest],
    mode: ApplyMode,
) -> Result<Vec<Value>, Error> {
    let mut applied = Vec::with_capacity(manifests.len());
    for manifest in manifests {
        applied.push(apply(client, manifest, mode).await?);
    }
    Ok(applied)
}

/// Deletes the objects in `namespace` that `selector` marks as applied by kyb-deploy for
/// this service and environment, that kyb-deploy's field manager did apply, and that `keep`
/// (the manifests just applied) no longer has, newest kinds first (the Ingress before the Service it routes to). Returns them as
/// `Kind namespace/name`; with `dry_run`, nothing is deleted.
///
/// # Errors
///
/// The first list or delete that fails.
pub(crate) async fn prune(
    client: &Client,
    namespace: &str,
    selector: &str,
    keep: &[Manifest],
    dry_run: bool,
) -> Result<Vec<String>, Error> {
    let mut pruned = Vec::new();
    for kind in PRUNABLE {
        let Some((resource, _)) = kind_resource(kind) else {
            continue;
        };
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
        let listed = api
            .list(&ListParams::default().labels(selector))
            .await
            .map_err(|e| {
                Error::api(
                    format!("list the {kind} objects to prune in {namespace}"),
                    e,
                )
            })?;
        for object in listed.items {
            let Some(name) = object.metadata.name.as_deref() else {
                continue;
            };
            let kept = keep.iter().any(|m| m.kind() == kind && m.name() == name);
            // The labels say whose it is; the field manager says kyb-deploy applied it (labels
            // can be copied onto anything).
            let ours = object
                .metadata
                .managed_fields
                .iter()
                .flatten()
                .any(applied_by_kyb_deploy);
            if kept || !ours {
                continue;
            }
            let what = format!("{kind} {namespace}/{name}");
            let params = DeleteParams {
                dry_run,
                ..DeleteParams::background()
            };
            match api.delete(name, &params).await {
                Ok(_) => pruned.push(what),
                // Gone meanwhile: what pruning wanted.
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(e) => return Err(Error::api(format!("prune {what}"), e)),
            }
        }
    }
    Ok(pruned)
}
