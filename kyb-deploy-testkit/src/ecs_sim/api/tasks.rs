//! ListTasks and DescribeTasks.

use serde_json::{Value, json};

use super::clusters::missing_arn;
use super::{ApiError, Call, resource_name, with_next};
use crate::ecs_sim::render;

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
        .filter(|task| started_by.as_ref().is_none_or(|s| *s == task.deployment))
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
