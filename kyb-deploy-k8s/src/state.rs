//! The Kubernetes state backend: an environment's deployment records as Secrets and its lock
//! as a `coordination.k8s.io/v1` Lease, in one namespace, shared by every runner that
//! deploys the environment. The layout and the rules are core's
//! (`kyb_deploy_core::shared_state`); this module keeps its objects:
//!
//! - each object of the state is a Secret of type `kyb-deploy.io/state` holding the JSON
//!   gzip-compressed (as helm keeps its releases), its key in an annotation; records and
//!   lock events are immutable Secrets, written only by create;
//! - the lock is a Lease whose holder identity, acquire and renew times and duration say who
//!   holds it until when (as `kubectl get lease` shows them); the whole holder is kept in an
//!   annotation;
//! - a write on an object that exists is an update on its `resourceVersion`, so "409
//!   Conflict" means someone else wrote first; a delete carries the same precondition.
//!
//! Names sort as the keys do within a directory (records newest first), so a paged list
//! (`limit`, `continue`) reads the newest records first: API servers list a namespace's
//! objects in name order.

use std::io::{Read as _, Write as _};
use std::path::Path;
use std::sync::Arc;

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, ListParams, PostParams, Preconditions};
use kube::{Client, Resource};
use kyb_deploy_core::async_trait;
use kyb_deploy_core::config::{Config, Environment, StateBackendKind, StateConfig};
use kyb_deploy_core::shared_state::{
    Condition, Listed, LockHolder, Object, ObjectDeployLock, ObjectKind, ObjectRecordStore,
    ObjectStore, Page, PutAnswer, key_info, object_state,
};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;

use crate::client::Credentials;
use crate::error::Error;
use crate::manifests::{ENVIRONMENT_LABEL, MANAGED_BY_LABEL, label_value};
use crate::settings::KubernetesSettings;

/// The kind of state object: `record`, `known-good`, `lock`, `lock-event`.
pub const STATE_LABEL: &str = "kyb-deploy.io/state";
/// A hash of the object's directory (`<prefix>/<environment>/records`): what a listing
/// selects.
pub const DIRECTORY_LABEL: &str = "kyb-deploy.io/state-directory";
/// A hash of the prefix the environments' directories are under.
pub const ROOT_LABEL: &str = "kyb-deploy.io/state-root";
/// The object's key in the state's layout.
pub const KEY_ANNOTATION: &str = "kyb-deploy.io/state-key";
/// The lock holder, as the state's JSON, on the Lease.
pub const HOLDER_ANNOTATION: &str = "kyb-deploy.io/lock-holder";
/// The type of the Secrets holding state.
pub const SECRET_TYPE: &str = "kyb-deploy.io/state";
/// The data key of a state Secret: the object's JSON, gzip-compressed.
const BODY: &str = "body.json.gz";
/// The longest object name Kubernetes takes.
const MAX_NAME: usize = 253;

/// The record store and the lock of `environment`, as `config` says: in the namespace
/// `state.namespace`, else the Kubernetes target's; through the target's credentials when
/// it is one, else the standard places (`KUBECONFIG`, `~/.kube/config`, the pod's service
/// account) with `state.context`.
///
/// # Errors
///
/// When the backend is not `kubernetes`, no namespace is known, or no client can be made.
pub async fn kubernetes_state(
    environment: &Environment,
    config: &Config,
) -> kyb_deploy_core::Result<(ObjectRecordStore, ObjectDeployLock)> {
    let state = &environment.settings.state;
    let key = format!("environments.{}.state", environment.name);
    if state.backend != StateBackendKind::Kubernetes {
        return Err(kyb_deploy_core::Error::Config {
            message: format!(
                "{key}.backend: \"{}\" is not \"kubernetes\"",
                state.backend.as_str()
            ),
        });
    }
    let base = config.directory().unwrap_or(Path::new("."));
    let target = target_settings(environment)?;
    let namespace = namespace_of(environment, target.as_ref())?;
    let credentials = match target {
        Some(mut settings) => {
            if state.context.is_some() {
                settings.context.clone_from(&state.context);
            }
            Credentials::from_environment(&settings, base)
        }
        None => Credentials::standard(state.context.clone()),
    }
    .ok_or(Error::NoCredentials)?;
    let client = credentials.client().await?;
    Ok(kubernetes_state_with_client(client, &namespace, state))
}

