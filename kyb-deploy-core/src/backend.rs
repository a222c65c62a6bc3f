//! [`TargetBackend`]: the one plug-in point of a target kind, and [`TargetBackends`], the
//! registration list a program composes from the target crates.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;

use crate::config::{Config, Environment, Problems};
use crate::error::{Error, Result};
use crate::preflight::Check;
use crate::release::Release;
use crate::target::Target;

/// One kind of deployment target: everything the rest of kyb-deploy needs to know about it.
///
/// A target crate implements it once (`DockerBackend`, `EcsBackend`...); a program registers
/// the kinds it deploys to in a [`TargetBackends`] list. Core and the CLI's commands never
/// branch on a kind: they ask the backend the environment's `target` names.
#[async_trait]
pub trait TargetBackend: Send + Sync {
    /// The kind: `target = "<kind>"` selects this backend, and the table
    /// `[environments.<name>.<kind>]` holds its settings
    /// ([`Environment::target_settings`]).
    fn kind(&self) -> &'static str;

    /// Checks the environment's settings for this kind without calling the platform: the
    /// settings table and the files it names, relative to `base`, the configuration file's
    /// directory (`None` when the configuration was not read from a file: files are then
    /// checked when used). Each problem names its key and its fix. `Err` when the settings
    /// do not even parse (the error names the key and where it was set).
    fn validate(&self, env: &Environment, base: Option<&Path>) -> Result<Problems>;

    /// Creates the environment's target (files the settings name are read relative to
    /// [`Config::directory`]).
    async fn create(&self, env: &Environment, config: &Config) -> Result<Arc<dyn Target>>;

    /// What this kind needs on the machine running kyb-deploy before its target can even be
    /// created (a local engine's socket, a kubeconfig file), each missing piece with its
    /// fix. The target's own [`Target::preflight`] checks the platform once it exists. Never
    /// changes anything.
    async fn prerequisites(&self, env: &Environment) -> Vec<Check>;

    /// The objects deploying `release` to `env` would write, as text to read or to apply by
    /// hand (secret values redacted), without calling the platform; `None` for kinds that
    /// render nothing of the sort (the default).
    fn render(
        &self,
        env: &Environment,
        config: &Config,
        release: &Release,
    ) -> Result<Option<String>> {
        let _ = (env, config, release);
        Ok(None)
    }
}

/// The target kinds a program deploys to, in the order registered.
///
/// ```
/// use kyb_deploy_core::TargetBackends;
/// use kyb_deploy_core::config::Config;
///
/// let backends = TargetBackends::new();
/// let config = Config::from_toml(
///     "[environments.dev]\ntarget = \"docker\"\n[environments.dev.docker]\n",
/// )
/// .unwrap();
/// let error = backends.validate(&config).unwrap_err().to_string();
/// assert!(error.contains("environments.dev.target: \"docker\" is not a target kind of this build"), "{error}");
/// ```
#[derive(Clone, Default)]
pub struct TargetBackends {
    backends: Vec<Arc<dyn TargetBackend>>,
}

impl std::fmt::Debug for TargetBackends {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.kinds()).finish()
    }
}

impl TargetBackends {
    /// No kind yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `backend`; a kind registered twice keeps its first backend.
    #[must_use]
    pub fn with(mut self, backend: impl TargetBackend + 'static) -> Self {
        if self.get(backend.kind()).is_none() {
            self.backends.push(Arc::new(backend));
        }
        self
    }

    /// The backend of `kind`.
    pub fn get(&self, kind: &str) -> Option<&dyn TargetBackend> {
        self.backends
            .iter()
            .find(|b| b.kind() == kind)
            .map(AsRef::as_ref)
    }

    /// The registered kinds, in order.
    pub fn kinds(&self) -> Vec<&'static str> {
        self.backends.iter().map(|b| b.kind()).collect()
    }

    /// The backend of `env`'s target kind; the error names the key and the kinds there are.
    pub fn backend_of(&self, env: &Environment) -> Result<&dyn TargetBackend> {
        let kind = env.settings.target.as_str();
        self.get(kind).ok_or_else(|| Error::Config {
            message: self.unknown_kind(env),
        })
    }

    /// Checks every environment's target settings with its backend, offline. Every problem
    /// of every environment at once, as one configuration error.
    pub fn validate(&self, config: &Config) -> Result<()> {
        let base = config.directory();
        let mut problems = Vec::new();
        let mut described = Vec::new();
        for name in config.environment_names() {
            let env = config.environment(&name)?;
            match self.get(env.settings.target.as_str()) {
                Some(backend) => match backend.validate(&env, base) {
                    Ok(found) => problems.extend(found.into_vec()),
                    Err(Error::Config { message }) => described.push(message),
                    Err(e) => described.push(e.to_string()),
                },
                None => problems.push(self.unknown_kind(&env)),
            }
        }
        if !problems.is_empty() {
            described.push(config.describe_problems(&problems));
        }
        if described.is_empty() {
            Ok(())
        } else {
            Err(Error::Config {
                message: described.join("; "),
            })
        }
    }

    /// What `env`'s backend renders for `release` ([`TargetBackend::render`]).
    pub fn render(
        &self,
        env: &Environment,
        config: &Config,
        release: &Release,
    ) -> Result<Option<String>> {
        self.backend_of(env)?.render(env, config, release)
    }

    /// Creates `env`'s target with its backend.
    pub async fn create(&self, env: &Environment, config: &Config) -> Result<Arc<dyn Target>> {
        self.backend_of(env)?.create(env, config).await
    }

    fn unknown_kind(&self, env: &Environment) -> String {
        let kind = env.settings.target.as_str();
        let kinds = self.kinds();
        let known = if kinds.is_empty() {
            "it registers no target kind".to_owned()
        } else {
            format!("it deploys to: {}", kinds.join(", "))
        };
        format!(
            "environments.{}.target: \"{kind}\" is not a target kind of this build; {known}",
            env.name
        )
    }
}
