//! Validation rules of task definitions that ECS applies on registration: task size units,
//! Fargate's cpu/memory combinations, container memory, and the container rules of
//! [`container_rules`] (ports, log drivers, secrets, health checks).

use serde_json::Value;

use super::api::ApiError;

/// Task-level CPU units from `"256"`, `"1024"`, `"0.25 vCPU"` or `"1 vcpu"`.
pub(crate) fn parse_cpu(text: &str) -> Option<u32> {
    parse_units(text, &["vcpu"])
}

/// Task-level memory in MiB from `"512"`, `"2048"`, `"2 GB"` or `"0.5GB"`.
pub(crate) fn parse_memory(text: &str) -> Option<u32> {
    parse_units(text, &["gb"])
}

fn parse_units(text: &str, scaled_suffixes: &[&str]) -> Option<u32> {
    let lower = text.trim().to_ascii_lowercase();
    for suffix in scaled_suffixes {
        if let Some(number) = lower.strip_suffix(suffix) {
            let value: f64 = number.trim().parse().ok()?;
            let units = value * 1024.0;
            return (units.is_finite() && units > 0.0 && units.fract() == 0.0)
                .then_some(units as u32);
        }
    }
    lower.parse().ok().filter(|&units| units > 0)
}

/// Whether Fargate offers a task with `cpu` units and `memory` MiB.
pub(crate) fn fargate_pair_is_valid(cpu: u32, memory: u32) -> bool {
    let in_steps = |low: u32, high: u32, step: u32| {
        (low..=high).contains(&memory) && (memory - low).is_multiple_of(step)
    };
    match cpu {
        256 => matches!(memory, 512 | 1024 | 2048),
        512 => in_steps(1024, 4096, 1024),
        1024 => in_steps(2048, 8192, 1024),
        2048 => in_steps(4096, 16384, 1024),
        4096 => in_steps(8192, 30720, 1024),
        8192 => in_steps(16384, 61440, 4096),
        16384 => in_steps(32768, 122_880, 8192),
        _ => false,
    }
}

/// The task size of a registration: `(cpu, memory)` as given, checked.
pub(crate) fn task_size(request: &Value, fargate: bool) -> Result<TaskSize, ApiError> {
    let text = |field: &str| -> Result<Option<String>, ApiError> {
        match request.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.clone())),
            Some(_) => Err(ApiError::invalid(format!("{field} must be a string"))),
        }
    };
    let cpu = text("cpu")?;
    let memory = text("memory")?;
    let cpu_units = match &cpu {
        Some(cpu) => Some(
            parse_cpu(cpu).ok_or_else(|| ApiError::client("Invalid 'cpu' setting for task."))?,
        ),
        None => None,
    };
    let memory_mib = match &memory {
        Some(memory) => Some(
            parse_memory(memory)
                .ok_or_else(|| ApiError::client("Invalid 'memory' setting for task."))?,
        ),
        None => None,
    };
    if fargate {
        let cpu_units = cpu_units.ok_or_else(|| {
            ApiError::client("Fargate requires that 'cpu' be defined at the task level.")
        })?;
        let memory_mib = memory_mib.ok_or_else(|| {
            ApiError::client("Fargate requires that 'memory' be defined at the task level.")
        })?;
        if !fargate_pair_is_valid(cpu_units, memory_mib) {
            return Err(ApiError::client(format!(
                "No Fargate configuration exists for given values: {cpu_units} CPU, \
                 {memory_mib} memory. See the Amazon ECS documentation for the valid values."
            )));
        }
    }
    Ok(TaskSize {
        cpu: cpu_units.map(|units| units.to_string()),
        memory: memory_mib.map(|mib| mib.to_string()),
    })
}

/// The normalized task size ECS returns: units and MiB as decimal strings.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct TaskSize {
    pub(crate) cpu: Option<String>,
    pub(crate) memory: Option<String>,
}

/// Checks that `container` sets its memory when the task does not.
pub(crate) fn container_memory(container: &Value, task_memory: bool) -> Result<(), ApiError> {
    let has = |field: &str| container.get(field).is_some_and(|value| !value.is_null());
    if task_memory || has("memory") || has("memoryReservation") {
        return Ok(());
    }
    let name = container.get("name").and_then(Value::as_str).unwrap_or("");
    Err(ApiError::client(format!(
        "Invalid setting for container '{name}'. At least one of 'memory' or \
         'memoryReservation' must be specified."
    )))
}

/// What the container rules need to know of the task definition.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TaskRules<'a> {
    pub(crate) network_mode: Option<&'a str>,
    /// Whether the definition requires Fargate compatibility.
    pub(crate) fargate: bool,
    /// The task's memory in MiB, when it sets one.
    pub(crate) memory_mib: Option<u32>,
    pub(crate) execution_role: bool,
}

