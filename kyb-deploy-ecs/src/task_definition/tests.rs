//! Task definitions: templates, releases, Fargate checks, comparison with what ECS
//! returns, and the plan's diff.

use std::collections::BTreeMap;

use aws_sdk_ecs::types::{
    CpuArchitecture, FirelensConfiguration, FirelensConfigurationType, HealthCheck,
    LogConfiguration, LogDriver, MountPoint, OsFamily, PortMapping, Secret, TaskDefinitionStatus,
    Ulimit, UlimitName,
};
use kyb_deploy_core::PlannedChange;
use proptest::prelude::*;
use serde_json::{Value, json};

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
    TaskDefinitionSpec::from_template(text, ORIGIN).expect_err("the template is refused")
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

// Templates.

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

// Releases.

#[test]
fn a_release_sets_the_image_the_version_label_and_the_environment() {
    let env = [
        ("PORT".to_owned(), "9090".to_owned()),
        ("ENVIRONMENT".to_owned(), "staging".to_owned()),
    ];
    let s = spec()
        .with_release(
            None,
            "registry.test/kyb-api:v2.0.1",
            &version("v2.0.1"),
            &env,
        )
        .expect("the only container is the service's");
    assert_eq!(s.image(None), Some("registry.test/kyb-api:v2.0.1"));
    assert_eq!(s.version_label(None), Some("v2.0.1"));
    let c = &s.containers[0];
    assert_eq!(
        c.docker_labels.as_ref().and_then(|l| l.get(VERSION_LABEL)),
        Some(&"v2.0.1".to_owned())
    );
    assert_eq!(
        env_of(c),
        BTreeMap::from([
            ("ENVIRONMENT".to_owned(), "staging".to_owned()),
            ("LOG_FORMAT".to_owned(), "json".to_owned()),
            ("PORT".to_owned(), "9090".to_owned()),
        ])
    );
    // Replaced, not added a second time.
    assert_eq!(c.environment().len(), 3);
    // Everything else is the template's.
    assert_eq!(c.secrets(), spec().containers[0].secrets());
    assert_eq!(c.health_check, spec().containers[0].health_check);
}

#[test]
fn a_release_keeps_the_template_labels() {
    let mut s = spec();
    s.containers[0].docker_labels = Some(HashMap::from([("team".to_owned(), "kyb".to_owned())]));
    let s = s
        .with_release(Some("api"), "img:v3", &version("v3"), &[])
        .unwrap();
    let labels = s.containers[0].docker_labels.clone().unwrap();
    assert_eq!(labels.len(), 2, "{labels:?}");
    assert_eq!(labels["team"], "kyb");
    assert_eq!(labels[VERSION_LABEL], "v3");
}

#[test]
fn a_release_changes_only_the_named_container() {
    let before = with_sidecar();
    let s = before
        .clone()
        .with_release(Some("api"), "img:v2", &version("v2"), &[])
        .unwrap();
    assert_eq!(s.containers[1], before.containers[1]);
    assert_eq!(s.containers[0].image(), Some("img:v2"));
    assert_eq!(s.image(Some("api")), Some("img:v2"));

    let s = before
        .clone()
        .with_release(
            Some("log-router"),
            "fluent-bit:v2",
            &version("v2"),
            &[("A".to_owned(), "1".to_owned())],
        )
        .unwrap();
    assert_eq!(s.containers[0], before.containers[0]);
    assert_eq!(s.image(Some("log-router")), Some("fluent-bit:v2"));
    assert_eq!(s.version_label(Some("log-router")), Some("v2"));
    assert_eq!(s.containers[1].environment(), [pair("A", "1")]);
}

#[test]
fn a_missing_container_name_lists_the_containers() {
    let error = spec().service_container(Some("web")).unwrap_err();
    assert!(
        error.contains("task definition kyb-api has no container named \"web\" (it has \"api\")"),
        "{error}"
    );
    assert!(error.contains("ecs.container"), "{error}");
    let error = spec()
        .with_release(Some("web"), "img:v2", &version("v2"), &[])
        .unwrap_err();
    assert!(error.contains("no container named \"web\""), "{error}");
}

#[test]
fn several_containers_need_a_name() {
    let s = with_sidecar();
    let error = s.service_container(None).unwrap_err();
    assert!(
        error.contains("task definition kyb-api has 2 containers (\"api\", \"log-router\")"),
        "{error}"
    );
    assert!(error.contains("set ecs.container"), "{error}");
    assert_eq!(s.service_container(Some("log-router")), Ok(1));
    assert_eq!(s.service_container(Some("api")), Ok(0));
    assert_eq!(s.image(None), None);
    assert_eq!(s.version_label(None), None);
    assert!(s.with_release(None, "img:v2", &version("v2"), &[]).is_err());
}

