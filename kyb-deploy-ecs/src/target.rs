//! [`EcsTarget`]: an ECS service as a kyb-deploy [`Target`].

mod calls;
mod follow;
mod lookup;
mod notes;
mod spec;
mod verdict;

use std::path::Path;

use aws_sdk_ecs::Client;
use aws_sdk_ecs::types::{DeploymentRolloutState, Service};
use kyb_deploy_core::config::{Config, Environment};
use kyb_deploy_core::{
    CancellationToken, Check, DeployHandle, Error, Plan, PlannedChange, Release, Result, Revision,
    RolloutOutcome, Serving, StageProgress, Target, TargetDescription, Version, async_trait,
};
use time::OffsetDateTime;

use self::calls::{Registered, primary};
pub use self::spec::EcsTargetSpec;
use self::spec::check_spec;
use crate::client::{ThrottleRetry, load_sdk_config};
use crate::error::CallError;
use crate::poller::ServicePoller;
use crate::settings::{EcsPoll, EcsSettings};
use crate::task_definition::{TaskDefinitionSpec, diff};

/// How many task definition revisions `history` describes.
const HISTORY_REVISIONS: i32 = 10;

/// How many recent service events `describe` reports.
const EVENTS_DESCRIBED: usize = 5;

/// Event times in `describe`, as the CLI prints times (UTC).
const EVENT_TIME: &[time::format_description::FormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]Z");

/// An ECS service (Fargate or EC2) as a deployment target.
///
/// A deployment registers a task definition (only when it differs from the current one)
/// and updates the service with it; the rollout is followed through DescribeServices
/// until ECS reports *our* deployment PRIMARY and COMPLETED with every task running. A
/// circuit-breaker rollback is a failure, reported with the release ECS went back to.
///
/// ```no_run
/// # async fn example(client: aws_sdk_ecs::Client, env: kyb_deploy_core::config::Environment) -> kyb_deploy_core::Result<()> {
/// use kyb_deploy_core::Target as _;
/// use kyb_deploy_ecs::{EcsSettings, EcsTarget, EcsTargetSpec};
///
/// let spec = EcsTargetSpec::from_environment(&env, std::path::Path::new("."))?;
/// let target = EcsTarget::new(client, spec, EcsSettings::of(&env)?.poll);
/// println!("{:?}", target.current_release().await?);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct EcsTarget {
    client: Client,
    spec: EcsTargetSpec,
    poller: ServicePoller,
    retry: ThrottleRetry,
}

impl EcsTarget {
    /// A target calling ECS through `client`, polling at the pace of `poll`.
    pub fn new(client: Client, spec: EcsTargetSpec, poll: EcsPoll) -> Self {
        let retry = ThrottleRetry::default();
        Self {
            poller: ServicePoller::new(client.clone(), poll, retry),
            client,
            spec,
            retry,
        }
    }

    /// The target of an ECS environment of `config`, with a client from the standard AWS
    /// configuration chain (see [`load_sdk_config`]).
    ///
    /// # Errors
    ///
    /// See [`EcsTargetSpec::from_environment`] and [`load_sdk_config`].
    pub async fn from_config(environment: &Environment, config: &Config) -> Result<Self> {
        let base = config
            .source
            .as_deref()
            .and_then(Path::parent)
            .unwrap_or(Path::new("."));
        let spec = EcsTargetSpec::from_environment(environment, base)?;
        let settings = EcsSettings::of(environment)?;
        let sdk = load_sdk_config(&settings, &environment.name).await?;
        Ok(Self::new(Client::new(&sdk), spec, settings.poll))
    }

    /// Shares `poller` with other targets, so that their DescribeServices calls are
    /// batched (ten services per call) and share one call budget.
    #[must_use]
    pub fn with_poller(mut self, poller: ServicePoller) -> Self {
        self.poller = poller;
        self
    }

    /// Retries throttled calls with `retry` instead of the default.
    #[must_use]
    pub fn with_throttle_retry(mut self, retry: ThrottleRetry) -> Self {
        self.retry = retry;
        self
    }

    /// The poller following this target's rollouts.
    pub fn poller(&self) -> &ServicePoller {
        &self.poller
    }

    /// What this target deploys to.
    pub fn spec(&self) -> &EcsTargetSpec {
        &self.spec
    }

    /// The release a registered task definition runs: the version from its label, else
    /// from its image tag, else `<family>-<revision>`.
    fn release_of(&self, registered: &Registered) -> Release {
        let container = self.spec.container.as_deref();
        let image = registered
            .spec
            .image(container)
            .unwrap_or_default()
            .to_owned();
        let version = registered
            .spec
            .version_label(container)
            .and_then(|v| Version::parse(v).ok())
            .or_else(|| image_tag(&image).and_then(|t| Version::parse(t).ok()))
            .or_else(|| {
                Version::parse(&format!(
                    "{}-{}",
                    registered.spec.family, registered.revision
                ))
                .ok()
            })
            .unwrap_or_else(|| Version::parse("unknown").expect("a valid tag"));
        Release {
            version,
            image,
            platform_ref: Some(registered.arn.clone()),
            record_id: None,
        }
    }

