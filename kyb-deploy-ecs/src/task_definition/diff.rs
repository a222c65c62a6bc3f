//! A readable diff of two task definitions, field by field, after normalisation.

use std::collections::BTreeMap;

use aws_sdk_ecs::types::ContainerDefinition;
use kyb_deploy_core::PlannedChange;

use super::TaskDefinitionSpec;

type Fields = BTreeMap<(String, String), String>;

/// What changes from `current` (none: the service has no task definition yet) to
/// `desired`, one entry per field, both sides normalised first.
pub(crate) fn diff(
    current: Option<&TaskDefinitionSpec>,
    desired: &TaskDefinitionSpec,
) -> Vec<PlannedChange> {
    let before = current
        .map(|c| flatten(&c.normalised()))
        .unwrap_or_default();
    let after = flatten(&desired.normalised());
    let mut keys: Vec<&(String, String)> = before.keys().chain(after.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| before.get(*k) != after.get(*k))
        .map(|(resource, field)| PlannedChange {
            resource: resource.clone(),
            field: field.clone(),
            from: before.get(&(resource.clone(), field.clone())).cloned(),
            to: after.get(&(resource.clone(), field.clone())).cloned(),
        })
        .collect()
}

fn flatten(spec: &TaskDefinitionSpec) -> Fields {
    let mut f = Fields::new();
    let task = "task definition";
    let mut put = |resource: &str, field: &str, value: Option<String>| {
        if let Some(v) = value {
            f.insert((resource.to_owned(), field.to_owned()), v);
        }
    };
    put(task, "family", Some(spec.family.clone()));
    put(task, "taskRoleArn", spec.task_role_arn.clone());
    put(task, "executionRoleArn", spec.execution_role_arn.clone());
    put(
        task,
        "networkMode",
        spec.network_mode.as_ref().map(|m| m.as_str().to_owned()),
    );
    put(task, "cpu", spec.cpu.clone());
    put(task, "memory", spec.memory.clone());
    put(
        task,
        "requiresCompatibilities",
        join(
            spec.requires_compatibilities
                .iter()
                .map(|c| c.as_str().to_owned()),
        ),
    );
    put(
        task,
        "runtimePlatform",
        spec.runtime_platform.as_ref().map(|p| format!("{p:?}")),
    );
    put(
        task,
        "ephemeralStorage",
        spec.ephemeral_storage
            .as_ref()
            .map(|s| format!("{} GiB", s.size_in_gib)),
    );
    put(task, "volumes", debug_list(&spec.volumes));
    put(
        task,
        "placementConstraints",
        debug_list(&spec.placement_constraints),
    );
    put(
        task,
        "pidMode",
        spec.pid_mode.as_ref().map(|m| m.as_str().to_owned()),
    );
    put(
        task,
        "ipcMode",
        spec.ipc_mode.as_ref().map(|m| m.as_str().to_owned()),
    );
    put(
        task,
        "proxyConfiguration",
        spec.proxy_configuration.as_ref().map(|p| format!("{p:?}")),
    );
    put(
        task,
        "inferenceAccelerators",
        debug_list(&spec.inference_accelerators),
    );
    put(
        task,
        "enableFaultInjection",
        spec.enable_fault_injection.map(|b| b.to_string()),
    );
    for c in &spec.containers {
        container(&mut f, c);
    }
    f
}

