//! The peer of the moto conformance tests: the testkit's `moto_server` and the real AWS CLI
//! run against it, SDK clients for it, and the set-up of the cluster, the task definitions and the service the tests deploy to.

use std::path::Path;
use std::time::Duration;

use aws_sdk_ecs::Client;
use aws_sdk_ecs::config::retry::RetryConfig;
use aws_sdk_ecs::config::timeout::TimeoutConfig;
use aws_sdk_ecs::config::{BehaviorVersion, Credentials as AwsCredentials, Region};
use aws_sdk_ecs::types::{
    AwsVpcConfiguration, Compatibility, ContainerDefinition, LaunchType, NetworkConfiguration,
    NetworkMode, PortMapping,
};
use kyb_deploy_core::Release;
use kyb_deploy_ecs::https_client;
use kyb_deploy_ecs::{EcsTarget, EcsTargetSpec};
use kyb_deploy_ecs::{TaskDefinitionSpec, VERSION_LABEL};
use kyb_deploy_testkit::moto::{AwsCli, MotoServer};
use serde_json::Value;

use crate::support::{
    CLUSTER, FAMILY, SERVICE, TEMPLATE, environment, fast_poll, fast_retry, image,
};

/// The longest one SDK call may take.
const PATIENCE: Duration = Duration::from_secs(60);

/// The running `moto_server`.
pub(super) type Moto = MotoServer;

/// The real AWS CLI against moto, with ECS lookups.
pub(super) struct Aws(AwsCli);

impl Aws {
    pub(super) fn new(moto: &Moto) -> Self {
        Self(AwsCli::new(moto.url()))
    }

    async fn json(&self, args: &[&str]) -> Value {
        self.0.json(args).await
    }

    /// The service, as `aws ecs describe-services` shows it.
    pub(super) async fn service(&self) -> Value {
        let out = self
            .json(&[
                "ecs",
                "describe-services",
                "--cluster",
                CLUSTER,
                "--services",
                SERVICE,
            ])
            .await;
        out["services"][0].clone()
    }

    /// The tags of the resource `arn`, as `aws ecs list-tags-for-resource` shows them.
    pub(super) async fn tags(&self, arn: &str) -> Value {
        let out = self
            .json(&["ecs", "list-tags-for-resource", "--resource-arn", arn])
            .await;
        out["tags"].clone()
    }

    /// The task definition `arn`, as `aws ecs describe-task-definition` shows it.
    pub(super) async fn task_definition(&self, arn: &str) -> Value {
        let out = self
            .json(&["ecs", "describe-task-definition", "--task-definition", arn])
            .await;
        out["taskDefinition"].clone()
    }

    /// The ACTIVE revisions of the family, in the order ECS lists them with `--sort DESC`.
    pub(super) async fn revisions(&self) -> Vec<String> {
        let out = self
            .json(&[
                "ecs",
                "list-task-definitions",
                "--family-prefix",
                FAMILY,
                "--sort",
                "DESC",
            ])
            .await;
        strings(&out["taskDefinitionArns"])
    }
}

/// The strings of a JSON array.
fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| {
            s.as_str()
                .unwrap_or_else(|| panic!("not a string: {s}"))
                .to_owned()
        })
        .collect()
}

/// The service's PRIMARY deployment, as the CLI shows it.
pub(super) fn primary(service: &Value) -> &Value {
    service["deployments"]
        .as_array()
        .and_then(|ds| ds.iter().find(|d| d["status"] == "PRIMARY"))
        .unwrap_or_else(|| panic!("no PRIMARY deployment: {service:#}"))
}

/// An SDK client for moto's ECS, as the tests' infrastructure code and the target use it:
/// ring TLS, static test credentials, and calls bounded in time.
pub(super) fn ecs_client(moto: &Moto) -> Client {
    let config = aws_sdk_ecs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(AwsCredentials::new("test", "test", None, None, "static"))
        .endpoint_url(moto.url())
        .http_client(https_client())
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(10))
                .with_max_backoff(Duration::from_millis(100)),
        )
        .timeout_config(TimeoutConfig::builder().operation_timeout(PATIENCE).build())
        .build();
    Client::from_conf(config)
}

