//! The JSON shapes of ECS responses: camelCase fields, epoch-second timestamps, ARNs.

use serde_json::{Map, Value, json};

use super::faults::TaskFaultKind;
use super::model::{
    ACCOUNT, Cluster, Deployment, Eni, Phase, Service, ServiceStatus, Tag, Task, TaskDefinition,
};
use super::rollout::{Counts, deployment_counts};

pub(crate) fn tags(tags: &[Tag]) -> Value {
    tags.iter()
        .map(|tag| json!({"key": tag.key, "value": tag.value}))
        .collect()
}

pub(crate) fn cluster(cluster: &Cluster, with_tags: bool) -> Value {
    let running = cluster.tasks.iter().filter(|t| t.phase == Phase::Running);
    let pending = cluster.tasks.iter().filter(|t| t.phase.is_pending());
    let active_services = cluster
        .services
        .values()
        .filter(|s| s.status == ServiceStatus::Active)
        .count();
    let mut value = json!({
        "clusterArn": cluster.arn,
        "clusterName": cluster.name,
        "status": cluster.status,
        "registeredContainerInstancesCount": 0,
        "runningTasksCount": running.count(),
        "pendingTasksCount": pending.count(),
        "activeServicesCount": active_services,
        "statistics": [],
        "tags": [],
        "settings": cluster.settings,
        "capacityProviders": cluster.capacity_providers,
        "defaultCapacityProviderStrategy": cluster.default_strategy,
    });
    if with_tags {
        value["tags"] = tags(&cluster.tags);
    }
    value
}

pub(crate) fn task_definition(definition: &TaskDefinition) -> Value {
    let mut value = definition.body.clone();
    let fields = value
        .as_object_mut()
        .expect("task definition bodies are objects");
    fields.insert("taskDefinitionArn".into(), json!(definition.arn));
    fields.insert("revision".into(), json!(definition.revision));
    fields.insert("status".into(), json!(definition.status));
    fields.insert("registeredAt".into(), json!(definition.registered_at));
    fields.insert(
        "registeredBy".into(),
        json!(format!("arn:aws:iam::{ACCOUNT}:root")),
    );
    if let Some(at) = definition.deregistered_at {
        fields.insert("deregisteredAt".into(), json!(at));
    }
    value
}

pub(crate) fn service(service: &Service, tasks: &[Task], with_tags: bool) -> Value {
    let counts = deployment_counts(service, tasks);
    let running: u32 = counts.iter().map(|c| c.running).sum();
    let pending: u32 = counts.iter().map(|c| c.pending).sum();
    let deployments: Vec<Value> = service
        .deployments
        .iter()
        .zip(&counts)
        .enumerate()
        .map(|(index, (deployment, counts))| {
            self::deployment(service, deployment, *counts, index == 0)
        })
        .collect();
    let events: Vec<Value> = service
        .events
        .iter()
        .map(|event| json!({"id": event.id, "createdAt": event.created_at, "message": event.message}))
        .collect();
    let mut value = json!({
        "serviceArn": service.arn,
        "serviceName": service.name,
        "clusterArn": service.cluster_arn,
        "loadBalancers": service.load_balancers,
        "serviceRegistries": [],
        "status": service.status.as_str(),
        "desiredCount": service.desired_count,
        "runningCount": running,
        "pendingCount": pending,
        "launchType": service.launch_type,
        "taskDefinition": service.task_definition,
        "deploymentConfiguration": {
            "deploymentCircuitBreaker": {
                "enable": service.config.circuit_breaker,
                "rollback": service.config.rollback,
            },
            "maximumPercent": service.config.maximum_percent,
            "minimumHealthyPercent": service.config.minimum_healthy_percent,
        },
        "deployments": deployments,
        "roleArn": format!("arn:aws:iam::{ACCOUNT}:role/aws-service-role/ecs.amazonaws.com/AWSServiceRoleForECS"),
        "events": events,
        "createdAt": service.created_at,
        "placementConstraints": [],
        "placementStrategy": [],
        "schedulingStrategy": "REPLICA",
        "deploymentController": {"type": service.deployment_controller},
        "createdBy": format!("arn:aws:iam::{ACCOUNT}:root"),
        "enableECSManagedTags": service.enable_ecs_managed_tags,
        "propagateTags": service.propagate_tags,
        "enableExecuteCommand": service.enable_execute_command,
    });
    let fields = value.as_object_mut().expect("a service is an object");
    if let Some(strategy) = &service.capacity_provider_strategy {
        // A service placed by a capacity provider strategy has no launch type.
        fields.remove("launchType");
        fields.insert("capacityProviderStrategy".into(), strategy.clone());
    }
    insert_platform(fields, service);
    if let Some(network) = &service.network_configuration {
        fields.insert("networkConfiguration".into(), network.clone());
    }
    insert_optional(
        fields,
        "healthCheckGracePeriodSeconds",
        service.health_check_grace_period,
    );
    if with_tags {
        fields.insert("tags".into(), tags(&service.tags));
    }
    value
}

