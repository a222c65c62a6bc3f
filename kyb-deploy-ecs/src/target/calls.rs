//! The ECS calls of [`EcsTarget`]: reads that retry through throttling, and the two writes
//! (RegisterTaskDefinition, UpdateService) that never happen twice.

use aws_sdk_ecs::config::retry::RetryConfig;
use aws_sdk_ecs::error::ProvideErrorMetadata as _;
use aws_sdk_ecs::types::{
    Deployment, DeploymentCircuitBreaker, DeploymentConfiguration, DesiredStatus, Service, Task,
    TaskDefinitionField, TaskDefinitionStatus,
};
use kyb_deploy_core::{Error, Result};

use super::EcsTarget;
use crate::client::{call_error, certainly_not_applied, is_throttling};
use crate::task_definition::TaskDefinitionSpec;

/// How many times a write is attempted when it failed in a way that may or may not have
/// been applied, after checking each time that it was not.
const AMBIGUOUS_ATTEMPTS: u32 = 3;

/// A registered task definition: its ARN and registrable fields.
#[derive(Clone, Debug)]
pub(crate) struct Registered {
    pub(crate) arn: String,
    pub(crate) revision: i32,
    pub(crate) spec: TaskDefinitionSpec,
    pub(crate) registered_at: Option<aws_sdk_ecs::primitives::DateTime>,
    /// Deregistered revisions are INACTIVE: ECS starts no new tasks from them.
    pub(crate) inactive: bool,
}

/// A write's client-side retries are off: kyb-deploy decides itself when to repeat one.
fn no_sdk_retries() -> aws_sdk_ecs::config::Builder {
    aws_sdk_ecs::config::Builder::default().retry_config(RetryConfig::disabled())
}

impl EcsTarget {
    /// The service, as DescribeServices returns it.
    pub(crate) async fn service(&self) -> Result<Service> {
        // The same budget as the rollout polling: many deployments starting together do
        // not burst past it.
        self.poller.pace().await;
        let out = self
            .retry
            .run(|| {
                self.client
                    .describe_services()
                    .cluster(&self.spec.cluster)
                    .services(&self.spec.service)
                    .send()
            })
            .await
            .map_err(|e| call_error("DescribeServices", &e))?;
        if let Some(service) = out.services.unwrap_or_default().into_iter().next() {
            if service.status.as_deref() == Some("INACTIVE") {
                return Err(Error::target(
                    "ecs",
                    format!(
                        "service {} in cluster {} is INACTIVE (deleted); create it again, or fix ecs.service",
                        self.spec.service, self.spec.cluster
                    ),
                ));
            }
            return Ok(service);
        }
        Err(Error::target(
            "ecs",
            format!(
                "service {} not found in cluster {}: kyb-deploy updates an existing service; create it first (docs/ecs.md), or fix ecs.service and ecs.cluster",
                self.spec.service, self.spec.cluster
            ),
        ))
    }

    /// A task definition by ARN or `family[:revision]`.
    pub(crate) async fn task_definition(&self, reference: &str) -> Result<Registered> {
        self.find_task_definition(reference).await?.ok_or_else(|| {
            Error::target(
                "ecs",
                format!("task definition {reference} does not exist (DescribeTaskDefinition: ClientException)"),
            )
        })
    }

    /// The latest ACTIVE revision of `family`, if there is one.
    pub(crate) async fn latest_revision(&self, family: &str) -> Result<Option<Registered>> {
        self.find_task_definition(family).await
    }

