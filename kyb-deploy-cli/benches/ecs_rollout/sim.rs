//! The ECS simulator side of the benchmark: serving it, an SDK client for it, clusters and
//! services to deploy to, and reading rollouts from its in-process snapshot.

use std::time::Duration;

use aws_sdk_ecs::Client;
use aws_sdk_ecs::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_ecs::types::{
    AwsVpcConfiguration, Compatibility, ContainerDefinition, HealthCheck, LaunchType,
    NetworkConfiguration, NetworkMode, PortMapping,
};
use kyb_deploy_ecs::https_client;
use kyb_deploy_ecs::{EcsTarget, EcsTargetSpec};
use kyb_deploy_ecs::{TaskDefinitionSpec, VERSION_LABEL};
use kyb_deploy_testkit::ecs_sim::{EcsSimulatorBuilder, RunningSimulator, SimHandle};
use serde_json::Value;
use tokio::net::TcpListener;

use crate::BenchResult;

/// Where the simulated services' images live (the virtual runtime never pulls them).
pub(crate) const REPO: &str = "registry.test";

/// The region every call goes to.
pub(crate) const REGION: &str = "us-east-1";

/// A container health check: ECS then counts a task healthy 10 simulated seconds after it
/// runs, which makes a rollout of two tasks take about 30 simulated seconds.
const HEALTH_CHECK: &str = "curl -f http://localhost:8080/health || exit 1";

/// Serves `builder`'s simulator on a free port of 127.0.0.1.
pub(crate) async fn serve(builder: EcsSimulatorBuilder) -> BenchResult<RunningSimulator> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    Ok(builder.build().serve(listener)?)
}

/// An SDK client for the simulator at `url`, with the SDK's standard retries.
pub(crate) fn client(url: &str) -> Client {
    let config = aws_sdk_ecs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .endpoint_url(url)
        .http_client(https_client())
        .build();
    Client::from_conf(config)
}

/// The image of `service` at `version`.
pub(crate) fn image(service: &str, version: &str) -> String {
    format!("{REPO}/{service}:{version}")
}

pub(crate) async fn create_cluster(client: &Client, cluster: &str) -> BenchResult<()> {
    client.create_cluster().cluster_name(cluster).send().await?;
    Ok(())
}

/// A Fargate service of two tasks running `image`, registered directly (as infrastructure
/// code would) in its own task definition family, named like the service.
pub(crate) async fn create_service(
    client: &Client,
    cluster: &str,
    service: &str,
    image: &str,
    health_check: bool,
) -> BenchResult<()> {
    let mut container = ContainerDefinition::builder()
        .name("api")
        .image(image)
        .essential(true)
        .port_mappings(PortMapping::builder().container_port(8080).build())
        .docker_labels(VERSION_LABEL, "v1");
    if health_check {
        container = container.health_check(
            HealthCheck::builder()
                .command("CMD-SHELL")
                .command(HEALTH_CHECK)
                .build()?,
        );
    }
    let registered = client
        .register_task_definition()
        .family(service)
        .network_mode(NetworkMode::Awsvpc)
        .requires_compatibilities(Compatibility::Fargate)
        .cpu("256")
        .memory("512")
        .container_definitions(container.build())
        .send()
        .await?;
    let arn = registered
        .task_definition
        .and_then(|d| d.task_definition_arn)
        .ok_or("RegisterTaskDefinition returned no ARN")?;
    client
        .create_service()
        .cluster(cluster)
        .service_name(service)
        .task_definition(arn)
        .desired_count(2)
        .launch_type(LaunchType::Fargate)
        .network_configuration(
            NetworkConfiguration::builder()
                .awsvpc_configuration(
                    AwsVpcConfiguration::builder()
                        .subnets("subnet-12345")
                        .build()?,
                )
                .build(),
        )
        .send()
        .await?;
    Ok(())
}

/// The task definition template of `service` (family named like it), with a health check.
pub(crate) fn template(service: &str) -> BenchResult<TaskDefinitionSpec> {
    let text = format!(
        r#"{{
  "family": "{service}",
  "networkMode": "awsvpc",
  "requiresCompatibilities": ["FARGATE"],
  "cpu": "256",
  "memory": "512",
  "containerDefinitions": [{{
    "name": "api",
    "image": "{{image}}",
    "essential": true,
    "portMappings": [{{"containerPort": 8080, "protocol": "tcp"}}],
    "healthCheck": {{"command": ["CMD-SHELL", "{HEALTH_CHECK}"], "interval": 10, "retries": 3}}
  }}]
}}"#
    );
    Ok(TaskDefinitionSpec::from_template(&text, service)?)
}

/// A target for `service`, with `template` when given (else the service's current task
/// definition with the image replaced), following rollouts at the pace of `poll`.
pub(crate) fn target(
    client: &Client,
    cluster: &str,
    service: &str,
    template: Option<TaskDefinitionSpec>,
    poll: kyb_deploy_ecs::EcsPoll,
) -> EcsTarget {
    let spec = EcsTargetSpec {
        environment: "bench".into(),
        cluster: cluster.into(),
        service: service.into(),
        container: Some("api".into()),
        template,
        env: Vec::new(),
        deployment: kyb_deploy_ecs::EcsDeployment::default(),
    };
    EcsTarget::new(client.clone(), spec, poll)
}

/// The services of `cluster` in the simulator's snapshot.
pub(crate) fn services(snapshot: &Value, cluster: &str) -> Vec<Value> {
    snapshot["regions"][REGION]["clusters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["clusterName"] == cluster)
        .flat_map(|c| c["services"].as_array().cloned().unwrap_or_default())
        .collect()
}

/// Whether `service` (snapshot JSON) has one deployment only, COMPLETED.
pub(crate) fn is_steady(service: &Value) -> bool {
    let deployments = service["deployments"].as_array();
    deployments.is_some_and(|d| d.len() == 1 && d[0]["rolloutState"] == "COMPLETED")
}

/// Waits until `count` services of `cluster` are steady; reads the in-process snapshot, so
/// the request log stays clean.
pub(crate) async fn wait_steady(
    handle: &SimHandle,
    cluster: &str,
    count: usize,
    limit: Duration,
) -> BenchResult<()> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let services = services(&handle.snapshot(), cluster);
        let steady = services.iter().filter(|s| is_steady(s)).count();
        if services.len() == count && steady == count {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(format!(
                "only {steady} of {count} services of cluster {cluster} reached a steady state within {limit:?}"
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
