//! Per-environment settings: target, rollback policy, guards, timeouts, verification.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::verify::VerifyConfig;

/// Settings of one environment, as written under `[environments.<name>]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentConfig {
    /// Which kind of target this environment deploys to.
    pub target: TargetKind,
    /// What happens when a deployment fails after it began.
    #[serde(default)]
    pub rollback: RollbackPolicy,
    /// Conditions a deployment must meet.
    #[serde(default)]
    pub guards: Guards,
    /// Per-stage and overall time limits.
    #[serde(default)]
    pub timeouts: Timeouts,
    /// Post-deployment verification.
    #[serde(default)]
    pub verify: VerifyConfig,
    /// Environment variables for the service.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Settings of the `docker` target.
    #[serde(default)]
    pub docker: Option<DockerSettings>,
    /// Settings of the `ecs` target.
    #[serde(default)]
    pub ecs: Option<EcsSettings>,
    /// Settings of the `kubernetes` target.
    #[serde(default)]
    pub kubernetes: Option<KubernetesSettings>,
}

impl EnvironmentConfig {
    /// How long a release that passed verification is watched before its run counts as a
    /// success: `verify.soak` when set, else 10 s for the environment named `development`
    /// and 60 s for any other.
    ///
    /// ```
    /// use std::time::Duration;
    /// use kyb_deploy_core::Config;
    ///
    /// let config = Config::from_toml(
    ///     "[environments.development]\ntarget = \"docker\"\n[environments.development.docker]\n",
    /// )
    /// .unwrap();
    /// let settings = config.environment("development").unwrap().settings;
    /// assert_eq!(settings.soak("development"), Duration::from_secs(10));
    /// assert_eq!(settings.soak("staging"), Duration::from_secs(60));
    /// ```
    pub fn soak(&self, environment: &str) -> Duration {
        self.verify.soak.unwrap_or(if environment == "development" {
            Duration::from_secs(10)
        } else {
            Duration::from_secs(60)
        })
    }
}

/// The kinds of deployment target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    /// A local Docker engine.
    Docker,
    /// AWS ECS (Fargate).
    Ecs,
    /// A Kubernetes cluster.
    Kubernetes,
}

impl TargetKind {
    /// The name used in configuration and records.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Docker => "docker",
            Self::Ecs => "ecs",
            Self::Kubernetes => "kubernetes",
        }
    }
}

impl fmt::Display for TargetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What to do when a deployment fails after it began.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RollbackPolicy {
    /// Roll back to the last known-good release and verify it.
    #[default]
    Auto,
    /// Leave the failed release in place.
    Never,
}

/// Conditions an environment puts on a deployment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Guards {
    /// Ask for confirmation (or `--yes`) before changing anything.
    pub confirm: bool,
    /// Branches a deployment may come from; empty allows any.
    pub branches: Vec<String>,
    /// Refuse a working tree with uncommitted changes unless forced.
    pub require_clean_tree: bool,
}

/// Time limits. A stage that runs out of time ends the run as timed out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    /// The whole run.
    #[serde(with = "super::duration")]
    pub overall: Duration,
    /// The test stage.
    #[serde(with = "super::duration")]
    pub tests: Duration,
    /// The image build.
    #[serde(with = "super::duration")]
    pub build: Duration,
    /// The image push.
    #[serde(with = "super::duration")]
    pub push: Duration,
    /// Starting the deployment on the target.
    #[serde(with = "super::duration")]
    pub deploy: Duration,
    /// Waiting for the rollout.
    #[serde(with = "super::duration")]
    pub wait: Duration,
    /// Verification (probes and smoke tests).
    #[serde(with = "super::duration")]
    pub verify: Duration,
    /// A rollback, including its wait and verification.
    #[serde(with = "super::duration")]
    pub rollback: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        let min = |m: u64| Duration::from_secs(60 * m);
        Self {
            overall: min(60),
            tests: min(20),
            build: min(20),
            push: min(10),
            deploy: min(2),
            wait: min(15),
            verify: min(5),
            rollback: min(20),
        }
    }
}

/// Settings of the local Docker target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerSettings {
    /// Container name prefix.
    #[serde(default = "default_container")]
    pub container: String,
    /// Port the service listens on inside the container.
    #[serde(default = "default_port")]
    pub port: u16,
    /// Port published on 127.0.0.1: the environment's stable address.
    #[serde(default = "default_port")]
    pub host_port: u16,
    /// Secrets passed to the container as environment variables, each read from an
    /// environment variable or a file of the machine running kyb-deploy. Never logged.
    #[serde(default)]
    pub secrets: BTreeMap<String, SecretSource>,
    /// Container security settings; all on by default.
    #[serde(default)]
    pub security: ContainerSecurity,
}

