//! Validation ECS applies that the simulator mirrors: awsvpc subnets and security groups
//! that do not exist, when the simulator is told which exist.

use aws_sdk_ecs::config::retry::RetryConfig;
use aws_sdk_ecs::error::ProvideErrorMetadata as _;
use aws_sdk_ecs::types::{AwsVpcConfiguration, NetworkConfiguration};
use kyb_deploy_testkit::ecs_sim::EcsSimulator;

use super::PATIENCE;
use super::sdk::{client, register, serve};

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
