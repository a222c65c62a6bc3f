//! RegisterTaskDefinition, DescribeTaskDefinition, ListTaskDefinitions,
//! ListTaskDefinitionFamilies and DeregisterTaskDefinition.

use serde_json::{Map, Value, json};

use super::{ApiError, Call, with_next};
use crate::ecs_sim::model::{ContainerSpec, TaskDefinition};
use crate::ecs_sim::{render, validate};

const COMPATIBILITIES: [&str; 4] = ["EC2", "FARGATE", "EXTERNAL", "MANAGED_INSTANCES"];
const NETWORK_MODES: [&str; 4] = ["bridge", "host", "awsvpc", "none"];

pub(super) fn register(call: &mut Call<'_>) -> Result<Value, ApiError> {
    let family = call.required_str("family")?.to_owned();
    let valid_family = family.len() <= 255
        && family
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid_family {
        return Err(ApiError::client(
            "Family name can be up to 255 letters (uppercase and lowercase), numbers, \
             hyphens and underscores.",
        ));
    }
    let requires = call.str_list("requiresCompatibilities")?;
    if let Some(bad) = requires
        .iter()
        .find(|c| !COMPATIBILITIES.contains(&c.as_str()))
    {
        return Err(ApiError::invalid(format!(
            "Invalid requiresCompatibilities value: {bad}"
        )));
    }
    let network_mode = call.str("networkMode")?;
    if let Some(mode) = network_mode.filter(|mode| !NETWORK_MODES.contains(mode)) {
        return Err(ApiError::invalid(format!("Invalid networkMode: {mode}")));
    }
    let fargate = requires.iter().any(|c| c == "FARGATE");
    if fargate && network_mode != Some("awsvpc") {
        return Err(ApiError::client(
            "Fargate only supports network mode 'awsvpc'.",
        ));
    }
    let size = validate::task_size(call.body, fargate)?;
    let containers = match call.body.get("containerDefinitions") {
        Some(Value::Array(items)) if !items.is_empty() => items,
        Some(Value::Array(_)) | None | Some(Value::Null) => {
            return Err(ApiError::client("Container list cannot be empty."));
        }
        Some(_) => {
            return Err(ApiError::new(
                "SerializationException",
                "containerDefinitions must be a list",
            ));
        }
    };
    let rules = validate::TaskRules {
        network_mode,
        fargate,
        memory_mib: size.memory.as_deref().and_then(|m| m.parse().ok()),
        execution_role: call
            .str("executionRoleArn")?
            .is_some_and(|role| !role.is_empty()),
    };
    let mut specs = Vec::new();
    let mut normalized = Vec::new();
    for container in containers {
        validate::container_rules(container, rules)?;
        let (spec, value) = container_definition(container, size.memory.is_some(), network_mode)?;
        if specs.iter().any(|s: &ContainerSpec| s.name == spec.name) {
            return Err(ApiError::client(format!(
                "Duplicate container name: {}",
                spec.name
            )));
        }
        specs.push(spec);
        normalized.push(value);
    }
    if !specs.iter().any(|spec| spec.essential) {
        return Err(ApiError::client(
            "Task definition doesn't have any essential container.",
        ));
    }
    let tags = call.tags()?;

    let mut body: Map<String, Value> = call
        .body
        .as_object()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|(key, value)| key != "tags" && !value.is_null())
        .collect();
    body.insert("containerDefinitions".into(), Value::Array(normalized));
    body.remove("cpu");
    body.remove("memory");
    if let Some(cpu) = &size.cpu {
        body.insert("cpu".into(), json!(cpu));
    }
    if let Some(memory) = &size.memory {
        body.insert("memory".into(), json!(memory));
    }
    for list in ["volumes", "placementConstraints"] {
        body.entry(list).or_insert_with(|| json!([]));
    }
    body.insert("requiresAttributes".into(), json!([]));
    let mut compatibilities = vec!["EC2"];
    if network_mode == Some("awsvpc") && size.cpu.is_some() && size.memory.is_some() {
        compatibilities.push("FARGATE");
    }
    body.insert("compatibilities".into(), json!(compatibilities));

    let revisions = call.region.families.entry(family.clone()).or_default();
    let revision = u32::try_from(revisions.len() + 1).unwrap_or(u32::MAX);
    let arn = format!(
        "arn:aws:ecs:{}:{}:task-definition/{family}:{revision}",
        call.region.name,
        crate::ecs_sim::model::ACCOUNT
    );
    let definition = TaskDefinition {
        family,
        revision,
        arn,
        status: "ACTIVE",
        registered_at: call.now,
        deregistered_at: None,
        body: Value::Object(body),
        containers: specs,
        cpu: size.cpu,
        memory: size.memory,
        tags,
    };
    let response = json!({
        "taskDefinition": render::task_definition(&definition),
        "tags": render::tags(&definition.tags),
    });
    call.region
        .families
        .get_mut(&definition.family)
        .expect("the family was just inserted")
        .push(definition);
    Ok(response)
}

