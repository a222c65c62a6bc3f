//! Validation ECS applies that the simulator mirrors, judged by aws-sdk-ecs: task
//! definitions ECS refuses on registration, and awsvpc subnets and security groups that do
//! not exist, when the simulator is told which exist.

use aws_sdk_ecs::Client;
use aws_sdk_ecs::config::retry::RetryConfig;
use aws_sdk_ecs::error::ProvideErrorMetadata as _;
use aws_sdk_ecs::types::{
    AwsVpcConfiguration, Compatibility, ContainerDefinition, HealthCheck, LogConfiguration,
    LogDriver, NetworkConfiguration, NetworkMode, PortMapping, Secret,
};
use kyb_deploy_testkit::ecs_sim::EcsSimulator;

use super::PATIENCE;
use super::sdk::{client, register, serve};

/// Registers a Fargate (awsvpc, 256 CPU, 512 MiB) task definition of `container`, with an
/// execution role when `role`; returns the error code and message of a refusal.
async fn register_fargate(
    ecs: &Client,
    container: ContainerDefinition,
    role: bool,
) -> Result<(), (String, String)> {
    let mut request = ecs
        .register_task_definition()
        .family("web")
        .network_mode(NetworkMode::Awsvpc)
        .requires_compatibilities(Compatibility::Fargate)
        .cpu("256")
        .memory("512")
        .container_definitions(container);
    if role {
        request = request.execution_role_arn("arn:aws:iam::123456789012:role/exec");
    }
    match request.send().await {
        Ok(_) => Ok(()),
        Err(error) => Err((
            error.code().unwrap_or_default().to_owned(),
            error.message().unwrap_or_default().to_owned(),
        )),
    }
}

fn web() -> aws_sdk_ecs::types::builders::ContainerDefinitionBuilder {
    ContainerDefinition::builder()
        .name("web")
        .image("example/web:v1")
}

#[tokio::test]
async fn task_definitions_ecs_refuses_are_refused() {
    let sim = serve(EcsSimulator::builder().manual_clock().seed(63)).await;
    let ecs = client(&sim, RetryConfig::disabled());
    tokio::time::timeout(PATIENCE, async {
        let port = |host: i32| {
            PortMapping::builder()
                .container_port(8080)
                .host_port(host)
                .build()
        };
        let awslogs = LogConfiguration::builder()
            .log_driver(LogDriver::Awslogs)
            .options("awslogs-group", "/ecs/web")
            .build()
            .unwrap();
        let secret = Secret::builder()
            .name("DATABASE_URL")
            .value_from("arn:aws:secretsmanager:us-east-1:123456789012:secret:db")
            .build()
            .unwrap();
        let check = |interval: i32| {
            HealthCheck::builder()
                .command("CMD")
                .command("/health")
                .interval(interval)
                .build()
                .unwrap()
        };
        let unknown_driver = LogConfiguration::builder()
            .log_driver(LogDriver::from("papertrail"))
            .build()
            .unwrap();
        // (what, container, with an execution role, the refusal's code and message start)
        let refused = [
            (
                "awsvpc host port",
                web().port_mappings(port(9090)).build(),
                true,
                "ClientException",
                "When networkMode=awsvpc, the host ports and container ports",
            ),
            (
                "awslogs without a role",
                web().log_configuration(awslogs.clone()).build(),
                false,
                "ClientException",
                "Fargate requires task definition to have execution role ARN",
            ),
            (
                "secrets without a role",
                web().secrets(secret.clone()).build(),
                false,
                "ClientException",
                "When you are specifying container secrets",
            ),
            (
                "container memory",
                web().memory(1024).build(),
                true,
                "ClientException",
                "The 'memory' setting for container 'web' is greater",
            ),
            (
                "no essential container",
                web().essential(false).build(),
                true,
                "ClientException",
                "Task definition doesn't have any essential container.",
            ),
            (
                "health check interval",
                web().health_check(check(301)).build(),
                true,
                "ClientException",
                "Invalid 'healthCheck.interval'",
            ),
            (
                "unknown log driver",
                web().log_configuration(unknown_driver).build(),
                true,
                "InvalidParameterException",
                "Log driver papertrail is not supported",
            ),
        ];
        for (what, container, role, code, start) in refused {
            let (got_code, message) = register_fargate(&ecs, container, role)
                .await
                .expect_err(what);
            assert_eq!(got_code, code, "{what}: {message}");
            assert!(message.starts_with(start), "{what}: {message}");
        }
        // The same settings done right are registered.
        let accepted = [
            web().port_mappings(port(8080)).build(),
            web().log_configuration(awslogs).secrets(secret).build(),
            web().memory(512).health_check(check(300)).build(),
        ];
        for container in accepted {
            register_fargate(&ecs, container, true).await.unwrap();
        }
        let listed = ecs.list_task_definitions().send().await.unwrap();
        assert_eq!(listed.task_definition_arns().len(), 3);
    })
    .await
    .expect("the test timed out");
}

