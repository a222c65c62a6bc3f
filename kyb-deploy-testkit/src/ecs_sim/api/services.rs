//! CreateService, UpdateService, DescribeServices, ListServices and DeleteService.

use serde_json::{Value, json};

use super::clusters::missing_arn;
use super::{ApiError, Call, resource_name, with_next};
use crate::ecs_sim::lifecycle::stop;
use crate::ecs_sim::model::{
    Deployment, DeploymentConfig, Ids, RolloutState, Service, ServiceStatus,
};
use crate::ecs_sim::{network as awsvpc, render, service_deployments};

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
    let given_launch_type = call.str("launchType")?.map(str::to_owned);
    let mut strategy = capacity_provider_strategy(call)?;
    if given_launch_type.is_some() && strategy.is_some() {
        return Err(ApiError::invalid(
            "Specifying both a launch type and capacity provider strategy is not supported. Remove one and try again.",
        ));
    }
    if given_launch_type.is_none() && strategy.is_none() {
        // Without either, the cluster's default strategy places the service.
        let default = call.cluster()?.default_strategy.clone();
        strategy = default
            .as_array()
            .is_some_and(|a| !a.is_empty())
            .then_some(default);
    }
    // Fargate capacity providers run Fargate tasks: the same checks apply.
    let launch_type = match (&given_launch_type, &strategy) {
        (Some(given), _) => given.clone(),
        (None, Some(_)) => "FARGATE".to_owned(),
        (None, None) => "EC2".to_owned(),
    };
    if !["EC2", "FARGATE", "EXTERNAL"].contains(&launch_type.as_str()) {
        return Err(ApiError::invalid(format!(
            "Invalid launchType: {launch_type}"
        )));
    }
    let options = ServiceOptions::of(call, None)?;
    let platform_version = match (call.str("platformVersion")?, launch_type.as_str()) {
        (Some(_), "EC2" | "EXTERNAL") => {
            return Err(ApiError::invalid(
                "The platform version must be null when specifying an EC2 launch type.",
            ));
        }
        (Some(version), _) => Some(version.to_owned()),
        (None, "FARGATE") => Some("LATEST".to_owned()),
        (None, _) => None,
    };
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
    if let Some(network) = &network {
        awsvpc::check(network, call.network)?;
    }
    let load_balancers = load_balancers(call, &arn)?.unwrap_or_else(|| json!([]));
    let now = call.now;
    let deployment = new_deployment(call, &arn);
    let region_arn = call
        .region
        .arn(&format!("service/{}/{name}", call.cluster_name()?));
    let cluster = call.cluster()?;
    // A service of the same name blocks the name until it is INACTIVE.
    let taken = cluster
        .services
        .get(&name)
        .is_some_and(|s| s.status != ServiceStatus::Inactive);
    if taken {
        return Err(ApiError::invalid("Creation of service was not idempotent."));
    }
    let mut service = Service {
        name: name.clone(),
        arn: region_arn,
        cluster_arn: cluster.arn.clone(),
        created_at: now,
        desired_count: desired,
        task_definition: arn,
        platform_version,
        launch_type,
        network_configuration: network,
        health_check_grace_period: grace,
        load_balancers,
        capacity_provider_strategy: strategy,
        deployment_controller: options.deployment_controller,
        enable_execute_command: options.enable_execute_command,
        propagate_tags: options.propagate_tags,
        enable_ecs_managed_tags: options.enable_ecs_managed_tags,
        config,
        deployments: vec![deployment],
        events: Vec::new(),
        tags,
        last_completed: None,
        steady: false,
        status: ServiceStatus::Active,
        deleted_at: None,
        revisions: Vec::new(),
        history: Vec::new(),
    };
    let settings = render::revision_settings(
        &service,
        call.region.task_definition(&service.task_definition),
    );
    service_deployments::started(&mut service, &[], settings, now, call.rng);
    let cluster = call.cluster()?;
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
    let (current, current_definition, current_options) = {
        let cluster = call.cluster()?;
        let service = cluster
            .services
            .get(&name)
            .ok_or_else(ApiError::service_not_found)?;
        if service.status != ServiceStatus::Active {
            return Err(ApiError::new(
                "ServiceNotActiveException",
                "Service was not ACTIVE.",
            ));
        }
        (
            service.config,
            service.deployments[0].task_definition.clone(),
            ServiceOptions::from(service),
        )
    };
    let controller = current_options.deployment_controller.clone();
    if new_definition.is_some() && controller != "ECS" {
        return Err(ApiError::invalid(format!(
            "Unable to update task definition on services with a {controller} deployment controller.{}",
            if controller == "CODE_DEPLOY" {
                " Use AWS CodeDeploy to trigger a new deployment."
            } else {
                ""
            }
        )));
    }
    if let Some(network) = &network {
        awsvpc::check(network, call.network)?;
    }
    let options = ServiceOptions::of(call, Some(current_options))?;
    let strategy = capacity_provider_strategy(call)?;
    let load_balancers = load_balancers(
        call,
        new_definition.as_deref().unwrap_or(&current_definition),
    )?;
    let platform_version = call.str("platformVersion")?.map(str::to_owned);
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
    let cluster_name = call.cluster_name()?;
    let cluster = call
        .region
        .clusters
        .get_mut(&cluster_name)
        .expect("the cluster was looked up above");
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
    if let Some(load_balancers) = load_balancers {
        service.load_balancers = load_balancers;
    }
    if strategy.is_some() {
        service.capacity_provider_strategy = strategy;
    }
    if platform_version.is_some() && service.launch_type == "FARGATE" {
        service.platform_version = platform_version;
    }
    service.enable_execute_command = options.enable_execute_command;
    service.propagate_tags = options.propagate_tags;
    service.enable_ecs_managed_tags = options.enable_ecs_managed_tags;
    if let Some(deployment) = deployment {
        service.task_definition = deployment.task_definition.clone();
        service.deployments.insert(0, deployment);
        service.steady = false;
        let definition = crate::ecs_sim::model::find_task_definition(
            &call.region.families,
            &service.task_definition,
        );
        let settings = render::revision_settings(service, definition);
        service_deployments::started(service, &cluster.tasks, settings, now, call.rng);
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
        .filter(|s| s.status == ServiceStatus::Active)
        .filter(|s| launch_type.as_ref().is_none_or(|l| *l == s.launch_type))
        .filter(|_| !daemon_only)
        .map(|s| s.arn.clone())
        .collect();
    let (page, next) = call.page(arns, 10, 100)?;
    Ok(with_next(json!({"serviceArns": page}), next))
}

