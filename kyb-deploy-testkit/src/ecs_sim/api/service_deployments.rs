//! ListServiceDeployments, DescribeServiceDeployments and DescribeServiceRevisions.

use serde_json::{Value, json};

use super::{ApiError, Call, resource_name, with_next};
use crate::ecs_sim::model::{Region, Service};
use crate::ecs_sim::service_deployments as history;

const STATUSES: [&str; 9] = [
    "PENDING",
    "SUCCESSFUL",
    "STOPPED",
    "STOP_REQUESTED",
    "IN_PROGRESS",
    "ROLLBACK_REQUESTED",
    "ROLLBACK_IN_PROGRESS",
    "ROLLBACK_SUCCESSFUL",
    "ROLLBACK_FAILED",
];

/// A service's deployments, newest first, filtered by `status` and `createdAt`.
pub(super) fn list(call: &mut Call<'_>) -> Result<Value, ApiError> {
    let name = resource_name(call.required_str("service")?).to_owned();
    let statuses = call.str_list("status")?;
    if let Some(bad) = statuses.iter().find(|s| !STATUSES.contains(&s.as_str())) {
        return Err(ApiError::invalid(format!("Invalid status: {bad}")));
    }
    let created = call.body.get("createdAt").filter(|v| !v.is_null());
    let bound = |name: &str| -> Result<Option<f64>, ApiError> {
        match created.and_then(|c| c.get(name)).filter(|v| !v.is_null()) {
            None => Ok(None),
            Some(value) => value.as_f64().map(Some).ok_or_else(|| {
                ApiError::new(
                    "SerializationException",
                    format!("createdAt.{name} must be a timestamp"),
                )
            }),
        }
    };
    let (before, after) = (bound("before")?, bound("after")?);
    let cluster = call.cluster()?;
    let service = cluster
        .services
        .get(&name)
        .ok_or_else(ApiError::service_not_found)?;
    let items: Vec<Value> = service
        .history
        .iter()
        .rev()
        .filter(|r| statuses.is_empty() || statuses.iter().any(|s| s == r.status.as_str()))
        .filter(|r| before.is_none_or(|before| r.created_at <= before))
        .filter(|r| after.is_none_or(|after| r.created_at >= after))
        .map(|r| history::brief(service, r))
        .collect();
    let (page, next) = call.page(items, 20, 100)?;
    Ok(with_next(json!({"serviceDeployments": page}), next))
}

pub(super) fn describe(call: &mut Call<'_>) -> Result<Value, ApiError> {
    let arns = arns(call, "serviceDeploymentArns")?;
    let mut found = Vec::new();
    let mut failures = Vec::new();
    for arn in &arns {
        let described = lookup(call.region, arn, "service-deployment").and_then(|(s, id)| {
            let record = s.history.iter().find(|r| r.id == id)?;
            let cluster = call.region.clusters.get(resource_name(&s.cluster_arn))?;
            Some(history::full(s, record, &cluster.tasks))
        });
        match described {
            Some(value) => found.push(value),
            None => failures.push(json!({"arn": arn, "reason": "MISSING"})),
        }
    }
    Ok(json!({"serviceDeployments": found, "failures": failures}))
}

pub(super) fn describe_revisions(call: &mut Call<'_>) -> Result<Value, ApiError> {
    let arns = arns(call, "serviceRevisionArns")?;
    let mut found = Vec::new();
    let mut failures = Vec::new();
    for arn in &arns {
        let described = lookup(call.region, arn, "service-revision").and_then(|(s, id)| {
            let revision = s.revisions.iter().find(|r| r.id == id)?;
            Some(history::revision(s, revision))
        });
        match described {
            Some(value) => found.push(value),
            None => failures.push(json!({"arn": arn, "reason": "MISSING"})),
        }
    }
    Ok(json!({"serviceRevisions": found, "failures": failures}))
}

/// The ARNs of a Describe call: 1 to 20.
fn arns(call: &Call<'_>, name: &str) -> Result<Vec<String>, ApiError> {
    let arns = call.str_list(name)?;
    if arns.is_empty() {
        return Err(ApiError::invalid(format!("{name} can not be empty.")));
    }
    if arns.len() > 20 {
        return Err(ApiError::invalid(format!(
            "{name} can have at most 20 items."
        )));
    }
    Ok(arns)
}

/// The service and id an ARN of `kind` (`arn:aws:ecs:REGION:ACCOUNT:KIND/CLUSTER/SERVICE/ID`)
/// names, in `region`.
fn lookup<'a>(region: &'a Region, arn: &str, kind: &str) -> Option<(&'a Service, &'a str)> {
    let prefix = region.arn(&format!("{kind}/"));
    let rest = arn.strip_prefix(&prefix)?;
    let mut parts = rest.splitn(3, '/');
    let (cluster, service, id) = (parts.next()?, parts.next()?, parts.next()?);
    let service = region.clusters.get(cluster)?.services.get(service)?;
    // The id borrows from the service's records, not from the request.
    let id = service
        .history
        .iter()
        .map(|r| r.id.as_str())
        .chain(service.revisions.iter().map(|r| r.id.as_str()))
        .find(|known| *known == id)?;
    Some((service, id))
}