/// The namespace holding `environment`'s state: `state.namespace`, else the Kubernetes
/// target's.
///
/// # Errors
///
/// When neither names one, or the target's settings cannot be read.
pub fn state_namespace(environment: &Environment) -> kyb_deploy_core::Result<String> {
    match &environment.settings.state.namespace {
        Some(namespace) => Ok(namespace.clone()),
        None => namespace_of(environment, target_settings(environment)?.as_ref()),
    }
}

/// The Kubernetes target's settings, when the environment deploys to Kubernetes.
fn target_settings(
    environment: &Environment,
) -> kyb_deploy_core::Result<Option<KubernetesSettings>> {
    (environment.settings.target.as_str() == "kubernetes")
        .then(|| KubernetesSettings::of(environment))
        .transpose()
}

/// [`state_namespace`], with the target's settings read already.
fn namespace_of(
    environment: &Environment,
    target: Option<&KubernetesSettings>,
) -> kyb_deploy_core::Result<String> {
    if let Some(namespace) = &environment.settings.state.namespace {
        return Ok(namespace.clone());
    }
    if let Some(settings) = target {
        return Ok(settings.namespace.clone());
    }
    Err(kyb_deploy_core::Error::Config {
        message: format!(
            "environments.{}.state.namespace: backend = \"kubernetes\" needs the namespace that holds the records and the lock; set namespace = \"NAME\"",
            environment.name
        ),
    })
}

/// The state's objects in `namespace` through `client`: Secrets, and a Lease for the lock
/// (for a program that builds its own store with
/// [`object_state`](kyb_deploy_core::shared_state::object_state), or seeds one).
#[must_use]
pub fn kubernetes_objects(client: Client, namespace: &str) -> Arc<dyn ObjectStore> {
    Arc::new(KubernetesObjects {
        client,
        namespace: namespace.to_owned(),
    })
}

/// The record store and the lock kept in `namespace` through `client` (a program that
/// builds its own client, or a test), under `state`'s prefix and lock time to live.
#[must_use]
pub fn kubernetes_state_with_client(
    client: Client,
    namespace: &str,
    state: &StateConfig,
) -> (ObjectRecordStore, ObjectDeployLock) {
    object_state(kubernetes_objects(client, namespace), state)
}

/// The state's objects in a namespace: Secrets, and a Lease for the lock.
#[derive(Clone)]
struct KubernetesObjects {
    client: Client,
    namespace: String,
}

impl std::fmt::Debug for KubernetesObjects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubernetesObjects")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

/// Ten hex digits of the SHA-256 of `text`: a label value naming a directory.
fn digest(text: &str) -> String {
    let hash = Sha256::digest(text.as_bytes());
    hash.iter().take(5).map(|b| format!("{b:02x}")).collect()
}

/// `key` split at its last `/`: the directory and the name in it.
fn split(key: &str) -> (&str, &str) {
    key.rsplit_once('/').unwrap_or(("", key))
}

/// The name of the object at `key`: `kyb-<directory hash>` then the name in the directory,
/// as it is when Kubernetes takes it (`-known-good.json`), else as its leading digits and the
/// hex of the rest (`.<digits>.<hex>`), which sorts as the key does; `.x.<hex>` when it has
/// no leading digits. Every form is a DNS subdomain; different keys get different names.
fn object_name(key: &str) -> Result<String, String> {
    let (directory, name) = split(key);
    let prefix = format!("kyb-{}", digest(directory));
    let verbatim = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && !name.contains("..")
        && !name.contains(".-")
        && !name.contains("-.");
    let object = if verbatim {
        format!("{prefix}-{name}")
    } else {
        let digits = name.len() - name.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let (leading, rest) = name.split_at(digits);
        let hex: String = rest.bytes().map(|b| format!("{b:02x}")).collect();
        match (leading, hex.as_str()) {
            ("", "") => return Err(format!("{key:?} has no name after its directory")),
            ("", hex) => format!("{prefix}.x.{hex}"),
            (digits, "") => format!("{prefix}.{digits}"),
            (digits, hex) => format!("{prefix}.{digits}.{hex}"),
        }
    };
    if object.len() > MAX_NAME {
        return Err(format!(
            "the key {key:?} makes an object name of {} characters, over Kubernetes' {MAX_NAME}; use a shorter state prefix or run id",
            object.len()
        ));
    }
    Ok(object)
}

/// The prefix the environment directories of `key` are under (`<prefix>/`).
fn root_of(key: &str, kind: ObjectKind) -> &str {
    let (directory, _) = split(key);
    let environment_directory = match kind {
        ObjectKind::Record | ObjectKind::LockEvent => split(directory).0,
        ObjectKind::Pointer | ObjectKind::Lock => directory,
    };
    split(environment_directory).0
}