/// Deletes a service: scaled to zero (or forced), it goes DRAINING while its tasks stop,
/// then INACTIVE; DescribeServices still shows it, and its name is free once INACTIVE.
pub(super) fn delete(call: &mut Call<'_>) -> Result<Value, ApiError> {
    let name = resource_name(call.required_str("service")?).to_owned();
    let force = call.bool("force")?.unwrap_or(false);
    let now = call.now;
    let cluster = call.cluster()?;
    let service = cluster
        .services
        .get_mut(&name)
        .filter(|s| s.status != ServiceStatus::Inactive)
        .ok_or_else(ApiError::service_not_found)?;
    if service.status == ServiceStatus::Draining {
        return Err(ApiError::new(
            "ServiceNotActiveException",
            "Service was not ACTIVE.",
        ));
    }
    if service.desired_count > 0 && !force {
        return Err(ApiError::invalid(
            "The service cannot be stopped while it is scaled above 0.",
        ));
    }
    service.desired_count = 0;
    service.status = ServiceStatus::Draining;
    service.deleted_at = Some(now);
    service.steady = false;
    service_deployments::deleted(service, now);
    let primary = service.deployments[0].id.clone();
    for task in cluster.tasks.iter_mut().filter(|t| t.service == name) {
        stop(task, now, &primary);
    }
    let service = &cluster.services[&name];
    Ok(json!({"service": render::service(service, &cluster.tasks, false)}))
}

/// Resolves a task definition reference for a service: ACTIVE, and as an ARN.
pub(super) fn task_definition(call: &Call<'_>, reference: &str) -> Result<String, ApiError> {
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
        revision: String::new(),
        record: String::new(),
    }
}

/// The settings of a service that only need storing and returning as ECS does.
struct ServiceOptions {
    deployment_controller: String,
    enable_execute_command: bool,
    propagate_tags: String,
    enable_ecs_managed_tags: bool,
}

