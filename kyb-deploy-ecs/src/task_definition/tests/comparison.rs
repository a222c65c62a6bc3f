//! Comparison with what ECS returns, and normalisation.

use aws_sdk_ecs::types::{
    FirelensConfiguration, FirelensConfigurationType, MountPoint, PortMapping,
};

use super::*;

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
