//! The API client, from the standard places: the settings' kubeconfig, `KUBECONFIG`,
//! `~/.kube/config`, or the pod's service account when running in a cluster.

use std::path::{Path, PathBuf};

use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::error::Error;
use crate::settings::KubernetesSettings;

/// Where the client's configuration comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credentials {
    /// A kubeconfig file (the settings', `KUBECONFIG`'s or `~/.kube/config`), with the
    /// context to use (`None`: the file's current context).
    Kubeconfig {
        /// The file, or files (`KUBECONFIG` may list several).
        paths: Vec<PathBuf>,
        /// The context.
        context: Option<String>,
    },
    /// The service account of the pod kyb-deploy runs in.
    InCluster,
}

impl Credentials {
    /// Where `settings` (with files relative to `base`) say the credentials are, looking
    /// at `KUBECONFIG` (from `kubeconfig_env`) and `~/.kube/config` (from `home`) when the
    /// settings name no file, and at the in-cluster variables (`in_cluster`) last.
    #[must_use]
    pub fn locate(
        settings: &KubernetesSettings,
        base: &Path,
        kubeconfig_env: Option<&str>,
        home: Option<&Path>,
        in_cluster: bool,
    ) -> Option<Self> {
        Self::find(
            settings.kubeconfig.as_deref(),
            settings.context.clone(),
            base,
            kubeconfig_env,
            home,
            in_cluster,
        )
    }

    /// [`Credentials::locate`] with the file and context given apart.
    fn find(
        file: Option<&Path>,
        context: Option<String>,
        base: &Path,
        kubeconfig_env: Option<&str>,
        home: Option<&Path>,
        in_cluster: bool,
    ) -> Option<Self> {
        if let Some(file) = file {
            return Some(Self::Kubeconfig {
                paths: vec![base.join(file)],
                context,
            });
        }
        let listed: Vec<PathBuf> = kubeconfig_env
            .map(|value| {
                std::env::split_paths(value)
                    .filter(|p| !p.as_os_str().is_empty())
                    .collect()
            })
            .unwrap_or_default();
        if !listed.is_empty() {
            return Some(Self::Kubeconfig {
                paths: listed,
                context,
            });
        }
        let default = home.map(|home| home.join(".kube").join("config"));
        if let Some(default) = default.filter(|p| p.is_file()) {
            return Some(Self::Kubeconfig {
                paths: vec![default],
                context,
            });
        }
        in_cluster.then_some(Self::InCluster)
    }

    /// [`Credentials::locate`] with this process's environment.
    #[must_use]
    pub fn from_environment(settings: &KubernetesSettings, base: &Path) -> Option<Self> {
        let kubeconfig_env = std::env::var("KUBECONFIG").ok();
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let in_cluster = std::env::var_os("KUBERNETES_SERVICE_HOST").is_some();
        Self::locate(
            settings,
            base,
            kubeconfig_env.as_deref(),
            home.as_deref(),
            in_cluster,
        )
    }

    /// The credentials in the standard places (`KUBECONFIG`, `~/.kube/config`, the pod's
    /// service account), with `context`: for a program that has no Kubernetes target
    /// settings (the Kubernetes state backend of another target's environment).
    #[must_use]
    pub fn standard(context: Option<String>) -> Option<Self> {
        let kubeconfig_env = std::env::var("KUBECONFIG").ok();
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let in_cluster = std::env::var_os("KUBERNETES_SERVICE_HOST").is_some();
        Self::find(
            None,
            context,
            Path::new("."),
            kubeconfig_env.as_deref(),
            home.as_deref(),
            in_cluster,
        )
    }