impl From<&Service> for ServiceOptions {
    fn from(service: &Service) -> Self {
        Self {
            deployment_controller: service.deployment_controller.clone(),
            enable_execute_command: service.enable_execute_command,
            propagate_tags: service.propagate_tags.clone(),
            enable_ecs_managed_tags: service.enable_ecs_managed_tags,
        }
    }
}

impl ServiceOptions {
    /// The request's options over `current` (an update) or ECS's defaults (a create).
    fn of(call: &Call<'_>, current: Option<Self>) -> Result<Self, ApiError> {
        let current = current.unwrap_or(Self {
            deployment_controller: "ECS".to_owned(),
            enable_execute_command: false,
            propagate_tags: "NONE".to_owned(),
            enable_ecs_managed_tags: false,
        });
        let deployment_controller = match call.body["deploymentController"]["type"].as_str() {
            None => current.deployment_controller,
            Some(kind @ ("ECS" | "CODE_DEPLOY" | "EXTERNAL")) => kind.to_owned(),
            Some(other) => {
                return Err(ApiError::invalid(format!(
                    "Invalid deploymentController type: {other}"
                )));
            }
        };
        let propagate_tags = match call.str("propagateTags")? {
            None => current.propagate_tags,
            Some(value @ ("NONE" | "SERVICE" | "TASK_DEFINITION")) => value.to_owned(),
            Some(other) => {
                return Err(ApiError::invalid(format!(
                    "Invalid propagateTags value: {other}"
                )));
            }
        };
        Ok(Self {
            deployment_controller,
            enable_execute_command: call
                .bool("enableExecuteCommand")?
                .unwrap_or(current.enable_execute_command),
            propagate_tags,
            enable_ecs_managed_tags: call
                .bool("enableECSManagedTags")?
                .unwrap_or(current.enable_ecs_managed_tags),
        })
    }
}

/// `capacityProviderStrategy`, checked against the cluster's capacity providers.
pub(super) fn capacity_provider_strategy(call: &mut Call<'_>) -> Result<Option<Value>, ApiError> {
    let Some(items) = call
        .body
        .get("capacityProviderStrategy")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
        .cloned()
    else {
        return Ok(None);
    };
    let providers = call.cluster()?.capacity_providers.clone();
    for item in &items {
        let provider = item["capacityProvider"].as_str().unwrap_or_default();
        if !providers.iter().any(|p| p == provider) {
            return Err(ApiError::invalid(
                "The specified capacity provider strategy cannot contain a capacity provider that is not associated with the cluster. Associate the capacity provider with the cluster or specify a valid capacity provider and try again.",
            ));
        }
        if item["weight"]
            .as_i64()
            .is_some_and(|w| !(0..=1000).contains(&w))
            || item["base"]
                .as_i64()
                .is_some_and(|b| !(0..=100_000).contains(&b))
        {
            return Err(ApiError::invalid(
                "The capacity provider strategy weight must be between 0 and 1000 and its base between 0 and 100000.",
            ));
        }
    }
    Ok(Some(Value::Array(items)))
}

/// `loadBalancers`, each naming a container and port of the task definition `arn`.
fn load_balancers(call: &Call<'_>, arn: &str) -> Result<Option<Value>, ApiError> {
    let Some(items) = call.body.get("loadBalancers").and_then(Value::as_array) else {
        return Ok(None);
    };
    let definition = call
        .region
        .task_definition(arn)
        .ok_or_else(|| ApiError::client("TaskDefinition not found."))?;
    let containers = definition.body["containerDefinitions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for item in items {
        if item["targetGroupArn"].is_null() && item["loadBalancerName"].is_null() {
            return Err(ApiError::invalid(
                "Either a target group ARN or a load balancer name must be specified.",
            ));
        }
        let name = item["containerName"].as_str().unwrap_or_default();
        let Some(container) = containers.iter().find(|c| c["name"] == name) else {
            return Err(ApiError::invalid(format!(
                "The container {name} does not exist in the task definition."
            )));
        };
        let port = item["containerPort"].as_i64().unwrap_or_default();
        let declared = container["portMappings"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|m| m["containerPort"].as_i64() == Some(port));
        if !declared {
            return Err(ApiError::invalid(format!(
                "The container {name} did not have a container port {port} defined."
            )));
        }
    }
    Ok(Some(Value::Array(items.clone())))
}
