//! Properties: over generated variables, templates and one-field changes, comparison,
//! releases, diffs and parsing agree with each other.

use aws_sdk_ecs::types::{HealthCheck, LogConfiguration, LogDriver, PortMapping};
use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

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
