//! Task definitions: templates, releases, Fargate checks, comparison with what ECS
//! returns, and the plan's diff. This root holds the example and the helpers the groups share.

mod checks;
mod comparison;
mod diffs;
mod properties;
mod releases;
mod templates;

use std::collections::BTreeMap;

use aws_sdk_ecs::types::{Secret, TaskDefinitionStatus};
use kyb_deploy_core::PlannedChange;

use super::*;

const ORIGIN: &str = "deploy/ecs/task-definition.json";
const IMAGE: &str = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/kyb-api:placeholder";
const DB_SECRET: &str = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:kyb/api/db-AbCdEf";
const KEY_PARAMETER: &str = "arn:aws:ssm:eu-west-1:123456789012:parameter/kyb/api/signing-key";
const HEALTH_COMMAND: &str = "curl -f http://localhost:8080/health || exit 1";

/// The shape of the product's example template: one Fargate service container with
/// ports, variables, secrets from Secrets Manager and SSM, CloudWatch logs and a health check.
const TEMPLATE: &str = r#"{
  "family": "kyb-api",
  "networkMode": "awsvpc",
  "requiresCompatibilities": ["FARGATE"],
  "cpu": "1 vCPU",
  "memory": "2 GB",
  "executionRoleArn": "arn:aws:iam::123456789012:role/kyb-api-execution",
  "taskRoleArn": "arn:aws:iam::123456789012:role/kyb-api-task",
  "containerDefinitions": [
    {
      "name": "api",
      "image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/kyb-api:placeholder",
      "readonlyRootFilesystem": true,
      "stopTimeout": 30,
      "portMappings": [{"containerPort": 8080}],
      "environment": [
        {"name": "LOG_FORMAT", "value": "json"},
        {"name": "PORT", "value": "8080"}
      ],
      "secrets": [
        {"name": "DATABASE_URL", "valueFrom": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:kyb/api/db-AbCdEf"},
        {"name": "SIGNING_KEY", "valueFrom": "arn:aws:ssm:eu-west-1:123456789012:parameter/kyb/api/signing-key"}
      ],
      "logConfiguration": {
        "logDriver": "awslogs",
        "options": {
          "awslogs-group": "/ecs/kyb-api",
          "awslogs-region": "eu-west-1",
          "awslogs-stream-prefix": "api"
        }
      },
      "healthCheck": {
        "command": ["CMD-SHELL", "curl -f http://localhost:8080/health || exit 1"],
        "interval": 10,
        "retries": 5
      },
      "ulimits": [{"name": "nofile", "softLimit": 65536, "hardLimit": 65536}]
    }
  ],
  "runtimePlatform": {"cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX"},
  "ephemeralStorage": {"sizeInGiB": 30},
  "tags": [{"key": "team", "value": "kyb"}]
}"#;

fn spec() -> TaskDefinitionSpec {
    TaskDefinitionSpec::from_template(TEMPLATE, ORIGIN).expect("the example template parses")
}

fn parse_error(text: &str) -> String {
    match TaskDefinitionSpec::from_template(text, ORIGIN) {
        Err(TaskDefinitionError::Template(message)) => message,
        other => panic!("the template is refused as a template: {other:?}"),
    }
}

fn version(v: &str) -> Version {
    Version::parse(v).expect("a valid version")
}

fn pair(name: &str, value: &str) -> KeyValuePair {
    KeyValuePair::builder().name(name).value(value).build()
}

fn secret(name: &str, value_from: &str) -> Secret {
    Secret::builder()
        .name(name)
        .value_from(value_from)
        .build()
        .expect("name and valueFrom are set")
}

fn env_of(c: &ContainerDefinition) -> BTreeMap<String, String> {
    c.environment()
        .iter()
        .map(|v| {
            (
                v.name().unwrap_or_default().to_owned(),
                v.value().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// The example with a second container, a log router sidecar.
fn with_sidecar() -> TaskDefinitionSpec {
    let mut s = spec();
    s.containers.push(
        ContainerDefinition::builder()
            .name("log-router")
            .image("public.ecr.aws/aws-observability/aws-for-fluent-bit:stable")
            .build(),
    );
    s
}

/// What DescribeTaskDefinition returns after registering `spec`: ECS fills in its
/// defaults, returns lists it was not given as empty lists, keeps no particular order of
/// variables and secrets, and writes the task size as `cpu` units and `memory` MiB.
fn described(spec: &TaskDefinitionSpec, cpu: &str, memory: &str) -> TaskDefinitionSpec {
    let same_port = matches!(
        spec.network_mode,
        Some(NetworkMode::Awsvpc | NetworkMode::Host)
    );
    let containers = spec
        .containers
        .iter()
        .cloned()
        .map(|mut c| {
            c.essential.get_or_insert(true);
            for p in c.port_mappings.get_or_insert_with(Vec::new) {
                p.protocol.get_or_insert(TransportProtocol::Tcp);
                if same_port && p.host_port.is_none() {
                    p.host_port = p.container_port;
                }
            }
            c.environment.get_or_insert_with(Vec::new).reverse();
            if let Some(secrets) = c.secrets.as_mut() {
                secrets.reverse();
            }
            c.mount_points.get_or_insert_with(Vec::new);
            c.volumes_from.get_or_insert_with(Vec::new);
            c.system_controls.get_or_insert_with(Vec::new);
            if let Some(h) = c.health_check.as_mut() {
                h.interval.get_or_insert(30);
                h.timeout.get_or_insert(5);
                h.retries.get_or_insert(3);
                h.start_period.get_or_insert(0);
            }
            if let Some(logs) = c.log_configuration.as_mut() {
                logs.secret_options.get_or_insert_with(Vec::new);
            }
            c
        })
        .collect();
    let definition = TaskDefinition::builder()
        .task_definition_arn(format!(
            "arn:aws:ecs:eu-west-1:123456789012:task-definition/{}:7",
            spec.family
        ))
        .family(&spec.family)
        .revision(7)
        .status(TaskDefinitionStatus::Active)
        .set_task_role_arn(spec.task_role_arn.clone())
        .set_execution_role_arn(spec.execution_role_arn.clone())
        .set_network_mode(spec.network_mode.clone())
        .set_container_definitions(Some(containers))
        .set_volumes(Some(spec.volumes.clone()))
        .set_placement_constraints(Some(spec.placement_constraints.clone()))
        .set_requires_compatibilities(Some(spec.requires_compatibilities.clone()))
        .compatibilities(Compatibility::Ec2)
        .compatibilities(Compatibility::Fargate)
        .cpu(cpu)
        .memory(memory)
        .set_runtime_platform(spec.runtime_platform.clone())
        .set_ephemeral_storage(spec.ephemeral_storage.clone())
        .build();
    TaskDefinitionSpec::from_registered(&definition, &spec.tags)
}

/// The example as ECS describes it.
fn registered() -> TaskDefinitionSpec {
    described(&spec(), "1024", "2048")
}

fn change(field: &str, from: Option<&str>, to: Option<&str>) -> PlannedChange {
    PlannedChange {
        resource: "container api".to_owned(),
        field: field.to_owned(),
        from: from.map(str::to_owned),
        to: to.map(str::to_owned),
    }
}
