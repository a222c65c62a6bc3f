//! RunTask, StopTask, ListTasks and DescribeTasks.

use serde_json::{Value, json};

use super::clusters::missing_arn;
use super::services::{capacity_provider_strategy, task_definition};
use super::{ApiError, Call, resource_name, with_next};
use crate::ecs_sim::lifecycle::{TaskLaunch, new_task, stop_with};
use crate::ecs_sim::model::{Region, find_task_definition};
use crate::ecs_sim::{network as awsvpc, render};

/// Starts `count` standalone tasks of a task definition, like a migration or a batch job.
/// They go through the lifecycle of a service's tasks and stop when their essential
/// container exits; nothing replaces them.
pub(super) fn run(call: &mut Call<'_>) -> Result<Value, ApiError> {
    let reference = call.required_str("taskDefinition")?.to_owned();
    let count = call.int("count")?.unwrap_or(1);
    if !(1..=10).contains(&count) {
        return Err(ApiError::invalid("count must be between 1 and 10."));
    }
    let started_by = call.str("startedBy")?.map(str::to_owned);
    if started_by.as_ref().is_some_and(|s| s.len() > 128) {
        return Err(ApiError::invalid(
            "startedBy can be up to 128 characters long.",
        ));
    }
    let group = call.str("group")?.map(str::to_owned);
    let given_launch_type = call.str("launchType")?.map(str::to_owned);
    let mut strategy = capacity_provider_strategy(call)?;
    if given_launch_type.is_some() && strategy.is_some() {
        return Err(ApiError::invalid(
            "Specifying both a launch type and capacity provider strategy is not supported. Remove one and try again.",
        ));
    }
    if given_launch_type.is_none() && strategy.is_none() {
        let default = call.cluster()?.default_strategy.clone();
        strategy = default
            .as_array()
            .is_some_and(|a| !a.is_empty())
            .then_some(default);
    }
    let launch_type = match (given_launch_type, &strategy) {
        (Some(given), _) => given,
        (None, Some(_)) => "FARGATE".to_owned(),
        (None, None) => "EC2".to_owned(),
    };
    if !["EC2", "FARGATE", "EXTERNAL"].contains(&launch_type.as_str()) {
        return Err(ApiError::invalid(format!(
            "Invalid launchType: {launch_type}"
        )));
    }
    let network = call
        .body
        .get("networkConfiguration")
        .filter(|v| !v.is_null())
        .cloned();
    let arn = task_definition(call, &reference)?;
    let definition = call
        .region
        .task_definition(&arn)
        .expect("the task definition was just resolved");
    let fargate_ready = definition.body["compatibilities"]
        .as_array()
        .is_some_and(|list| list.iter().any(|c| c == "FARGATE"));
    if launch_type == "FARGATE" && !fargate_ready {
        return Err(ApiError::invalid(
            "Task definition does not support launch_type FARGATE.",
        ));
    }
    if definition.body["networkMode"] == "awsvpc" && network.is_none() {
        return Err(ApiError::invalid(
            "Network Configuration must be provided when networkMode 'awsvpc' is specified.",
        ));
    }
    if let Some(network) = &network {
        awsvpc::check(network, call.network)?;
    }
    let overrides = overrides(call, &arn)?;
    let tags = call.tags()?;
    call.cluster()?;
    let cluster_name = call.cluster_name()?;
    let Region {
        name: region,
        clusters,
        families,
    } = &mut *call.region;
    let cluster = clusters
        .get_mut(&cluster_name)
        .expect("the cluster was looked up above");
    let definition = find_task_definition(families, &arn).expect("resolved above");
    let launch = TaskLaunch {
        region,
        cluster: &cluster.name,
        cluster_arn: &cluster.arn,
        definition,
        launch_type: &launch_type,
        network: network.as_ref(),
        grace: 0.0,
        faults: call.faults,
        docker: call.docker,
        at: call.now,
    };
    let mut tasks = Vec::new();
    for _ in 0..count {
        let mut task = new_task(&launch, call.rng);
        task.started_by.clone_from(&started_by);
        if let Some(group) = &group {
            task.group.clone_from(group);
        }
        task.overrides.clone_from(&overrides);
        task.tags.clone_from(&tags);
        tasks.push(task);
    }
    let rendered: Vec<Value> = tasks.iter().map(|t| render::task(t, false)).collect();
    cluster.tasks.extend(tasks);
    Ok(json!({"tasks": rendered, "failures": []}))
}