/// The labels and annotations of the object at `key`.
fn metadata(key: &str, name: &str) -> Value {
    let (directory, _) = split(key);
    let mut labels = json!({
        MANAGED_BY_LABEL: "kyb-deploy",
        DIRECTORY_LABEL: digest(directory),
    });
    if let Some((environment, kind)) = key_info(key) {
        labels[STATE_LABEL] = json!(kind.as_str());
        labels[ENVIRONMENT_LABEL] = json!(label_value(&environment));
        labels[ROOT_LABEL] = json!(digest(root_of(key, kind)));
    }
    json!({
        "name": name,
        "labels": labels,
        "annotations": {KEY_ANNOTATION: key},
    })
}

fn gzip(body: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder
        .write_all(body)
        .and_then(|()| encoder.finish())
        .expect("compressing into memory does not fail")
}

/// The body of a state Secret; `None` when it holds none kyb-deploy wrote.
fn secret_body(secret: &Secret) -> Option<Vec<u8>> {
    let data = secret.data.as_ref()?.get(BODY)?;
    let mut body = Vec::new();
    GzDecoder::new(data.0.as_slice())
        .read_to_end(&mut body)
        .ok()?;
    Some(body)
}

/// The body of the lock's Lease: the holder kyb-deploy wrote, else the Lease's spec (which
/// the lock reads as "not a lock", and never takes over silently).
fn lease_body(lease: &Lease) -> Vec<u8> {
    lease
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(HOLDER_ANNOTATION))
        .map_or_else(
            || serde_json::to_vec(&lease.spec).unwrap_or_default(),
            |holder| holder.as_bytes().to_vec(),
        )
}

/// A Kubernetes `MicroTime`.
fn micro_time(at: OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    at.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_default()
}

/// The Lease for `body` (a [`LockHolder`]'s JSON; another body is kept as it is, with an
/// empty spec).
fn lease(key: &str, name: &str, body: &[u8], etag: Option<&str>) -> Result<Lease, String> {
    let text = std::str::from_utf8(body).map_err(|e| format!("the lock is not text: {e}"))?;
    let mut metadata = metadata(key, name);
    metadata["annotations"][HOLDER_ANNOTATION] = json!(text);
    if let Some(etag) = etag {
        metadata["resourceVersion"] = json!(etag);
    }
    let spec = match serde_json::from_str::<LockHolder>(text) {
        Ok(holder) => {
            let duration = (holder.expires_at - holder.renewed_at)
                .whole_seconds()
                .max(1);
            json!({
                "holderIdentity": format!("{}@{} pid {}", holder.actor, holder.host, holder.pid),
                "leaseDurationSeconds": duration,
                "acquireTime": micro_time(holder.acquired_at),
                "renewTime": micro_time(holder.renewed_at),
                "leaseTransitions": i32::from(holder.took_over_from.is_some()),
            })
        }
        Err(_) => json!({}),
    };
    serde_json::from_value(json!({"metadata": metadata, "spec": spec}))
        .map_err(|e| format!("the Lease cannot be made: {e}"))
}

/// The Secret for `body`, immutable for records and lock events (written once).
fn secret(key: &str, name: &str, body: &[u8], etag: Option<&str>) -> Result<Secret, String> {
    let mut metadata = metadata(key, name);
    if let Some(etag) = etag {
        metadata["resourceVersion"] = json!(etag);
    }
    let once = matches!(
        key_info(key),
        Some((_, ObjectKind::Record | ObjectKind::LockEvent))
    );
    use base64::Engine as _;
    let data = base64::engine::general_purpose::STANDARD.encode(gzip(body));
    serde_json::from_value(json!({
        "metadata": metadata,
        "type": SECRET_TYPE,
        "immutable": once,
        "data": {BODY: data},
    }))
    .map_err(|e| format!("the Secret cannot be made: {e}"))
}

fn etag_given(condition: Condition<'_>) -> bool {
    matches!(condition, Condition::Matches(_))
}

/// The HTTP status of the API server's answer, if it answered with one.
fn code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(status) if status.code != 0 => Some(status.code),
        _ => None,
    }
}

/// The kinds of object the state is kept in (Secrets, Leases): namespaced API objects the
/// client reads and writes whole.
trait StateObject:
    Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
    + Clone
    + DeserializeOwned
    + serde::Serialize
    + std::fmt::Debug
{
}

impl<K> StateObject for K where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug
{
}

impl KubernetesObjects {
    fn api<K: StateObject>(&self) -> Api<K> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Whether the object at `key` is the lock's Lease.
    fn is_lease(key: &str) -> bool {
        matches!(key_info(key), Some((_, ObjectKind::Lock)))
    }