fn deployment(service: &Service, deployment: &Deployment, counts: Counts, primary: bool) -> Value {
    let mut value = json!({
        "id": deployment.id,
        "status": if primary { "PRIMARY" } else { "ACTIVE" },
        "taskDefinition": deployment.task_definition,
        "desiredCount": counts.desired,
        "pendingCount": counts.pending,
        "runningCount": counts.running,
        "failedTasks": deployment.failed_tasks,
        "createdAt": deployment.created_at,
        "updatedAt": deployment.updated_at,
        "launchType": service.launch_type,
        "rolloutState": deployment.rollout_state.as_str(),
        "rolloutStateReason": deployment.rollout_state_reason,
    });
    let fields = value.as_object_mut().expect("a deployment is an object");
    insert_platform(fields, service);
    if let Some(network) = &service.network_configuration {
        fields.insert("networkConfiguration".into(), network.clone());
    }
    value
}

pub(crate) fn task(task: &Task, with_tags: bool) -> Value {
    let checks_health = task.containers.iter().any(|c| c.has_health_check)
        || task.faults.contains(&TaskFaultKind::HealthCheckFails);
    let health = match (checks_health, task.healthy) {
        (false, _) => "UNKNOWN",
        (true, true) => "HEALTHY",
        (true, false) if task.stop_code == Some("TaskFailedToStart") && task.failed => "UNHEALTHY",
        (true, false) => "UNKNOWN",
    };
    let (cluster_part, _) = task.arn.rsplit_once('/').unwrap_or((&task.arn, ""));
    let network_interfaces: Vec<Value> = task
        .eni
        .iter()
        .map(|eni| json!({"attachmentId": eni.attachment_id, "privateIpv4Address": eni.private_ip}))
        .collect();
    let attachments: Vec<Value> = task.eni.iter().map(|eni| attachment(task, eni)).collect();
    let overrides = task.overrides.clone().unwrap_or_else(|| {
        json!({"containerOverrides": task.containers.iter().map(|c| json!({"name": c.name})).collect::<Vec<_>>()})
    });
    let mut overrides = overrides;
    overrides["inferenceAcceleratorOverrides"] = json!([]);
    let containers: Vec<Value> = task
        .containers
        .iter()
        .enumerate()
        .map(|(index, container)| {
            let container_arn = format!(
                "{}/{}/{}-{index:04}",
                cluster_part.replacen(":task/", ":container/", 1),
                task.id,
                &task.id[..8]
            );
            let mut value = json!({
                "containerArn": container_arn,
                "taskArn": task.arn,
                "name": container.name,
                "image": container.image,
                "lastStatus": task.phase.as_str(),
                "networkBindings": [],
                "networkInterfaces": network_interfaces,
                "healthStatus": if container.has_health_check { health } else { "UNKNOWN" },
            });
            if let (Some(code), true) = (task.exit_code, container.essential) {
                value["exitCode"] = json!(code);
            }
            value
        })
        .collect();
    let mut value = json!({
        "attachments": attachments,
        "attributes": [],
        "availabilityZone": format!("{}a", task.arn.split(':').nth(3).unwrap_or("us-east-1")),
        "clusterArn": task.cluster_arn,
        "containers": containers,
        "createdAt": task.times.created,
        "desiredStatus": if task.desired_running { "RUNNING" } else { "STOPPED" },
        "enableExecuteCommand": false,
        "group": task.group,
        "healthStatus": health,
        "lastStatus": task.phase.as_str(),
        "launchType": task.launch_type,
        "overrides": overrides,
        "tags": [],
        "taskArn": task.arn,
        "taskDefinitionArn": task.task_definition,
        "version": 1,
    });
    let fields = value.as_object_mut().expect("a task is an object");
    insert_optional(fields, "startedBy", task.started_by.clone());
    insert_optional(fields, "cpu", task.cpu.clone());
    insert_optional(fields, "memory", task.memory.clone());
    insert_optional(fields, "pullStartedAt", task.times.pull_started);
    insert_optional(fields, "pullStoppedAt", task.times.pull_stopped);
    insert_optional(fields, "startedAt", task.times.started);
    insert_optional(fields, "connectivityAt", task.times.started);
    if task.times.started.is_some() {
        fields.insert("connectivity".into(), json!("CONNECTED"));
    }
    insert_optional(fields, "stoppingAt", task.times.stopping);
    insert_optional(fields, "stoppedAt", task.times.stopped);
    insert_optional(fields, "executionStoppedAt", task.times.stopped);
    insert_optional(fields, "stoppedReason", task.stopped_reason.clone());
    insert_optional(fields, "stopCode", task.stop_code);
    if with_tags {
        fields.insert("tags".into(), tags(&task.tags));
    }
    value
}

