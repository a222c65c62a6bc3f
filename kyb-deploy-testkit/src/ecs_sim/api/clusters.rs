//! CreateCluster, DescribeClusters, ListClusters, DeleteCluster, and the tagging operations.

use serde_json::{Value, json};

use super::{ApiError, Call, resource_name, with_next};
use crate::ecs_sim::model::{Cluster, Phase, Region, ServiceStatus, Tag};
use crate::ecs_sim::render;

pub(super) fn create(call: &mut Call<'_>) -> Result<Value, ApiError> {
    let name = call.str("clusterName")?.unwrap_or("default").to_owned();
    let valid = !name.is_empty()
        && name.len() <= 255
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid {
        return Err(ApiError::invalid(
            "Cluster names can only contain letters, numbers, hyphens and underscores, \
             and be up to 255 characters long.",
        ));
    }
    let tags = call.tags()?;
    let settings = cluster_settings(call)?;
    let capacity_providers = call.str_list("capacityProviders")?;
    for provider in &capacity_providers {
        if !["FARGATE", "FARGATE_SPOT"].contains(&provider.as_str()) {
            return Err(ApiError::invalid(format!(
                "The specified capacity provider '{provider}' is not in an ACTIVE state. Specify a valid capacity provider and try again."
            )));
        }
    }
    let default_strategy = call
        .body
        .get("defaultCapacityProviderStrategy")
        .filter(|v| v.is_array())
        .cloned()
        .unwrap_or_else(|| json!([]));
    let arn = call.region.arn(&format!("cluster/{name}"));
    // A deleted (INACTIVE) cluster is replaced by a new one of the same name.
    if call
        .region
        .clusters
        .get(&name)
        .is_some_and(|c| c.status != "ACTIVE")
    {
        call.region.clusters.remove(&name);
    }
    // CreateCluster is idempotent: an existing cluster is returned as it is.
    let cluster = call
        .region
        .clusters
        .entry(name.clone())
        .or_insert_with(|| Cluster {
            name,
            arn,
            status: "ACTIVE",
            tags,
            settings,
            capacity_providers,
            default_strategy,
            services: Default::default(),
            tasks: Vec::new(),
        });
    Ok(json!({"cluster": render::cluster(cluster, true)}))
}

pub(super) fn describe(call: &mut Call<'_>) -> Result<Value, ApiError> {
    let mut names = call.str_list("clusters")?;
    if names.is_empty() {
        names.push("default".to_owned());
    }
    if names.len() > 100 {
        return Err(ApiError::invalid("clusters can have at most 100 items."));
    }
    let with_tags = call.include_tags()?;
    let mut clusters = Vec::new();
    let mut failures = Vec::new();
    for reference in &names {
        match call.region.clusters.get(resource_name(reference)) {
            Some(cluster) => clusters.push(render::cluster(cluster, with_tags)),
            None => failures.push(json!({
                "arn": missing_arn(call.region, "cluster", reference),
                "reason": "MISSING",
            })),
        }
    }
    Ok(json!({"clusters": clusters, "failures": failures}))
}

pub(super) fn list(call: &mut Call<'_>) -> Result<Value, ApiError> {
    let arns: Vec<String> = call
        .region
        .clusters
        .values()
        .filter(|cluster| cluster.status == "ACTIVE")
        .map(|cluster| cluster.arn.clone())
        .collect();
    let (page, next) = call.page(arns, 100, 100)?;
    Ok(with_next(json!({"clusterArns": page}), next))
}

/// Deletes an empty cluster: it stays INACTIVE, still described, until a cluster of the same
/// name replaces it.
pub(super) fn delete(call: &mut Call<'_>) -> Result<Value, ApiError> {
    call.required_str("cluster")?;
    let cluster = call.cluster()?;
    let has_services = cluster
        .services
        .values()
        .any(|service| service.status != ServiceStatus::Inactive);
    if has_services {
        return Err(ApiError::new(
            "ClusterContainsServicesException",
            "The Cluster cannot be deleted while Services are active.",
        ));
    }
    if cluster
        .tasks
        .iter()
        .any(|task| task.phase != Phase::Stopped)
    {
        return Err(ApiError::new(
            "ClusterContainsTasksException",
            "The Cluster cannot be deleted while Tasks are active.",
        ));
    }
    cluster.status = "INACTIVE";
    Ok(json!({"cluster": render::cluster(cluster, false)}))
}