/// Checks a container definition and fills in ECS's defaults.
fn container_definition(
    container: &Value,
    task_memory: bool,
    network_mode: Option<&str>,
) -> Result<(ContainerSpec, Value), ApiError> {
    let Some(fields) = container.as_object() else {
        return Err(ApiError::new(
            "SerializationException",
            "containerDefinitions must hold objects",
        ));
    };
    let text = |name: &str| fields.get(name).and_then(Value::as_str).unwrap_or("");
    let name = text("name").to_owned();
    if name.is_empty() {
        return Err(ApiError::client(
            "Container.name should not be null or empty.",
        ));
    }
    let image = text("image").to_owned();
    if image.is_empty() {
        return Err(ApiError::client(
            "Container.image should not be null or empty.",
        ));
    }
    validate::container_memory(container, task_memory)?;
    let mut value = fields.clone();
    let essential = fields
        .get("essential")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    value.insert("essential".into(), json!(essential));
    value.entry("cpu").or_insert(json!(0));
    for list in [
        "environment",
        "mountPoints",
        "volumesFrom",
        "systemControls",
    ] {
        value.entry(list).or_insert_with(|| json!([]));
    }
    let same_port = matches!(network_mode, Some("awsvpc" | "host"));
    let ports = value.entry("portMappings").or_insert_with(|| json!([]));
    if let Some(ports) = ports.as_array_mut() {
        for port in ports.iter_mut().filter_map(Value::as_object_mut) {
            port.entry("protocol").or_insert(json!("tcp"));
            if same_port && let Some(container_port) = port.get("containerPort").cloned() {
                port.entry("hostPort").or_insert(container_port);
            }
        }
    }
    let spec = ContainerSpec {
        name,
        image,
        essential,
        has_health_check: fields.get("healthCheck").is_some_and(Value::is_object),
    };
    Ok((spec, Value::Object(value)))
}

pub(super) fn describe(call: &mut Call<'_>) -> Result<Value, ApiError> {
    let reference = call.required_str("taskDefinition")?;
    let definition = call
        .region
        .task_definition(reference)
        .ok_or_else(|| ApiError::client("Unable to describe task definition."))?;
    let mut response = json!({"taskDefinition": render::task_definition(definition)});
    if call.include_tags()? {
        response["tags"] = render::tags(&definition.tags);
    }
    Ok(response)
}

pub(super) fn list(call: &mut Call<'_>) -> Result<Value, ApiError> {
    let family = call.str("familyPrefix")?;
    let status = call.str("status")?.unwrap_or("ACTIVE");
    if !["ACTIVE", "INACTIVE", "DELETE_IN_PROGRESS"].contains(&status) {
        return Err(ApiError::invalid(format!("Invalid status: {status}")));
    }
    let descending = match call.str("sort")? {
        None | Some("ASC") => false,
        Some("DESC") => true,
        Some(other) => return Err(ApiError::invalid(format!("Invalid sort: {other}"))),
    };
    // ECS matches `familyPrefix` against the whole family name, despite its name.
    let mut arns: Vec<String> = call
        .region
        .families
        .iter()
        .filter(|(name, _)| family.is_none_or(|family| family == name.as_str()))
        .flat_map(|(_, revisions)| revisions)
        .filter(|definition| definition.status == status)
        .map(|definition| definition.arn.clone())
        .collect();
    if descending {
        arns.reverse();
    }
    let (page, next) = call.page(arns, 100, 100)?;
    Ok(with_next(json!({"taskDefinitionArns": page}), next))
}

/// The families by name; `status` ACTIVE: those with an ACTIVE revision, INACTIVE: those
/// without, ALL (the default): every family.
pub(super) fn list_families(call: &mut Call<'_>) -> Result<Value, ApiError> {
    let prefix = call.str("familyPrefix")?.unwrap_or("");
    let status = call.str("status")?.unwrap_or("ALL");
    let wanted = match status {
        "ALL" => None,
        "ACTIVE" => Some(true),
        "INACTIVE" => Some(false),
        other => return Err(ApiError::invalid(format!("Invalid status: {other}"))),
    };
    let families: Vec<String> = call
        .region
        .families
        .iter()
        .filter(|(name, _)| name.starts_with(prefix))
        .filter(|(_, revisions)| {
            let active = revisions.iter().any(|d| d.status == "ACTIVE");
            wanted.is_none_or(|wanted| wanted == active)
        })
        .map(|(name, _)| name.clone())
        .collect();
    let (page, next) = call.page(families, 100, 100)?;
    Ok(with_next(json!({"families": page}), next))
}

pub(super) fn deregister(call: &mut Call<'_>) -> Result<Value, ApiError> {
    let reference = call.required_str("taskDefinition")?.to_owned();
    let name = reference
        .rsplit_once(":task-definition/")
        .map_or(reference.as_str(), |(_, name)| name);
    if !name.contains(':') {
        return Err(ApiError::client(
            "A revision must be given to deregister a task definition: family:revision or \
             its full ARN.",
        ));
    }
    let missing = || ApiError::client("The specified task definition does not exist.");
    let (family, revision) = name.rsplit_once(':').ok_or_else(missing)?;
    let revision: usize = revision.parse().map_err(|_| missing())?;
    let now = call.now;
    let definition = call
        .region
        .families
        .get_mut(family)
        .and_then(|revisions| revisions.get_mut(revision.checked_sub(1)?))
        .ok_or_else(missing)?;
    if definition.status == "ACTIVE" {
        definition.status = "INACTIVE";
        definition.deregistered_at = Some(now);
    }
    Ok(json!({"taskDefinition": render::task_definition(definition)}))
}
