//! Templates: the example parses into SDK values, and a bad template is an error that
//! says what and where.

use aws_sdk_ecs::types::{CpuArchitecture, LogDriver, OsFamily, PortMapping, Ulimit, UlimitName};

use super::*;

#[test]
fn the_example_template_parses_into_sdk_values() {
    let s = spec();
    assert_eq!(s.family, "kyb-api");
    assert_eq!(s.network_mode, Some(NetworkMode::Awsvpc));
    assert_eq!(s.requires_compatibilities, vec![Compatibility::Fargate]);
    assert_eq!(s.cpu.as_deref(), Some("1 vCPU"));
    assert_eq!(s.memory.as_deref(), Some("2 GB"));
    assert_eq!(
        s.execution_role_arn.as_deref(),
        Some("arn:aws:iam::123456789012:role/kyb-api-execution")
    );
    assert_eq!(
        s.task_role_arn.as_deref(),
        Some("arn:aws:iam::123456789012:role/kyb-api-task")
    );
    assert_eq!(
        s.tags,
        vec![Tag::builder().key("team").value("kyb").build()]
    );
    assert!(s.volumes.is_empty() && s.placement_constraints.is_empty());

    assert_eq!(s.containers.len(), 1);
    let c = &s.containers[0];
    assert_eq!(c.name(), Some("api"));
    assert_eq!(c.image(), Some(IMAGE));
    // As written: the defaults ECS fills in are not invented by the parser.
    assert_eq!(c.essential, None);
    assert_eq!(c.cpu, 0);
    assert_eq!(
        c.port_mappings(),
        [PortMapping::builder().container_port(8080).build()]
    );
    assert_eq!(
        c.environment(),
        [pair("LOG_FORMAT", "json"), pair("PORT", "8080")]
    );
    assert_eq!(
        c.secrets(),
        [
            secret("DATABASE_URL", DB_SECRET),
            secret("SIGNING_KEY", KEY_PARAMETER)
        ]
    );
    let logs = c.log_configuration().expect("logConfiguration");
    assert_eq!(logs.log_driver, LogDriver::Awslogs);
    let options: BTreeMap<&str, &str> = logs
        .options
        .iter()
        .flatten()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        options,
        BTreeMap::from([
            ("awslogs-group", "/ecs/kyb-api"),
            ("awslogs-region", "eu-west-1"),
            ("awslogs-stream-prefix", "api"),
        ])
    );
    assert_eq!(logs.secret_options, None);
    let health = c.health_check().expect("healthCheck");
    assert_eq!(health.command, ["CMD-SHELL", HEALTH_COMMAND]);
    assert_eq!(
        (
            health.interval,
            health.timeout,
            health.retries,
            health.start_period
        ),
        (Some(10), None, Some(5), None)
    );
    assert_eq!(c.docker_labels, None);
    assert_eq!(c.readonly_root_filesystem, Some(true));
    assert_eq!(c.stop_timeout, Some(30));
    assert_eq!(
        c.ulimits(),
        [Ulimit::builder()
            .name(UlimitName::Nofile)
            .soft_limit(65536)
            .hard_limit(65536)
            .build()
            .unwrap()]
    );
    assert_eq!(
        s.runtime_platform,
        Some(
            RuntimePlatform::builder()
                .cpu_architecture(CpuArchitecture::Arm64)
                .operating_system_family(OsFamily::Linux)
                .build()
        )
    );
    assert_eq!(
        s.ephemeral_storage,
        Some(EphemeralStorage::builder().size_in_gib(30).build())
    );
    assert!(s.check().is_empty(), "{:?}", s.check());
}

#[test]
fn an_unknown_top_level_field_is_an_error_naming_it_the_file_and_the_position() {
    let text = TEMPLATE.replacen("\"cpu\": \"1 vCPU\"", "\"cpus\": \"1 vCPU\"", 1);
    let error = parse_error(&text);
    assert!(error.contains("unknown field `cpus`"), "{error}");
    assert!(error.contains("expected one of"), "{error}");
    assert!(error.contains(ORIGIN), "{error}");
    // "cpus" is on line 5; serde reports the column of the key's closing quote.
    assert!(error.contains("line 5 column 8"), "{error}");
    // The position is said once, not also in serde's own suffix.
    assert!(!error.contains(" at line "), "{error}");
    assert!(error.contains("--cli-input-json"), "{error}");
}