    fn error(&self, message: String) -> kyb_deploy_core::Error {
        kyb_deploy_core::Error::Seam {
            seam: "Kubernetes state",
            message,
        }
    }

    /// The error of a failed `action` on `key`: the API server's answer, and the fix for
    /// the failures whose fix is known.
    fn failed(&self, action: &str, key: &str, e: kube::Error) -> kyb_deploy_core::Error {
        let what = self.url(key);
        if let kube::Error::Api(status) = &e
            && status.code == 404
            && status
                .details
                .as_ref()
                .is_some_and(|d| d.kind == "namespaces")
        {
            return self.error(format!(
                "failed to {action} {what}: the namespace {} does not exist; create it before the first run (the lock is taken before anything is deployed), e.g. `kubectl create namespace {}`",
                self.namespace, self.namespace
            ));
        }
        kyb_deploy_core::Error::from(Error::api(format!("{action} {what}"), e))
    }

    fn name(&self, key: &str) -> Result<String, kyb_deploy_core::Error> {
        object_name(key).map_err(|message| self.error(message))
    }

    async fn get_as<K: StateObject>(
        &self,
        name: &str,
        key: &str,
    ) -> kyb_deploy_core::Result<Option<K>> {
        self.api::<K>()
            .get_opt(name)
            .await
            .map_err(|e| self.failed("read", key, e))
    }

    /// One attempt of a write: create, or update on `resourceVersion`.
    async fn write<K: StateObject>(
        &self,
        key: &str,
        object: &K,
        condition: Condition<'_>,
    ) -> PutAnswer {
        let api = self.api::<K>();
        let params = PostParams::default();
        let answer = match condition {
            Condition::Absent => api.create(&params, object).await,
            Condition::Matches(_) => {
                let name = object.meta().name.clone().unwrap_or_default();
                api.replace(&name, &params, object).await
            }
        };
        match answer {
            Ok(written) => {
                PutAnswer::Done(written.meta().resource_version.clone().unwrap_or_default())
            }
            Err(e) => match code(&e) {
                // Exists already (create), or changed or gone since the version read
                // (update): the condition failed. A 404 on a create is a missing namespace.
                Some(409) => PutAnswer::ConditionFailed,
                Some(404) if etag_given(condition) => PutAnswer::ConditionFailed,
                Some(429) => PutAnswer::Busy(self.failed("write", key, e)),
                Some(400..=499) => PutAnswer::Rejected(self.failed("write", key, e)),
                _ => PutAnswer::Unanswered(self.failed("write", key, e)),
            },
        }
    }

    async fn delete<K: StateObject>(&self, key: &str, etag: &str) -> kyb_deploy_core::Result<bool> {
        let name = self.name(key)?;
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                resource_version: Some(etag.to_owned()),
                uid: None,
            }),
            ..DeleteParams::default()
        };
        match self.api::<K>().delete(&name, &params).await {
            Ok(_) => Ok(true),
            Err(e) if matches!(code(&e), Some(404 | 409)) => Ok(false),
            Err(e) => Err(self.failed("delete", key, e)),
        }
    }

    /// Every state Secret selected by `selector`, a page at a time.
    async fn secrets(&self, selector: &str) -> kyb_deploy_core::Result<Vec<Secret>> {
        let mut found = Vec::new();
        let mut continuation: Option<String> = None;
        loop {
            let mut params = ListParams::default().labels(selector).limit(500);
            if let Some(token) = continuation.take() {
                params = params.continue_token(&token);
            }
            let page = self
                .api::<Secret>()
                .list(&params)
                .await
                .map_err(|e| self.failed("list", selector, e))?;
            found.extend(page.items);
            match page.metadata.continue_ {
                Some(token) if !token.is_empty() => continuation = Some(token),
                _ => return Ok(found),
            }
        }
    }
}

/// The key a state object names in its annotation.
fn key_of<K: Resource>(object: &K) -> Option<&str> {
    object
        .meta()
        .annotations
        .as_ref()?
        .get(KEY_ANNOTATION)
        .map(String::as_str)
}

