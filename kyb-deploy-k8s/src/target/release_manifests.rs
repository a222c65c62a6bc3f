//! What a release is applied with: the manifests of today's settings (built-in or the
//! user's own) with the secret values read on this machine, or those recorded for it in the
//! cluster, and the records kept while the release's ReplicaSet is.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{DeleteParams, ListParams};
use kyb_deploy_core::{Release, Result};

use super::KubernetesTarget;
use crate::error::Error;
use crate::manifests::{
    ENVIRONMENT_LABEL, MANIFESTS_ANNOTATION, Manifest, SecretValues, label_value,
};
use crate::recorded::{RECORD_LABEL, is_record_of, recorded_manifests, with_secret_values};

impl KubernetesTarget {
    /// The manifests of `release`, with the secret values read (`resolve`) or not.
    pub(super) fn manifests(&self, release: &Release, resolve: bool) -> Result<Vec<Manifest>> {
        let secrets = if resolve {
            SecretValues::Resolved(self.secret_values()?)
        } else {
            SecretValues::Redacted
        };
        self.spec.manifests(release, &secrets)
    }

    /// The values of the secrets kyb-deploy writes: from this machine's variables and
    /// files. Each missing one names its key.
    pub(super) fn secret_values(&self) -> Result<BTreeMap<String, String>> {
        let key = format!("environments.{}.kubernetes.secrets", self.spec.environment);
        let mut values = BTreeMap::new();
        for (variable, source) in &self.settings().secrets {
            let value = if let Some(name) = &source.env {
                std::env::var(name).map_err(|_| kyb_deploy_core::Error::Config {
                    message: format!(
                        "{key}.{variable}.env: the variable {name} is not set on this machine; set it, or change the source"
                    ),
                })?
            } else if let Some(file) = &source.file {
                let path = self.spec.base.join(file);
                std::fs::read_to_string(&path).map_err(|e| kyb_deploy_core::Error::Config {
                    message: format!(
                        "{key}.{variable}.file: cannot read {}: {e}; create it, or change the source",
                        path.display()
                    ),
                })?
            } else {
                continue;
            };
            values.insert(variable.clone(), value);
        }
        Ok(values)
    }

    /// The manifests recorded for `release` when it names a record that still exists,
    /// with the Secret values read again (`resolve`) or left redacted.
    pub(super) async fn recorded(
        &self,
        release: &Release,
        resolve: bool,
    ) -> Result<Option<Vec<Manifest>>> {
        let Some(name) = release
            .platform_ref
            .as_deref()
            .filter(|name| is_record_of(&self.settings().app, name))
        else {
            return Ok(None);
        };
        let Some(record) =
            self.records().get_opt(name).await.map_err(|e| {
                Error::api(format!("read the record {name} of {}", release.version), e)
            })?
        else {
            return Ok(None);
        };
        let config = |problem: crate::recorded::RecordProblem| kyb_deploy_core::Error::Config {
            message: format!("{problem}"),
        };
        let manifests = recorded_manifests(name, record.data.as_ref()).map_err(|problem| {
            kyb_deploy_core::Error::Config {
                message: format!(
                    "{problem}; delete it (kubectl delete configmap -n {} {name}) to roll back with today's settings instead",
                    self.settings().namespace
                ),
            }
        })?;
        let scope = self.scope();
        let deployment = manifests.iter().find(|m| m.kind() == "Deployment");
        if deployment.is_none_or(|d| {
            d.name() != scope.name || d.object["metadata"]["namespace"] != scope.namespace.as_str()
        }) {
            return Err(kyb_deploy_core::Error::Config {
                message: format!(
                    "the manifests recorded in {name} are not those of {}: the environment's app or namespace changed since; deploy {} instead of rolling back to it",
                    self.deployment_name(),
                    release.version
                ),
            });
        }
        if !resolve {
            return Ok(Some(manifests));
        }
        Ok(Some(
            with_secret_values(manifests, &self.secret_values()?).map_err(config)?,
        ))
    }

    /// The manifests `release` is applied with: its record's (a release rolled back to),
    /// else those rendered from today's settings.
    pub(super) async fn applied_manifests(
        &self,
        release: &Release,
        resolve: bool,
    ) -> Result<Vec<Manifest>> {
        match self.recorded(release, resolve).await? {
            Some(manifests) => Ok(manifests),
            None => self.manifests(release, resolve),
        }
    }

    pub(super) fn records(&self) -> Api<ConfigMap> {
        Api::namespaced(self.client.clone(), &self.settings().namespace)
    }

    /// Deletes the records of manifests no ReplicaSet runs any more: a release's record
    /// lives as long as the Deployment keeps its ReplicaSet (`revisionHistoryLimit`).
    pub(super) async fn forget_records(&self) -> Result<()> {
        let kept: Vec<String> = self
            .replica_sets()
            .await?
            .iter()
            .filter_map(|set| {
                set.spec
                    .as_ref()?
                    .template
                    .as_ref()?
                    .metadata
                    .as_ref()?
                    .annotations
                    .as_ref()?
                    .get(MANIFESTS_ANNOTATION)
                    .cloned()
            })
            .collect();
        let records = self.records();
        let selector = format!(
            "{RECORD_LABEL}={},{ENVIRONMENT_LABEL}={}",
            self.settings().app,
            label_value(&self.spec.environment)
        );
        let listed = records
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| Error::api("list the records of released manifests", e))?;
        for record in listed.items {
            let Some(name) = record.metadata.name.as_deref() else {
                continue;
            };
            if kept.iter().any(|k| k == name) {
                continue;
            }
            match records.delete(name, &DeleteParams::background()).await {
                Ok(_) => {}
                // Gone meanwhile: what forgetting wanted.
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(e) => {
                    return Err(Error::api(format!("delete the record {name}"), e).into());
                }
            }
        }
        Ok(())
    }
}
