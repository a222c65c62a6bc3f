//! Fidelity: aws-sdk-ecs calls every operation of the simulator and parses every answer
//! into its typed shapes, drives a rollout to COMPLETED and a circuit-breaker rollback, and
//! meets throttling with and without its standard retries.

use std::collections::BTreeSet;
use std::time::{Duration, UNIX_EPOCH};

use aws_sdk_ecs::Client;
use aws_sdk_ecs::config::retry::RetryConfig;
use aws_sdk_ecs::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_ecs::error::ProvideErrorMetadata as _;
use aws_sdk_ecs::operation::describe_services::DescribeServicesError;
use aws_sdk_ecs::operation::register_task_definition::RegisterTaskDefinitionError;
use aws_sdk_ecs::operation::update_service::UpdateServiceError;
use aws_sdk_ecs::primitives::DateTime;
use aws_sdk_ecs::types::{
    AwsVpcConfiguration, ClusterField, Compatibility, ContainerDefinition,
    DeploymentCircuitBreaker, DeploymentConfiguration, DeploymentRolloutState, DesiredStatus,
    HealthCheck, LaunchType, NetworkConfiguration, NetworkMode, PortMapping, Service, ServiceField,
    Tag, TaskDefinitionField, TaskDefinitionStatus, TransportProtocol,
};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use kyb_deploy_testkit::ecs_sim::{EcsSimulator, EcsSimulatorBuilder, Fault, RunningSimulator};
use tokio::net::TcpListener;

use super::{ARN, PATIENCE};

/// Serves a simulator built by `builder`.
pub(super) async fn serve(builder: EcsSimulatorBuilder) -> RunningSimulator {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    builder.build().serve(listener).unwrap()
}

/// An SDK client for `sim` with static test credentials in us-east-1, the SDK's hyper
/// client on rustls with ring (the workspace's one crypto provider), and `retry`.
pub(super) fn client(sim: &RunningSimulator, retry: RetryConfig) -> Client {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let config = aws_sdk_ecs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .endpoint_url(sim.url())
        .http_client(http)
        .retry_config(retry)
        .build();
    Client::from_conf(config)
}

/// The standard retry mode with short backoffs, so that retried tests stay fast.
fn fast_standard_retry() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(3)
        .with_initial_backoff(Duration::from_millis(5))
        .with_max_backoff(Duration::from_millis(50))
}

pub(super) fn container(image: &str) -> ContainerDefinition {
    ContainerDefinition::builder()
        .name("web")
        .image(image)
        .essential(true)
        .port_mappings(
            PortMapping::builder()
                .container_port(8080)
                .protocol(TransportProtocol::Tcp)
                .build(),
        )
        .health_check(
            HealthCheck::builder()
                .command("CMD-SHELL")
                .command("curl -f http://localhost:8080/health || exit 1")
                .interval(10)
                .timeout(5)
                .retries(3)
                .build()
                .unwrap(),
        )
        .build()
}

/// Registers a Fargate task definition `web` of one container running `image`; returns
/// its ARN.
pub(super) async fn register(ecs: &Client, image: &str) -> String {
    let registered = ecs
        .register_task_definition()
        .family("web")
        .network_mode(NetworkMode::Awsvpc)
        .requires_compatibilities(Compatibility::Fargate)
        .cpu("256")
        .memory("512")
        .container_definitions(container(image))
        .send()
        .await
        .unwrap();
    let definition = registered.task_definition().unwrap();
    assert_eq!(definition.status(), Some(&TaskDefinitionStatus::Active));
    definition.task_definition_arn().unwrap().to_owned()
}

pub(super) fn network() -> NetworkConfiguration {
    NetworkConfiguration::builder()
        .awsvpc_configuration(
            AwsVpcConfiguration::builder()
                .subnets("subnet-0123456789abcdef0")
                .build()
                .unwrap(),
        )
        .build()
}