    /// A client with these credentials.
    ///
    /// # Errors
    ///
    /// A kubeconfig that cannot be read, a context it does not have, or credentials the
    /// client cannot use; each names the fix.
    pub async fn client(&self) -> Result<Client, Error> {
        let config = match self {
            Self::InCluster => kube::Config::incluster().map_err(Error::InCluster)?,
            Self::Kubeconfig { paths, context } => {
                let mut merged: Option<Kubeconfig> = None;
                for path in paths {
                    let one = Kubeconfig::read_from(path).map_err(|source| Error::Kubeconfig {
                        path: path.clone(),
                        source,
                    })?;
                    merged = Some(match merged {
                        None => one,
                        Some(earlier) => {
                            earlier.merge(one).map_err(|source| Error::Kubeconfig {
                                path: path.clone(),
                                source,
                            })?
                        }
                    });
                }
                let kubeconfig = merged.ok_or(Error::NoCredentials)?;
                if let Some(context) = context
                    && !kubeconfig.contexts.iter().any(|c| &c.name == context)
                {
                    let names: Vec<&str> = kubeconfig
                        .contexts
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect();
                    return Err(Error::UnknownContext {
                        context: context.clone(),
                        available: if names.is_empty() {
                            "none".to_owned()
                        } else {
                            names.join(", ")
                        },
                    });
                }
                let options = KubeConfigOptions {
                    context: context.clone(),
                    ..KubeConfigOptions::default()
                };
                let current = context
                    .clone()
                    .or_else(|| kubeconfig.current_context.clone())
                    .unwrap_or_default();
                kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                    .await
                    .map_err(|source| Error::Context {
                        context: current,
                        source,
                    })?
            }
        };
        Client::try_from(config).map_err(Error::Client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(extra: &str) -> KubernetesSettings {
        toml::from_str(&format!("namespace = \"kyb\"\n{extra}")).unwrap()
    }

    #[test]
    fn the_settings_file_wins_then_kubeconfig_then_home_then_the_pod() {
        let home = tempfile::tempdir().unwrap();
        let base = Path::new("/conf");
        let explicit = settings("kubeconfig = \"k.yaml\"\ncontext = \"ci\"");
        assert_eq!(
            Credentials::locate(&explicit, base, Some("/env/a"), Some(home.path()), true),
            Some(Credentials::Kubeconfig {
                paths: vec![PathBuf::from("/conf/k.yaml")],
                context: Some("ci".into())
            })
        );
        let plain = settings("");
        assert_eq!(
            Credentials::locate(&plain, base, Some("/env/a:/env/b"), Some(home.path()), true),
            Some(Credentials::Kubeconfig {
                paths: vec![PathBuf::from("/env/a"), PathBuf::from("/env/b")],
                context: None
            })
        );
        // An empty KUBECONFIG is unset, as kubectl reads it; without ~/.kube/config, the pod.
        assert_eq!(
            Credentials::locate(&plain, base, Some(""), Some(home.path()), true),
            Some(Credentials::InCluster)
        );
        assert_eq!(
            Credentials::locate(&plain, base, None, Some(home.path()), false),
            None
        );
        std::fs::create_dir(home.path().join(".kube")).unwrap();
        std::fs::write(home.path().join(".kube/config"), "").unwrap();
        assert_eq!(
            Credentials::locate(&plain, base, None, Some(home.path()), true),
            Some(Credentials::Kubeconfig {
                paths: vec![home.path().join(".kube/config")],
                context: None
            })
        );
    }

    #[tokio::test]
    async fn an_unknown_context_names_the_ones_there_are() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config");
        std::fs::write(
            &file,
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: \"https://127.0.0.1:1\"}\n\
             users:\n- name: u\n  user: {token: t}\ncontexts:\n- name: dev\n  context: {cluster: c, user: u}\n\
             - name: prod\n  context: {cluster: c, user: u}\ncurrent-context: dev\n",
        )
        .unwrap();
        let credentials = Credentials::Kubeconfig {
            paths: vec![file.clone()],
            context: Some("staging".into()),
        };
        let Err(error) = credentials.client().await else {
            panic!("a client for an unknown context");
        };
        let error = error.to_string();
        assert_eq!(
            error,
            "kubeconfig has no context \"staging\"; its contexts: dev, prod; fix kubernetes.context"
        );
        let missing = Credentials::Kubeconfig {
            paths: vec![dir.path().join("absent")],
            context: None,
        };
        let Err(error) = missing.client().await else {
            panic!("a client from a missing file");
        };
        assert!(
            error.to_string().starts_with("failed to read kubeconfig "),
            "{error}"
        );
        let chained = kyb_deploy_core::Error::from(error);
        assert!(chained.is_usage(), "{chained:?}");
        // The cause follows the message, once.
        let text = chained.to_string();
        assert!(text.contains("absent"), "{text}");
    }
}