    /// A task definition by ARN or `family[:revision]`; `None` when ECS has none by that
    /// name (it answers ClientException).
    async fn find_task_definition(&self, reference: &str) -> Result<Option<Registered>> {
        let out = match self
            .retry
            .run(|| {
                self.client
                    .describe_task_definition()
                    .task_definition(reference)
                    .include(TaskDefinitionField::Tags)
                    .send()
            })
            .await
        {
            Ok(out) => out,
            Err(e) if e.code() == Some("ClientException") => return Ok(None),
            Err(e) => return Err(call_error("DescribeTaskDefinition", &e)),
        };
        let tags = out.tags.unwrap_or_default();
        let definition = out.task_definition.ok_or_else(|| {
            Error::target(
                "ecs",
                format!("DescribeTaskDefinition returned no task definition for {reference}"),
            )
        })?;
        Ok(Some(Registered {
            arn: definition.task_definition_arn.clone().unwrap_or_default(),
            revision: definition.revision,
            spec: TaskDefinitionSpec::from_registered(&definition, &tags),
            registered_at: definition.registered_at,
            inactive: definition.status == Some(TaskDefinitionStatus::Inactive),
        }))
    }

    /// Registers `desired`, unless `current` is already the same. A throttled call is
    /// repeated (ECS refused it); a call that failed after it may have been applied is
    /// repeated only after the family's latest revision shows it was not.
    pub(crate) async fn ensure_registered(
        &self,
        desired: &TaskDefinitionSpec,
        current: Option<&Registered>,
    ) -> Result<(String, bool)> {
        if let Some(current) = current.filter(|c| c.spec.same_as(desired)) {
            return Ok((current.arn.clone(), false));
        }
        let before = self
            .latest_revision(&desired.family)
            .await?
            .map(|r| r.revision);
        let mut ambiguous = 0;
        let mut throttled = 1;
        loop {
            let call = desired
                .register_request(self.client.register_task_definition())
                .customize()
                .config_override(no_sdk_retries());
            match call.send().await {
                Ok(out) => {
                    let arn = out
                        .task_definition
                        .and_then(|d| d.task_definition_arn)
                        .unwrap_or_default();
                    return Ok((arn, true));
                }
                Err(e) if is_throttling(&e) && throttled < self.retry.attempts => {
                    throttled += 1;
                    tokio::time::sleep(self.retry.delay_before(throttled)).await;
                }
                Err(e) if certainly_not_applied(&e) || ambiguous + 1 >= AMBIGUOUS_ATTEMPTS => {
                    return Err(call_error("RegisterTaskDefinition", &e));
                }
                Err(_) => {
                    ambiguous += 1;
                    // Did ECS register it before the answer was lost?
                    if let Some(latest) = self.latest_revision(&desired.family).await?
                        && Some(latest.revision) > before
                        && latest.spec.same_as(desired)
                    {
                        return Ok((latest.arn, true));
                    }
                }
            }
        }
    }

