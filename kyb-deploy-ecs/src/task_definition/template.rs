//! Task definition templates in the `aws ecs register-task-definition --cli-input-json`
//! format. Every field kyb-deploy registers is read; any other field is an error naming it,
//! never silently dropped.

use std::collections::{BTreeMap, HashMap};
use std::ops::RangeInclusive;

use aws_sdk_ecs::types::{
    ApplicationProtocol, Compatibility, ContainerCondition, ContainerDefinition,
    ContainerDependency, CpuArchitecture, EphemeralStorage, HealthCheck, KeyValuePair,
    LogConfiguration, LogDriver, MountPoint, NetworkMode, OsFamily, PortMapping, RuntimePlatform,
    Secret, Tag, TransportProtocol, Ulimit, UlimitName, Volume,
};
use serde::Deserialize;

use super::TaskDefinitionSpec;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Template {
    family: String,
    #[serde(default)]
    task_role_arn: Option<String>,
    #[serde(default)]
    execution_role_arn: Option<String>,
    #[serde(default)]
    network_mode: Option<String>,
    container_definitions: Vec<Container>,
    #[serde(default)]
    volumes: Vec<VolumeTemplate>,
    #[serde(default)]
    requires_compatibilities: Vec<String>,
    #[serde(default)]
    cpu: Option<String>,
    #[serde(default)]
    memory: Option<String>,
    #[serde(default)]
    runtime_platform: Option<Platform>,
    #[serde(default)]
    ephemeral_storage: Option<Storage>,
    #[serde(default)]
    tags: Vec<TagTemplate>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Container {
    name: String,
    #[serde(default)]
    image: Option<String>,
    #[serde(default)]
    cpu: Option<i32>,
    #[serde(default)]
    memory: Option<i32>,
    #[serde(default)]
    memory_reservation: Option<i32>,
    #[serde(default)]
    essential: Option<bool>,
    #[serde(default)]
    command: Option<Vec<String>>,
    #[serde(default)]
    entry_point: Option<Vec<String>>,
    #[serde(default)]
    working_directory: Option<String>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    readonly_root_filesystem: Option<bool>,
    #[serde(default)]
    port_mappings: Vec<Port>,
    #[serde(default)]
    environment: Vec<NameValue>,
    #[serde(default)]
    secrets: Vec<SecretTemplate>,
    #[serde(default)]
    log_configuration: Option<Logs>,
    #[serde(default)]
    health_check: Option<Health>,
    #[serde(default)]
    docker_labels: BTreeMap<String, String>,
    #[serde(default)]
    stop_timeout: Option<i32>,
    #[serde(default)]
    start_timeout: Option<i32>,
    #[serde(default)]
    depends_on: Vec<Dependency>,
    #[serde(default)]
    ulimits: Vec<Limit>,
    #[serde(default)]
    mount_points: Vec<Mount>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Port {
    container_port: i32,
    #[serde(default)]
    host_port: Option<i32>,
    #[serde(default)]
    protocol: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    app_protocol: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NameValue {
    name: String,
    value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SecretTemplate {
    name: String,
    value_from: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Logs {
    log_driver: String,
    #[serde(default)]
    options: BTreeMap<String, String>,
    #[serde(default)]
    secret_options: Vec<SecretTemplate>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Health {
    command: Vec<String>,
    #[serde(default)]
    interval: Option<i32>,
    #[serde(default)]
    timeout: Option<i32>,
    #[serde(default)]
    retries: Option<i32>,
    #[serde(default)]
    start_period: Option<i32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Dependency {
    container_name: String,
    condition: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Limit {
    name: String,
    soft_limit: i32,
    hard_limit: i32,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Mount {
    source_volume: String,
    container_path: String,
    #[serde(default)]
    read_only: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VolumeTemplate {
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Platform {
    #[serde(default)]
    cpu_architecture: Option<String>,
    #[serde(default)]
    operating_system_family: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Storage {
    size_in_gi_b: i32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TagTemplate {
    key: String,
    value: String,
}

/// Parses a template; `origin` names it in errors.
pub(crate) fn parse_template(text: &str, origin: &str) -> Result<TaskDefinitionSpec, String> {
    let template: Template = serde_json::from_str(text).map_err(|e| {
        format!(
            "task definition template {origin}, line {} column {}: {}. kyb-deploy reads the `aws ecs register-task-definition --cli-input-json` format; see docs/ecs.md for the fields it registers",
            e.line(),
            e.column(),
            strip_position(&e.to_string())
        )
    })?;
    let mut problems = Vec::new();
    let spec = convert(template, &mut problems);
    if problems.is_empty() {
        Ok(spec)
    } else {
        Err(format!(
            "task definition template {origin}: {}",
            problems.join("; ")
        ))
    }
}

/// serde_json appends " at line L column C"; the message names the position itself.
fn strip_position(message: &str) -> &str {
    message
        .rfind(" at line ")
        .map_or(message, |at| &message[..at])
}

/// An ECS enum value, or a problem naming the values ECS accepts.
fn enum_value<T: for<'a> From<&'a str>>(
    value: &str,
    values: &[&str],
    field: &str,
    problems: &mut Vec<String>,
) -> Option<T> {
    if values.contains(&value) {
        Some(T::from(value))
    } else {
        problems.push(format!(
            "{field} {value:?} is not one of {}",
            values.join(", ")
        ));
        None
    }
}

fn convert(t: Template, problems: &mut Vec<String>) -> TaskDefinitionSpec {
    let network_mode = t
        .network_mode
        .as_deref()
        .and_then(|m| enum_value::<NetworkMode>(m, NetworkMode::values(), "networkMode", problems));
    let requires_compatibilities = t
        .requires_compatibilities
        .iter()
        .filter_map(|c| {
            enum_value::<Compatibility>(
                c,
                Compatibility::values(),
                "requiresCompatibilities",
                problems,
            )
        })
        .collect();
    let mut seen: Vec<&str> = Vec::new();
    for c in &t.container_definitions {
        if seen.contains(&c.name.as_str()) {
            problems.push(format!(
                "container name {:?} is used twice in containerDefinitions; give each container its own name",
                c.name
            ));
        } else {
            seen.push(&c.name);
        }
    }
    if let Some(storage) = &t.ephemeral_storage {
        within(
            "ephemeralStorage.sizeInGiB",
            Some(storage.size_in_gi_b),
            21..=200,
            "GiB",
            problems,
        );
    }
    let containers = t
        .container_definitions
        .into_iter()
        .map(|c| container(c, problems))
        .collect();
    let runtime_platform = t.runtime_platform.map(|p| {
        RuntimePlatform::builder()
            .set_cpu_architecture(p.cpu_architecture.as_deref().and_then(|a| {
                enum_value::<CpuArchitecture>(
                    a,
                    CpuArchitecture::values(),
                    "runtimePlatform.cpuArchitecture",
                    problems,
                )
            }))
            .set_operating_system_family(p.operating_system_family.as_deref().and_then(|f| {
                enum_value::<OsFamily>(
                    f,
                    OsFamily::values(),
                    "runtimePlatform.operatingSystemFamily",
                    problems,
                )
            }))
            .build()
    });
    let ephemeral_storage = t.ephemeral_storage.map(|s| {
        EphemeralStorage::builder()
            .size_in_gib(s.size_in_gi_b)
            .build()
    });
    TaskDefinitionSpec {
        family: t.family,
        task_role_arn: t.task_role_arn,
        execution_role_arn: t.execution_role_arn,
        network_mode,
        containers,
        volumes: t
            .volumes
            .into_iter()
            .map(|v| Volume::builder().name(v.name).build())
            .collect(),
        placement_constraints: Vec::new(),
        requires_compatibilities,
        cpu: t.cpu,
        memory: t.memory,
        pid_mode: None,
        ipc_mode: None,
        proxy_configuration: None,
        inference_accelerators: Vec::new(),
        ephemeral_storage,
        runtime_platform,
        enable_fault_injection: None,
        tags: t
            .tags
            .into_iter()
            .map(|tag| Tag::builder().key(tag.key).value(tag.value).build())
            .collect(),
    }
}

/// A problem when `value` is set and outside `range` (ECS's limits), naming the field.
fn within(
    field: &str,
    value: Option<i32>,
    range: RangeInclusive<i32>,
    unit: &str,
    problems: &mut Vec<String>,
) {
    if let Some(value) = value
        && !range.contains(&value)
    {
        let unit = if unit.is_empty() {
            String::new()
        } else {
            format!(" {unit}")
        };
        problems.push(format!(
            "{field} {value} is outside {}-{}{unit}; use a value in that range",
            range.start(),
            range.end()
        ));
    }
}

/// ECS's limits on a container's numbers, checked before any API call.
fn container_limits(c: &Container, problems: &mut Vec<String>) {
    let field = |name: &str| format!("container {:?} {name}", c.name);
    within(&field("cpu"), c.cpu, 0..=i32::MAX, "CPU units", problems);
    within(&field("memory"), c.memory, 6..=i32::MAX, "MiB", problems);
    within(
        &field("memoryReservation"),
        c.memory_reservation,
        6..=i32::MAX,
        "MiB",
        problems,
    );
    within(
        &field("stopTimeout"),
        c.stop_timeout,
        0..=i32::MAX,
        "seconds",
        problems,
    );
    within(
        &field("startTimeout"),
        c.start_timeout,
        0..=i32::MAX,
        "seconds",
        problems,
    );
    for p in &c.port_mappings {
        within(
            &field("portMappings.containerPort"),
            Some(p.container_port),
            1..=65535,
            "",
            problems,
        );
        within(
            &field("portMappings.hostPort"),
            p.host_port,
            0..=65535,
            "",
            problems,
        );
    }
    if let Some(h) = &c.health_check {
        within(
            &field("healthCheck.interval"),
            h.interval,
            5..=300,
            "seconds",
            problems,
        );
        within(
            &field("healthCheck.timeout"),
            h.timeout,
            2..=120,
            "seconds",
            problems,
        );
        within(
            &field("healthCheck.retries"),
            h.retries,
            1..=10,
            "",
            problems,
        );
        within(
            &field("healthCheck.startPeriod"),
            h.start_period,
            0..=300,
            "seconds",
            problems,
        );
    }
    for u in &c.ulimits {
        within(
            &field("ulimits.softLimit"),
            Some(u.soft_limit),
            0..=i32::MAX,
            "",
            problems,
        );
        if u.soft_limit > u.hard_limit {
            problems.push(format!(
                "{} {:?}: softLimit {} is above hardLimit {}; lower the soft limit",
                field("ulimits"),
                u.name,
                u.soft_limit,
                u.hard_limit
            ));
        }
    }
}

fn container(c: Container, problems: &mut Vec<String>) -> ContainerDefinition {
    container_limits(&c, problems);
    let field = |name: &str| format!("container {:?} {name}", c.name);
    let ports = c
        .port_mappings
        .iter()
        .map(|p| {
            PortMapping::builder()
                .container_port(p.container_port)
                .set_host_port(p.host_port)
                .set_protocol(p.protocol.as_deref().and_then(|v| {
                    enum_value::<TransportProtocol>(
                        v,
                        TransportProtocol::values(),
                        &field("portMappings.protocol"),
                        problems,
                    )
                }))
                .set_name(p.name.clone())
                .set_app_protocol(p.app_protocol.as_deref().and_then(|v| {
                    enum_value::<ApplicationProtocol>(
                        v,
                        ApplicationProtocol::values(),
                        &field("portMappings.appProtocol"),
                        problems,
                    )
                }))
                .build()
        })
        .collect::<Vec<_>>();
    let secret = |s: &SecretTemplate, what: &str, problems: &mut Vec<String>| {
        Secret::builder()
            .name(&s.name)
            .value_from(&s.value_from)
            .build()
            .map_err(|e| problems.push(format!("{}: {e}", field(what))))
            .ok()
    };
    let secrets: Vec<Secret> = c
        .secrets
        .iter()
        .filter_map(|s| secret(s, "secrets", problems))
        .collect();
    let log_configuration = c.log_configuration.as_ref().and_then(|l| {
        let secret_options: Vec<Secret> = l
            .secret_options
            .iter()
            .filter_map(|s| secret(s, "logConfiguration.secretOptions", problems))
            .collect();
        let driver = enum_value::<LogDriver>(
            &l.log_driver,
            LogDriver::values(),
            &field("logConfiguration.logDriver"),
            problems,
        )?;
        LogConfiguration::builder()
            .log_driver(driver)
            .set_options(
                (!l.options.is_empty())
                    .then(|| l.options.clone().into_iter().collect::<HashMap<_, _>>()),
            )
            .set_secret_options((!secret_options.is_empty()).then_some(secret_options))
            .build()
            .map_err(|e| problems.push(format!("{}: {e}", field("logConfiguration"))))
            .ok()
    });
    let health_check = c.health_check.as_ref().and_then(|h| {
        if h.command.is_empty() {
            problems.push(format!(
                "{}: command must not be empty, as in [\"CMD-SHELL\", \"curl -f http://localhost:8080/health || exit 1\"]",
                field("healthCheck")
            ));
            return None;
        }
        HealthCheck::builder()
            .set_command(Some(h.command.clone()))
            .set_interval(h.interval)
            .set_timeout(h.timeout)
            .set_retries(h.retries)
            .set_start_period(h.start_period)
            .build()
            .map_err(|e| problems.push(format!("{}: {e}", field("healthCheck"))))
            .ok()
    });
    let depends_on: Vec<ContainerDependency> = c
        .depends_on
        .iter()
        .filter_map(|d| {
            let condition = enum_value::<ContainerCondition>(
                &d.condition,
                ContainerCondition::values(),
                &field("dependsOn.condition"),
                problems,
            )?;
            ContainerDependency::builder()
                .container_name(&d.container_name)
                .condition(condition)
                .build()
                .map_err(|e| problems.push(format!("{}: {e}", field("dependsOn"))))
                .ok()
        })
        .collect();
    let ulimits: Vec<Ulimit> = c
        .ulimits
        .iter()
        .filter_map(|u| {
            let name = enum_value::<UlimitName>(
                &u.name,
                UlimitName::values(),
                &field("ulimits.name"),
                problems,
            )?;
            Ulimit::builder()
                .name(name)
                .soft_limit(u.soft_limit)
                .hard_limit(u.hard_limit)
                .build()
                .map_err(|e| problems.push(format!("{}: {e}", field("ulimits"))))
                .ok()
        })
        .collect();
    let mount_points: Vec<MountPoint> = c
        .mount_points
        .iter()
        .map(|m| {
            MountPoint::builder()
                .source_volume(&m.source_volume)
                .container_path(&m.container_path)
                .set_read_only(m.read_only)
                .build()
        })
        .collect();
    let environment: Vec<KeyValuePair> = c
        .environment
        .iter()
        .map(|v| {
            KeyValuePair::builder()
                .name(&v.name)
                .value(&v.value)
                .build()
        })
        .collect();
    ContainerDefinition::builder()
        .name(&c.name)
        .set_image(c.image.clone())
        .set_cpu(c.cpu)
        .set_memory(c.memory)
        .set_memory_reservation(c.memory_reservation)
        .set_essential(c.essential)
        .set_command(c.command.clone())
        .set_entry_point(c.entry_point.clone())
        .set_working_directory(c.working_directory.clone())
        .set_user(c.user.clone())
        .set_readonly_root_filesystem(c.readonly_root_filesystem)
        .set_port_mappings((!ports.is_empty()).then_some(ports))
        .set_environment((!environment.is_empty()).then_some(environment))
        .set_secrets((!secrets.is_empty()).then_some(secrets))
        .set_log_configuration(log_configuration)
        .set_health_check(health_check)
        .set_docker_labels(
            (!c.docker_labels.is_empty()).then(|| c.docker_labels.clone().into_iter().collect()),
        )
        .set_stop_timeout(c.stop_timeout)
        .set_start_timeout(c.start_timeout)
        .set_depends_on((!depends_on.is_empty()).then_some(depends_on))
        .set_ulimits((!ulimits.is_empty()).then_some(ulimits))
        .set_mount_points((!mount_points.is_empty()).then_some(mount_points))
        .build()
}
