//! [`KubernetesBackend`]: the Kubernetes target kind, as the CLI registers it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kyb_deploy_core::config::{Config, Environment, Problems};
use kyb_deploy_core::{Check, Release, Result, Target, TargetBackend, async_trait};

use crate::client::Credentials;
use crate::manifests::SecretValues;
use crate::settings::KubernetesSettings;
use crate::target::{KubernetesTarget, KubernetesTargetSpec};

/// Kubernetes as a target kind: `target = "kubernetes"`, settings in
/// `[environments.<name>.kubernetes]` ([`KubernetesSettings`]). Validation checks the
/// settings and the files they name without calling the cluster.
///
/// ```
/// use kyb_deploy_core::TargetBackends;
/// use kyb_deploy_core::config::Config;
/// use kyb_deploy_k8s::KubernetesBackend;
///
/// let backends = TargetBackends::new().with(KubernetesBackend);
/// let config = Config::from_toml(
///     "[environments.k8s]\ntarget = \"kubernetes\"\n[environments.k8s.kubernetes]\nnamespace = \"Kyb\"\n",
/// )
/// .unwrap();
/// let error = backends.validate(&config).unwrap_err().to_string();
/// assert!(error.contains("environments.k8s.kubernetes.namespace: \"Kyb\" is not a valid Kubernetes name"), "{error}");
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct KubernetesBackend;

#[async_trait]
impl TargetBackend for KubernetesBackend {
    fn kind(&self) -> &'static str {
        "kubernetes"
    }

    fn validate(&self, env: &Environment, base: Option<&Path>) -> Result<Problems> {
        Ok(KubernetesSettings::of(env)?.problems(&env.name, base))
    }

    async fn create(&self, env: &Environment, config: &Config) -> Result<Arc<dyn Target>> {
        Ok(Arc::new(KubernetesTarget::from_config(env, config).await?))
    }

    fn render(
        &self,
        env: &Environment,
        config: &Config,
        release: &Release,
    ) -> Result<Option<String>> {
        let base = config.directory().unwrap_or(Path::new("."));
        let spec = KubernetesTargetSpec::from_environment(env, base)?;
        let documents: Vec<String> = spec
            .manifests(release, &SecretValues::Redacted)?
            .iter()
            .map(|m| serde_json::to_string_pretty(&m.object).unwrap_or_default())
            .collect();
        // A stream of JSON documents, one after the other: readable, and what
        // `kubectl apply -f` takes (a file that starts with `{` is read as JSON documents).
        Ok(Some(format!("{}\n", documents.join("\n"))))
    }

    async fn prerequisites(&self, env: &Environment) -> Vec<Check> {
        let Ok(settings) = KubernetesSettings::of(env) else {
            // Validation reports the settings; nothing to look for here without them.
            return Vec::new();
        };
        // Files in the settings are relative to the configuration file, which is not known
        // here: only the standard places are looked at when the settings name none.
        let base = PathBuf::from(".");
        let name = "kubernetes credentials";
        match Credentials::from_environment(&settings, &base) {
            Some(Credentials::InCluster) => vec![Check::pass(name, "the pod's service account")],
            Some(Credentials::Kubeconfig { paths, context }) => {
                let missing: Vec<String> = paths
                    .iter()
                    .filter(|p| settings.kubeconfig.is_none() && !p.is_file())
                    .map(|p| p.display().to_string())
                    .collect();
                if missing.is_empty() {
                    let files: Vec<String> =
                        paths.iter().map(|p| p.display().to_string()).collect();
                    let context = context.map_or_else(
                        || "its current context".to_owned(),
                        |c| format!("context {c}"),
                    );
                    vec![Check::pass(
                        name,
                        format!("kubeconfig {}, {context}", files.join(", ")),
                    )]
                } else {
                    vec![Check::fail(
                        name,
                        format!(
                            "KUBECONFIG names files that do not exist: {}",
                            missing.join(", ")
                        ),
                        "point KUBECONFIG at your kubeconfig, or set kubernetes.kubeconfig",
                    )]
                }
            }
            None => vec![Check::fail(
                name,
                "no kubeconfig (KUBECONFIG unset, no ~/.kube/config) and not running in a pod",
                "set KUBECONFIG or kubernetes.kubeconfig to a kubeconfig for the cluster",
            )],
        }
    }
}
