//! The set-up of the ECS end-to-end test: its peers (the Docker engine, the registry, the
//! static sample binary), the project it writes (Dockerfile, task definition template,
//! configuration), the simulator's service it deploys to, and the guard that removes what it
//! made.

use std::collections::BTreeSet;
use std::process::Command;

use aws_sdk_ecs::Client;
use aws_sdk_ecs::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_ecs::types::{
    AwsVpcConfiguration, Compatibility, ContainerDefinition, DeploymentCircuitBreaker,
    DeploymentConfiguration, HealthCheck, LaunchType, NetworkConfiguration, NetworkMode,
    PortMapping, TransportProtocol,
};
use kyb_deploy_testkit::ecs_sim::RunningSimulator;
use kyb_deploy_testkit::require_image_peers;

pub(crate) const REGISTRY: &str = "127.0.0.1:5000";
pub(crate) const REGION: &str = "us-east-1";
const CONTAINER: &str = "api";
/// Fails loudly, with the fix, when a peer of this tier is missing.
pub(crate) fn require_peers() {
    require_image_peers();
}

pub(crate) fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}-{nanos:x}", std::process::id())
}

/// Removes what the test made, whatever happened: the simulator's containers (labelled with
/// the test's unique cluster name; the simulator removes them itself on shutdown, this is
/// the safety net for a panic) and the images of the test's unique repository (the label in
/// the Dockerfile makes their IDs the test's own).
pub(crate) struct Cleanup {
    pub(crate) cluster: String,
    pub(crate) repository: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let filter = format!("label=io.kyb-sim.cluster={}", self.cluster);
        remove_listed(&["ps", "-aq", "--filter", &filter], &["rm", "-f"]);
        remove_listed(
            &["images", "-q", "--no-trunc", &self.repository],
            &["rmi", "-f"],
        );
    }
}

/// Runs `docker <list>` and, when it lists anything, `docker <remove> <ids>`.
fn remove_listed(list: &[&str], remove: &[&str]) {
    let Ok(out) = Command::new("docker").args(list).output() else {
        return;
    };
    let ids: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    if !ids.is_empty() {
        let _ = Command::new("docker").args(remove).args(&ids).output();
    }
}

/// The project's Dockerfile: the static sample binary on scratch. `VERSION` is what
/// `/status` reports; `FAULT_UNHEALTHY_AFTER` makes `/health` fail that many seconds after
/// start (the repository's Dockerfile has the same build arguments); `FAULT_NEVER_READY`
/// makes `/ready` fail for good.
pub(crate) fn dockerfile(name: &str) -> String {
    format!(
        "FROM scratch\n\
         ARG VERSION=dev\n\
         ARG FAULT_UNHEALTHY_AFTER=\n\
         ARG FAULT_NEVER_READY=\n\
         ENV APP_VERSION=${{VERSION}} KYB_SAMPLE_FAULT_UNHEALTHY_AFTER=${{FAULT_UNHEALTHY_AFTER}} KYB_SAMPLE_FAULT_NEVER_READY=${{FAULT_NEVER_READY}} PORT=8080\n\
         COPY kyb-sample-api /kyb-sample-api\n\
         LABEL io.kyb-deploy.e2e=\"{name}\"\n\
         USER 10001:10001\n\
         EXPOSE 8080\n\
         ENTRYPOINT [\"/kyb-sample-api\"]\n"
    )
}

/// The task definition template of the project (`register-task-definition
/// --cli-input-json` format). The simulator does not run the health check's command (the
/// scratch image has no shell or curl; real ECS would need a checker in the image): it
/// checks `GET /health` on the container's port itself. The check must be there, as it
/// makes the simulator wait for health before a task counts, and stop unhealthy ones.
pub(crate) const TEMPLATE: &str = r#"{
  "family": "FAMILY",
  "networkMode": "awsvpc",
  "requiresCompatibilities": ["FARGATE"],
  "cpu": "256",
  "memory": "512",
  "containerDefinitions": [
    {
      "name": "api",
      "essential": true,
      "portMappings": [{"containerPort": 8080, "protocol": "tcp"}],
      "healthCheck": {
        "command": ["CMD-SHELL", "curl -f http://localhost:8080/health || exit 1"],
        "interval": 5,
        "timeout": 2,
        "retries": 3
      }
    }
  ]
}
"#;