    /// Points the service at `task_definition` with the environment's deployment
    /// configuration, and returns the deployment that serves it: a new one, or the
    /// current one when the service already runs this task definition. Never starts two
    /// deployments.
    pub(crate) async fn update_service(
        &self,
        task_definition: &str,
        before: &Service,
    ) -> Result<Deployment> {
        let known: Vec<String> = before
            .deployments()
            .iter()
            .filter_map(|d| d.id.clone())
            .collect();
        let d = &self.spec.deployment;
        let configuration = DeploymentConfiguration::builder()
            .minimum_healthy_percent(i32::try_from(d.minimum_healthy_percent).unwrap_or(100))
            .maximum_percent(i32::try_from(d.maximum_percent).unwrap_or(200))
            .deployment_circuit_breaker(
                DeploymentCircuitBreaker::builder()
                    .enable(d.circuit_breaker)
                    .rollback(d.circuit_breaker && d.circuit_breaker_rollback)
                    .build(),
            )
            .build();
        let grace = i32::try_from(d.health_check_grace_period.as_secs()).unwrap_or(i32::MAX);
        let with_balancers = !before.load_balancers().is_empty();
        let mut ambiguous = 0;
        let mut throttled = 1;
        loop {
            let mut call = self
                .client
                .update_service()
                .cluster(&self.spec.cluster)
                .service(&self.spec.service)
                .task_definition(task_definition)
                .deployment_configuration(configuration.clone());
            // ECS accepts a grace period only for services behind a load balancer.
            if with_balancers {
                call = call.health_check_grace_period_seconds(grace);
            }
            match call
                .customize()
                .config_override(no_sdk_retries())
                .send()
                .await
            {
                Ok(out) => {
                    let service = out.service.unwrap_or_else(|| before.clone());
                    return serving_deployment(&service, task_definition);
                }
                Err(e) if is_throttling(&e) && throttled < self.retry.attempts => {
                    throttled += 1;
                    tokio::time::sleep(self.retry.delay_before(throttled)).await;
                }
                Err(e) if certainly_not_applied(&e) => {
                    return Err(call_error("UpdateService", &e));
                }
                Err(e) if ambiguous + 1 >= AMBIGUOUS_ATTEMPTS => {
                    // The last attempt may have been applied: say so, never "not deployed".
                    return Err(maybe_applied(call_error("UpdateService", &e)));
                }
                Err(_) => {
                    ambiguous += 1;
                    // Did ECS start the deployment before the answer was lost? A failed look
                    // leaves the question open, and so does the error.
                    let now = self.service().await.map_err(maybe_applied)?;
                    if let Some(primary) = primary(&now)
                        && primary.task_definition.as_deref() == Some(task_definition)
                        && primary.id.as_ref().is_some_and(|id| !known.contains(id))
                    {
                        return Ok(primary.clone());
                    }
                }
            }
        }
    }

    /// The stopped tasks of deployment `rollout_id`, newest information first.
    pub(crate) async fn stopped_tasks(&self, rollout_id: &str) -> Result<Vec<Task>> {
        let listed = self
            .retry
            .run(|| {
                self.client
                    .list_tasks()
                    .cluster(&self.spec.cluster)
                    .started_by(rollout_id)
                    .desired_status(DesiredStatus::Stopped)
                    .send()
            })
            .await
            .map_err(|e| call_error("ListTasks", &e))?;
        let arns = listed.task_arns.unwrap_or_default();
        if arns.is_empty() {
            return Ok(Vec::new());
        }
        let mut tasks = Vec::new();
        for chunk in arns.chunks(100) {
            let out = self
                .retry
                .run(|| {
                    self.client
                        .describe_tasks()
                        .cluster(&self.spec.cluster)
                        .set_tasks(Some(chunk.to_vec()))
                        .send()
                })
                .await
                .map_err(|e| call_error("DescribeTasks", &e))?;
            tasks.extend(out.tasks.unwrap_or_default());
        }
        Ok(tasks)
    }
}

/// The same failure, marked as one whose write may have been applied
/// ([`Error::MaybeApplied`]): the pipeline then asks ECS before claiming anything.
pub(crate) fn maybe_applied(error: Error) -> Error {
    match error {
        Error::Target {
            target,
            message,
            source,
        } => Error::maybe_applied(target, message, source),
        other => Error::maybe_applied("ecs", other.to_string(), Some(Box::new(other))),
    }
}

/// The service's PRIMARY deployment.
pub(crate) fn primary(service: &Service) -> Option<&Deployment> {
    service
        .deployments()
        .iter()
        .find(|d| d.status.as_deref() == Some("PRIMARY"))
}

/// The PRIMARY deployment, which must run `task_definition` after an UpdateService.
fn serving_deployment(service: &Service, task_definition: &str) -> Result<Deployment> {
    match primary(service) {
        Some(d) if d.task_definition.as_deref() == Some(task_definition) => Ok(d.clone()),
        Some(d) => Err(Error::target(
            "ecs",
            format!(
                "UpdateService succeeded but the primary deployment {} runs {}, not {task_definition}",
                d.id.as_deref().unwrap_or("?"),
                d.task_definition.as_deref().unwrap_or("?")
            ),
        )),
        None => Err(Error::target(
            "ecs",
            "UpdateService succeeded but the service has no PRIMARY deployment",
        )),
    }
}