#[test]
fn an_unknown_container_field_is_an_error_naming_it_the_file_and_the_position() {
    let text = TEMPLATE.replacen("\"image\":", "\"imageUri\":", 1);
    let error = parse_error(&text);
    assert!(error.contains("unknown field `imageUri`"), "{error}");
    assert!(error.contains(ORIGIN), "{error}");
    assert!(error.contains("line 12 column 16"), "{error}");
}

#[test]
fn a_value_of_the_wrong_type_names_the_position() {
    let text = TEMPLATE.replacen("\"cpu\": \"1 vCPU\"", "\"cpu\": 1024", 1);
    let error = parse_error(&text);
    assert!(error.contains("invalid type: integer `1024`"), "{error}");
    assert!(error.contains("line 5 column"), "{error}");
    let error = parse_error("{\"containerDefinitions\": []}");
    assert!(error.contains("missing field `family`"), "{error}");
}

#[test]
fn bad_enum_values_name_the_accepted_values() {
    let text = TEMPLATE
        .replacen("\"awsvpc\"", "\"bridgee\"", 1)
        .replacen("\"awslogs\"", "\"cloudwatch\"", 1)
        .replacen(
            "{\"containerPort\": 8080}",
            "{\"containerPort\": 8080, \"protocol\": \"TCP\"}",
            1,
        );
    let error = parse_error(&text);
    assert!(error.starts_with(&format!("task definition template {ORIGIN}: ")));
    for expected in [
        "networkMode \"bridgee\" is not one of awsvpc, bridge, host, none",
        "container \"api\" logConfiguration.logDriver \"cloudwatch\" is not one of awsfirelens, awslogs, fluentd, gelf, journald, json-file, splunk, syslog",
        "container \"api\" portMappings.protocol \"TCP\" is not one of tcp, udp",
    ] {
        assert!(error.contains(expected), "{expected:?} not in {error}");
    }
    let error = parse_error(&TEMPLATE.replacen("\"FARGATE\"", "\"FARGATE_SPOT\"", 1));
    assert!(
        error.contains("requiresCompatibilities \"FARGATE_SPOT\" is not one of EC2"),
        "{error}"
    );
}

#[test]
fn an_empty_health_check_command_is_refused() {
    let text = TEMPLATE.replacen(
        "\"command\": [\"CMD-SHELL\", \"curl -f http://localhost:8080/health || exit 1\"]",
        "\"command\": []",
        1,
    );
    assert_ne!(text, TEMPLATE);
    let error = parse_error(&text);
    assert!(
        error.contains("container \"api\" healthCheck: command must not be empty"),
        "{error}"
    );
    assert!(error.contains(ORIGIN), "{error}");
}

#[test]
fn numbers_outside_ecs_limits_and_duplicate_names_are_refused_naming_the_field() {
    let cases = [
        (
            TEMPLATE.replacen("{\"containerPort\": 8080}", "{\"containerPort\": 70000}", 1),
            "container \"api\" portMappings.containerPort 70000 is outside 1-65535",
        ),
        (
            TEMPLATE.replacen("{\"containerPort\": 8080}", "{\"containerPort\": 0}", 1),
            "container \"api\" portMappings.containerPort 0 is outside 1-65535",
        ),
        (
            TEMPLATE.replacen(
                "{\"containerPort\": 8080}",
                "{\"containerPort\": 8080, \"hostPort\": -1}",
                1,
            ),
            "container \"api\" portMappings.hostPort -1 is outside 0-65535",
        ),
        (
            TEMPLATE.replacen("\"interval\": 10", "\"interval\": -10", 1),
            "container \"api\" healthCheck.interval -10 is outside 5-300 seconds",
        ),
        (
            TEMPLATE.replacen("\"retries\": 5", "\"retries\": 50", 1),
            "container \"api\" healthCheck.retries 50 is outside 1-10",
        ),
        (
            TEMPLATE.replacen("\"stopTimeout\": 30", "\"stopTimeout\": -1", 1),
            "container \"api\" stopTimeout -1 is outside",
        ),
        (
            TEMPLATE.replacen(
                "\"containerDefinitions\": [",
                "\"containerDefinitions\": [{\"name\": \"api\", \"image\": \"x\"},",
                1,
            ),
            "container name \"api\" is used twice in containerDefinitions",
        ),
    ];
    for (text, expected) in cases {
        assert_ne!(text, TEMPLATE, "{expected}");
        let error = parse_error(&text);
        assert!(error.contains(expected), "{expected:?} not in {error}");
        assert!(error.contains(ORIGIN), "{error}");
    }
}
