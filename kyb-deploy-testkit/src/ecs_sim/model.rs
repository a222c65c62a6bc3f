//! The simulated state: regions, clusters, task definitions, services, deployments, tasks
//! and service events. Everything here is plain data that serializes into the snapshot.

use std::collections::{BTreeMap, BTreeSet};

use rand::Rng as _;
use rand::rngs::StdRng;
use serde_json::Value;

use super::faults::TaskFaultKind;

/// The account every ARN names.
pub(crate) const ACCOUNT: &str = "123456789012";

/// The whole simulated world, one entry per region that has been called.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) regions: BTreeMap<String, Region>,
    /// Simulated time up to which the controller has run.
    pub(crate) controller_time: f64,
    /// The subnets and security groups that exist, when the simulator was told.
    pub(crate) network: KnownNetwork,
}

/// The subnets and security groups awsvpc tasks may use. `None` accepts any id of the
/// right shape (`subnet-...`, `sg-...`).
#[derive(Clone, Debug, Default)]
pub(crate) struct KnownNetwork {
    pub(crate) subnets: Option<BTreeSet<String>>,
    pub(crate) security_groups: Option<BTreeSet<String>>,
}

/// The resources of one region.
#[derive(Debug, Default)]
pub(crate) struct Region {
    pub(crate) name: String,
    pub(crate) clusters: BTreeMap<String, Cluster>,
    /// Task definitions per family, revision N at index N-1.
    pub(crate) families: BTreeMap<String, Vec<TaskDefinition>>,
}

impl Region {
    pub(crate) fn arn(&self, resource: &str) -> String {
        format!("arn:aws:ecs:{}:{ACCOUNT}:{resource}", self.name)
    }

    /// Finds a task definition by `family`, `family:revision` or ARN; a bare family means its
    /// latest ACTIVE revision.
    pub(crate) fn task_definition(&self, reference: &str) -> Option<&TaskDefinition> {
        find_task_definition(&self.families, reference)
    }
}

/// Finds a task definition by `family`, `family:revision` or ARN in `families`.
pub(crate) fn find_task_definition<'a>(
    families: &'a BTreeMap<String, Vec<TaskDefinition>>,
    reference: &str,
) -> Option<&'a TaskDefinition> {
    let name = reference
        .rsplit_once(":task-definition/")
        .map_or(reference, |(_, name)| name);
    match name.rsplit_once(':') {
        Some((family, revision)) => {
            let revision: usize = revision.parse().ok()?;
            families.get(family)?.get(revision.checked_sub(1)?)
        }
        None => families
            .get(name)?
            .iter()
            .rev()
            .find(|def| def.status == "ACTIVE"),
    }
}

/// A resource tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Tag {
    pub(crate) key: String,
    pub(crate) value: String,
}

/// An ECS cluster with its services and tasks.
#[derive(Debug)]
pub(crate) struct Cluster {
    pub(crate) name: String,
    pub(crate) arn: String,
    /// `ACTIVE`, or `INACTIVE` once deleted.
    pub(crate) status: &'static str,
    pub(crate) tags: Vec<Tag>,
    /// `settings` as created (`containerInsights`).
    pub(crate) settings: Value,
    /// The capacity providers associated with the cluster (`FARGATE`, `FARGATE_SPOT`).
    pub(crate) capacity_providers: Vec<String>,
    /// `defaultCapacityProviderStrategy` as created.
    pub(crate) default_strategy: Value,
    pub(crate) services: BTreeMap<String, Service>,
    /// Every task ever started, in start order; stopped ones stay listed like in ECS.
    pub(crate) tasks: Vec<Task>,
}