#[async_trait]
impl ObjectStore for KubernetesObjects {
    fn seam(&self) -> &'static str {
        "Kubernetes state"
    }

    /// `Secret namespace/name (key)`, or `Lease …` for the lock.
    fn url(&self, key: &str) -> String {
        let kind = if Self::is_lease(key) {
            "Lease"
        } else {
            "Secret"
        };
        let name = object_name(key).unwrap_or_else(|_| "?".to_owned());
        format!("{kind} {}/{name} ({key})", self.namespace)
    }

    async fn get(&self, key: &str) -> kyb_deploy_core::Result<Option<Object>> {
        let name = self.name(key)?;
        let (body, version) = if Self::is_lease(key) {
            let Some(lease) = self.get_as::<Lease>(&name, key).await? else {
                return Ok(None);
            };
            (lease_body(&lease), lease.metadata.resource_version)
        } else {
            let Some(secret) = self.get_as::<Secret>(&name, key).await? else {
                return Ok(None);
            };
            // A Secret that is not kyb-deploy's reads as an empty body: never equal to
            // what was written, never a record.
            (
                secret_body(&secret).unwrap_or_default(),
                secret.metadata.resource_version,
            )
        };
        Ok(Some(Object {
            body,
            etag: version.unwrap_or_default(),
        }))
    }

    async fn try_put(&self, key: &str, body: &[u8], condition: Condition<'_>) -> PutAnswer {
        let name = match self.name(key) {
            Ok(name) => name,
            Err(e) => return PutAnswer::Rejected(e),
        };
        let etag = match condition {
            Condition::Absent => None,
            Condition::Matches(etag) => Some(etag),
        };
        if Self::is_lease(key) {
            match lease(key, &name, body, etag) {
                Ok(lease) => self.write(key, &lease, condition).await,
                Err(message) => PutAnswer::Rejected(self.error(message)),
            }
        } else {
            match secret(key, &name, body, etag) {
                Ok(secret) => self.write(key, &secret, condition).await,
                Err(message) => PutAnswer::Rejected(self.error(message)),
            }
        }
    }

    async fn delete_if(&self, key: &str, etag: &str) -> kyb_deploy_core::Result<bool> {
        if Self::is_lease(key) {
            self.delete::<Lease>(key, etag).await
        } else {
            self.delete::<Secret>(key, etag).await
        }
    }

    /// Secrets labelled with the directory's hash, in name order (which is key order),
    /// each with its body: a list carries the objects.
    async fn list(
        &self,
        prefix: &str,
        continuation: Option<String>,
        max: usize,
    ) -> kyb_deploy_core::Result<Page> {
        let directory = prefix.strip_suffix('/').unwrap_or(prefix);
        let selector = format!(
            "{MANAGED_BY_LABEL}=kyb-deploy,{DIRECTORY_LABEL}={}",
            digest(directory)
        );
        let mut params = ListParams::default()
            .labels(&selector)
            .limit(u32::try_from(max).unwrap_or(u32::MAX));
        if let Some(token) = &continuation {
            params = params.continue_token(token);
        }
        let page = self
            .api::<Secret>()
            .list(&params)
            .await
            .map_err(|e| self.failed("list", prefix, e))?;
        let mut objects: Vec<Listed> = page
            .items
            .iter()
            .filter_map(|secret| {
                let key = key_of(secret)?.to_owned();
                // A hash shared by two directories: only this one's keys.
                if !key.starts_with(prefix)
                    || object_name(&key).ok()? != secret.metadata.name.clone()?
                {
                    return None;
                }
                Some(Listed {
                    object: Some(Object {
                        body: secret_body(secret).unwrap_or_default(),
                        etag: secret.metadata.resource_version.clone().unwrap_or_default(),
                    }),
                    key,
                })
            })
            .collect();
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        let next = page.metadata.continue_.filter(|token| !token.is_empty());
        Ok(Page { objects, next })
    }

    /// The environments' directories under `prefix`, from their known-good pointers and
    /// their locks (an environment with a record has a pointer).
    async fn directories(&self, prefix: &str) -> kyb_deploy_core::Result<Vec<String>> {
        let root = digest(prefix.strip_suffix('/').unwrap_or(prefix));
        let selector = format!("{MANAGED_BY_LABEL}=kyb-deploy,{ROOT_LABEL}={root}");
        let pointers = self
            .secrets(&format!(
                "{selector},{STATE_LABEL}={}",
                ObjectKind::Pointer.as_str()
            ))
            .await?;
        let leases = self
            .api::<Lease>()
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| self.failed("list", prefix, e))?;
        let mut found: Vec<String> = pointers
            .iter()
            .filter_map(key_of)
            .chain(leases.items.iter().filter_map(key_of))
            .filter_map(|key| {
                let rest = key.strip_prefix(prefix)?;
                let (environment, _) = rest.split_once('/')?;
                Some(format!("{prefix}{environment}/"))
            })
            .collect();
        found.sort();
        found.dedup();
        Ok(found)
    }
}

#[cfg(test)]
mod tests;