fn container(f: &mut Fields, c: &ContainerDefinition) {
    let resource = format!("container {}", c.name.as_deref().unwrap_or("?"));
    let mut put = |field: String, value: Option<String>| {
        if let Some(v) = value {
            f.insert((resource.clone(), field), v);
        }
    };
    put("image".into(), c.image.clone());
    put("cpu".into(), Some(c.cpu.to_string()));
    put("memory".into(), c.memory.map(|m| m.to_string()));
    put(
        "memoryReservation".into(),
        c.memory_reservation.map(|m| m.to_string()),
    );
    put("essential".into(), c.essential.map(|e| e.to_string()));
    put(
        "command".into(),
        c.command.as_ref().map(|v| format!("{v:?}")),
    );
    put(
        "entryPoint".into(),
        c.entry_point.as_ref().map(|v| format!("{v:?}")),
    );
    put("user".into(), c.user.clone());
    put("workingDirectory".into(), c.working_directory.clone());
    put(
        "readonlyRootFilesystem".into(),
        c.readonly_root_filesystem.map(|b| b.to_string()),
    );
    put(
        "stopTimeout".into(),
        c.stop_timeout.map(|t| format!("{t}s")),
    );
    put(
        "startTimeout".into(),
        c.start_timeout.map(|t| format!("{t}s")),
    );
    for p in c.port_mappings.iter().flatten() {
        let port = p.container_port.unwrap_or_default();
        let protocol = p.protocol.as_ref().map_or("tcp", |p| p.as_str());
        let mut value = format!("host {}", p.host_port.unwrap_or_default());
        if let Some(name) = &p.name {
            value.push_str(&format!(", name {name}"));
        }
        if let Some(app) = &p.app_protocol {
            value.push_str(&format!(", {}", app.as_str()));
        }
        put(format!("portMappings.{port}/{protocol}"), Some(value));
    }
    for v in c.environment.iter().flatten() {
        put(
            format!("environment.{}", v.name.as_deref().unwrap_or("")),
            Some(v.value.clone().unwrap_or_default()),
        );
    }
    for s in c.secrets.iter().flatten() {
        put(
            format!("secrets.{}", s.name),
            Some(format!("valueFrom {}", s.value_from)),
        );
    }
    let mut labels: Vec<_> = c.docker_labels.iter().flatten().collect();
    labels.sort();
    for (k, v) in labels {
        put(format!("dockerLabels.{k}"), Some(v.clone()));
    }
    if let Some(logs) = &c.log_configuration {
        put(
            "logConfiguration.logDriver".into(),
            Some(logs.log_driver.as_str().to_owned()),
        );
        let mut options: Vec<_> = logs.options.iter().flatten().collect();
        options.sort();
        for (k, v) in options {
            put(format!("logConfiguration.options.{k}"), Some(v.clone()));
        }
        for s in logs.secret_options.iter().flatten() {
            put(
                format!("logConfiguration.secretOptions.{}", s.name),
                Some(format!("valueFrom {}", s.value_from)),
            );
        }
    }
    if let Some(h) = &c.health_check {
        put(
            "healthCheck.command".into(),
            Some(format!("{:?}", h.command)),
        );
        put(
            "healthCheck".into(),
            Some(format!(
                "interval {}s, timeout {}s, retries {}, startPeriod {}s",
                h.interval.unwrap_or_default(),
                h.timeout.unwrap_or_default(),
                h.retries.unwrap_or_default(),
                h.start_period.unwrap_or_default()
            )),
        );
    }
    // Shown on its own because its options are a HashMap, whose Debug order differs
    // between two equal maps; sorted, equal options read the same.
    if let Some(firelens) = &c.firelens_configuration {
        let mut value = format!("type {}", firelens.r#type.as_str());
        if let Some(options) = &firelens.options {
            let sorted: BTreeMap<_, _> = options.iter().collect();
            value.push_str(&format!(", options {sorted:?}"));
        }
        put("firelensConfiguration".into(), Some(value));
    }
    // Everything else, compared whole: never a difference that the plan does not show.
    let mut rest = c.clone();
    for field in [
        &mut rest.image,
        &mut rest.user,
        &mut rest.working_directory,
        &mut rest.name,
    ] {
        *field = None;
    }
    rest.cpu = 0;
    rest.memory = None;
    rest.memory_reservation = None;
    rest.essential = None;
    rest.command = None;
    rest.entry_point = None;
    rest.readonly_root_filesystem = None;
    rest.stop_timeout = None;
    rest.start_timeout = None;
    rest.port_mappings = None;
    rest.environment = None;
    rest.secrets = None;
    rest.docker_labels = None;
    rest.log_configuration = None;
    rest.health_check = None;
    rest.firelens_configuration = None;
    let empty = ContainerDefinition::builder().build();
    if rest != empty {
        put("other settings".into(), Some(format!("{rest:?}")));
    }
}

fn join(values: impl Iterator<Item = String>) -> Option<String> {
    let v: Vec<String> = values.collect();
    (!v.is_empty()).then(|| v.join(", "))
}

fn debug_list<T: std::fmt::Debug>(values: &[T]) -> Option<String> {
    (!values.is_empty()).then(|| format!("{values:?}"))
}