/// A registered task definition revision.
#[derive(Debug)]
pub(crate) struct TaskDefinition {
    pub(crate) family: String,
    pub(crate) revision: u32,
    pub(crate) arn: String,
    /// `ACTIVE` or `INACTIVE`.
    pub(crate) status: &'static str,
    pub(crate) registered_at: f64,
    pub(crate) deregistered_at: Option<f64>,
    /// The registered fields, normalized with ECS's defaults, as the API returns them
    /// (without the status fields above).
    pub(crate) body: Value,
    pub(crate) containers: Vec<ContainerSpec>,
    pub(crate) cpu: Option<String>,
    pub(crate) memory: Option<String>,
    pub(crate) tags: Vec<Tag>,
}

/// What the simulator needs of a container definition.
#[derive(Clone, Debug)]
pub(crate) struct ContainerSpec {
    pub(crate) name: String,
    pub(crate) image: String,
    pub(crate) essential: bool,
    pub(crate) has_health_check: bool,
}

/// How a service rolls out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DeploymentConfig {
    pub(crate) minimum_healthy_percent: u32,
    pub(crate) maximum_percent: u32,
    pub(crate) circuit_breaker: bool,
    pub(crate) rollback: bool,
}

impl Default for DeploymentConfig {
    fn default() -> Self {
        Self {
            minimum_healthy_percent: 100,
            maximum_percent: 200,
            circuit_breaker: false,
            rollback: false,
        }
    }
}

/// An ECS service.
#[derive(Debug)]
pub(crate) struct Service {
    pub(crate) name: String,
    pub(crate) arn: String,
    pub(crate) cluster_arn: String,
    pub(crate) created_at: f64,
    pub(crate) desired_count: u32,
    pub(crate) task_definition: String,
    pub(crate) launch_type: String,
    pub(crate) platform_version: Option<String>,
    pub(crate) network_configuration: Option<Value>,
    pub(crate) health_check_grace_period: Option<u32>,
    /// `loadBalancers`, as given (an array).
    pub(crate) load_balancers: Value,
    /// `capacityProviderStrategy`; a service with one has no `launchType`.
    pub(crate) capacity_provider_strategy: Option<Value>,
    /// `deploymentController.type`: `ECS`, `CODE_DEPLOY` or `EXTERNAL`.
    pub(crate) deployment_controller: String,
    pub(crate) enable_execute_command: bool,
    /// `propagateTags`: `NONE`, `SERVICE` or `TASK_DEFINITION`.
    pub(crate) propagate_tags: String,
    pub(crate) enable_ecs_managed_tags: bool,
    pub(crate) config: DeploymentConfig,
    /// The PRIMARY deployment first, then the ACTIVE ones, newest first.
    pub(crate) deployments: Vec<Deployment>,
    /// Newest first, at most [`MAX_EVENTS`].
    pub(crate) events: Vec<ServiceEvent>,
    pub(crate) tags: Vec<Tag>,
    /// The last deployment that reached COMPLETED: its id, task definition and revision.
    pub(crate) last_completed: Option<(String, String, String)>,
    /// Whether the steady-state event was written since the service last changed.
    pub(crate) steady: bool,
    /// ACTIVE, or DRAINING then INACTIVE once deleted.
    pub(crate) status: ServiceStatus,
    /// When DeleteService was called.
    pub(crate) deleted_at: Option<f64>,
    /// Every service revision, oldest first.
    pub(crate) revisions: Vec<ServiceRevision>,
    /// Every service deployment, oldest first, completed and failed ones included.
    pub(crate) history: Vec<ServiceDeploymentRecord>,
}

/// The lifecycle of a service (`status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ServiceStatus {
    Active,
    /// Deleted; its tasks are stopping.
    Draining,
    /// Deleted, and no task of it runs.
    Inactive,
}

impl ServiceStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::Draining => "DRAINING",
            Self::Inactive => "INACTIVE",
        }
    }
}

/// A service revision: the settings one deployment rolls out.
#[derive(Clone, Debug)]
pub(crate) struct ServiceRevision {
    /// The numeric id of the revision, the number of the deployment that created it.
    pub(crate) id: String,
    pub(crate) task_definition: String,
    pub(crate) created_at: f64,
    /// The service's settings at the time, rendered as ECS returns them (`launchType`,
    /// `networkConfiguration`, `loadBalancers`, ...).
    pub(crate) settings: Value,
}

