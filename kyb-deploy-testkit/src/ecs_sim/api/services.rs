//! CreateService, UpdateService, DescribeServices and ListServices.

use serde_json::{Value, json};

use super::clusters::missing_arn;
use super::{ApiError, Call, resource_name, with_next};
use crate::ecs_sim::model::{Deployment, DeploymentConfig, Ids, RolloutState, Service};
use crate::ecs_sim::render;

pub(super) fn create(call: &mut Call<'_>) -> Result<Value, ApiError> {
    let name = call.required_str("serviceName")?.to_owned();
    let valid = name.len() <= 255
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid {
        return Err(ApiError::invalid(
            "Service names can only contain letters, numbers, hyphens and underscores, and \
             be up to 255 characters long.",
        ));
    }
    let desired = desired_count(call)?.unwrap_or(1);
    let launch_type = call.str("launchType")?.unwrap_or("EC2").to_owned();
    if !["EC2", "FARGATE", "EXTERNAL"].contains(&launch_type.as_str()) {
        return Err(ApiError::invalid(format!(
            "Invalid launchType: {launch_type}"
        )));
    }
    let config = deployment_config(call, DeploymentConfig::default())?;
    let grace = grace_period(call)?;
    let tags = call.tags()?;
    let network = call
        .body
        .get("networkConfiguration")
        .filter(|v| !v.is_null())
        .cloned();
    let task_definition = task_definition(call, call.required_str("taskDefinition")?)?;
    let (arn, network_mode, fargate_ready) = {
        let definition = call
            .region
            .task_definition(&task_definition)
            .expect("the task definition was just resolved");
        let mode = definition.body.get("networkMode").and_then(Value::as_str);
        let fargate = definition
            .body
            .get("compatibilities")
            .and_then(Value::as_array)
            .is_some_and(|list| list.iter().any(|c| c == "FARGATE"));
        (definition.arn.clone(), mode == Some("awsvpc"), fargate)
    };
    if launch_type == "FARGATE" && !fargate_ready {
        return Err(ApiError::invalid(
            "Task definition does not support launch_type FARGATE.",
        ));
    }
    if network_mode && network.is_none() {
        return Err(ApiError::invalid(
            "Network Configuration must be provided when networkMode 'awsvpc' is specified.",
        ));
    }
    let now = call.now;
    let deployment = new_deployment(call, &arn);
    let region_arn = call
        .region
        .arn(&format!("service/{}/{name}", call.cluster_name()?));
    let cluster = call.cluster()?;
    if cluster.services.contains_key(&name) {
        return Err(ApiError::invalid("Creation of service was not idempotent."));
    }
    let service = Service {
        name: name.clone(),
        arn: region_arn,
        cluster_arn: cluster.arn.clone(),
        created_at: now,
        desired_count: desired,
        task_definition: arn,
        platform_version: (launch_type == "FARGATE").then(|| "LATEST".to_owned()),
        launch_type,
        network_configuration: network,
        health_check_grace_period: grace,
        config,
        deployments: vec![deployment],
        events: Vec::new(),
        tags,
        last_completed: None,
        steady: false,
    };
    let response = json!({"service": render::service(&service, &cluster.tasks, true)});
    cluster.services.insert(name, service);
    Ok(response)
}

pub(super) fn update(call: &mut Call<'_>) -> Result<Value, ApiError> {
    let name = resource_name(call.required_str("service")?).to_owned();
    let desired = desired_count(call)?;
    let force = call.bool("forceNewDeployment")?.unwrap_or(false);
    let grace = grace_period(call)?;
    let network = call
        .body
        .get("networkConfiguration")
        .filter(|v| !v.is_null())
        .cloned();
    let new_definition = match call.str("taskDefinition")? {
        Some(reference) => Some(task_definition(call, reference)?),
        None => None,
    };
    let (current, current_definition) = {
        let cluster = call.cluster()?;
        let service = cluster
            .services
            .get(&name)
            .ok_or_else(ApiError::service_not_found)?;
        (
            service.config,
            service.deployments[0].task_definition.clone(),
        )
    };
    let config = deployment_config(call, current)?;
    let changes_definition = new_definition
        .as_ref()
        .is_some_and(|arn| *arn != current_definition);
    let deployment = (changes_definition || force).then(|| {
        new_deployment(
            call,
            new_definition.as_deref().unwrap_or(&current_definition),
        )
    });
    let now = call.now;
    let cluster = call.cluster()?;
    let service = cluster
        .services
        .get_mut(&name)
        .expect("the service was looked up above");
    service.config = config;
    if let Some(desired) = desired {
        service.desired_count = desired;
        service.deployments[0].updated_at = now;
        service.steady = false;
    }
    if grace.is_some() {
        service.health_check_grace_period = grace;
    }
    if network.is_some() {
        service.network_configuration = network;
    }
    if let Some(deployment) = deployment {
        service.task_definition = deployment.task_definition.clone();
        service.deployments.insert(0, deployment);
        service.steady = false;
    }
    Ok(json!({"service": render::service(service, &cluster.tasks, false)}))
}

