//! [`KubernetesTarget`]: a Deployment and the objects around it as a kyb-deploy [`Target`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{Event, Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{ListParams, PostParams};
use kube::{Api, Client};
use kyb_deploy_core::config::{Config, Environment};
use kyb_deploy_core::{
    CancellationToken, Check, DeployHandle, Plan, PlannedChange, Release, Result, Revision,
    RolloutOutcome, Serving, StageProgress, Target, TargetDescription, async_trait,
};
use time::OffsetDateTime;
use url::Url;

use crate::apply::{ApplyMode, apply, describe, live, prune};
use crate::client::Credentials;
use crate::error::Error;
use crate::manifests::{
    CONFIG_ANNOTATION, ENVIRONMENT_LABEL, MANAGED_BY_LABEL, Manifest, ManifestInput, NAME_LABEL,
    SecretValues, built_in, label_value,
};
use crate::own_manifests::{fill_in, read_manifests};
use crate::plan::object_changes;
use crate::recorded::record_name;
use crate::rollout::{RolloutEnd, RolloutScope, follow_rollout};
use crate::settings::KubernetesSettings;
use crate::verdict::{AppliedRelease, RolloutFailure, VERSION_LABEL, revision};

mod lookup;
mod notes;
mod release_manifests;
mod roll_out;

use self::lookup::{failure_reason, handle, release_of_deployment, release_of_replica_set};

/// The field manager that keeps a Deployment's replica count while its ownership passes
/// from kyb-deploy's manifests to an autoscaler (Kubernetes' documented handover).
const REPLICAS_HANDOVER: &str = "kyb-deploy-handover-to-autoscaler";

/// How many of a stuck pod's events a failure quotes.
const RECENT_EVENTS: usize = 3;

/// What a [`KubernetesTarget`] deploys: the environment's name, settings and plain
/// variables, and where the files its settings name are.
#[derive(Clone, Debug)]
pub struct KubernetesTargetSpec {
    /// The environment's name (the label pruning and records use).
    pub environment: String,
    /// Its Kubernetes settings.
    pub settings: KubernetesSettings,
    /// Its plain environment variables (the ConfigMap).
    pub env: BTreeMap<String, String>,
    /// The configuration file's directory: secret files are relative to it.
    pub base: PathBuf,
}

impl KubernetesTargetSpec {
    /// The spec of `environment`, with files relative to `base`.
    ///
    /// # Errors
    ///
    /// Settings that do not parse, or that [`KubernetesSettings::problems`] refuses.
    pub fn from_environment(environment: &Environment, base: &Path) -> Result<Self> {
        let settings = KubernetesSettings::of(environment)?;
        let problems = settings.problems(&environment.name, Some(base));
        if !problems.is_empty() {
            return Err(kyb_deploy_core::Error::Config {
                message: problems.into_vec().join("; "),
            });
        }
        Ok(Self {
            environment: environment.name.clone(),
            settings,
            env: environment.settings.env.clone(),
            base: base.to_path_buf(),
        })
    }

    /// The manifests of `release`, with the secret values given (or redacted): the
    /// user's own ([`KubernetesSettings::manifests`]) filled in, else the built-in ones.
    ///
    /// # Errors
    ///
    /// A configuration error naming the file, line and column when the user's manifests
    /// cannot be read or used.
    pub fn manifests(&self, release: &Release, secrets: &SecretValues) -> Result<Vec<Manifest>> {
        let input = ManifestInput {
            environment: &self.environment,
            settings: &self.settings,
            release,
            env: &self.env,
        };
        let Some(path) = &self.settings.manifests else {
            return Ok(built_in(&input, secrets));
        };
        let path = self.base.join(path);
        read_manifests(&path)
            .and_then(|written| fill_in(&path, written, &input, secrets))
            .map_err(|e| kyb_deploy_core::Error::Config {
                message: format!(
                    "environments.{}.kubernetes.manifests: {}",
                    self.environment,
                    kyb_deploy_core::Error::chain_of(&e)
                ),
            })
    }
}