/// The log drivers ECS accepts in a `logConfiguration`.
const LOG_DRIVERS: [&str; 8] = [
    "json-file",
    "syslog",
    "journald",
    "gelf",
    "fluentd",
    "awslogs",
    "splunk",
    "awsfirelens",
];

/// The ranges of a container health check: `(field, lowest, highest)` in seconds (retries:
/// a count), as the ECS API reference gives them.
const HEALTH_CHECK_RANGES: [(&str, i64, i64); 4] = [
    ("interval", 5, 300),
    ("timeout", 2, 60),
    ("retries", 1, 10),
    ("startPeriod", 0, 300),
];

/// Checks one container definition, as given, against the rules ECS applies on
/// registration.
pub(crate) fn container_rules(container: &Value, task: TaskRules<'_>) -> Result<(), ApiError> {
    let name = container.get("name").and_then(Value::as_str).unwrap_or("");
    if task.network_mode == Some("awsvpc") {
        let mismatched = container["portMappings"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|m| !m["hostPort"].is_null() && m["hostPort"] != m["containerPort"]);
        if mismatched {
            return Err(ApiError::client(
                "When networkMode=awsvpc, the host ports and container ports in port mappings \
                 must match.",
            ));
        }
    }
    if let (Some(task_memory), Some(memory)) = (task.memory_mib, container["memory"].as_u64())
        && memory > u64::from(task_memory)
    {
        return Err(ApiError::client(format!(
            "The 'memory' setting for container '{name}' is greater than for the task."
        )));
    }
    if let Some(driver) = container["logConfiguration"].get("logDriver") {
        let driver = driver.as_str().unwrap_or_default();
        if !LOG_DRIVERS.contains(&driver) {
            return Err(ApiError::invalid(format!(
                "Log driver {driver} is not supported. Supported log drivers: {}.",
                LOG_DRIVERS.join(", ")
            )));
        }
        if driver == "awslogs" && task.fargate && !task.execution_role {
            return Err(ApiError::client(
                "Fargate requires task definition to have execution role ARN to support log \
                 driver awslogs.",
            ));
        }
    }
    let has_secrets = container["secrets"]
        .as_array()
        .is_some_and(|secrets| !secrets.is_empty());
    if has_secrets && !task.execution_role {
        return Err(ApiError::client(
            "When you are specifying container secrets, you must also specify a value for \
             'executionRoleArn'.",
        ));
    }
    if let Some(check) = container.get("healthCheck").filter(|v| v.is_object()) {
        for (field, low, high) in HEALTH_CHECK_RANGES {
            let Some(value) = check.get(field).filter(|v| !v.is_null()) else {
                continue;
            };
            if value.as_i64().is_none_or(|v| !(low..=high).contains(&v)) {
                return Err(ApiError::client(format!(
                    "Invalid 'healthCheck.{field}' setting for container '{name}': it must be \
                     between {low} and {high}."
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn fargate_pairs_follow_the_published_table() {
        let valid = [
            (256, 512),
            (256, 2048),
            (512, 1024),
            (512, 4096),
            (1024, 2048),
            (1024, 8192),
            (2048, 4096),
            (2048, 16384),
            (4096, 8192),
            (4096, 30720),
            (8192, 16384),
            (8192, 61440),
            (16384, 32768),
            (16384, 122_880),
        ];
        for (cpu, memory) in valid {
            assert!(fargate_pair_is_valid(cpu, memory), "{cpu}/{memory}");
        }
        let invalid = [
            (256, 256),
            (256, 1536),
            (256, 3072),
            (512, 512),
            (512, 1536),
            (512, 5120),
            (1024, 1024),
            (2048, 17408),
            (4096, 31744),
            (8192, 18432),
            (16384, 36864),
            (128, 512),
            (3072, 8192),
        ];
        for (cpu, memory) in invalid {
            assert!(!fargate_pair_is_valid(cpu, memory), "{cpu}/{memory}");
        }
    }

    #[test]
    fn units_parse_like_ecs() {
        assert_eq!(parse_cpu("256"), Some(256));
        assert_eq!(parse_cpu("0.25 vCPU"), Some(256));
        assert_eq!(parse_cpu("1 vcpu"), Some(1024));
        assert_eq!(parse_memory("2 GB"), Some(2048));
        assert_eq!(parse_memory("0.5GB"), Some(512));
        assert_eq!(parse_memory("lots"), None);
        assert_eq!(parse_cpu("0"), None);
    }

    #[test]
    fn fargate_needs_a_valid_task_size() {
        let error = task_size(&json!({"cpu": "256", "memory": "4096"}), true).unwrap_err();
        assert_eq!(error.code, "ClientException");
        assert!(error.message.starts_with("No Fargate configuration exists"));
        let error = task_size(&json!({"memory": "512"}), true).unwrap_err();
        assert!(error.message.contains("'cpu'"), "{}", error.message);
        let size = task_size(&json!({"cpu": "0.5 vCPU", "memory": "1 GB"}), true).unwrap();
        assert_eq!(size.cpu.as_deref(), Some("512"));
        assert_eq!(size.memory.as_deref(), Some("1024"));
        // EC2 tasks may leave the size out.
        assert_eq!(
            task_size(&json!({}), false).unwrap(),
            TaskSize {
                cpu: None,
                memory: None
            }
        );
    }

    #[test]
    fn containers_need_memory_unless_the_task_has_it() {
        let container = json!({"name": "web", "image": "nginx"});
        let error = container_memory(&container, false).unwrap_err();
        assert_eq!(
            error.message,
            "Invalid setting for container 'web'. At least one of 'memory' or \
             'memoryReservation' must be specified."
        );
        assert!(container_memory(&container, true).is_ok());
        assert!(container_memory(&json!({"name": "w", "memoryReservation": 64}), false).is_ok());
    }

    #[test]
    fn container_rules_follow_ecs() {
        let fargate = TaskRules {
            network_mode: Some("awsvpc"),
            fargate: true,
            memory_mib: Some(512),
            execution_role: false,
        };
        let with_role = TaskRules {
            execution_role: true,
            ..fargate
        };
        let ec2 = TaskRules {
            network_mode: Some("bridge"),
            fargate: false,
            memory_mib: None,
            execution_role: false,
        };
        let awslogs = json!({"logDriver": "awslogs", "options": {}});
        // (container, rules, the error's start or None when valid)
        let cases = [
            (
                json!({"name": "a", "portMappings": [{"containerPort": 80}]}),
                fargate,
                None,
            ),
            (
                json!({"name": "a", "portMappings": [{"containerPort": 80, "hostPort": 80}]}),
                fargate,
                None,
            ),
            (
                json!({"name": "a", "portMappings": [{"containerPort": 80, "hostPort": 8080}]}),
                fargate,
                Some("When networkMode=awsvpc"),
            ),
            (
                json!({"name": "a", "portMappings": [{"containerPort": 80, "hostPort": 8080}]}),
                ec2,
                None,
            ),
            (json!({"name": "a", "memory": 512}), fargate, None),
            (
                json!({"name": "a", "memory": 1024}),
                fargate,
                Some("The 'memory' setting for container 'a'"),
            ),
            (
                json!({"name": "a", "logConfiguration": awslogs}),
                fargate,
                Some("Fargate requires task definition to have execution role ARN"),
            ),
            (
                json!({"name": "a", "logConfiguration": awslogs}),
                with_role,
                None,
            ),
            (json!({"name": "a", "logConfiguration": awslogs}), ec2, None),
            (
                json!({"name": "a", "logConfiguration": {"logDriver": "papertrail"}}),
                with_role,
                Some("Log driver papertrail is not supported"),
            ),
            (
                json!({"name": "a", "secrets": [{"name": "K", "valueFrom": "arn:x"}]}),
                ec2,
                Some("When you are specifying container secrets"),
            ),
            (
                json!({"name": "a", "secrets": [{"name": "K", "valueFrom": "arn:x"}]}),
                with_role,
                None,
            ),
            (
                json!({"name": "a", "healthCheck": {"command": ["CMD"], "interval": 5,
                       "timeout": 2, "retries": 10, "startPeriod": 300}}),
                ec2,
                None,
            ),
            (
                json!({"name": "a", "healthCheck": {"command": ["CMD"], "interval": 4}}),
                ec2,
                Some("Invalid 'healthCheck.interval'"),
            ),
            (
                json!({"name": "a", "healthCheck": {"command": ["CMD"], "timeout": 61}}),
                ec2,
                Some("Invalid 'healthCheck.timeout'"),
            ),
            (
                json!({"name": "a", "healthCheck": {"command": ["CMD"], "retries": 0}}),
                ec2,
                Some("Invalid 'healthCheck.retries'"),
            ),
            (
                json!({"name": "a", "healthCheck": {"command": ["CMD"], "startPeriod": 301}}),
                ec2,
                Some("Invalid 'healthCheck.startPeriod'"),
            ),
        ];
        for (container, rules, expected) in cases {
            let result = container_rules(&container, rules);
            match expected {
                None => assert!(result.is_ok(), "{container}: {result:?}"),
                Some(start) => {
                    let error = result.expect_err(&container.to_string());
                    assert!(error.message.starts_with(start), "{container}: {error:?}");
                }
            }
        }
    }
}