/// Where a secret's value comes from: exactly one of `env` and `file`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretSource {
    /// An environment variable of the machine running kyb-deploy.
    #[serde(default)]
    pub env: Option<String>,
    /// A file of the machine running kyb-deploy (trailing newline trimmed).
    #[serde(default)]
    pub file: Option<PathBuf>,
}

/// Security settings of the local Docker target's containers (`[....docker.security]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContainerSecurity {
    /// Refuse to run an image whose user is root.
    pub non_root: bool,
    /// Read-only root filesystem.
    pub read_only_root_filesystem: bool,
    /// Drop all Linux capabilities.
    pub drop_all_capabilities: bool,
    /// Set `no-new-privileges`.
    pub no_new_privileges: bool,
}

impl Default for ContainerSecurity {
    fn default() -> Self {
        Self {
            non_root: true,
            read_only_root_filesystem: true,
            drop_all_capabilities: true,
            no_new_privileges: true,
        }
    }
}

fn default_container() -> String {
    "kyb-platform-api".into()
}

fn default_port() -> u16 {
    8080
}

/// Settings of the ECS target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EcsSettings {
    /// Cluster name or ARN.
    pub cluster: String,
    /// Service name.
    pub service: String,
    /// AWS region; the standard chain decides when unset.
    #[serde(default)]
    pub region: Option<String>,
    /// Endpoint override (a simulator or a VPC endpoint).
    #[serde(default)]
    pub endpoint_url: Option<String>,
    /// Task definition template (`register-task-definition --cli-input-json` format),
    /// relative to the configuration file. When unset, deployments reuse the service's
    /// current task definition with only the image replaced.
    #[serde(default)]
    pub task_definition: Option<PathBuf>,
    /// The container that runs the service's image. May be omitted when the task definition
    /// has a single container.
    #[serde(default)]
    pub container: Option<String>,
    /// How ECS replaces tasks (`[environments.<name>.ecs.deployment]`).
    #[serde(default)]
    pub deployment: EcsDeployment,
    /// How often kyb-deploy asks ECS about a rollout (`[environments.<name>.ecs.poll]`).
    #[serde(default)]
    pub poll: EcsPoll,
}

/// The service's deployment configuration, applied with every deployment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EcsDeployment {
    /// Healthy tasks kept during a rollout, in percent of the desired count.
    pub minimum_healthy_percent: u32,
    /// Tasks allowed during a rollout, in percent of the desired count.
    pub maximum_percent: u32,
    /// Time ECS ignores failing load-balancer health checks of a new task.
    #[serde(with = "super::duration")]
    pub health_check_grace_period: Duration,
    /// Stop a rollout whose tasks keep failing to start (the deployment circuit breaker).
    pub circuit_breaker: bool,
    /// Let the circuit breaker roll back to the last completed deployment (only with
    /// `circuit_breaker`).
    pub circuit_breaker_rollback: bool,
}

impl Default for EcsDeployment {
    fn default() -> Self {
        Self {
            minimum_healthy_percent: 100,
            maximum_percent: 200,
            health_check_grace_period: Duration::from_secs(60),
            circuit_breaker: true,
            circuit_breaker_rollback: true,
        }
    }
}

/// How a rollout is followed: DescribeServices is called quickly at first, then less often
/// while nothing changes, and quickly again after every change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EcsPoll {
    /// The shortest interval between two polls, used after each change.
    #[serde(with = "super::duration")]
    pub interval: Duration,
    /// The longest interval, reached while nothing changes.
    #[serde(with = "super::duration")]
    pub max_interval: Duration,
    /// DescribeServices calls per second kyb-deploy allows itself at most (a burst of as
    /// many, then that rate), over every service it follows and the reads of deployments
    /// starting (ECS's sustained read budget is 20 per second per account).
    pub max_calls_per_second: u32,
}

impl Default for EcsPoll {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(1),
            max_interval: Duration::from_secs(3),
            max_calls_per_second: 5,
        }
    }
}

/// Settings of the Kubernetes target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesSettings {
    /// Namespace of the deployment.
    pub namespace: String,
    /// Name of the Deployment.
    pub deployment: String,
    /// Kubeconfig context; the current context when unset.
    #[serde(default)]
    pub context: Option<String>,
}