    /// The task definition a release should run: the template, else the service's
    /// current one, with the release filled in and checked.
    fn desired_spec(
        &self,
        release: &Release,
        current: Option<&Registered>,
    ) -> Result<TaskDefinitionSpec> {
        let base = match (&self.spec.template, current) {
            (Some(template), _) => template.clone(),
            (None, Some(current)) => current.spec.clone(),
            (None, None) => {
                return Err(Error::Config {
                    message: format!(
                        "service {} has no task definition to start from; set environments.{}.ecs.task_definition to a template",
                        self.spec.service, self.spec.environment
                    ),
                });
            }
        };
        let origin = match &self.spec.template {
            Some(_) => "template".to_owned(),
            None => current.map_or_else(String::new, |c| c.arn.clone()),
        };
        let spec = base.with_release(
            self.spec.container.as_deref(),
            &release.image,
            &release.version,
            &self.spec.env,
        )?;
        check_spec(&spec, self.spec.container.as_deref(), &origin)?;
        Ok(spec)
    }

    /// The service and the task definition it runs now.
    async fn current(&self) -> Result<(Service, Option<Registered>)> {
        let service = self.service().await?;
        let arn = primary(&service)
            .and_then(|d| d.task_definition.clone())
            .or_else(|| service.task_definition.clone());
        let registered = match arn {
            Some(arn) => Some(self.task_definition(&arn).await?),
            None => None,
        };
        Ok((service, registered))
    }

    /// Starts a rollout of `task_definition` (or joins the one serving it) for `release`.
    async fn roll_out(
        &self,
        release: &Release,
        task_definition: &str,
        before: &Service,
    ) -> Result<DeployHandle> {
        let deployment = self.update_service(task_definition, before).await?;
        let rollout_id = deployment.id.clone().unwrap_or_default();
        Ok(DeployHandle {
            rollout_id,
            release: Release {
                platform_ref: Some(task_definition.to_owned()),
                ..release.clone()
            },
            started_at: OffsetDateTime::now_utc(),
            candidate_endpoint: None,
            // ECS lists a service's events newest first: the newest before the update is
            // where following the rollout starts reporting.
            cursor: before.events().first().and_then(|e| e.id.clone()),
        })
    }

    /// The service settings a deployment changes.
    fn service_changes(&self, service: &Service) -> Vec<PlannedChange> {
        let d = &self.spec.deployment;
        let config = service.deployment_configuration.as_ref();
        let breaker = config.and_then(|c| c.deployment_circuit_breaker.as_ref());
        let mut changes = Vec::new();
        let mut compare = |field: &str, from: Option<String>, to: String| {
            if from.as_deref() != Some(to.as_str()) {
                changes.push(PlannedChange {
                    resource: format!("service {}", self.spec.service),
                    field: field.to_owned(),
                    from,
                    to: Some(to),
                });
            }
        };
        compare(
            "deploymentConfiguration.minimumHealthyPercent",
            config
                .and_then(|c| c.minimum_healthy_percent)
                .map(|v| v.to_string()),
            d.minimum_healthy_percent.to_string(),
        );
        compare(
            "deploymentConfiguration.maximumPercent",
            config
                .and_then(|c| c.maximum_percent)
                .map(|v| v.to_string()),
            d.maximum_percent.to_string(),
        );
        compare(
            "deploymentConfiguration.deploymentCircuitBreaker",
            breaker.map(|b| format!("enable {}, rollback {}", b.enable, b.rollback)),
            format!(
                "enable {}, rollback {}",
                d.circuit_breaker, d.circuit_breaker_rollback
            ),
        );
        if !service.load_balancers().is_empty() {
            compare(
                "healthCheckGracePeriodSeconds",
                service
                    .health_check_grace_period_seconds
                    .map(|v| v.to_string()),
                d.health_check_grace_period.as_secs().to_string(),
            );
        }
        changes
    }
}

#[async_trait]
impl Target for EcsTarget {
    fn kind(&self) -> &str {
        "ecs"
    }