/// A Deployment (with its Service, ConfigMap, RBAC and the optional Ingress, autoscaler,
/// disruption budget and network policy) as a deployment target.
///
/// A deployment server-side applies the built-in manifests of the release with field
/// manager `kyb-deploy`; the rollout is followed by watches until the Deployment's new
/// ReplicaSet, carrying the release's version, is fully rolled out, and fails fast on pods
/// that cannot start. A rollback applies the manifests of the release it goes back to.
pub struct KubernetesTarget {
    client: Client,
    spec: KubernetesTargetSpec,
}

impl std::fmt::Debug for KubernetesTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubernetesTarget")
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

impl KubernetesTarget {
    /// A target calling the cluster through `client`.
    pub fn new(client: Client, spec: KubernetesTargetSpec) -> Self {
        Self { client, spec }
    }

    /// The target of a Kubernetes environment of `config`, with a client from the
    /// standard places ([`Credentials::from_environment`]).
    ///
    /// # Errors
    ///
    /// Settings that do not hold, no credentials, or credentials that cannot be used.
    pub async fn from_config(environment: &Environment, config: &Config) -> Result<Self> {
        let base = config.directory().unwrap_or(Path::new("."));
        let spec = KubernetesTargetSpec::from_environment(environment, base)?;
        let credentials =
            Credentials::from_environment(&spec.settings, base).ok_or(Error::NoCredentials)?;
        let client = credentials.client().await?;
        Ok(Self::new(client, spec))
    }

    fn settings(&self) -> &KubernetesSettings {
        &self.spec.settings
    }

    fn scope(&self) -> RolloutScope {
        RolloutScope {
            namespace: self.settings().namespace.clone(),
            name: self.settings().app.clone(),
            selector: format!("{NAME_LABEL}={}", self.settings().app),
        }
    }

    /// Selects what kyb-deploy applied for this service in this environment.
    fn owned(&self) -> String {
        format!(
            "{MANAGED_BY_LABEL}=kyb-deploy,{ENVIRONMENT_LABEL}={},{NAME_LABEL}={}",
            label_value(&self.spec.environment),
            self.settings().app
        )
    }

    /// `Deployment namespace/name`.
    fn deployment_name(&self) -> String {
        format!(
            "Deployment {}/{}",
            self.settings().namespace,
            self.settings().app
        )
    }

    fn deployments(&self) -> Api<Deployment> {
        Api::namespaced(self.client.clone(), &self.settings().namespace)
    }

    async fn deployment(&self) -> Result<Option<Deployment>> {
        self.deployments()
            .get_opt(&self.settings().app)
            .await
            .map_err(|e| Error::api(format!("read {}", self.deployment_name()), e).into())
    }

    async fn replica_sets(&self) -> Result<Vec<ReplicaSet>> {
        let api: Api<ReplicaSet> = Api::namespaced(self.client.clone(), &self.settings().namespace);
        let params = ListParams::default().labels(&self.scope().selector);
        let list = api.list(&params).await.map_err(|e| {
            Error::api(
                format!("list the ReplicaSets of {}", self.deployment_name()),
                e,
            )
        })?;
        Ok(list.items)
    }

    /// Where the Service answers when the cluster publishes it (a load balancer, or the
    /// docker-backed simulator's local URL), else the Ingress host.
    async fn endpoint(&self) -> Result<Option<Url>> {
        let services: Api<Service> =
            Api::namespaced(self.client.clone(), &self.settings().namespace);
        let service = services.get_opt(&self.settings().app).await.map_err(|e| {
            Error::api(
                format!(
                    "read Service {}/{}",
                    self.settings().namespace,
                    self.settings().app
                ),
                e,
            )
        })?;
        let ingress = service
            .and_then(|s| s.status)
            .and_then(|s| s.load_balancer)
            .and_then(|lb| lb.ingress)
            .and_then(|list| list.into_iter().next());
        if let Some(point) = ingress {
            let host = point.ip.or(point.hostname);
            let port = point
                .ports
                .and_then(|ports| ports.first().map(|p| p.port))
                .map_or(i32::from(self.settings().service_port), |p| p);
            if let Some(host) = host
                && let Ok(url) = Url::parse(&format!("http://{host}:{port}"))
            {
                return Ok(Some(url));
            }
        }
        Ok(self.settings().ingress.as_ref().and_then(|i| {
            let scheme = if i.tls_secret.is_some() {
                "https"
            } else {
                "http"
            };
            Url::parse(&format!("{scheme}://{}", i.host)).ok()
        }))
    }