/// Creates service `api` of `web:1` in cluster `c` with the circuit breaker (and rollback).
pub(super) async fn create_service(ecs: &Client, desired: i32) -> Service {
    let created = ecs
        .create_service()
        .cluster("c")
        .service_name("api")
        .task_definition("web:1")
        .desired_count(desired)
        .launch_type(LaunchType::Fargate)
        .network_configuration(network())
        .deployment_configuration(
            DeploymentConfiguration::builder()
                .deployment_circuit_breaker(
                    DeploymentCircuitBreaker::builder()
                        .enable(true)
                        .rollback(true)
                        .build(),
                )
                .maximum_percent(200)
                .minimum_healthy_percent(100)
                .build(),
        )
        .send()
        .await
        .unwrap();
    created.service().unwrap().clone()
}

pub(super) async fn describe(ecs: &Client) -> Service {
    let described = ecs
        .describe_services()
        .cluster("c")
        .services("api")
        .send()
        .await
        .unwrap();
    described.services()[0].clone()
}

/// Advances the manual clock in 5 s steps until the PRIMARY deployment's rollout is in
/// `state`; returns the service as the SDK parsed it.
pub(super) async fn advance_until(
    ecs: &Client,
    sim: &RunningSimulator,
    state: DeploymentRolloutState,
) -> Service {
    for _ in 0..200 {
        let service = describe(ecs).await;
        if service.deployments()[0].rollout_state() == Some(&state) {
            return service;
        }
        sim.handle().advance(Duration::from_secs(5));
    }
    panic!("the PRIMARY deployment never reached {state:?}");
}

/// The simulator's current time as the SDK's [`DateTime`] would read it, in seconds.
fn sim_now(sim: &RunningSimulator) -> i64 {
    let since_epoch = sim
        .handle()
        .now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_secs()).unwrap()
}