// Fargate checks.

#[test]
fn check_reports_each_fargate_problem() {
    let problems_of = |edit: &dyn Fn(&mut TaskDefinitionSpec)| {
        let mut s = spec();
        edit(&mut s);
        s.check()
    };
    let problems = problems_of(&|s| s.network_mode = Some(NetworkMode::Bridge));
    assert_eq!(
        problems,
        ["Fargate tasks need \"networkMode\": \"awsvpc\""],
        "{problems:?}"
    );
    let problems = problems_of(&|s| s.network_mode = None);
    assert_eq!(problems.len(), 1, "{problems:?}");

    let problems = problems_of(&|s| s.cpu = None);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("need task-level \"cpu\" and \"memory\""),
        "{problems:?}"
    );
    let problems = problems_of(&|s| s.memory = None);
    assert!(
        problems[0].contains("need task-level \"cpu\" and \"memory\""),
        "{problems:?}"
    );

    let problems = problems_of(&|s| {
        s.cpu = Some("256".into());
        s.memory = Some("4 GB".into());
    });
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("Fargate does not offer cpu 256 with memory 4096 MiB"),
        "{problems:?}"
    );

    let problems = problems_of(&|s| {
        s.containers[0].cpu = 2048;
        s.containers[0].memory = Some(4096);
    });
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems[0].contains("reserve 2048 CPU units, more than the task's 1024"),
        "{problems:?}"
    );
    assert!(
        problems[1].contains("add up to 4096 MiB, more than the task's 2048 MiB"),
        "{problems:?}"
    );

    // Every problem at once, not the first only.
    let problems = problems_of(&|s| {
        s.network_mode = Some(NetworkMode::Host);
        s.cpu = Some("300".into());
    });
    assert_eq!(problems.len(), 2, "{problems:?}");
}

#[test]
fn check_leaves_non_fargate_tasks_to_ecs_but_needs_a_family_and_containers() {
    let mut s = spec();
    s.requires_compatibilities = vec![Compatibility::Ec2];
    s.network_mode = Some(NetworkMode::Bridge);
    s.cpu = None;
    s.memory = None;
    assert!(s.check().is_empty(), "{:?}", s.check());
    s.family.clear();
    s.containers.clear();
    assert_eq!(
        s.check(),
        ["\"family\" is missing", "\"containerDefinitions\" is empty"]
    );
}

// Comparison with what ECS returns.

#[test]
fn a_template_is_the_same_as_what_ecs_returns_for_it() {
    let desired = spec();
    let current = registered();
    // The twin really differs field by field: defaults, sizes, order, empty lists.
    assert_ne!(desired, current);
    assert_ne!(desired.containers[0], current.containers[0]);
    assert_eq!(current.cpu.as_deref(), Some("1024"));
    assert!(desired.same_as(&current));
    assert!(current.same_as(&desired));
    assert_eq!(desired.normalised(), current.normalised());
    assert!(diff(Some(&current), &desired).is_empty());
}

#[test]
fn a_release_is_the_same_as_its_registered_revision() {
    let env = [("ENVIRONMENT".to_owned(), "staging".to_owned())];
    let desired = spec()
        .with_release(None, "img:v2", &version("v2"), &env)
        .unwrap();
    let current = described(&desired, "1024", "2048");
    assert!(desired.same_as(&current));
    assert!(diff(Some(&current), &desired).is_empty());
    // The next release is not.
    let next = spec()
        .with_release(None, "img:v3", &version("v3"), &env)
        .unwrap();
    assert!(!next.same_as(&current));
}