/// The status of a service deployment, as ListServiceDeployments reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ServiceDeploymentStatus {
    InProgress,
    Successful,
    /// Replaced by a newer deployment before it completed, or failed without a rollback.
    Stopped,
    RollbackInProgress,
    RollbackSuccessful,
    RollbackFailed,
}

impl ServiceDeploymentStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "IN_PROGRESS",
            Self::Successful => "SUCCESSFUL",
            Self::Stopped => "STOPPED",
            Self::RollbackInProgress => "ROLLBACK_IN_PROGRESS",
            Self::RollbackSuccessful => "ROLLBACK_SUCCESSFUL",
            Self::RollbackFailed => "ROLLBACK_FAILED",
        }
    }

    pub(crate) fn is_finished(self) -> bool {
        !matches!(self, Self::InProgress | Self::RollbackInProgress)
    }
}

/// One service deployment: a deployment of the service, with its rollback when the circuit
/// breaker made one.
#[derive(Clone, Debug)]
pub(crate) struct ServiceDeploymentRecord {
    /// 21 letters and digits, as ECS names service deployments.
    pub(crate) id: String,
    /// The `ecs-svc/...` id of the deployment it follows.
    pub(crate) deployment: String,
    pub(crate) created_at: f64,
    pub(crate) updated_at: f64,
    pub(crate) finished_at: Option<f64>,
    pub(crate) stopped_at: Option<f64>,
    pub(crate) status: ServiceDeploymentStatus,
    pub(crate) status_reason: String,
    /// The revisions that ran when it started, with their task counts then.
    pub(crate) sources: Vec<(String, u32)>,
    /// The revision it rolls out.
    pub(crate) target: String,
    pub(crate) desired: u32,
    pub(crate) config: DeploymentConfig,
    /// The circuit breaker's rollback: when it started, and the revision it went back to.
    pub(crate) rollback: Option<(f64, String)>,
    pub(crate) failed_tasks: u32,
}

/// How many events a service keeps.
pub(crate) const MAX_EVENTS: usize = 100;

/// The rollout state of a deployment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RolloutState {
    InProgress,
    Completed,
    Failed,
}

impl RolloutState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "IN_PROGRESS",
            Self::Completed => "COMPLETED",
            Self::Failed => "FAILED",
        }
    }
}

/// A deployment of a service.
#[derive(Clone, Debug)]
pub(crate) struct Deployment {
    pub(crate) id: String,
    pub(crate) task_definition: String,
    pub(crate) failed_tasks: u32,
    pub(crate) created_at: f64,
    pub(crate) updated_at: f64,
    pub(crate) rollout_state: RolloutState,
    pub(crate) rollout_state_reason: String,
    /// Whether the circuit breaker made this deployment to roll back a failed one.
    pub(crate) is_rollback: bool,
    /// The id of the service revision it rolls out.
    pub(crate) revision: String,
    /// The id of the service deployment it belongs to (a rollback belongs to the one it
    /// rolls back).
    pub(crate) record: String,
}

/// The lifecycle stage of a task (`lastStatus`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    Provisioning,
    Pending,
    Running,
    Stopping,
    Stopped,
}

impl Phase {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Provisioning => "PROVISIONING",
            Self::Pending => "PENDING",
            Self::Running => "RUNNING",
            Self::Stopping => "STOPPING",
            Self::Stopped => "STOPPED",
        }
    }

    /// Counted in `pendingCount`.
    pub(crate) fn is_pending(self) -> bool {
        matches!(self, Self::Provisioning | Self::Pending)
    }
}

