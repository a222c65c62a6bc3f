//! DeleteService, DeleteCluster, ListClusters and ListTaskDefinitionFamilies through
//! aws-sdk-ecs: what ECS refuses, the DRAINING and INACTIVE states, and paging.

use std::time::Duration;

use aws_sdk_ecs::config::retry::RetryConfig;
use aws_sdk_ecs::error::ProvideErrorMetadata as _;
use aws_sdk_ecs::types::{DesiredStatus, TaskDefinitionFamilyStatus};
use kyb_deploy_testkit::ecs_sim::EcsSimulator;

use super::sdk::{client, create_service, network, register, serve};
use super::{ARN, PATIENCE};

#[tokio::test]
async fn a_deleted_service_drains_goes_inactive_and_frees_its_name() {
    let sim = serve(EcsSimulator::builder().manual_clock().seed(41)).await;
    let ecs = client(&sim, RetryConfig::disabled());
    tokio::time::timeout(PATIENCE, async {
        ecs.create_cluster().cluster_name("c").send().await.unwrap();
        register(&ecs, "example/web:v1").await;
        create_service(&ecs, 2).await;
        sim.handle().advance(Duration::from_secs(60));

        // Scaled above zero: refused without `force`.
        let error = ecs
            .delete_service()
            .cluster("c")
            .service("api")
            .send()
            .await
            .unwrap_err();
        assert_eq!(error.code(), Some("InvalidParameterException"));
        assert_eq!(
            error.message(),
            Some("The service cannot be stopped while it is scaled above 0.")
        );

        let deleted = ecs
            .delete_service()
            .cluster("c")
            .service("api")
            .force(true)
            .send()
            .await
            .unwrap();
        let service = deleted.service().unwrap();
        assert_eq!(service.status(), Some("DRAINING"));
        assert_eq!(service.desired_count(), 0);
        // A DRAINING service is no longer listed, and its name is still taken.
        let listed = ecs.list_services().cluster("c").send().await.unwrap();
        assert!(listed.service_arns().is_empty());
        let error = ecs
            .create_service()
            .cluster("c")
            .service_name("api")
            .task_definition("web:1")
            .launch_type(aws_sdk_ecs::types::LaunchType::Fargate)
            .network_configuration(network())
            .send()
            .await
            .unwrap_err();
        assert_eq!(error.code(), Some("InvalidParameterException"));
        assert_eq!(
            error.message(),
            Some("Creation of service was not idempotent.")
        );
        // The cluster cannot go while the service drains.
        let error = ecs.delete_cluster().cluster("c").send().await.unwrap_err();
        assert_eq!(error.code(), Some("ClusterContainsServicesException"));

        sim.handle().advance(Duration::from_secs(10));
        let described = ecs
            .describe_services()
            .cluster("c")
            .services("api")
            .send()
            .await
            .unwrap();
        assert_eq!(described.services()[0].status(), Some("INACTIVE"));
        assert_eq!(described.services()[0].running_count(), 0);
        let stopped = ecs
            .list_tasks()
            .cluster("c")
            .desired_status(DesiredStatus::Stopped)
            .send()
            .await
            .unwrap();
        assert_eq!(stopped.task_arns().len(), 2);
        let running = ecs.list_tasks().cluster("c").send().await.unwrap();
        assert!(running.task_arns().is_empty());
        // Deleting it again: it is not found.
        let error = ecs
            .delete_service()
            .cluster("c")
            .service("api")
            .send()
            .await
            .unwrap_err();
        assert_eq!(error.code(), Some("ServiceNotFoundException"));

        // INACTIVE: a new service of the same name may be created.
        let again = create_service(&ecs, 1).await;
        assert_eq!(again.status(), Some("ACTIVE"));
        assert_eq!(
            again.service_arn(),
            Some(format!("{ARN}:service/c/api").as_str())
        );
    })
    .await
    .expect("the test timed out");
}