fn awsvpc(subnet: &str, group: &str) -> NetworkConfiguration {
    NetworkConfiguration::builder()
        .awsvpc_configuration(
            AwsVpcConfiguration::builder()
                .subnets(subnet)
                .security_groups(group)
                .build()
                .unwrap(),
        )
        .build()
}

#[tokio::test]
async fn unknown_subnets_and_security_groups_are_refused_once_the_known_ones_are_set() {
    let builder = EcsSimulator::builder()
        .manual_clock()
        .seed(61)
        .known_subnets(["subnet-aaaa"])
        .known_security_groups(["sg-aaaa"]);
    let sim = serve(builder).await;
    let ecs = client(&sim, RetryConfig::disabled());
    tokio::time::timeout(PATIENCE, async {
        ecs.create_cluster().cluster_name("c").send().await.unwrap();
        register(&ecs, "example/web:v1").await;
        let run = |network: NetworkConfiguration| {
            ecs.run_task()
                .cluster("c")
                .task_definition("web")
                .network_configuration(network)
                .send()
        };
        let error = run(awsvpc("subnet-bbbb", "sg-aaaa")).await.unwrap_err();
        assert_eq!(error.code(), Some("InvalidParameterException"));
        assert!(
            error.message().unwrap().contains("subnet-bbbb"),
            "{error:?}"
        );
        let error = run(awsvpc("subnet-aaaa", "sg-bbbb")).await.unwrap_err();
        assert_eq!(error.code(), Some("InvalidParameterException"));
        assert!(error.message().unwrap().contains("sg-bbbb"), "{error:?}");
        let error = ecs
            .create_service()
            .cluster("c")
            .service_name("api")
            .task_definition("web")
            .network_configuration(awsvpc("subnet-bbbb", "sg-aaaa"))
            .send()
            .await
            .unwrap_err();
        assert_eq!(error.code(), Some("InvalidParameterException"));
        let ok = run(awsvpc("subnet-aaaa", "sg-aaaa")).await.unwrap();
        assert_eq!(ok.tasks().len(), 1);
    })
    .await
    .expect("the test timed out");
}

#[tokio::test]
async fn without_known_ids_any_id_of_the_right_shape_is_accepted() {
    let sim = serve(EcsSimulator::builder().manual_clock().seed(62)).await;
    let ecs = client(&sim, RetryConfig::disabled());
    tokio::time::timeout(PATIENCE, async {
        ecs.create_cluster().cluster_name("c").send().await.unwrap();
        register(&ecs, "example/web:v1").await;
        let ok = ecs
            .run_task()
            .cluster("c")
            .task_definition("web")
            .network_configuration(awsvpc("subnet-anything", "sg-anything"))
            .send()
            .await
            .unwrap();
        assert_eq!(ok.tasks().len(), 1);
        let error = ecs
            .run_task()
            .cluster("c")
            .task_definition("web")
            .network_configuration(awsvpc("net-1", "sg-anything"))
            .send()
            .await
            .unwrap_err();
        assert_eq!(error.code(), Some("InvalidParameterException"));
    })
    .await
    .expect("the test timed out");
}