#[test]
fn a_real_change_is_not_the_same() {
    let current = registered();
    type Edit = fn(&mut TaskDefinitionSpec);
    let edits: [(&str, Edit); 9] = [
        ("image", |s| {
            s.containers[0].image = Some("img:other".into())
        }),
        ("env value", |s| {
            s.containers[0].environment.as_mut().unwrap()[0] = pair("LOG_FORMAT", "text");
        }),
        ("env added", |s| {
            s.containers[0]
                .environment
                .as_mut()
                .unwrap()
                .push(pair("NEW", "1"));
        }),
        ("secret", |s| {
            s.containers[0].secrets.as_mut().unwrap()[1] = secret(
                "SIGNING_KEY",
                "arn:aws:ssm:eu-west-1:123456789012:parameter/other",
            );
        }),
        ("memory", |s| s.memory = Some("4 GB".into())),
        ("not essential", |s| s.containers[0].essential = Some(false)),
        ("udp", |s| {
            s.containers[0].port_mappings.as_mut().unwrap()[0].protocol =
                Some(TransportProtocol::Udp);
        }),
        ("health timeout", |s| {
            s.containers[0].health_check.as_mut().unwrap().timeout = Some(6);
        }),
        ("task role", |s| s.task_role_arn = None),
    ];
    for (what, edit) in edits {
        let mut desired = spec();
        edit(&mut desired);
        assert!(!desired.same_as(&current), "{what}");
        assert!(!current.same_as(&desired), "{what}");
        assert!(!diff(Some(&current), &desired).is_empty(), "{what}");
    }
}

#[test]
fn sizes_compare_in_units_and_mib() {
    let mut a = spec();
    a.cpu = Some("1024".into());
    a.memory = Some("2048".into());
    assert!(a.same_as(&spec()));
    a.cpu = Some("0.5 vCPU".into());
    assert!(!a.same_as(&spec()));
    assert_eq!(a.normalised().cpu.as_deref(), Some("512"));
    // A size that is not one stays as written, and still differs.
    a.cpu = Some("lots".into());
    assert_eq!(a.normalised().cpu.as_deref(), Some("lots"));
    assert!(!a.same_as(&spec()));
}

#[test]
fn tags_are_not_part_of_the_comparison() {
    let mut a = spec();
    a.tags.clear();
    assert!(a.same_as(&spec()));
    assert!(diff(Some(&spec()), &a).is_empty());
}

#[test]
fn the_host_port_ecs_fills_in_is_only_the_container_port_without_a_bridge() {
    let mut s = spec();
    s.requires_compatibilities = vec![Compatibility::Ec2];
    s.network_mode = Some(NetworkMode::Host);
    assert!(s.same_as(&described(&s, "1024", "2048")));
    // A fixed host port is a change from a dynamic one.
    s.network_mode = Some(NetworkMode::Bridge);
    let mut fixed = s.clone();
    fixed.containers[0].port_mappings.as_mut().unwrap()[0].host_port = Some(8080);
    assert!(!s.same_as(&fixed));
    // Under awsvpc, writing the host port is writing the default.
    let mut explicit = spec();
    explicit.containers[0].port_mappings.as_mut().unwrap()[0].host_port = Some(8080);
    assert!(explicit.same_as(&spec()));
    explicit.containers[0].port_mappings.as_mut().unwrap()[0].host_port = Some(9090);
    assert!(!explicit.same_as(&spec()));
}

#[test]
fn empty_lists_and_maps_are_the_same_as_none() {
    let mut a = spec();
    let c = &mut a.containers[0];
    c.mount_points = Some(vec![]);
    c.volumes_from = Some(vec![]);
    c.system_controls = Some(vec![]);
    c.docker_labels = Some(HashMap::new());
    c.log_configuration.as_mut().unwrap().secret_options = Some(vec![]);
    assert!(a.same_as(&spec()));
    assert!(diff(Some(&spec()), &a).is_empty());
    // But not a list with something in it.
    a.containers[0].mount_points = Some(vec![
        MountPoint::builder()
            .source_volume("data")
            .container_path("/data")
            .build(),
    ]);
    assert!(!a.same_as(&spec()));
    let changes = diff(Some(&spec()), &a);
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].field, "other settings");
    assert!(
        changes[0].to.as_deref().unwrap().contains("/data"),
        "{changes:?}"
    );
}

#[test]
fn normalising_is_idempotent_and_fills_the_defaults() {
    let n = spec().normalised();
    assert_eq!(n.normalised(), n);
    assert!(n.tags.is_empty());
    let c = &n.containers[0];
    assert_eq!(c.essential, Some(true));
    assert_eq!(
        c.port_mappings(),
        [PortMapping::builder()
            .container_port(8080)
            .host_port(8080)
            .protocol(TransportProtocol::Tcp)
            .build()]
    );
    let health = c.health_check().unwrap();
    assert_eq!(
        (
            health.interval,
            health.timeout,
            health.retries,
            health.start_period
        ),
        (Some(10), Some(5), Some(5), Some(0))
    );
    assert_eq!(
        (n.cpu.as_deref(), n.memory.as_deref()),
        (Some("1024"), Some("2048"))
    );
}

