//! ListServiceDeployments, DescribeServiceDeployments and DescribeServiceRevisions through
//! aws-sdk-ecs: the history of a service's deployments (completed, replaced, rolled back),
//! with ECS's ARNs, filters and paging.

use std::time::Duration;

use aws_sdk_ecs::Client;
use aws_sdk_ecs::config::retry::RetryConfig;
use aws_sdk_ecs::error::ProvideErrorMetadata as _;
use aws_sdk_ecs::primitives::DateTime;
use aws_sdk_ecs::types::{
    CreatedAt, DeploymentRolloutState, ServiceDeploymentBrief, ServiceDeploymentStatus,
};
use kyb_deploy_testkit::ecs_sim::{EcsSimulator, Fault};

use super::sdk::{advance_until, client, create_service, register, serve};
use super::{ARN, PATIENCE};

async fn history(ecs: &Client) -> Vec<ServiceDeploymentBrief> {
    ecs.list_service_deployments()
        .cluster("c")
        .service("api")
        .send()
        .await
        .unwrap()
        .service_deployments()
        .to_vec()
}

async fn update(ecs: &Client, definition: &str, force: bool) {
    ecs.update_service()
        .cluster("c")
        .service("api")
        .task_definition(definition)
        .force_new_deployment(force)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn service_deployments_keep_the_history_of_a_service() {
    let builder = EcsSimulator::builder()
        .manual_clock()
        .seed(71)
        .fault(Fault::fail_to_start(
            "example/web:broken",
            "CannotPullContainerError: nope",
        ));
    let sim = serve(builder).await;
    let ecs = client(&sim, RetryConfig::disabled());
    tokio::time::timeout(PATIENCE, async {
        ecs.create_cluster().cluster_name("c").send().await.unwrap();
        register(&ecs, "example/web:v1").await;
        register(&ecs, "example/web:v2").await;
        register(&ecs, "example/web:broken").await;
        create_service(&ecs, 2).await;
        let first = history(&ecs).await;
        assert_eq!(first.len(), 1);
        assert_eq!(
            first[0].status(),
            Some(&ServiceDeploymentStatus::InProgress)
        );
        advance_until(&ecs, &sim, DeploymentRolloutState::Completed).await;
        sim.handle().advance(Duration::from_secs(60));

        // web:2, replaced at once by a forced deployment of it: the first one STOPPED.
        // A second early: the bound travels as epoch seconds in a JSON number, which may
        // round up past the instant itself (the last deployment is a minute older).
        let second_at = DateTime::from(sim.handle().now() - Duration::from_secs(1));
        update(&ecs, "web:2", false).await;
        sim.handle().advance(Duration::from_secs(1));
        update(&ecs, "web:2", true).await;
        advance_until(&ecs, &sim, DeploymentRolloutState::Completed).await;
        sim.handle().advance(Duration::from_secs(60));

        // web:3 never starts: the circuit breaker rolls back to web:2.
        update(&ecs, "web:3", false).await;
        for _ in 0..400 {
            let newest = &history(&ecs).await[0];
            if newest.status() == Some(&ServiceDeploymentStatus::RollbackSuccessful) {
                break;
            }
            sim.handle().advance(Duration::from_secs(5));
        }

        let listed = history(&ecs).await;
        let statuses: Vec<_> = listed.iter().filter_map(|d| d.status().cloned()).collect();
        assert_eq!(
            statuses,
            [
                ServiceDeploymentStatus::RollbackSuccessful,
                ServiceDeploymentStatus::Successful,
                ServiceDeploymentStatus::Stopped,
                ServiceDeploymentStatus::Successful,
            ]
        );
        for deployment in &listed {
            let arn = deployment.service_deployment_arn().unwrap();
            let id = arn
                .strip_prefix(&format!("{ARN}:service-deployment/c/api/"))
                .unwrap_or_else(|| panic!("{arn}"));
            assert!(
                id.len() == 21 && id.chars().all(|c| c.is_ascii_alphanumeric()),
                "{id}"
            );
            assert_eq!(
                deployment.service_arn(),
                Some(format!("{ARN}:service/c/api").as_str())
            );
            let revision = deployment.target_service_revision_arn().unwrap();
            assert!(
                revision.starts_with(&format!("{ARN}:service-revision/c/api/")),
                "{revision}"
            );
        }
        assert!(listed[0].finished_at().is_some() && listed[2].finished_at().is_none());

        // Filters and paging.
        let successful = ecs
            .list_service_deployments()
            .cluster("c")
            .service("api")
            .status(ServiceDeploymentStatus::Successful)
            .send()
            .await
            .unwrap();
        assert_eq!(successful.service_deployments().len(), 2);
        let since_second = ecs
            .list_service_deployments()
            .cluster("c")
            .service("api")
            .created_at(CreatedAt::builder().after(second_at).build())
            .send()
            .await
            .unwrap();
        assert_eq!(since_second.service_deployments().len(), 3);
        let page = ecs
            .list_service_deployments()
            .cluster("c")
            .service("api")
            .max_results(3)
            .send()
            .await
            .unwrap();
        assert_eq!(page.service_deployments().len(), 3);
        let rest = ecs
            .list_service_deployments()
            .cluster("c")
            .service("api")
            .max_results(3)
            .next_token(page.next_token().expect("a second page"))
            .send()
            .await
            .unwrap();
        assert_eq!(rest.service_deployments().len(), 1);
        assert_eq!(rest.next_token(), None);
        let error = ecs
            .list_service_deployments()
            .cluster("c")
            .service("ghost")
            .send()
            .await
            .unwrap_err();
        assert_eq!(error.code(), Some("ServiceNotFoundException"));

        // The rolled-back deployment in full: its rollback went to web:2's revision.
        let rolled_back = listed[0].service_deployment_arn().unwrap();
        let completed = listed[1].service_deployment_arn().unwrap();
        let ghost = format!("{ARN}:service-deployment/c/api/AAAAAAAAAAAAAAAAAAAAA");
        let described = ecs
            .describe_service_deployments()
            .service_deployment_arns(rolled_back)
            .service_deployment_arns(completed)
            .service_deployment_arns(&ghost)
            .send()
            .await
            .unwrap();
        assert_eq!(described.failures()[0].arn(), Some(ghost.as_str()));
        assert_eq!(described.failures()[0].reason(), Some("MISSING"));
        let [failed, good] = described.service_deployments() else {
            panic!("two service deployments: {described:?}");
        };
        let rollback = failed.rollback().expect("a rollback");
        assert_eq!(
            rollback.service_revision_arn(),
            good.target_service_revision().and_then(|r| r.arn())
        );
        let breaker = failed.deployment_circuit_breaker().unwrap();
        assert!(
            breaker.failure_count() >= breaker.threshold(),
            "{breaker:?}"
        );
        assert_eq!(
            good.target_service_revision()
                .unwrap()
                .requested_task_count(),
            2
        );
        // It replaced web:1 and the first, unfinished deployment of web:2.
        assert_eq!(good.source_service_revisions().len(), 2);
        assert!(good.deployment_configuration().is_some());

        // Revisions: the task definition each deployment rolled out.
        let revisions = ecs
            .describe_service_revisions()
            .service_revision_arns(listed[0].target_service_revision_arn().unwrap())
            .service_revision_arns(listed[3].target_service_revision_arn().unwrap())
            .send()
            .await
            .unwrap();
        let definitions: Vec<_> = revisions
            .service_revisions()
            .iter()
            .map(|r| r.task_definition().unwrap().to_owned())
            .collect();
        assert_eq!(
            definitions,
            [
                format!("{ARN}:task-definition/web:3"),
                format!("{ARN}:task-definition/web:1")
            ]
        );
        let first_revision = &revisions.service_revisions()[1];
        assert_eq!(
            first_revision.container_images()[0].image(),
            Some("example/web:v1")
        );
        assert!(first_revision.network_configuration().is_some());
        let error = ecs.describe_service_revisions().send().await.unwrap_err();
        assert_eq!(error.code(), Some("InvalidParameterException"));
    })
    .await
    .expect("the test timed out");
}