/// An SDK client for moto's ECR, built like the ECS one.
pub(super) fn ecr_client(moto: &Moto) -> aws_sdk_ecr::Client {
    let config = aws_sdk_ecr::Config::builder()
        .behavior_version(aws_sdk_ecr::config::BehaviorVersion::latest())
        .region(aws_sdk_ecr::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_ecr::config::Credentials::new(
            "test", "test", None, None, "static",
        ))
        .endpoint_url(moto.url())
        .http_client(https_client())
        .timeout_config(
            aws_sdk_ecr::config::timeout::TimeoutConfig::builder()
                .operation_timeout(PATIENCE)
                .build(),
        )
        .build();
    aws_sdk_ecr::Client::from_conf(config)
}

/// The target under test: the staging environment with the tests' template, on `client`.
pub(super) fn target(client: &Client) -> EcsTarget {
    let mut spec = EcsTargetSpec::from_environment(&environment(""), Path::new(".")).unwrap();
    spec.template = Some(TaskDefinitionSpec::from_template(TEMPLATE, "test").unwrap());
    spec.container = Some("api".into());
    EcsTarget::new(client.clone(), spec, fast_poll()).with_throttle_retry(fast_retry())
}

/// A network configuration moto accepts: its default VPC's first subnet and security group
/// (moto checks that both exist, and fails without a security group).
async fn network(aws: &Aws) -> NetworkConfiguration {
    let subnets = aws.json(&["ec2", "describe-subnets"]).await;
    let groups = aws.json(&["ec2", "describe-security-groups"]).await;
    let subnet = subnets["Subnets"][0]["SubnetId"]
        .as_str()
        .unwrap_or_else(|| panic!("moto has no subnet: {subnets}"));
    let group = groups["SecurityGroups"][0]["GroupId"]
        .as_str()
        .unwrap_or_else(|| panic!("moto has no security group: {groups}"));
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

/// The cluster, and revision 1 of the family running `v1`, registered directly as
/// infrastructure code would (no template, fewer fields); returns its ARN.
pub(super) async fn cluster_and_initial_definition(client: &Client) -> String {
    client
        .create_cluster()
        .cluster_name(CLUSTER)
        .send()
        .await
        .unwrap();
    let registered = client
        .register_task_definition()
        .family(FAMILY)
        .network_mode(NetworkMode::Awsvpc)
        .requires_compatibilities(Compatibility::Fargate)
        .cpu("256")
        .memory("512")
        .container_definitions(
            ContainerDefinition::builder()
                .name("api")
                .image(image("v1"))
                .essential(true)
                .port_mappings(PortMapping::builder().container_port(8080).build())
                .docker_labels(VERSION_LABEL, "v1")
                .build(),
        )
        .send()
        .await
        .unwrap();
    registered
        .task_definition
        .and_then(|d| d.task_definition_arn)
        .unwrap()
}

/// A Fargate service of 2 tasks running `task_definition`, created directly.
pub(super) async fn create_service(client: &Client, aws: &Aws, task_definition: &str) {
    client
        .create_service()
        .cluster(CLUSTER)
        .service_name(SERVICE)
        .task_definition(task_definition)
        .desired_count(2)
        .launch_type(LaunchType::Fargate)
        .network_configuration(network(aws).await)
        .send()
        .await
        .unwrap();
}

/// Registers exactly what `target` registers for `release` (as an earlier kyb-deploy run
/// did); returns the ARN.
pub(super) async fn register_as_kyb_deploy(
    client: &Client,
    target: &EcsTarget,
    release: &Release,
) -> String {
    let spec = target.spec();
    let desired = spec
        .template
        .clone()
        .unwrap()
        .with_release(
            spec.container.as_deref(),
            &release.image,
            &release.version,
            &spec.env,
        )
        .unwrap();
    let registered = desired
        .register_request(client.register_task_definition())
        .send()
        .await
        .unwrap();
    registered
        .task_definition
        .and_then(|d| d.task_definition_arn)
        .unwrap()
}