#[test]
fn register_request_sends_the_spec_without_empty_lists() {
    let config = aws_sdk_ecs::Config::builder()
        .behavior_version(aws_sdk_ecs::config::BehaviorVersion::latest())
        .region(aws_sdk_ecs::config::Region::new("eu-west-1"))
        .build();
    let client = aws_sdk_ecs::Client::from_conf(config);
    let s = spec();
    let call = s.register_request(client.register_task_definition());
    assert_eq!(call.get_family().as_deref(), Some("kyb-api"));
    assert_eq!(call.get_cpu().as_deref(), Some("1 vCPU"));
    assert_eq!(call.get_memory().as_deref(), Some("2 GB"));
    assert_eq!(call.get_network_mode(), &Some(NetworkMode::Awsvpc));
    assert_eq!(
        call.get_container_definitions(),
        &Some(s.containers.clone())
    );
    assert_eq!(
        call.get_requires_compatibilities(),
        &Some(vec![Compatibility::Fargate])
    );
    assert_eq!(call.get_task_role_arn(), &s.task_role_arn);
    assert_eq!(call.get_execution_role_arn(), &s.execution_role_arn);
    assert_eq!(call.get_tags(), &Some(s.tags.clone()));
    assert_eq!(call.get_volumes(), &None);
    assert_eq!(call.get_placement_constraints(), &None);
}

// Diffs.

#[test]
fn no_changes_between_a_spec_and_what_ecs_returns_for_it() {
    assert_eq!(diff(Some(&registered()), &spec()), []);
}

#[test]
fn an_image_change_is_one_change_of_the_container() {
    let mut desired = spec();
    desired.containers[0].image = Some("registry.test/kyb-api:v2".into());
    assert_eq!(
        diff(Some(&registered()), &desired),
        [change(
            "image",
            Some(IMAGE),
            Some("registry.test/kyb-api:v2")
        )]
    );
}

#[test]
fn a_release_shows_its_image_label_and_new_variables() {
    let current = described(
        &spec()
            .with_release(None, "img:v1", &version("v1"), &[])
            .unwrap(),
        "1024",
        "2048",
    );
    let desired = spec()
        .with_release(
            None,
            "img:v2",
            &version("v2"),
            &[("ENVIRONMENT".to_owned(), "staging".to_owned())],
        )
        .unwrap();
    assert_eq!(
        diff(Some(&current), &desired),
        [
            change(
                &format!("dockerLabels.{VERSION_LABEL}"),
                Some("v1"),
                Some("v2")
            ),
            change("environment.ENVIRONMENT", None, Some("staging")),
            change("image", Some("img:v1"), Some("img:v2")),
        ]
    );
}

#[test]
fn an_added_variable_and_a_removed_secret_show_the_missing_side_as_none() {
    let mut desired = spec();
    let c = &mut desired.containers[0];
    c.environment
        .as_mut()
        .unwrap()
        .push(pair("FEATURE_X", "on"));
    c.secrets
        .as_mut()
        .unwrap()
        .retain(|s| s.name != "DATABASE_URL");
    assert_eq!(
        diff(Some(&registered()), &desired),
        [
            change("environment.FEATURE_X", None, Some("on")),
            change(
                "secrets.DATABASE_URL",
                Some(&format!("valueFrom {DB_SECRET}")),
                None
            ),
        ]
    );
}

#[test]
fn task_size_changes_show_normalised_values() {
    let mut desired = spec();
    desired.memory = Some("4 GB".into());
    assert_eq!(
        diff(Some(&registered()), &desired),
        [PlannedChange {
            resource: "task definition".into(),
            field: "memory".into(),
            from: Some("2048".into()),
            to: Some("4096".into()),
        }]
    );
}

