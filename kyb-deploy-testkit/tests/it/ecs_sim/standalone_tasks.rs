//! RunTask and StopTask through aws-sdk-ecs: one-off tasks (a migration) with overrides,
//! their lifecycle to STOPPED with the container's exit code, StopTask's reason, the ENI
//! of an awsvpc task, and the request id on every answer.

use std::time::Duration;

use aws_sdk_ecs::config::retry::RetryConfig;
use aws_sdk_ecs::error::ProvideErrorMetadata as _;
use aws_sdk_ecs::operation::RequestId as _;
use aws_sdk_ecs::types::{
    CapacityProviderStrategyItem, ContainerOverride, DesiredStatus, KeyValuePair, LaunchType,
    TaskOverride,
};
use kyb_deploy_testkit::ecs_sim::{EcsSimulator, Fault};

use super::sdk::{client, network, register, serve};
use super::{ARN, PATIENCE};

/// Whether `text` is a UUID: 8-4-4-4-12 hex digits.
fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.chars().all(|c| c.is_ascii_hexdigit()))
}

#[tokio::test]
async fn a_migration_task_runs_with_its_overrides_and_stops_with_its_exit_code() {
    let builder = EcsSimulator::builder()
        .manual_clock()
        .seed(51)
        .fault(Fault::essential_exit(
            "example/migrate:*",
            0,
            Duration::from_secs(30),
        ));
    let sim = serve(builder).await;
    let ecs = client(&sim, RetryConfig::disabled());
    tokio::time::timeout(PATIENCE, async {
        let created = ecs.create_cluster().cluster_name("c").send().await.unwrap();
        let created_id = created.request_id().expect("a request id");
        assert!(is_uuid(created_id), "{created_id}");
        register(&ecs, "example/migrate:v1").await;

        // awsvpc needs a network configuration; errors carry a request id too.
        let error = ecs
            .run_task()
            .cluster("c")
            .task_definition("web")
            .send()
            .await
            .unwrap_err();
        assert_eq!(error.code(), Some("InvalidParameterException"));
        let error_id = error.request_id().expect("a request id on errors");
        assert!(is_uuid(error_id) && error_id != created_id, "{error_id}");

        let migrate = ContainerOverride::builder()
            .name("web")
            .command("./migrate")
            .command("--up")
            .environment(KeyValuePair::builder().name("STEP").value("all").build())
            .build();
        let run = ecs
            .run_task()
            .cluster("c")
            .task_definition("web:1")
            .count(2)
            .launch_type(LaunchType::Fargate)
            .network_configuration(network())
            .started_by("kyb-migrate")
            .overrides(TaskOverride::builder().container_overrides(migrate).build())
            .send()
            .await
            .unwrap();
        assert!(run.failures().is_empty());
        assert_eq!(run.tasks().len(), 2);
        let task = &run.tasks()[0];
        assert_eq!(task.group(), Some("family:web"));
        assert_eq!(task.started_by(), Some("kyb-migrate"));
        assert_eq!(task.last_status(), Some("PROVISIONING"));
        assert_eq!(task.launch_type(), Some(&LaunchType::Fargate));
        let container_override = &task.overrides().unwrap().container_overrides()[0];
        assert_eq!(container_override.command(), ["./migrate", "--up"]);
        assert_eq!(container_override.environment()[0].value(), Some("all"));
        assert!(
            task.task_arn()
                .unwrap()
                .starts_with(&format!("{ARN}:task/c/"))
        );

        // Its network interface: an ENI in the configured subnet, the container's address.
        let attachment = &task.attachments()[0];
        assert_eq!(attachment.r#type(), Some("ElasticNetworkInterface"));
        let detail = |name: &str| {
            attachment
                .details()
                .iter()
                .find(|d| d.name() == Some(name))
                .and_then(|d| d.value())
                .unwrap_or_else(|| panic!("no {name} in {attachment:?}"))
                .to_owned()
        };
        assert_eq!(detail("subnetId"), "subnet-0123456789abcdef0");
        assert!(detail("networkInterfaceId").starts_with("eni-"));
        assert_eq!(detail("macAddress").split(':').count(), 6);
        let ip = detail("privateIPv4Address");
        assert!(ip.starts_with("10.0."), "{ip}");
        assert_eq!(
            detail("privateDNSName"),
            format!("ip-{}.ec2.internal", ip.replace('.', "-"))
        );
        let interface = &task.containers()[0].network_interfaces()[0];
        assert_eq!(interface.private_ipv4_address(), Some(ip.as_str()));
        assert_eq!(interface.attachment_id(), attachment.id());

        // The migration runs, then its container exits 0 and the task stops.
        sim.handle().advance(Duration::from_secs(20));
        let arns: Vec<String> = run
            .tasks()
            .iter()
            .map(|t| t.task_arn().unwrap().to_owned())
            .collect();
        let running = ecs
            .describe_tasks()
            .cluster("c")
            .set_tasks(Some(arns.clone()))
            .send()
            .await
            .unwrap();
        assert_eq!(running.tasks()[0].last_status(), Some("RUNNING"));
        assert_eq!(
            running.tasks()[0].attachments()[0].status(),
            Some("ATTACHED")
        );
        sim.handle().advance(Duration::from_secs(40));
        let done = ecs
            .describe_tasks()
            .cluster("c")
            .set_tasks(Some(arns))
            .send()
            .await
            .unwrap();
        for task in done.tasks() {
            assert_eq!(task.last_status(), Some("STOPPED"));
            assert_eq!(task.desired_status(), Some("STOPPED"));
            assert_eq!(task.containers()[0].exit_code(), Some(0));
            assert_eq!(
                task.stop_code(),
                Some(&aws_sdk_ecs::types::TaskStopCode::EssentialContainerExited)
            );
        }
        let listed = ecs
            .list_tasks()
            .cluster("c")
            .started_by("kyb-migrate")
            .desired_status(DesiredStatus::Stopped)
            .send()
            .await
            .unwrap();
        assert_eq!(listed.task_arns().len(), 2);
        // Nothing restarts a standalone task.
        let running = ecs.list_tasks().cluster("c").send().await.unwrap();
        assert!(running.task_arns().is_empty());
    })
    .await
    .expect("the test timed out");
}

#[tokio::test]
async fn stop_task_stops_with_the_reason_given() {
    let sim = serve(EcsSimulator::builder().manual_clock().seed(52)).await;
    let ecs = client(&sim, RetryConfig::disabled());
    tokio::time::timeout(PATIENCE, async {
        ecs.create_cluster().cluster_name("c").send().await.unwrap();
        register(&ecs, "example/worker:v1").await;
        let run = ecs
            .run_task()
            .cluster("c")
            .task_definition("web")
            .group("batch")
            .network_configuration(network())
            .send()
            .await
            .unwrap();
        let task = &run.tasks()[0];
        assert_eq!(task.group(), Some("batch"));
        // Without a launch type or strategy the cluster's (none) applies: EC2.
        assert_eq!(task.launch_type(), Some(&LaunchType::Ec2));
        sim.handle().advance(Duration::from_secs(30));

        let stopped = ecs
            .stop_task()
            .cluster("c")
            .task(task.task_arn().unwrap())
            .reason("cancelled by the deploy")
            .send()
            .await
            .unwrap();
        let stopping = stopped.task().unwrap();
        assert_eq!(stopping.desired_status(), Some("STOPPED"));
        assert_eq!(stopping.last_status(), Some("STOPPING"));
        assert_eq!(
            stopping.stop_code(),
            Some(&aws_sdk_ecs::types::TaskStopCode::UserInitiated)
        );
        assert_eq!(stopping.stopped_reason(), Some("cancelled by the deploy"));
        sim.handle().advance(Duration::from_secs(10));
        let described = ecs
            .describe_tasks()
            .cluster("c")
            .tasks(task.task_arn().unwrap())
            .send()
            .await
            .unwrap();
        let task = &described.tasks()[0];
        assert_eq!(task.last_status(), Some("STOPPED"));
        assert_eq!(task.attachments()[0].status(), Some("DELETED"));
        assert_eq!(task.stopped_reason(), Some("cancelled by the deploy"));

        let error = ecs
            .stop_task()
            .cluster("c")
            .task("0123456789abcdef0123456789abcdef")
            .send()
            .await
            .unwrap_err();
        assert_eq!(error.code(), Some("InvalidParameterException"));
        assert_eq!(error.message(), Some("The referenced task was not found."));

        let error = ecs
            .run_task()
            .cluster("c")
            .task_definition("web")
            .count(11)
            .network_configuration(network())
            .send()
            .await
            .unwrap_err();
        assert_eq!(error.code(), Some("InvalidParameterException"));
        let unknown = ContainerOverride::builder().name("sidecar").build();
        let error = ecs
            .run_task()
            .cluster("c")
            .task_definition("web")
            .network_configuration(network())
            .overrides(TaskOverride::builder().container_overrides(unknown).build())
            .send()
            .await
            .unwrap_err();
        assert_eq!(error.code(), Some("InvalidParameterException"));
        let error = ecs
            .run_task()
            .cluster("c")
            .task_definition("ghost")
            .send()
            .await
            .unwrap_err();
        assert_eq!(error.code(), Some("ClientException"));
    })
    .await
    .expect("the test timed out");
}

#[tokio::test]
async fn run_task_places_tasks_by_launch_type_or_capacity_provider_strategy() {
    let sim = serve(EcsSimulator::builder().manual_clock().seed(53)).await;
    let ecs = client(&sim, RetryConfig::disabled());
    tokio::time::timeout(PATIENCE, async {
        let fargate = CapacityProviderStrategyItem::builder()
            .capacity_provider("FARGATE")
            .weight(1)
            .build()
            .unwrap();
        ecs.create_cluster()
            .cluster_name("c")
            .capacity_providers("FARGATE")
            .default_capacity_provider_strategy(fargate.clone())
            .send()
            .await
            .unwrap();
        register(&ecs, "example/job:v1").await;
        // The cluster's default strategy places a task given neither.
        let run = ecs
            .run_task()
            .cluster("c")
            .task_definition("web")
            .network_configuration(network())
            .send()
            .await
            .unwrap();
        assert_eq!(run.tasks()[0].launch_type(), Some(&LaunchType::Fargate));
        let error = ecs
            .run_task()
            .cluster("c")
            .task_definition("web")
            .launch_type(LaunchType::Fargate)
            .capacity_provider_strategy(fargate)
            .network_configuration(network())
            .send()
            .await
            .unwrap_err();
        assert_eq!(error.code(), Some("InvalidParameterException"));
        let spot = CapacityProviderStrategyItem::builder()
            .capacity_provider("FARGATE_SPOT")
            .build()
            .unwrap();
        let error = ecs
            .run_task()
            .cluster("c")
            .task_definition("web")
            .capacity_provider_strategy(spot)
            .network_configuration(network())
            .send()
            .await
            .unwrap_err();
        assert_eq!(error.code(), Some("InvalidParameterException"));
    })
    .await
    .expect("the test timed out");
}