/// The `ElasticNetworkInterface` attachment of an awsvpc task; its status follows the task.
fn attachment(task: &Task, eni: &Eni) -> Value {
    let status = match task.phase {
        Phase::Provisioning => "PRECREATED",
        Phase::Pending | Phase::Running => "ATTACHED",
        Phase::Stopping => "DETACHING",
        Phase::Stopped => "DELETED",
    };
    let detail = |name: &str, value: &str| json!({"name": name, "value": value});
    json!({
        "id": eni.attachment_id,
        "type": "ElasticNetworkInterface",
        "status": status,
        "details": [
            detail("subnetId", &eni.subnet_id),
            detail("networkInterfaceId", &eni.interface_id),
            detail("macAddress", &eni.mac_address),
            detail("privateDNSName", &eni.private_dns_name),
            detail("privateIPv4Address", &eni.private_ip),
        ],
    })
}

/// The settings of a service revision: what a deployment of `service` rolls out besides its
/// task definition, whose containers' images are `images`.
pub(crate) fn revision_settings(service: &Service, definition: Option<&TaskDefinition>) -> Value {
    let images: Vec<Value> = definition
        .into_iter()
        .flat_map(|d| &d.containers)
        .map(|c| json!({"containerName": c.name, "image": c.image}))
        .collect();
    let mut value = json!({
        "launchType": service.launch_type,
        "loadBalancers": service.load_balancers,
        "serviceRegistries": [],
        "containerImages": images,
    });
    let fields = value
        .as_object_mut()
        .expect("revision settings are an object");
    if let Some(strategy) = &service.capacity_provider_strategy {
        fields.remove("launchType");
        fields.insert("capacityProviderStrategy".into(), strategy.clone());
    }
    insert_platform(fields, service);
    if let Some(network) = &service.network_configuration {
        fields.insert("networkConfiguration".into(), network.clone());
    }
    value
}

/// Fargate's `platformVersion` and `platformFamily` (the simulator runs Linux tasks only);
/// ECS sets neither for the EC2 launch type.
fn insert_platform(fields: &mut Map<String, Value>, service: &Service) {
    if let Some(version) = &service.platform_version {
        fields.insert("platformVersion".into(), json!(version));
        fields.insert("platformFamily".into(), json!("Linux"));
    }
}

fn insert_optional<T: Into<Value>>(fields: &mut Map<String, Value>, name: &str, value: Option<T>) {
    if let Some(value) = value {
        fields.insert(name.to_owned(), value.into());
    }
}