    async fn preflight(&self) -> Vec<Check> {
        let name = "ecs service";
        match self.service().await {
            Ok(service) => vec![Check::pass(
                name,
                format!(
                    "{} in cluster {} answers ({}, {} of {} tasks running)",
                    self.spec.service,
                    self.spec.cluster,
                    service.status.as_deref().unwrap_or("?"),
                    service.running_count,
                    service.desired_count
                ),
            )],
            Err(e) => {
                // A failed call says what it was and the fix of its class; anything else
                // (an answer without the service) points at the settings.
                let call =
                    std::error::Error::source(&e).and_then(|s| s.downcast_ref::<CallError>());
                match call {
                    Some(call) => vec![Check::fail(
                        name,
                        format!("{}: {}", call.operation, call.answer),
                        call.fix()
                            .unwrap_or("AWS's answer above says what is wrong"),
                    )],
                    None => vec![Check::fail(
                        name,
                        e.chain(),
                        "check ecs.cluster, ecs.service and ecs.region",
                    )],
                }
            }
        }
    }

    async fn describe(&self) -> Result<TargetDescription> {
        let (service, registered) = self.current().await?;
        let mut details = vec![
            ("cluster".to_owned(), self.spec.cluster.clone()),
            ("service".to_owned(), self.spec.service.clone()),
            (
                "status".to_owned(),
                service.status.clone().unwrap_or_default(),
            ),
            (
                "tasks".to_owned(),
                format!(
                    "{} running, {} pending, {} desired",
                    service.running_count, service.pending_count, service.desired_count
                ),
            ),
        ];
        if let Some(r) = &registered {
            details.push(("task definition".to_owned(), r.arn.clone()));
            details.push(("version".to_owned(), self.release_of(r).version.to_string()));
        }
        for d in service.deployments() {
            details.push((
                format!("deployment {}", d.id.as_deref().unwrap_or("?")),
                format!(
                    "{} {}, {} of {} running, {} pending, {} failed, {}",
                    d.status.as_deref().unwrap_or("?"),
                    d.rollout_state
                        .as_ref()
                        .map_or("?", DeploymentRolloutState::as_str),
                    d.running_count,
                    d.desired_count,
                    d.pending_count,
                    d.failed_tasks,
                    d.task_definition.as_deref().unwrap_or("?")
                ),
            ));
        }
        for e in service.events().iter().take(EVENTS_DESCRIBED) {
            let at = e
                .created_at
                .and_then(|t| OffsetDateTime::from_unix_timestamp(t.secs()).ok())
                .and_then(|t| t.format(EVENT_TIME).ok())
                .unwrap_or_default();
            details.push((format!("event {at}"), e.message.clone().unwrap_or_default()));
        }
        Ok(TargetDescription {
            kind: "ecs".into(),
            name: format!(
                "service {} in cluster {}",
                self.spec.service, self.spec.cluster
            ),
            endpoint: None,
            details,
        })
    }

    async fn current_release(&self) -> Result<Option<Release>> {
        let (_, registered) = self.current().await?;
        Ok(registered.map(|r| self.release_of(&r)))
    }

    async fn plan(&self, desired: &Release) -> Result<Plan> {
        let (service, current) = self.current().await?;
        // A release deployed before (a rollback) goes back to its own task definition.
        let (spec, registered_as) = match &desired.platform_ref {
            Some(arn) if family_of(arn).is_some() => {
                let recorded = self.task_definition(arn).await?;
                let label = if recorded.inactive {
                    format!("{arn} registered again (it was deregistered)")
                } else {
                    arn.clone()
                };
                (recorded.spec, label)
            }
            _ => {
                let spec = self.desired_spec(desired, current.as_ref())?;
                let label = format!("a new revision of {}", spec.family);
                (spec, label)
            }
        };
        let mut changes = diff(current.as_ref().map(|c| &c.spec), &spec);
        if !changes.is_empty() {
            changes.insert(
                0,
                PlannedChange {
                    resource: format!("service {}", self.spec.service),
                    field: "taskDefinition".into(),
                    from: current.as_ref().map(|c| c.arn.clone()),
                    to: Some(registered_as),
                },
            );
        }
        changes.extend(self.service_changes(&service));
        Ok(Plan {
            current: current.map(|c| self.release_of(&c)),
            changes,
        })
    }

    async fn deploy(&self, desired: &Release) -> Result<DeployHandle> {
        let (service, current) = self.current().await?;
        let spec = self.desired_spec(desired, current.as_ref())?;
        let (arn, _) = self.ensure_registered(&spec, current.as_ref()).await?;
        self.roll_out(desired, &arn, &service).await
    }

    async fn find_rollout(&self, desired: &Release) -> Result<Option<DeployHandle>> {
        self.rollout_of(desired).await
    }

    async fn restarts(&self, handle: &DeployHandle) -> Result<Option<u64>> {
        // Tasks of a deployment that stopped: crashed, failed health checks, or replaced.
        let stopped = self.stopped_tasks(&handle.rollout_id).await?;
        Ok(Some(u64::try_from(stopped.len()).unwrap_or(u64::MAX)))
    }

    async fn serving(&self) -> Result<Vec<Serving>> {
        self.deployments_serving().await
    }