/// The ARN ECS reports for a missing resource: the reference itself when it is an ARN.
pub(super) fn missing_arn(region: &Region, kind: &str, reference: &str) -> String {
    if reference.starts_with("arn:") {
        reference.to_owned()
    } else {
        region.arn(&format!("{kind}/{reference}"))
    }
}

pub(super) fn tag(call: &mut Call<'_>) -> Result<Value, ApiError> {
    let arn = call.required_str("resourceArn")?.to_owned();
    let tags = call.tags()?;
    if tags.is_empty() {
        return Err(ApiError::invalid("tags can not be empty."));
    }
    let existing = tags_of(call.region, &arn)?;
    for tag in tags {
        match existing.iter_mut().find(|old| old.key == tag.key) {
            Some(old) => old.value = tag.value,
            None => existing.push(tag),
        }
    }
    if existing.len() > 50 {
        return Err(ApiError::invalid("A resource can have at most 50 tags."));
    }
    Ok(json!({}))
}

pub(super) fn untag(call: &mut Call<'_>) -> Result<Value, ApiError> {
    let arn = call.required_str("resourceArn")?.to_owned();
    let keys = call.str_list("tagKeys")?;
    let existing = tags_of(call.region, &arn)?;
    existing.retain(|tag| !keys.contains(&tag.key));
    Ok(json!({}))
}

pub(super) fn list_tags(call: &mut Call<'_>) -> Result<Value, ApiError> {
    let arn = call.required_str("resourceArn")?.to_owned();
    let tags = tags_of(call.region, &arn)?;
    Ok(json!({"tags": render::tags(tags)}))
}

/// The tags of the resource `arn` names: a cluster, service, task definition or task.
fn tags_of<'a>(region: &'a mut Region, arn: &str) -> Result<&'a mut Vec<Tag>, ApiError> {
    let invalid = || ApiError::invalid(format!("Invalid resource ARN: {arn}"));
    let resource = arn
        .strip_prefix("arn:aws:ecs:")
        .and_then(|rest| rest.splitn(3, ':').nth(2))
        .ok_or_else(invalid)?;
    let (kind, path) = resource.split_once('/').ok_or_else(invalid)?;
    let not_found = || {
        ApiError::new(
            "ResourceNotFoundException",
            "The specified resource wasn't found.",
        )
    };
    let cluster = |region: &'a mut Region, name: &str| {
        region
            .clusters
            .get_mut(name)
            .ok_or_else(ApiError::cluster_not_found)
    };
    match kind {
        "cluster" => Ok(&mut cluster(region, path)?.tags),
        "service" => {
            let (cluster_name, service) = path.split_once('/').ok_or_else(invalid)?;
            let cluster = cluster(region, cluster_name)?;
            let service = cluster.services.get_mut(service).ok_or_else(not_found)?;
            Ok(&mut service.tags)
        }
        "task" => {
            let (cluster_name, id) = path.split_once('/').ok_or_else(invalid)?;
            let cluster = cluster(region, cluster_name)?;
            let task = cluster.tasks.iter_mut().find(|t| t.id == id);
            Ok(&mut task.ok_or_else(not_found)?.tags)
        }
        "task-definition" => {
            let (family, revision) = path.rsplit_once(':').ok_or_else(invalid)?;
            let revision: usize = revision.parse().map_err(|_| invalid())?;
            let definition = region
                .families
                .get_mut(family)
                .and_then(|revisions| revisions.get_mut(revision.checked_sub(1)?));
            Ok(&mut definition.ok_or_else(not_found)?.tags)
        }
        _ => Err(invalid()),
    }
}

/// CreateCluster's `settings`: `containerInsights` is `enabled`, `disabled` or `enhanced`
/// (default `disabled`, as ECS reports it).
fn cluster_settings(call: &Call<'_>) -> Result<Value, ApiError> {
    let given = call.body.get("settings").and_then(Value::as_array);
    let mut value = "disabled".to_owned();
    for setting in given.into_iter().flatten() {
        if setting["name"] != "containerInsights" {
            return Err(ApiError::invalid(format!(
                "{} is not a valid cluster setting name.",
                setting["name"]
            )));
        }
        match setting["value"].as_str() {
            Some(v @ ("enabled" | "disabled" | "enhanced")) => value = v.to_owned(),
            _ => {
                return Err(ApiError::invalid(
                    "containerInsights setting value must be one of enabled, disabled, enhanced.",
                ));
            }
        }
    }
    Ok(json!([{"name": "containerInsights", "value": value}]))
}