#[tokio::test]
async fn clusters_are_deleted_only_when_empty_and_list_in_pages() {
    let sim = serve(EcsSimulator::builder().manual_clock().seed(42)).await;
    let ecs = client(&sim, RetryConfig::disabled());
    tokio::time::timeout(PATIENCE, async {
        for name in ["a", "b", "c"] {
            ecs.create_cluster()
                .cluster_name(name)
                .send()
                .await
                .unwrap();
        }
        let first = ecs.list_clusters().max_results(2).send().await.unwrap();
        assert_eq!(
            first.cluster_arns(),
            [format!("{ARN}:cluster/a"), format!("{ARN}:cluster/b")]
        );
        let token = first.next_token().expect("a second page").to_owned();
        let second = ecs
            .list_clusters()
            .max_results(2)
            .next_token(token)
            .send()
            .await
            .unwrap();
        assert_eq!(second.cluster_arns(), [format!("{ARN}:cluster/c")]);
        assert_eq!(second.next_token(), None);

        // A running task keeps the cluster.
        register(&ecs, "example/web:v1").await;
        let run = ecs
            .run_task()
            .cluster("c")
            .task_definition("web")
            .network_configuration(network())
            .send()
            .await
            .unwrap();
        let task = run.tasks()[0].task_arn().unwrap().to_owned();
        let error = ecs.delete_cluster().cluster("c").send().await.unwrap_err();
        assert_eq!(error.code(), Some("ClusterContainsTasksException"));
        assert_eq!(
            error.message(),
            Some("The Cluster cannot be deleted while Tasks are active.")
        );
        ecs.stop_task()
            .cluster("c")
            .task(task)
            .send()
            .await
            .unwrap();
        sim.handle().advance(Duration::from_secs(10));

        let deleted = ecs.delete_cluster().cluster("c").send().await.unwrap();
        assert_eq!(deleted.cluster().unwrap().status(), Some("INACTIVE"));
        let described = ecs.describe_clusters().clusters("c").send().await.unwrap();
        assert_eq!(described.clusters()[0].status(), Some("INACTIVE"));
        let listed = ecs.list_clusters().send().await.unwrap();
        assert_eq!(listed.cluster_arns().len(), 2);
        let error = ecs.list_services().cluster("c").send().await.unwrap_err();
        assert_eq!(error.code(), Some("ClusterNotFoundException"));
        let error = ecs
            .delete_cluster()
            .cluster("ghost")
            .send()
            .await
            .unwrap_err();
        assert_eq!(error.code(), Some("ClusterNotFoundException"));
        // The name can be used again.
        let again = ecs.create_cluster().cluster_name("c").send().await.unwrap();
        assert_eq!(again.cluster().unwrap().status(), Some("ACTIVE"));
    })
    .await
    .expect("the test timed out");
}

#[tokio::test]
async fn task_definition_families_filter_by_prefix_and_status() {
    let sim = serve(EcsSimulator::builder().manual_clock().seed(43)).await;
    let ecs = client(&sim, RetryConfig::disabled());
    tokio::time::timeout(PATIENCE, async {
        for family in ["api", "api-worker", "batch"] {
            let container = aws_sdk_ecs::types::ContainerDefinition::builder()
                .name("app")
                .image("example/app:v1")
                .memory(128)
                .build();
            ecs.register_task_definition()
                .family(family)
                .container_definitions(container)
                .send()
                .await
                .unwrap();
        }
        ecs.deregister_task_definition()
            .task_definition("batch:1")
            .send()
            .await
            .unwrap();
        let all = ecs.list_task_definition_families().send().await.unwrap();
        assert_eq!(all.families(), ["api", "api-worker", "batch"]);
        let api = ecs
            .list_task_definition_families()
            .family_prefix("api")
            .send()
            .await
            .unwrap();
        assert_eq!(api.families(), ["api", "api-worker"]);
        let active = ecs
            .list_task_definition_families()
            .status(TaskDefinitionFamilyStatus::Active)
            .send()
            .await
            .unwrap();
        assert_eq!(active.families(), ["api", "api-worker"]);
        let inactive = ecs
            .list_task_definition_families()
            .status(TaskDefinitionFamilyStatus::Inactive)
            .send()
            .await
            .unwrap();
        assert_eq!(inactive.families(), ["batch"]);
        let page = ecs
            .list_task_definition_families()
            .max_results(1)
            .send()
            .await
            .unwrap();
        assert_eq!(page.families(), ["api"]);
        let next = ecs
            .list_task_definition_families()
            .max_results(1)
            .next_token(page.next_token().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(next.families(), ["api-worker"]);
    })
    .await
    .expect("the test timed out");
}