    /// The last few events of pod `pod`, oldest first, as `Reason: message`.
    async fn recent_events(&self, pod: &str) -> std::result::Result<Vec<String>, Error> {
        let events: Api<Event> = Api::namespaced(self.client.clone(), &self.settings().namespace);
        let params = ListParams::default().fields(&format!("involvedObject.name={pod}"));
        let mut items = events
            .list(&params)
            .await
            .map_err(|e| Error::api(format!("list the events of pod {pod}"), e))?
            .items;
        items.sort_by_key(|e| {
            e.last_timestamp
                .clone()
                .or_else(|| e.first_timestamp.clone())
                .map(|t| t.0)
        });
        Ok(items
            .iter()
            .rev()
            .take(RECENT_EVENTS)
            .rev()
            .map(|e| {
                format!(
                    "{}: {}",
                    e.reason.as_deref().unwrap_or("Event"),
                    e.message.as_deref().unwrap_or_default()
                )
            })
            .collect())
    }

    /// Whether the identity may `verb` `resource` (of `group`) in the namespace.
    async fn may(
        &self,
        verb: &str,
        group: &str,
        resource: &str,
    ) -> std::result::Result<bool, Error> {
        let reviews: Api<SelfSubjectAccessReview> = Api::all(self.client.clone());
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    namespace: Some(self.settings().namespace.clone()),
                    verb: Some(verb.to_owned()),
                    group: Some(group.to_owned()),
                    resource: Some(resource.to_owned()),
                    ..ResourceAttributes::default()
                }),
                ..SelfSubjectAccessReviewSpec::default()
            },
            ..SelfSubjectAccessReview::default()
        };
        let answer = reviews
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| {
                Error::api(
                    format!("ask whether this identity may {verb} {resource}"),
                    e,
                )
            })?;
        Ok(answer.status.is_some_and(|s| s.allowed))
    }
}

#[async_trait]
impl Target for KubernetesTarget {
    fn kind(&self) -> &str {
        "kubernetes"
    }

    async fn preflight(&self) -> Vec<Check> {
        let mut checks = Vec::new();
        match self.client.apiserver_version().await {
            Ok(version) => checks.push(Check::pass(
                "kubernetes api",
                format!("server {} answers", version.git_version),
            )),
            Err(e) => {
                let error = Error::api("reach the Kubernetes API server", e);
                checks.push(Check::fail(
                    "kubernetes api",
                    kyb_deploy_core::Error::chain_of(&error),
                    "check the kubeconfig's server, credentials and the network (docs/kubernetes.md)",
                ));
                return checks;
            }
        }
        let namespace = &self.settings().namespace;
        for (verb, group, resource) in [
            ("patch", "apps", "deployments"),
            ("watch", "apps", "replicasets"),
            ("watch", "", "pods"),
        ] {
            let name = format!("may {verb} {resource}");
            match self.may(verb, group, resource).await {
                Ok(true) => checks.push(Check::pass(name, format!("in namespace {namespace}"))),
                Ok(false) => checks.push(Check::fail(
                    name,
                    format!("this identity may not {verb} {resource} in namespace {namespace}"),
                    "grant it with the Role in docs/kubernetes.md (RBAC)",
                )),
                Err(e) => checks.push(Check::fail(
                    name,
                    kyb_deploy_core::Error::chain_of(&e),
                    "grant it with the Role in docs/kubernetes.md (RBAC)",
                )),
            }
        }
        checks
    }