pub(super) fn describe(call: &mut Call<'_>) -> Result<Value, ApiError> {
    let names = call.str_list("services")?;
    if names.is_empty() {
        return Err(ApiError::invalid("services can not be empty."));
    }
    if names.len() > 10 {
        return Err(ApiError::invalid("services can have at most 10 items."));
    }
    let with_tags = call.include_tags()?;
    let cluster_name = call.cluster_name()?;
    let region = &*call.region;
    let cluster = region
        .clusters
        .get(&cluster_name)
        .ok_or_else(ApiError::cluster_not_found)?;
    let mut services = Vec::new();
    let mut failures = Vec::new();
    for reference in &names {
        match cluster.services.get(resource_name(reference)) {
            Some(service) => services.push(render::service(service, &cluster.tasks, with_tags)),
            None => failures.push(json!({
                "arn": missing_arn(region, &format!("service/{cluster_name}"), reference),
                "reason": "MISSING",
            })),
        }
    }
    Ok(json!({"services": services, "failures": failures}))
}

pub(super) fn list(call: &mut Call<'_>) -> Result<Value, ApiError> {
    let launch_type = call.str("launchType")?.map(str::to_owned);
    let strategy = call.str("schedulingStrategy")?;
    if strategy.is_some_and(|s| s != "REPLICA" && s != "DAEMON") {
        return Err(ApiError::invalid("Invalid schedulingStrategy."));
    }
    let daemon_only = strategy == Some("DAEMON");
    let cluster = call.cluster()?;
    let arns: Vec<String> = cluster
        .services
        .values()
        .filter(|s| launch_type.as_ref().is_none_or(|l| *l == s.launch_type))
        .filter(|_| !daemon_only)
        .map(|s| s.arn.clone())
        .collect();
    let (page, next) = call.page(arns, 10, 100)?;
    Ok(with_next(json!({"serviceArns": page}), next))
}

/// Resolves a task definition reference for a service: ACTIVE, and as an ARN.
fn task_definition(call: &Call<'_>, reference: &str) -> Result<String, ApiError> {
    let definition = call
        .region
        .task_definition(reference)
        .ok_or_else(|| ApiError::client("TaskDefinition not found."))?;
    if definition.status != "ACTIVE" {
        return Err(ApiError::client("TaskDefinition is inactive"));
    }
    Ok(definition.arn.clone())
}

fn desired_count(call: &Call<'_>) -> Result<Option<u32>, ApiError> {
    call.int("desiredCount")?
        .map(|count| {
            u32::try_from(count)
                .ok()
                .filter(|&count| count <= 5000)
                .ok_or_else(|| ApiError::invalid("desiredCount must be between 0 and 5000."))
        })
        .transpose()
}

fn grace_period(call: &Call<'_>) -> Result<Option<u32>, ApiError> {
    call.int("healthCheckGracePeriodSeconds")?
        .map(|seconds| {
            u32::try_from(seconds)
                .ok()
                .filter(|&s| s <= 2_147_483_647)
                .ok_or_else(|| {
                    ApiError::invalid("healthCheckGracePeriodSeconds must not be negative.")
                })
        })
        .transpose()
}

/// `deploymentConfiguration` over `current`: the fields given replace the current ones.
fn deployment_config(
    call: &Call<'_>,
    current: DeploymentConfig,
) -> Result<DeploymentConfig, ApiError> {
    let Some(given) = call
        .body
        .get("deploymentConfiguration")
        .filter(|v| !v.is_null())
    else {
        return Ok(current);
    };
    let mut config = current;
    let percent = |name: &str| -> Result<Option<u32>, ApiError> {
        match given.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => value
                .as_u64()
                .and_then(|v| u32::try_from(v).ok())
                .map(Some)
                .ok_or_else(|| ApiError::invalid(format!("{name} must be a positive integer."))),
        }
    };
    if let Some(min) = percent("minimumHealthyPercent")? {
        if min > 100 {
            return Err(ApiError::invalid(
                "minimumHealthyPercent must be between 0 and 100.",
            ));
        }
        config.minimum_healthy_percent = min;
    }
    if let Some(max) = percent("maximumPercent")? {
        if !(100..=2000).contains(&max) {
            return Err(ApiError::invalid(
                "maximumPercent must be between 100 and 2000.",
            ));
        }
        config.maximum_percent = max;
    }
    if let Some(breaker) = given
        .get("deploymentCircuitBreaker")
        .filter(|v| !v.is_null())
    {
        let flag = |name: &str| {
            breaker.get(name).and_then(Value::as_bool).ok_or_else(|| {
                ApiError::invalid(format!("deploymentCircuitBreaker.{name} is required."))
            })
        };
        config.circuit_breaker = flag("enable")?;
        config.rollback = flag("rollback")?;
    }
    Ok(config)
}

fn new_deployment(call: &mut Call<'_>, task_definition: &str) -> Deployment {
    let mut deployment = pending_deployment(task_definition, call.now);
    deployment.id = Ids::deployment(call.rng);
    deployment.rollout_state_reason = format!("ECS deployment {} in progress.", deployment.id);
    deployment
}

fn pending_deployment(task_definition: &str, now: f64) -> Deployment {
    Deployment {
        id: String::new(),
        task_definition: task_definition.to_owned(),
        failed_tasks: 0,
        created_at: now,
        updated_at: now,
        rollout_state: RolloutState::InProgress,
        rollout_state_reason: String::new(),
        is_rollback: false,
    }
}