/// RunTask's `overrides`: each container override names a container of the task definition
/// `arn`, with a `command` of strings and an `environment` of name/value pairs.
fn overrides(call: &Call<'_>, arn: &str) -> Result<Option<Value>, ApiError> {
    let Some(overrides) = call.body.get("overrides").filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let definition = call
        .region
        .task_definition(arn)
        .expect("the task definition was resolved");
    let items = overrides["containerOverrides"].as_array().cloned();
    for item in items.iter().flatten() {
        let name = item["name"].as_str().unwrap_or_default();
        if !definition.containers.iter().any(|c| c.name == name) {
            return Err(ApiError::invalid(format!(
                "Override for container named {name} is not a container in the TaskDefinition."
            )));
        }
        let command_ok = item.get("command").is_none_or(|command| {
            command
                .as_array()
                .is_some_and(|args| args.iter().all(Value::is_string))
        });
        let environment_ok = item.get("environment").is_none_or(|env| {
            env.as_array().is_some_and(|pairs| {
                pairs
                    .iter()
                    .all(|pair| pair["name"].is_string() && pair["value"].is_string())
            })
        });
        if !command_ok || !environment_ok {
            return Err(ApiError::new(
                "SerializationException",
                "containerOverrides must give command as a list of strings and environment as a list of name/value pairs",
            ));
        }
    }
    let mut value = overrides.clone();
    if value["containerOverrides"].is_null() {
        value["containerOverrides"] = json!([]);
    }
    Ok(Some(value))
}

/// Stops a task: STOPPING, then STOPPED with stop code `UserInitiated` and the `reason`
/// given. A service's scheduler replaces a task of its own.
pub(super) fn stop(call: &mut Call<'_>) -> Result<Value, ApiError> {
    let reference = call.required_str("task")?.to_owned();
    let reason = call
        .str("reason")?
        .unwrap_or("Task stopped by user")
        .to_owned();
    if reason.len() > 1024 {
        return Err(ApiError::invalid(
            "reason can be up to 1024 characters long.",
        ));
    }
    let now = call.now;
    let id = resource_name(&reference).to_owned();
    let cluster = call.cluster()?;
    let task = cluster
        .tasks
        .iter_mut()
        .find(|task| task.id == id)
        .ok_or_else(|| ApiError::invalid("The referenced task was not found."))?;
    stop_with(task, now, reason, "UserInitiated");
    Ok(json!({"task": render::task(task, false)}))
}

pub(super) fn list(call: &mut Call<'_>) -> Result<Value, ApiError> {
    let service = call
        .str("serviceName")?
        .map(|s| resource_name(s).to_owned());
    let family = call.str("family")?.map(str::to_owned);
    let started_by = call.str("startedBy")?.map(str::to_owned);
    let launch_type = call.str("launchType")?.map(str::to_owned);
    let desired = call.str("desiredStatus")?.unwrap_or("RUNNING");
    let want_running = match desired {
        "RUNNING" => Some(true),
        "STOPPED" => Some(false),
        // No simulated task ever has PENDING as its desired status.
        "PENDING" => None,
        other => {
            return Err(ApiError::invalid(format!(
                "Invalid desiredStatus: {other}. Valid values are RUNNING, PENDING, STOPPED."
            )));
        }
    };
    let cluster = call.cluster()?;
    if let Some(service) = &service
        && !cluster.services.contains_key(service)
    {
        return Err(ApiError::service_not_found());
    }
    let family_of = |arn: &str| {
        arn.rsplit_once(":task-definition/")
            .and_then(|(_, name)| name.rsplit_once(':'))
            .map(|(family, _)| family.to_owned())
    };
    let arns: Vec<String> = cluster
        .tasks
        .iter()
        .filter(|task| want_running == Some(task.desired_running))
        .filter(|task| service.as_ref().is_none_or(|s| *s == task.service))
        .filter(|task| {
            started_by
                .as_ref()
                .is_none_or(|s| Some(s) == task.started_by.as_ref())
        })
        .filter(|task| launch_type.as_ref().is_none_or(|l| *l == task.launch_type))
        .filter(|task| {
            family
                .as_ref()
                .is_none_or(|f| family_of(&task.task_definition).as_ref() == Some(f))
        })
        .map(|task| task.arn.clone())
        .collect();
    let (page, next) = call.page(arns, 100, 100)?;
    Ok(with_next(json!({"taskArns": page}), next))
}

pub(super) fn describe(call: &mut Call<'_>) -> Result<Value, ApiError> {
    let references = call.str_list("tasks")?;
    if references.is_empty() {
        return Err(ApiError::invalid("Tasks cannot be empty."));
    }
    if references.len() > 100 {
        return Err(ApiError::invalid("tasks can have at most 100 items."));
    }
    let with_tags = call.include_tags()?;
    let cluster_name = call.cluster_name()?;
    let region = &*call.region;
    let cluster = region
        .clusters
        .get(&cluster_name)
        .ok_or_else(ApiError::cluster_not_found)?;
    let mut tasks = Vec::new();
    let mut failures = Vec::new();
    for reference in &references {
        let id = resource_name(reference);
        match cluster.tasks.iter().find(|task| task.id == id) {
            Some(task) => tasks.push(render::task(task, with_tags)),
            None => failures.push(json!({
                "arn": missing_arn(region, &format!("task/{cluster_name}"), reference),
                "reason": "MISSING",
            })),
        }
    }
    Ok(json!({"tasks": tasks, "failures": failures}))
}