    async fn describe(&self) -> Result<TargetDescription> {
        let mut details = vec![
            ("namespace".to_owned(), self.settings().namespace.clone()),
            ("deployment".to_owned(), self.settings().app.clone()),
        ];
        if let Some(deployment) = self.deployment().await? {
            let status = deployment.status.clone().unwrap_or_default();
            details.push((
                "replicas".to_owned(),
                format!(
                    "{} ready, {} updated, {} available, {} total",
                    status.ready_replicas.unwrap_or(0),
                    status.updated_replicas.unwrap_or(0),
                    status.available_replicas.unwrap_or(0),
                    status.replicas.unwrap_or(0)
                ),
            ));
            if let Some(r) = revision(&deployment.metadata) {
                details.push(("revision".to_owned(), r.to_owned()));
            }
            if let Some(release) = release_of_deployment(&deployment) {
                details.push(("version".to_owned(), release.version.to_string()));
            }
        }
        Ok(TargetDescription {
            kind: "kubernetes".to_owned(),
            name: format!(
                "deployment {} in namespace {}",
                self.settings().app,
                self.settings().namespace
            ),
            endpoint: self.endpoint().await?,
            details,
        })
    }

    async fn current_release(&self) -> Result<Option<Release>> {
        Ok(self
            .deployment()
            .await?
            .as_ref()
            .and_then(release_of_deployment))
    }

    async fn plan(&self, desired: &Release) -> Result<Plan> {
        let manifests = self.applied_manifests(desired, true).await?;
        let mode = ApplyMode {
            dry_run: true,
            force: self.settings().force_conflicts,
        };
        // The live objects first: a dry run of the Namespace's apply does not create it, so
        // the objects in it may be unknown.
        let mut changes = Vec::new();
        let mut missing_namespace = false;
        for manifest in &manifests {
            let what = describe(&manifest.object);
            let current = live(&self.client, manifest).await?;
            if manifest.kind() == "Namespace" && current.is_none() {
                missing_namespace = true;
            }
            let preview = if missing_namespace && manifest.kind() != "Namespace" {
                // Nothing in a namespace that does not exist yet can be dry-run applied.
                None
            } else {
                Some(apply(&self.client, manifest, mode).await?)
            };
            match (current.as_ref(), preview.as_ref()) {
                (_, Some(preview)) => {
                    changes.extend(object_changes(&what, current.as_ref(), preview))
                }
                (None, None) => changes.extend(object_changes(&what, None, &manifest.object)),
                (Some(_), None) => {}
            }
        }
        if !missing_namespace {
            let pruned = prune(
                &self.client,
                &self.settings().namespace,
                &self.owned(),
                &manifests,
                true,
            )
            .await?;
            changes.extend(pruned.into_iter().map(|resource| PlannedChange {
                resource,
                field: "(object)".to_owned(),
                from: Some("exists".to_owned()),
                to: Some("deleted".to_owned()),
            }));
        }
        Ok(Plan {
            current: self.current_release().await?,
            changes,
        })
    }

    async fn deploy(&self, desired: &Release) -> Result<DeployHandle> {
        self.roll_out(desired).await
    }

    async fn find_rollout(&self, desired: &Release) -> Result<Option<DeployHandle>> {
        let Some(deployment) = self.deployment().await? else {
            return Ok(None);
        };
        // Ours only with this release's configuration too: the same version deployed again
        // with changed variables is another write.
        let config = |template: Option<&ObjectMeta>| {
            template
                .and_then(|m| m.annotations.as_ref())
                .and_then(|a| a.get(CONFIG_ANNOTATION).cloned())
        };
        let rendered = self.applied_manifests(desired, false).await?;
        let wanted = rendered
            .iter()
            .find(|m| m.kind() == "Deployment")
            .and_then(|m| {
                m.object["spec"]["template"]["metadata"]["annotations"][CONFIG_ANNOTATION].as_str()
            })
            .map(str::to_owned);
        let live = config(
            deployment
                .spec
                .as_ref()
                .and_then(|s| s.template.metadata.as_ref()),
        );
        let ours = release_of_deployment(&deployment)
            .is_some_and(|r| r.version == desired.version && r.image == desired.image)
            && live == wanted;
        let release = Release {
            platform_ref: record_name(&rendered).map(str::to_owned),
            ..desired.clone()
        };
        Ok(ours.then(|| handle(&release, deployment.metadata.generation.unwrap_or(0))))
    }