    async fn mark_verified(&self, release: &Release, run_id: &str) -> Result<bool> {
        self.leave_note(release, run_id).await?;
        Ok(true)
    }

    async fn verified_by(&self, run_id: &str) -> Result<Option<Release>> {
        self.read_note(run_id).await
    }

    async fn wait(
        &self,
        handle: &DeployHandle,
        progress: &StageProgress,
        cancel: &CancellationToken,
    ) -> Result<RolloutOutcome> {
        self.follow(handle, progress, cancel).await
    }

    async fn rollback(&self, to: &Release) -> Result<DeployHandle> {
        let (service, current) = self.current().await?;
        let recorded = match &to.platform_ref {
            Some(arn) if family_of(arn).is_some() => Some(self.task_definition(arn).await?),
            _ => None,
        };
        let arn = match recorded {
            Some(r) if !r.inactive => r.arn,
            // Deregistered since: ECS starts no tasks from it, so the same definition is
            // registered again.
            Some(r) => self.ensure_registered(&r.spec, current.as_ref()).await?.0,
            None => {
                let spec = self.desired_spec(to, current.as_ref())?;
                self.ensure_registered(&spec, current.as_ref()).await?.0
            }
        };
        // ECS may already run it (its circuit breaker rolled back): do not roll back twice.
        if let Some(p) = primary(&service)
            && p.task_definition.as_deref() == Some(arn.as_str())
            && p.rollout_state != Some(DeploymentRolloutState::Failed)
        {
            return Ok(DeployHandle {
                rollout_id: p.id.clone().unwrap_or_default(),
                release: Release {
                    platform_ref: Some(arn),
                    ..to.clone()
                },
                started_at: OffsetDateTime::now_utc(),
                candidate_endpoint: None,
                cursor: None,
            });
        }
        self.roll_out(to, &arn, &service).await
    }

    async fn history(&self) -> Result<Vec<Revision>> {
        let (service, current) = self.current().await?;
        let Some(current) = current else {
            return Ok(Vec::new());
        };
        let family = current.spec.family.clone();
        let listed = self
            .retry
            .run(|| {
                self.client
                    .list_task_definitions()
                    .family_prefix(&family)
                    .sort(aws_sdk_ecs::types::SortOrder::Desc)
                    .max_results(HISTORY_REVISIONS * 2)
                    .send()
            })
            .await
            .map_err(|e| crate::client::call_error("ListTaskDefinitions", &e))?;
        let running = primary(&service).and_then(|d| d.task_definition.as_deref());
        // Newest first by revision number, whatever order the server lists them in.
        let mut arns: Vec<&String> = listed
            .task_definition_arns()
            .iter()
            .filter(|arn| family_of(arn) == Some(family.as_str()))
            .collect();
        arns.sort_by_key(|arn| std::cmp::Reverse(revision_of(arn)));
        let mut revisions = Vec::new();
        for arn in arns.into_iter().take(HISTORY_REVISIONS as usize) {
            let registered = self.task_definition(arn).await?;
            revisions.push(Revision {
                active: running == Some(arn.as_str()),
                deployed_at: registered
                    .registered_at
                    .and_then(|t| OffsetDateTime::from_unix_timestamp(t.secs()).ok()),
                release: self.release_of(&registered),
            });
        }
        Ok(revisions)
    }
}

/// The revision number of a task definition ARN (`...:task-definition/family:3` is 3).
fn revision_of(arn: &str) -> u32 {
    arn.rsplit_once(':')
        .and_then(|(_, r)| r.parse().ok())
        .unwrap_or(0)
}

/// The family of a task definition ARN (`...:task-definition/family:3`).
fn family_of(arn: &str) -> Option<&str> {
    let name = arn.rsplit_once(":task-definition/")?.1;
    Some(name.rsplit_once(':').map_or(name, |(f, _)| f))
}

/// The tag of an image reference without a digest (`repo:tag`).
fn image_tag(image: &str) -> Option<&str> {
    if image.contains('@') {
        return None;
    }
    let last = image.rsplit('/').next()?;
    last.split_once(':').map(|(_, tag)| tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_and_tags_come_from_references() {
        assert_eq!(
            family_of("arn:aws:ecs:us-east-1:123456789012:task-definition/kyb-api:12"),
            Some("kyb-api")
        );
        assert_eq!(family_of("kyb-api:12"), None);
        assert_eq!(
            revision_of("arn:aws:ecs:us-east-1:123456789012:task-definition/kyb-api:12"),
            12
        );
        assert_eq!(image_tag("127.0.0.1:5000/kyb/api:1.2.3"), Some("1.2.3"));
        assert_eq!(image_tag("127.0.0.1:5000/kyb/api"), None);
        assert_eq!(image_tag("repo/api@sha256:abc"), None);
    }
}