#[test]
fn a_first_deployment_adds_every_field() {
    let changes = diff(None, &spec());
    assert!(
        changes.iter().all(|c| c.from.is_none() && c.to.is_some()),
        "{changes:?}"
    );
    let field = |resource: &str, field: &str| {
        changes
            .iter()
            .find(|c| c.resource == resource && c.field == field)
            .and_then(|c| c.to.clone())
    };
    assert_eq!(
        field("task definition", "family").as_deref(),
        Some("kyb-api")
    );
    assert_eq!(field("task definition", "cpu").as_deref(), Some("1024"));
    assert_eq!(
        field("task definition", "requiresCompatibilities").as_deref(),
        Some("FARGATE")
    );
    assert_eq!(field("container api", "image").as_deref(), Some(IMAGE));
    assert_eq!(
        field("container api", "environment.PORT").as_deref(),
        Some("8080")
    );
    assert_eq!(
        field("container api", "secrets.SIGNING_KEY"),
        Some(format!("valueFrom {KEY_PARAMETER}"))
    );
    assert_eq!(
        field("container api", "portMappings.8080/tcp").as_deref(),
        Some("host 8080")
    );
    assert_eq!(
        field("container api", "healthCheck").as_deref(),
        Some("interval 10s, timeout 5s, retries 5, startPeriod 0s")
    );
    assert_eq!(
        field("container api", "logConfiguration.options.awslogs-group").as_deref(),
        Some("/ecs/kyb-api")
    );
    // Tags are not shown, as they are not compared.
    assert!(
        changes.iter().all(|c| !c.field.contains("tag")),
        "{changes:?}"
    );
    // The same fields as a diff against ECS's copy, all added.
    assert_eq!(changes, diff(None, &registered()));
}

// Properties.

fn env_name() -> impl Strategy<Value = String> {
    "[A-Z_][A-Z0-9_]{0,15}"
}

fn env_value() -> impl Strategy<Value = String> {
    "[ -~]{0,24}"
}

/// Environment variables as name and value.
type Vars = Vec<(String, String)>;

/// Variables in name order, and the same variables in another order.
fn env_and_shuffled() -> impl Strategy<Value = (Vars, Vars)> {
    prop::collection::btree_map(env_name(), env_value(), 0..12).prop_flat_map(|map| {
        let vars: Vars = map.into_iter().collect();
        (Just(vars.clone()), Just(vars).prop_shuffle())
    })
}

fn pairs(vars: &[(String, String)]) -> Vec<KeyValuePair> {
    vars.iter().map(|(n, v)| pair(n, v)).collect()
}