#[tokio::test]
async fn every_operation_parses_through_the_sdk_and_a_rollout_completes() {
    let sim = serve(EcsSimulator::builder().manual_clock().seed(21)).await;
    let ecs = client(&sim, RetryConfig::disabled());
    tokio::time::timeout(PATIENCE, async {
        // Clusters.
        let created = ecs.create_cluster().cluster_name("c").send().await.unwrap();
        let cluster = created.cluster().unwrap();
        assert_eq!(
            cluster.cluster_arn(),
            Some(format!("{ARN}:cluster/c").as_str())
        );
        assert_eq!(cluster.status(), Some("ACTIVE"));
        let clusters = ecs
            .describe_clusters()
            .clusters("c")
            .clusters("ghost")
            .include(ClusterField::Tags)
            .send()
            .await
            .unwrap();
        assert_eq!(clusters.clusters().len(), 1);
        assert_eq!(clusters.clusters()[0].cluster_name(), Some("c"));
        assert_eq!(clusters.failures().len(), 1);
        assert_eq!(clusters.failures()[0].reason(), Some("MISSING"));
        assert_eq!(
            clusters.failures()[0].arn(),
            Some(format!("{ARN}:cluster/ghost").as_str())
        );

        // Task definitions: two revisions of one family.
        let first = register(&ecs, "example/web:v1").await;
        let second = register(&ecs, "example/web:v2").await;
        assert_eq!(first, format!("{ARN}:task-definition/web:1"));
        assert_eq!(second, format!("{ARN}:task-definition/web:2"));
        let described = ecs
            .describe_task_definition()
            .task_definition("web")
            .include(TaskDefinitionField::Tags)
            .send()
            .await
            .unwrap();
        let definition = described.task_definition().unwrap();
        assert_eq!(definition.revision(), 2);
        assert_eq!(definition.family(), Some("web"));
        assert_eq!(definition.network_mode(), Some(&NetworkMode::Awsvpc));
        assert_eq!(definition.cpu(), Some("256"));
        assert_eq!(definition.memory(), Some("512"));
        assert!(
            definition
                .compatibilities()
                .contains(&Compatibility::Fargate)
        );
        let web = &definition.container_definitions()[0];
        assert_eq!(web.image(), Some("example/web:v2"));
        assert_eq!(web.port_mappings()[0].container_port(), Some(8080));
        assert_eq!(web.health_check().unwrap().retries(), Some(3));
        let registered_at = definition.registered_at().unwrap();
        assert_eq!(registered_at.secs(), sim_now(&sim));
        assert!(described.tags().is_empty());
        let listed = ecs
            .list_task_definitions()
            .family_prefix("web")
            .send()
            .await
            .unwrap();
        assert_eq!(
            listed.task_definition_arns(),
            [first.clone(), second.clone()]
        );

        // A service; its first deployment rolls out to COMPLETED.
        let service = create_service(&ecs, 2).await;
        assert_eq!(
            service.service_arn(),
            Some(format!("{ARN}:service/c/api").as_str())
        );
        assert_eq!(service.desired_count(), 2);
        assert_eq!(service.launch_type(), Some(&LaunchType::Fargate));
        let breaker = service
            .deployment_configuration()
            .and_then(|c| c.deployment_circuit_breaker())
            .unwrap();
        assert!(breaker.enable() && breaker.rollback());
        let deployment = &service.deployments()[0];
        assert_eq!(deployment.status(), Some("PRIMARY"));
        assert_eq!(
            deployment.rollout_state(),
            Some(&DeploymentRolloutState::InProgress)
        );
        assert!(deployment.id().unwrap().starts_with("ecs-svc/"));
        assert_eq!(deployment.platform_family(), Some("Linux"));
        let service = advance_until(&ecs, &sim, DeploymentRolloutState::Completed).await;
        assert_eq!((service.running_count(), service.pending_count()), (2, 0));

        // UpdateService with the second revision rolls it out; the old tasks stop.
        let updated = ecs
            .update_service()
            .cluster("c")
            .service("api")
            .task_definition("web:2")
            .send()
            .await
            .unwrap();
        let deployments = updated.service().unwrap().deployments();
        assert_eq!(deployments.len(), 2);
        assert_eq!(deployments[0].task_definition(), Some(second.as_str()));
        assert_eq!(deployments[1].status(), Some("ACTIVE"));
        let new_id = deployments[0].id().unwrap().to_owned();
        let service = advance_until(&ecs, &sim, DeploymentRolloutState::Completed).await;
        let primary = &service.deployments()[0];
        assert_eq!(service.deployments().len(), 1);
        assert_eq!(primary.id(), Some(new_id.as_str()));
        assert_eq!(
            (
                primary.desired_count(),
                primary.running_count(),
                primary.failed_tasks()
            ),
            (2, 2, 0)
        );
        assert!(primary.updated_at().unwrap() >= primary.created_at().unwrap());
        assert_eq!(
            primary.rollout_state_reason(),
            Some(format!("ECS deployment {new_id} completed.").as_str())
        );
        let steady = &service.events()[0];
        assert_eq!(
            steady.message(),
            Some("(service api) has reached a steady state.")
        );
        // Written by the controller's last step, within the last 5 s of simulated time.
        let written = steady.created_at().map(DateTime::secs).unwrap();
        assert!((sim_now(&sim) - 5..=sim_now(&sim)).contains(&written));
        assert!(service.events().iter().any(|e| {
            e.message()
                .unwrap()
                .starts_with("(service api) has started 2 tasks")
        }));

        // DescribeServices with an unknown name; ListServices.
        let described = ecs
            .describe_services()
            .cluster("c")
            .services("api")
            .services("ghost")
            .include(ServiceField::Tags)
            .send()
            .await
            .unwrap();
        assert_eq!(described.services().len(), 1);
        assert_eq!(described.failures()[0].reason(), Some("MISSING"));
        assert_eq!(
            described.failures()[0].arn(),
            Some(format!("{ARN}:service/c/ghost").as_str())
        );
        let services = ecs.list_services().cluster("c").send().await.unwrap();
        assert_eq!(services.service_arns(), [format!("{ARN}:service/c/api")]);

        // Tasks: two running of revision 2, two stopped of revision 1.
        sim.handle().advance(Duration::from_secs(10));
        let running = ecs
            .list_tasks()
            .cluster("c")
            .service_name("api")
            .send()
            .await
            .unwrap();
        assert_eq!(running.task_arns().len(), 2);
        let stopped = ecs
            .list_tasks()
            .cluster("c")
            .service_name("api")
            .desired_status(DesiredStatus::Stopped)
            .send()
            .await
            .unwrap();
        assert_eq!(stopped.task_arns().len(), 2);
        let tasks = ecs
            .describe_tasks()
            .cluster("c")
            .set_tasks(Some([running.task_arns(), stopped.task_arns()].concat()))
            .send()
            .await
            .unwrap();
        assert!(tasks.failures().is_empty());
        let statuses: Vec<(Option<&str>, Option<&str>)> = tasks
            .tasks()
            .iter()
            .map(|t| (t.last_status(), t.task_definition_arn()))
            .collect();
        assert_eq!(
            statuses,
            [
                (Some("RUNNING"), Some(second.as_str())),
                (Some("RUNNING"), Some(second.as_str())),
                (Some("STOPPED"), Some(first.as_str())),
                (Some("STOPPED"), Some(first.as_str())),
            ]
        );
        for task in tasks.tasks() {
            assert!(
                task.task_arn()
                    .unwrap()
                    .starts_with(&format!("{ARN}:task/c/"))
            );
            assert_eq!(task.launch_type(), Some(&LaunchType::Fargate));
            assert!(task.created_at().is_some());
            assert_eq!(task.containers()[0].name(), Some("web"));
        }
        let stopped_task = &tasks.tasks()[2];
        assert!(stopped_task.stopped_at().unwrap() >= stopped_task.started_at().unwrap());

        // Tags on the service.
        let service_arn = format!("{ARN}:service/c/api");
        ecs.tag_resource()
            .resource_arn(&service_arn)
            .tags(Tag::builder().key("team").value("kyb").build())
            .tags(Tag::builder().key("tier").value("api").build())
            .send()
            .await
            .unwrap();
        ecs.untag_resource()
            .resource_arn(&service_arn)
            .tag_keys("tier")
            .send()
            .await
            .unwrap();
        let tags = ecs
            .list_tags_for_resource()
            .resource_arn(&service_arn)
            .send()
            .await
            .unwrap();
        let tags: Vec<(Option<&str>, Option<&str>)> =
            tags.tags().iter().map(|t| (t.key(), t.value())).collect();
        assert_eq!(tags, [(Some("team"), Some("kyb"))]);

        // Deregistering keeps the revision, INACTIVE.
        let deregistered = ecs
            .deregister_task_definition()
            .task_definition("web:1")
            .send()
            .await
            .unwrap();
        let definition = deregistered.task_definition().unwrap();
        assert_eq!(definition.status(), Some(&TaskDefinitionStatus::Inactive));
        assert!(definition.deregistered_at().is_some());
    })
    .await
    .expect("the SDK calls did not finish");

    // Every operation the simulator serves went through the SDK, and none failed.
    let log = sim.handle().request_log();
    assert!(log.iter().all(|r| r.status == 200), "{log:#?}");
    let operations: BTreeSet<String> = sim.handle().operation_counts().into_keys().collect();
    let expected: BTreeSet<String> = [
        "CreateCluster",
        "DescribeClusters",
        "RegisterTaskDefinition",
        "DescribeTaskDefinition",
        "ListTaskDefinitions",
        "DeregisterTaskDefinition",
        "CreateService",
        "UpdateService",
        "DescribeServices",
        "ListServices",
        "ListTasks",
        "DescribeTasks",
        "TagResource",
        "UntagResource",
        "ListTagsForResource",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(operations, expected);
}

#[tokio::test]
async fn the_sdk_sees_the_circuit_breaker_roll_back() {
    let builder = EcsSimulator::builder()
        .manual_clock()
        .seed(22)
        .fault(Fault::fail_to_start(
            "example/web:broken",
            "CannotPullContainerError: manifest unknown",
        ));
    let sim = serve(builder).await;
    let ecs = client(&sim, RetryConfig::disabled());
    tokio::time::timeout(PATIENCE, async {
        ecs.create_cluster().cluster_name("c").send().await.unwrap();
        let good = register(&ecs, "example/web:v1").await;
        let broken = register(&ecs, "example/web:broken").await;
        create_service(&ecs, 2).await;
        let completed = advance_until(&ecs, &sim, DeploymentRolloutState::Completed).await;
        let completed_id = completed.deployments()[0].id().unwrap().to_owned();

        let updated = ecs
            .update_service()
            .cluster("c")
            .service("api")
            .task_definition(&broken)
            .send()
            .await
            .unwrap();
        let failing_id = updated.service().unwrap().deployments()[0]
            .id()
            .unwrap()
            .to_owned();

        // The breaker trips: the failing deployment is FAILED, and a new PRIMARY rolls the
        // last completed task definition out.
        let mut rolled_back = None;
        for _ in 0..100 {
            let service = describe(&ecs).await;
            if service.deployments()[0].id() != Some(failing_id.as_str()) {
                rolled_back = Some(service);
                break;
            }
            sim.handle().advance(Duration::from_secs(5));
        }
        let service = rolled_back.expect("the circuit breaker never tripped");
        let (primary, failed) = (&service.deployments()[0], &service.deployments()[1]);
        assert_eq!(primary.status(), Some("PRIMARY"));
        assert_eq!(primary.task_definition(), Some(good.as_str()));
        assert_eq!(
            primary.rollout_state(),
            Some(&DeploymentRolloutState::InProgress)
        );
        assert_eq!(
            primary.rollout_state_reason(),
            Some(
                format!(
                    "ECS deployment circuit breaker: rolling back to deploymentId {completed_id}."
                )
                .as_str()
            )
        );
        assert_eq!(failed.id(), Some(failing_id.as_str()));
        assert_eq!(failed.task_definition(), Some(broken.as_str()));
        assert_eq!(
            failed.rollout_state(),
            Some(&DeploymentRolloutState::Failed)
        );
        assert!(failed.failed_tasks() >= 3, "the threshold is 3 tasks");
        assert_eq!(service.task_definition(), Some(good.as_str()));

        let service = advance_until(&ecs, &sim, DeploymentRolloutState::Completed).await;
        assert_eq!(service.deployments().len(), 1);
        assert_eq!(service.task_definition(), Some(good.as_str()));
        assert_eq!(service.running_count(), 2);

        let stopped = ecs
            .list_tasks()
            .cluster("c")
            .desired_status(DesiredStatus::Stopped)
            .send()
            .await
            .unwrap();
        let stopped = ecs
            .describe_tasks()
            .cluster("c")
            .set_tasks(Some(stopped.task_arns().to_vec()))
            .send()
            .await
            .unwrap();
        let reasons: BTreeSet<Option<&str>> = stopped
            .tasks()
            .iter()
            .filter(|t| t.task_definition_arn() == Some(broken.as_str()))
            .map(|t| t.stopped_reason())
            .collect();
        assert_eq!(
            reasons,
            BTreeSet::from([Some("CannotPullContainerError: manifest unknown")])
        );
    })
    .await
    .expect("the SDK calls did not finish");
}

#[tokio::test]
async fn standard_retries_ride_out_throttling_and_disabled_retries_surface_it() {
    let sim = serve(
        EcsSimulator::builder()
            .manual_clock()
            .seed(23)
            .fault(Fault::throttle_every(2)),
    )
    .await;
    let retrying = client(&sim, fast_standard_retry());
    tokio::time::timeout(PATIENCE, async {
        retrying
            .create_cluster()
            .cluster_name("c")
            .send()
            .await
            .unwrap();
        for _ in 0..3 {
            let listed = retrying.list_services().cluster("c").send().await.unwrap();
            assert!(listed.service_arns().is_empty());
        }
    })
    .await
    .expect("the SDK calls did not finish");
    // Every second attempt was throttled, and each was retried once.
    let log = sim.handle().request_log();
    let outcomes: Vec<(&str, Option<&str>)> = log
        .iter()
        .map(|r| (r.operation.as_str(), r.error.as_deref()))
        .collect();
    let throttled = Some("ThrottlingException");
    assert_eq!(
        outcomes,
        [
            ("CreateCluster", None),
            ("ListServices", throttled),
            ("ListServices", None),
            ("ListServices", throttled),
            ("ListServices", None),
            ("ListServices", throttled),
            ("ListServices", None),
        ]
    );
    assert!(
        log.iter()
            .filter(|r| r.error.is_some())
            .all(|r| r.status == 400)
    );

    // Without retries the SDK hands the throttling error to the caller.
    let once = client(&sim, RetryConfig::disabled());
    let mut errors = Vec::new();
    for _ in 0..2 {
        match once.list_services().cluster("c").send().await {
            Ok(_) => errors.push(None),
            Err(error) => {
                assert_eq!(error.message(), Some("Rate exceeded"));
                errors.push(error.code().map(str::to_owned));
            }
        }
    }
    assert_eq!(errors, [Some("ThrottlingException".to_owned()), None]);
}

#[tokio::test]
async fn errors_come_back_as_the_sdks_modeled_errors() {
    let sim = serve(EcsSimulator::builder().manual_clock().seed(24)).await;
    let ecs = client(&sim, RetryConfig::disabled());
    ecs.create_cluster().cluster_name("c").send().await.unwrap();

    let error = ecs
        .describe_services()
        .cluster("ghost")
        .services("api")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(
        matches!(error, DescribeServicesError::ClusterNotFoundException(_)),
        "{error:?}"
    );
    assert_eq!(error.code(), Some("ClusterNotFoundException"));

    let error = ecs
        .update_service()
        .cluster("c")
        .service("ghost")
        .desired_count(1)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(
        matches!(error, UpdateServiceError::ServiceNotFoundException(_)),
        "{error:?}"
    );

    let error = ecs
        .register_task_definition()
        .family("web")
        .network_mode(NetworkMode::Awsvpc)
        .requires_compatibilities(Compatibility::Fargate)
        .cpu("256")
        .memory("4096")
        .container_definitions(container("example/web:v1"))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(
        matches!(error, RegisterTaskDefinitionError::ClientException(_)),
        "{error:?}"
    );
    assert_eq!(error.code(), Some("ClientException"));
    assert!(
        error
            .message()
            .unwrap()
            .starts_with("No Fargate configuration exists for given values: 256 CPU, 4096 memory")
    );
    // Nothing was registered.
    let listed = ecs.list_task_definitions().send().await.unwrap();
    assert!(listed.task_definition_arns().is_empty());
}

/// What CreateService and UpdateService accept comes back as ECS returns it, through the
/// SDK's typed shapes: load balancers, a capacity provider strategy (and no launch type
/// then), the deployment controller, platform version, execute command, tag propagation,
/// managed tags, and the cluster's Container Insights setting; what ECS refuses is refused.
#[tokio::test]
async fn service_and_cluster_settings_are_kept_as_given() {
    use aws_sdk_ecs::types::{
        CapacityProviderStrategyItem, ClusterSetting, ClusterSettingName, DeploymentController,
        DeploymentControllerType, LoadBalancer, PropagateTags,
    };
    let sim = serve(EcsSimulator::builder().time_scale(30.0)).await;
    let ecs = client(&sim, RetryConfig::disabled());
    let cluster = ecs
        .create_cluster()
        .cluster_name("c")
        .settings(
            ClusterSetting::builder()
                .name(ClusterSettingName::ContainerInsights)
                .value("enabled")
                .build(),
        )
        .capacity_providers("FARGATE")
        .capacity_providers("FARGATE_SPOT")
        .send()
        .await
        .unwrap();
    let cluster = cluster.cluster().unwrap();
    assert_eq!(cluster.settings()[0].value(), Some("enabled"));
    assert_eq!(cluster.capacity_providers(), ["FARGATE", "FARGATE_SPOT"]);
    register(&ecs, "registry.test/web:v1").await;
    let target_group =
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef";
    let balancer = |container: &str, port: i32| {
        LoadBalancer::builder()
            .target_group_arn(target_group)
            .container_name(container)
            .container_port(port)
            .build()
    };
    let spot = CapacityProviderStrategyItem::builder()
        .capacity_provider("FARGATE_SPOT")
        .weight(1)
        .build()
        .unwrap();
    let created = ecs
        .create_service()
        .cluster("c")
        .service_name("api")
        .task_definition("web:1")
        .desired_count(1)
        .capacity_provider_strategy(spot.clone())
        .network_configuration(network())
        .load_balancers(balancer("web", 8080))
        .platform_version("1.4.0")
        .enable_execute_command(true)
        .propagate_tags(PropagateTags::Service)
        .enable_ecs_managed_tags(true)
        .send()
        .await
        .unwrap();
    let service = created.service().unwrap();
    assert_eq!(
        service.load_balancers()[0].target_group_arn(),
        Some(target_group)
    );
    assert_eq!(
        service.capacity_provider_strategy()[0].capacity_provider(),
        "FARGATE_SPOT"
    );
    assert_eq!(
        service.launch_type(),
        None,
        "a strategy replaces the launch type"
    );
    assert_eq!(service.platform_version(), Some("1.4.0"));
    assert!(service.enable_execute_command());
    assert_eq!(service.propagate_tags(), Some(&PropagateTags::Service));
    assert!(service.enable_ecs_managed_tags());
    assert_eq!(
        service.deployment_controller().map(|c| c.r#type().clone()),
        Some(DeploymentControllerType::Ecs)
    );

    // Refused as ECS refuses them.
    let refusal = |e: aws_sdk_ecs::error::SdkError<_, _>| {
        match e.into_service_error() {
        e @ aws_sdk_ecs::operation::create_service::CreateServiceError::InvalidParameterException(_) => {
            e.message().unwrap_or_default().to_owned()
        }
        other => panic!("{other:?}"),
    }
    };
    let both = ecs
        .create_service()
        .cluster("c")
        .service_name("both")
        .task_definition("web:1")
        .launch_type(LaunchType::Fargate)
        .capacity_provider_strategy(spot)
        .network_configuration(network())
        .send()
        .await
        .unwrap_err();
    assert!(refusal(both).contains("Specifying both a launch type and capacity provider strategy"));
    let wrong_port = ecs
        .create_service()
        .cluster("c")
        .service_name("port")
        .task_definition("web:1")
        .launch_type(LaunchType::Fargate)
        .network_configuration(network())
        .load_balancers(balancer("web", 9090))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        refusal(wrong_port),
        "The container web did not have a container port 9090 defined."
    );

    // A service deployed by CodeDeploy takes no new task definition through UpdateService.
    ecs.create_service()
        .cluster("c")
        .service_name("blue-green")
        .task_definition("web:1")
        .launch_type(LaunchType::Fargate)
        .network_configuration(network())
        .load_balancers(balancer("web", 8080))
        .deployment_controller(
            DeploymentController::builder()
                .r#type(DeploymentControllerType::CodeDeploy)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let update = ecs
        .update_service()
        .cluster("c")
        .service("blue-green")
        .task_definition("web:1")
        .send()
        .await
        .unwrap_err();
    assert!(
        update
            .as_service_error()
            .and_then(|e| e.message())
            .is_some_and(|m| m.contains("CODE_DEPLOY deployment controller")),
        "{update:?}"
    );
    // Settings an update changes come back changed; the others stay.
    let updated = ecs
        .update_service()
        .cluster("c")
        .service("api")
        .enable_execute_command(false)
        .send()
        .await
        .unwrap();
    let service = updated.service().unwrap();
    assert!(!service.enable_execute_command());
    assert_eq!(service.propagate_tags(), Some(&PropagateTags::Service));
    assert_eq!(service.load_balancers().len(), 1);
    sim.shutdown().await.unwrap();
}