/// A task (state only: the virtual runtime runs nothing).
#[derive(Clone, Debug)]
pub(crate) struct Task {
    pub(crate) id: String,
    pub(crate) arn: String,
    pub(crate) cluster_arn: String,
    pub(crate) task_definition: String,
    /// The service that started the task; empty for RunTask's tasks.
    pub(crate) service: String,
    /// The deployment that started the task; empty for RunTask's tasks.
    pub(crate) deployment: String,
    /// `startedBy`: the deployment id for a service's tasks, RunTask's `startedBy`.
    pub(crate) started_by: Option<String>,
    /// `group`: `service:NAME`, or RunTask's `group` (default `family:FAMILY`).
    pub(crate) group: String,
    /// RunTask's `overrides`, as given.
    pub(crate) overrides: Option<Value>,
    /// The elastic network interface of an awsvpc task.
    pub(crate) eni: Option<Eni>,
    pub(crate) launch_type: String,
    pub(crate) containers: Vec<ContainerSpec>,
    pub(crate) cpu: Option<String>,
    pub(crate) memory: Option<String>,
    pub(crate) phase: Phase,
    /// `RUNNING` until the task is meant to stop.
    pub(crate) desired_running: bool,
    /// When the next lifecycle step is due.
    pub(crate) next_at: f64,
    pub(crate) healthy: bool,
    /// How long after it runs the task's health is decided (grace period, health check).
    pub(crate) health_delay: f64,
    pub(crate) faults: Vec<TaskFaultKind>,
    pub(crate) times: TaskTimes,
    pub(crate) stopped_reason: Option<String>,
    pub(crate) stop_code: Option<&'static str>,
    pub(crate) exit_code: Option<i32>,
    /// Whether the task failed (counted in its deployment's `failedTasks`).
    pub(crate) failed: bool,
    pub(crate) tags: Vec<Tag>,
}

/// The elastic network interface of an awsvpc task.
#[derive(Clone, Debug)]
pub(crate) struct Eni {
    /// The id of the task's attachment (a UUID).
    pub(crate) attachment_id: String,
    pub(crate) subnet_id: String,
    pub(crate) interface_id: String,
    pub(crate) mac_address: String,
    pub(crate) private_ip: String,
    pub(crate) private_dns_name: String,
}

/// The timestamps of a task's lifecycle.
#[derive(Clone, Debug, Default)]
pub(crate) struct TaskTimes {
    pub(crate) created: f64,
    pub(crate) pull_started: Option<f64>,
    pub(crate) pull_stopped: Option<f64>,
    pub(crate) started: Option<f64>,
    pub(crate) stopping: Option<f64>,
    pub(crate) stopped: Option<f64>,
}

impl Task {
    pub(crate) fn is_active(&self) -> bool {
        self.desired_running && self.phase != Phase::Stopped
    }
}

/// One line of a service's event log.
#[derive(Clone, Debug)]
pub(crate) struct ServiceEvent {
    pub(crate) id: String,
    pub(crate) created_at: f64,
    pub(crate) message: String,
}

/// Generators of ECS-shaped identifiers.
pub(crate) struct Ids;

impl Ids {
    /// `ecs-svc/` and 19 digits.
    pub(crate) fn deployment(rng: &mut StdRng) -> String {
        format!(
            "ecs-svc/{}",
            rng.random_range(1_000_000_000_000_000_000_u64..10_000_000_000_000_000_000)
        )
    }

    /// 32 lowercase hex digits, the id of a task.
    pub(crate) fn task(rng: &mut StdRng) -> String {
        format!("{:032x}", rng.random::<u128>())
    }

    /// 21 letters and digits, the id of a service deployment.
    pub(crate) fn service_deployment(rng: &mut StdRng) -> String {
        const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        (0..21)
            .map(|_| char::from(CHARS[rng.random_range(0..CHARS.len())]))
            .collect()
    }

    /// A UUID-shaped id, as ECS uses for events and containers.
    pub(crate) fn uuid(rng: &mut StdRng) -> String {
        let hex = Self::task(rng);
        format!(
            "{}-{}-{}-{}-{}",
            &hex[..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..]
        )
    }
}