/// The project's configuration: the staging environment on the simulator at `endpoint`,
/// verified through the service's stable URL `service_url`.
pub(crate) fn config(repository: &str, name: &str, endpoint: &str, service_url: &str) -> String {
    format!(
        r#"
[image]
repository = "{repository}"
tags = ["{{version}}"]

[image.build_args]
VERSION = "{{version}}"

[environments.staging]
target = "ecs"
rollback = "auto"

[environments.staging.timeouts]
overall = "4m"
wait = "2m"
verify = "1m"
rollback = "2m"

[environments.staging.ecs]
cluster = "{name}"
service = "{name}"
region = "{REGION}"
endpoint_url = "{endpoint}"
task_definition = "ecs/task-definition.json"
container = "{CONTAINER}"

[environments.staging.ecs.poll]
interval = "100ms"
max_interval = "400ms"
max_calls_per_second = 20

[environments.staging.env]
ENVIRONMENT = "staging"
LOG_LEVEL = "info"

[environments.staging.verify]
base_url = "{service_url}"
# A short soak keeps the test quick; it still watches the release after verification.
soak = "3s"

[environments.staging.verify.readiness]
period = "200ms"
failure_threshold = 50

[environments.staging.verify.liveness]
period = "200ms"
success_threshold = 5

[[environments.staging.verify.smoke]]
name = "classify"
method = "POST"
path = "/v1/classify"
json = {{ business_name = "Test Corp" }}
expect_status = 200
expect_json = {{ "/business_name" = "Test Corp" }}
samples = 3
"#
    )
}

/// An SDK client for the simulator, on the CLI's own HTTP client (rustls with ring).
pub(crate) fn sdk_client(sim: &RunningSimulator) -> Client {
    let config = aws_sdk_ecs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .endpoint_url(sim.url())
        .http_client(kyb_deploy_ecs::https_client())
        .build();
    Client::from_conf(config)
}

/// Creates the cluster, the first task definition (running `image`) and the service with
/// two tasks; returns the task definition's ARN.
pub(crate) async fn create_service(client: &Client, name: &str, image: &str) -> String {
    client
        .create_cluster()
        .cluster_name(name)
        .send()
        .await
        .unwrap();
    let container = ContainerDefinition::builder()
        .name(CONTAINER)
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
                .interval(5)
                .timeout(2)
                .retries(3)
                .build()
                .unwrap(),
        )
        .build();
    let registered = client
        .register_task_definition()
        .family(name)
        .network_mode(NetworkMode::Awsvpc)
        .requires_compatibilities(Compatibility::Fargate)
        .cpu("256")
        .memory("512")
        .container_definitions(container)
        .send()
        .await
        .unwrap();
    let arn = registered
        .task_definition()
        .and_then(|t| t.task_definition_arn())
        .unwrap()
        .to_owned();
    client
        .create_service()
        .cluster(name)
        .service_name(name)
        .task_definition(&arn)
        .desired_count(2)
        .launch_type(LaunchType::Fargate)
        .network_configuration(
            NetworkConfiguration::builder()
                .awsvpc_configuration(
                    AwsVpcConfiguration::builder()
                        .subnets("subnet-e2e")
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .deployment_configuration(
            DeploymentConfiguration::builder()
                .minimum_healthy_percent(100)
                .maximum_percent(200)
                .deployment_circuit_breaker(
                    DeploymentCircuitBreaker::builder()
                        .enable(true)
                        .rollback(true)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    arn
}