    async fn wait(
        &self,
        handle: &DeployHandle,
        progress: &StageProgress,
        cancel: &CancellationToken,
    ) -> Result<RolloutOutcome> {
        let generation = handle.rollout_id.parse().map_err(|_| {
            kyb_deploy_core::Error::target(
                "kubernetes",
                format!("{:?} is not the generation of a rollout", handle.rollout_id),
            )
        })?;
        let applied = AppliedRelease {
            version: label_value(handle.release.version.as_str()),
            generation,
        };
        let name = self.deployment_name();
        let end = follow_rollout(
            &self.client,
            &self.scope(),
            &applied,
            |waiting| progress.progress(format!("{name}: {waiting}")),
            cancel,
        )
        .await?;
        Ok(match end {
            RolloutEnd::Complete => {
                self.prune_after(&handle.release, progress).await;
                RolloutOutcome::Completed
            }
            RolloutEnd::Failed(failure) => {
                let mut reason = failure_reason(&name, &failure);
                // What the kubelet said last about the first stuck pod, when it can be read.
                if let RolloutFailure::PodsDoomed(pods) = &failure
                    && let Ok(events) = self.recent_events(&pods[0].pod).await
                    && !events.is_empty()
                {
                    reason.push_str(&format!("; recent events: {}", events.join("; ")));
                }
                RolloutOutcome::Failed {
                    reason,
                    platform_rolled_back_to: None,
                }
            }
        })
    }

    async fn restarts(&self, handle: &DeployHandle) -> Result<Option<u64>> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.settings().namespace);
        let selector = format!(
            "{},{VERSION_LABEL}={}",
            self.scope().selector,
            label_value(handle.release.version.as_str())
        );
        let list = pods
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| Error::api(format!("list the pods of {}", self.deployment_name()), e))?;
        let restarts = list
            .items
            .iter()
            .filter_map(|p| p.status.as_ref()?.container_statuses.as_ref())
            .flatten()
            .map(|c| u64::try_from(c.restart_count).unwrap_or(0))
            .sum();
        Ok(Some(restarts))
    }

    async fn serving(&self) -> Result<Vec<Serving>> {
        let current = self
            .deployment()
            .await?
            .and_then(|d| revision(&d.metadata).map(str::to_owned));
        let mut serving = Vec::new();
        for set in self.replica_sets().await? {
            let desired = set.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
            let status = set.status.clone().unwrap_or_default();
            if desired == 0 && status.replicas == 0 {
                continue;
            }
            let Some(release) = release_of_replica_set(&set) else {
                continue;
            };
            serving.push(Serving {
                release,
                running: u32::try_from(status.ready_replicas.unwrap_or(0)).ok(),
                desired: u32::try_from(desired).ok(),
                primary: revision(&set.metadata).is_some()
                    && revision(&set.metadata) == current.as_deref(),
                state: None,
            });
        }
        Ok(serving)
    }

    async fn mark_verified(&self, release: &Release, run_id: &str) -> Result<bool> {
        self.leave_note(release, run_id).await?;
        Ok(true)
    }

    async fn verified_by(&self, run_id: &str) -> Result<Option<Release>> {
        self.read_note(run_id).await
    }

    async fn rollback(&self, to: &Release) -> Result<DeployHandle> {
        // The manifests recorded when it was deployed, while its ReplicaSet is kept; else
        // its version and image with today's settings.
        self.roll_out(to).await
    }

    async fn history(&self) -> Result<Vec<Revision>> {
        let mut sets = self.replica_sets().await?;
        let number = |s: &ReplicaSet| {
            revision(&s.metadata)
                .and_then(|r| r.parse::<u64>().ok())
                .unwrap_or(0)
        };
        sets.sort_by_key(|s| std::cmp::Reverse(number(s)));
        Ok(sets
            .iter()
            .filter_map(|set| {
                let release = release_of_replica_set(set)?;
                let deployed_at = set
                    .metadata
                    .creation_timestamp
                    .as_ref()
                    .and_then(|t| OffsetDateTime::from_unix_timestamp(t.0.as_second()).ok());
                let active = set.status.as_ref().is_some_and(|s| s.replicas > 0);
                Some(Revision {
                    release,
                    deployed_at,
                    active,
                })
            })
            .collect())
    }
}
