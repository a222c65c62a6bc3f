//! Checking a target backend's offline validation, as its own tests and those of a
//! backend written elsewhere do.

use kyb_deploy_core::config::Config;
use kyb_deploy_core::{Error, TargetBackend, TargetBackends};

/// The error `backend`'s offline validation gives for the configuration `toml`: what
/// `config validate` and every command that loads the configuration would report.
///
/// ```
/// use std::path::Path;
/// use std::sync::Arc;
/// use kyb_deploy_core::config::{Config, Environment, Problems};
/// use kyb_deploy_core::{Check, Result, Target, TargetBackend, async_trait};
/// use kyb_deploy_testkit::refusal;
///
/// struct Fussy;
///
/// #[async_trait]
/// impl TargetBackend for Fussy {
///     fn kind(&self) -> &'static str {
///         "fussy"
///     }
///     fn validate(&self, env: &Environment, _: Option<&Path>) -> Result<Problems> {
///         let mut problems = Problems::default();
///         problems.push(format!("environments.{}.fussy: never good enough", env.name));
///         Ok(problems)
///     }
///     async fn create(&self, _: &Environment, _: &Config) -> Result<Arc<dyn Target>> {
///         unreachable!("only validated")
///     }
///     async fn prerequisites(&self, _: &Environment) -> Vec<Check> {
///         Vec::new()
///     }
/// }
///
/// let error = refusal(Fussy, "[environments.x]\ntarget = \"fussy\"\n[environments.x.fussy]\n");
/// assert!(error.is_usage());
/// assert!(error.to_string().contains("environments.x.fussy: never good enough"));
/// ```
///
/// # Panics
///
/// When `toml` is not a configuration at all, or the backend accepts it: either is a
/// mistake of the test that calls it.
pub fn refusal(backend: impl TargetBackend + 'static, toml: &str) -> Error {
    let config = Config::from_toml(toml)
        .unwrap_or_else(|e| panic!("the configuration does not parse: {}\n{toml}", e.chain()));
    match TargetBackends::new().with(backend).validate(&config) {
        Ok(()) => panic!("the backend accepted the configuration:\n{toml}"),
        Err(error) => error,
    }
}