/// One change to one field, which may or may not change what ECS would register.
#[derive(Clone, Debug)]
enum Mutation {
    Image(String),
    EnvValue(String),
    AddEnv(String, String),
    RemoveEnv,
    ReverseEnv,
    Secret(String),
    RemoveSecret,
    Cpu(&'static str),
    Memory(&'static str),
    Essential(Option<bool>),
    Protocol(Option<TransportProtocol>),
    HostPort(Option<i32>),
    HealthInterval(Option<i32>),
    HealthStartPeriod(Option<i32>),
    Label(String, String),
    LogOption(String),
    LogSecretOptions(Vec<(String, String)>),
    EmptyLists,
    Command(Vec<String>),
    TaskRole(Option<String>),
    Family(String),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let size = |values: &'static [&'static str]| prop::sample::select(values);
    prop_oneof![
        prop_oneof![Just(IMAGE.to_owned()), "[a-z]{1,8}:v[0-9]"].prop_map(Mutation::Image),
        prop_oneof![Just("json".to_owned()), env_value()].prop_map(Mutation::EnvValue),
        ("EXTRA_[A-Z0-9]{1,6}", env_value()).prop_map(|(n, v)| Mutation::AddEnv(n, v)),
        Just(Mutation::RemoveEnv),
        Just(Mutation::ReverseEnv),
        prop_oneof![Just(DB_SECRET.to_owned()), "arn:aws:ssm:[a-z0-9/:-]{1,20}"]
            .prop_map(Mutation::Secret),
        Just(Mutation::RemoveSecret),
        size(&["1024", "1 vCPU", " 1 vcpu ", "2048", "2 vCPU", "0.5 vCPU"]).prop_map(Mutation::Cpu),
        size(&["2048", "2 GB", "2GB", "4096", "4 GB", "3072"]).prop_map(Mutation::Memory),
        prop::option::of(any::<bool>()).prop_map(Mutation::Essential),
        prop::sample::select(vec![
            None,
            Some(TransportProtocol::Tcp),
            Some(TransportProtocol::Udp)
        ])
        .prop_map(Mutation::Protocol),
        prop::option::of(prop_oneof![Just(8080), 1..65535]).prop_map(Mutation::HostPort),
        prop::option::of(prop_oneof![Just(10), Just(30), 5..300])
            .prop_map(Mutation::HealthInterval),
        prop::option::of(0..3).prop_map(Mutation::HealthStartPeriod),
        (
            prop_oneof![Just(VERSION_LABEL.to_owned()), "[a-z.]{1,12}"],
            "[a-z0-9]{0,6}"
        )
            .prop_map(|(k, v)| Mutation::Label(k, v)),
        prop_oneof![Just("/ecs/kyb-api".to_owned()), "/[a-z/]{0,12}"].prop_map(Mutation::LogOption),
        prop::collection::vec(("[A-Z]{1,6}", "arn:aws:ssm:[a-z]{1,6}"), 0..2)
            .prop_map(Mutation::LogSecretOptions),
        Just(Mutation::EmptyLists),
        prop::collection::vec("[a-z ]{0,6}", 0..3).prop_map(Mutation::Command),
        prop::option::of(prop_oneof![
            Just("arn:aws:iam::123456789012:role/kyb-api-task".to_owned()),
            "arn:aws:iam::[0-9]{12}:role/[a-z]{1,8}"
        ])
        .prop_map(Mutation::TaskRole),
        prop_oneof![Just("kyb-api".to_owned()), "[a-z-]{1,10}"].prop_map(Mutation::Family),
    ]
}

fn apply(s: &mut TaskDefinitionSpec, m: Mutation) {
    let c = &mut s.containers[0];
    match m {
        Mutation::Image(image) => c.image = Some(image),
        Mutation::EnvValue(value) => {
            c.environment.as_mut().unwrap()[0] = pair("LOG_FORMAT", &value)
        }
        Mutation::AddEnv(name, value) => c.environment.as_mut().unwrap().push(pair(&name, &value)),
        Mutation::RemoveEnv => {
            c.environment.as_mut().unwrap().remove(1);
        }
        Mutation::ReverseEnv => c.environment.as_mut().unwrap().reverse(),
        Mutation::Secret(value_from) => {
            c.secrets.as_mut().unwrap()[0] = secret("DATABASE_URL", &value_from);
        }
        Mutation::RemoveSecret => {
            c.secrets.as_mut().unwrap().remove(0);
        }
        Mutation::Cpu(cpu) => s.cpu = Some(cpu.to_owned()),
        Mutation::Memory(memory) => s.memory = Some(memory.to_owned()),
        Mutation::Essential(essential) => c.essential = essential,
        Mutation::Protocol(protocol) => c.port_mappings.as_mut().unwrap()[0].protocol = protocol,
        Mutation::HostPort(port) => c.port_mappings.as_mut().unwrap()[0].host_port = port,
        Mutation::HealthInterval(interval) => c.health_check.as_mut().unwrap().interval = interval,
        Mutation::HealthStartPeriod(period) => {
            c.health_check.as_mut().unwrap().start_period = period;
        }
        Mutation::Label(key, value) => {
            c.docker_labels
                .get_or_insert_with(HashMap::new)
                .insert(key, value);
        }
        Mutation::LogOption(group) => {
            c.log_configuration
                .as_mut()
                .unwrap()
                .options
                .as_mut()
                .unwrap()
                .insert("awslogs-group".to_owned(), group);
        }
        Mutation::LogSecretOptions(secrets) => {
            c.log_configuration.as_mut().unwrap().secret_options =
                Some(secrets.iter().map(|(n, v)| secret(n, v)).collect());
        }
        Mutation::EmptyLists => {
            c.mount_points = Some(vec![]);
            c.volumes_from = Some(vec![]);
            c.system_controls = Some(vec![]);
            c.links = Some(vec![]);
        }
        Mutation::Command(command) => c.command = Some(command),
        Mutation::TaskRole(role) => s.task_role_arn = role,
        Mutation::Family(family) => s.family = family,
    }
}

/// A generated template: its JSON, and the spec it must parse into, built independently
/// from the SDK's builders.
fn template() -> impl Strategy<Value = (Value, TaskDefinitionSpec)> {
    let size = prop::sample::select(vec![
        ("256", "512"),
        ("0.5 vCPU", "1024"),
        ("1 vCPU", "2 GB"),
        ("4096", "30720"),
    ]);
    let secrets = prop::collection::btree_map(
        "[A-Z][A-Z0-9_]{0,10}",
        prop_oneof![
            "arn:aws:secretsmanager:eu-west-1:[0-9]{12}:secret:[a-z/]{1,12}-[A-Za-z0-9]{6}",
            "arn:aws:ssm:eu-west-1:[0-9]{12}:parameter/[a-z/]{1,12}",
        ],
        0..4,
    );
    let port = prop::option::of((1..=65535i32, prop::option::of(prop::bool::ANY)));
    let health = prop::option::of((
        prop::collection::vec("[ -~]{1,20}", 1..4),
        prop::option::of(5..=300i32),
        prop::option::of(1..=10i32),
    ));
    (
        "[a-zA-Z][a-zA-Z0-9_-]{0,30}",
        "[a-z][a-z0-9-]{0,15}",
        "[a-z0-9.-]{1,12}(/[a-z0-9-]{1,10})?:[a-zA-Z0-9._-]{1,20}",
        size,
        prop::collection::btree_map(env_name(), env_value(), 0..6),
        secrets,
        port,
        health,
        prop::option::of(any::<bool>()),
        prop::option::of("/ecs/[a-z-]{1,12}"),
    )
        .prop_map(
            |(family, name, image, (cpu, memory), env, secrets, port, health, essential, logs)| {
                let mut c = json!({"name": name, "image": image});
                let mut expected = ContainerDefinition::builder()
                    .name(&name)
                    .image(&image)
                    .set_essential(essential);
                if let Some(essential) = essential {
                    c["essential"] = json!(essential);
                }
                if let Some((container_port, udp)) = port {
                    let protocol = udp.map(|udp| if udp { "udp" } else { "tcp" });
                    let mut p = json!({"containerPort": container_port});
                    if let Some(protocol) = protocol {
                        p["protocol"] = json!(protocol);
                    }
                    c["portMappings"] = json!([p]);
                    expected = expected.port_mappings(
                        PortMapping::builder()
                            .container_port(container_port)
                            .set_protocol(protocol.map(TransportProtocol::from))
                            .build(),
                    );
                }
                if !env.is_empty() {
                    c["environment"] = env
                        .iter()
                        .map(|(n, v)| json!({"name": n, "value": v}))
                        .collect();
                    for (n, v) in &env {
                        expected = expected.environment(pair(n, v));
                    }
                }
                if !secrets.is_empty() {
                    c["secrets"] = secrets
                        .iter()
                        .map(|(n, v)| json!({"name": n, "valueFrom": v}))
                        .collect();
                    for (n, v) in &secrets {
                        expected = expected.secrets(secret(n, v));
                    }
                }
                if let Some(group) = logs {
                    c["logConfiguration"] = json!({
                        "logDriver": "awslogs",
                        "options": {"awslogs-group": group, "awslogs-region": "eu-west-1"},
                    });
                    expected = expected.log_configuration(
                        LogConfiguration::builder()
                            .log_driver(LogDriver::Awslogs)
                            .options("awslogs-group", group)
                            .options("awslogs-region", "eu-west-1")
                            .build()
                            .unwrap(),
                    );
                }
                if let Some((command, interval, retries)) = health {
                    let mut h = json!({"command": command});
                    if let Some(interval) = interval {
                        h["interval"] = json!(interval);
                    }
                    if let Some(retries) = retries {
                        h["retries"] = json!(retries);
                    }
                    c["healthCheck"] = h;
                    expected = expected.health_check(
                        HealthCheck::builder()
                            .set_command(Some(command))
                            .set_interval(interval)
                            .set_retries(retries)
                            .build()
                            .unwrap(),
                    );
                }
                let text = json!({
                    "family": family,
                    "networkMode": "awsvpc",
                    "requiresCompatibilities": ["FARGATE"],
                    "cpu": cpu,
                    "memory": memory,
                    "containerDefinitions": [c],
                });
                let spec = TaskDefinitionSpec {
                    family,
                    task_role_arn: None,
                    execution_role_arn: None,
                    network_mode: Some(NetworkMode::Awsvpc),
                    containers: vec![expected.build()],
                    volumes: vec![],
                    placement_constraints: vec![],
                    requires_compatibilities: vec![Compatibility::Fargate],
                    cpu: Some(cpu.to_owned()),
                    memory: Some(memory.to_owned()),
                    pid_mode: None,
                    ipc_mode: None,
                    proxy_configuration: None,
                    inference_accelerators: vec![],
                    ephemeral_storage: None,
                    runtime_platform: None,
                    enable_fault_injection: None,
                    tags: vec![],
                };
                (text, spec)
            },
        )
}

proptest! {
    #[test]
    fn variables_in_any_order_are_the_same((vars, shuffled) in env_and_shuffled()) {
        let mut desired = spec();
        desired.containers[0].environment = (!vars.is_empty()).then(|| pairs(&vars));
        let mut current = described(&desired, "1024", "2048");
        current.containers[0].environment = Some(pairs(&shuffled));
        prop_assert!(desired.same_as(&current));
        prop_assert!(current.same_as(&desired));
        prop_assert_eq!(diff(Some(&current), &desired), vec![]);
    }

    #[test]
    fn release_variables_replace_the_template_ones((vars, shuffled) in env_and_shuffled()) {
        let released = spec().with_release(None, "img:v1", &version("v1"), &shuffled).unwrap();
        let mut expected = env_of(&spec().containers[0]);
        expected.extend(vars.iter().cloned());
        let c = &released.containers[0];
        prop_assert_eq!(env_of(c), expected.clone());
        prop_assert_eq!(c.environment().len(), expected.len());
        // The order of the release's variables does not make another revision.
        let again = spec().with_release(None, "img:v1", &version("v1"), &vars).unwrap();
        prop_assert!(again.same_as(&released));
    }

    #[test]
    fn diff_is_empty_exactly_when_the_specs_are_the_same(m in mutation()) {
        let current = registered();
        let mut desired = spec();
        apply(&mut desired, m);
        let changes = diff(Some(&current), &desired);
        prop_assert_eq!(changes.is_empty(), desired.same_as(&current), "{:?}", changes);
        prop_assert_eq!(diff(Some(&desired), &current).is_empty(), current.same_as(&desired));
        // Every change names a field, and says what it was or what it becomes.
        for c in &changes {
            prop_assert!(c.from.is_some() || c.to.is_some());
            prop_assert_ne!(&c.from, &c.to);
        }
    }

    #[test]
    fn generated_templates_parse_into_their_spec((json, expected) in template()) {
        let pretty = serde_json::to_string_pretty(&json).unwrap();
        let parsed = TaskDefinitionSpec::from_template(&pretty, ORIGIN);
        prop_assert_eq!(parsed.as_ref(), Ok(&expected));
        let compact = TaskDefinitionSpec::from_template(&json.to_string(), ORIGIN);
        prop_assert_eq!(compact.as_ref(), Ok(&expected));
        prop_assert_eq!(expected.check(), Vec::<String>::new());
    }

    #[test]
    fn units_and_vcpus_compare_equal(cpu_index in 0..fargate::CPU_CHOICES.len(), gb in 1u32..=120) {
        let units = fargate::CPU_CHOICES[cpu_index];
        let mut a = spec();
        a.cpu = Some(units.to_string());
        a.memory = Some((gb * 1024).to_string());
        let mut b = spec();
        b.cpu = Some(format!("{} vCPU", f64::from(units) / 1024.0));
        b.memory = Some(format!("{gb} GB"));
        prop_assert!(a.same_as(&b), "{:?} {:?}", a.cpu, b.cpu);
        b.memory = Some(format!("{} GB", gb + 1));
        prop_assert!(!a.same_as(&b));
    }
}

#[test]
fn equal_firelens_options_are_no_change() {
    // Two maps built apart, as from a template and from DescribeTaskDefinition: a
    // HashMap's iteration order differs between them, and must not show as a change.
    let firelens = |options: &[(&str, &str)]| {
        let mut b = FirelensConfiguration::builder().r#type(FirelensConfigurationType::Fluentbit);
        for (k, v) in options {
            b = b.options(*k, *v);
        }
        b.build().unwrap()
    };
    let options: Vec<(String, String)> = (0..16)
        .map(|i| (format!("key-{i}"), i.to_string()))
        .collect();
    let options: Vec<(&str, &str)> = options
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut current = registered();
    current.containers[0].firelens_configuration = Some(firelens(&options));
    let mut desired = spec();
    desired.containers[0].firelens_configuration = Some(firelens(&options));
    assert!(desired.same_as(&current));
    assert_eq!(diff(Some(&current), &desired), []);

    let mut changed = options.clone();
    changed[3].1 = "changed";
    desired.containers[0].firelens_configuration = Some(firelens(&changed));
    assert!(!desired.same_as(&current));
    let changes = diff(Some(&current), &desired);
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].field, "firelensConfiguration");
    assert!(
        changes[0]
            .to
            .as_deref()
            .unwrap()
            .contains("\"key-3\": \"changed\""),
        "{changes:?}"
    );
    // No options is not the same as empty options: the comparison says so, and so does the diff.
    desired.containers[0].firelens_configuration = Some(firelens(&[]));
    let mut no_options = desired.clone();
    no_options.containers[0]
        .firelens_configuration
        .as_mut()
        .unwrap()
        .options = None;
    assert_eq!(
        diff(Some(&no_options), &desired).is_empty(),
        desired.same_as(&no_options)
    );
}
