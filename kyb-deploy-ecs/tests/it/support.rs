//! Shared set-up: a simulator with a cluster and a service, a target for it, and a pipeline.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_ecs::Client;
use aws_sdk_ecs::config::retry::RetryConfig;
use aws_sdk_ecs::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_ecs::types::{
    AwsVpcConfiguration, Compatibility, ContainerDefinition, LaunchType, NetworkConfiguration,
    NetworkMode, PortMapping,
};
use kyb_deploy_core::config::{Config, Environment};
use kyb_deploy_core::{
    CancellationToken, DeployRequest, Pipeline, Release, RunControl, RunReport, Version,
};
use kyb_deploy_ecs::https_client;
use kyb_deploy_ecs::{EcsTarget, EcsTargetSpec, ThrottleRetry};
use kyb_deploy_testkit::ecs_sim::{EcsSimulator, EcsSimulatorBuilder, RunningSimulator};
use kyb_deploy_testkit::{FixedVersion, InMemoryLock, InMemoryRecordStore, ScriptedProbe};
use serde_json::Value;
use tokio::net::TcpListener;

pub(crate) const CLUSTER: &str = "kyb-staging";
pub(crate) const SERVICE: &str = "kyb-api";
pub(crate) const FAMILY: &str = "kyb-api";
pub(crate) const REPO: &str = "registry.test/kyb-api";

/// Simulated time runs this much faster than real time: a rollout of a minute of
/// simulated time takes well under a second.
pub(crate) const TIME_SCALE: f64 = 100.0;

/// The task definition template the tests deploy with.
pub(crate) const TEMPLATE: &str = r#"{
  "family": "kyb-api",
  "networkMode": "awsvpc",
  "requiresCompatibilities": ["FARGATE"],
  "cpu": "256",
  "memory": "512",
  "executionRoleArn": "arn:aws:iam::123456789012:role/kyb-api-execution",
  "containerDefinitions": [{
    "name": "api",
    "image": "{image}",
    "essential": true,
    "portMappings": [{"containerPort": 8080, "protocol": "tcp"}],
    "environment": [{"name": "LOG_FORMAT", "value": "json"}],
    "secrets": [{"name": "DATABASE_URL", "valueFrom": "arn:aws:secretsmanager:us-east-1:123456789012:secret:kyb/db"}],
    "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/ecs/kyb-api", "awslogs-region": "us-east-1", "awslogs-stream-prefix": "api"}},
    "healthCheck": {"command": ["CMD-SHELL", "curl -f http://localhost:8080/health || exit 1"], "interval": 10, "retries": 3}
  }]
}"#;

pub(crate) async fn serve(builder: EcsSimulatorBuilder) -> RunningSimulator {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    builder.build().serve(listener).unwrap()
}

/// An SDK client for `sim`, with the SDK's standard retries made quick.
pub(crate) fn client(sim: &RunningSimulator) -> Client {
    client_at(&sim.url())
}

/// An SDK client for the ECS API at `url` (the simulator, or a proxy in front of it).
pub(crate) fn client_at(url: &str) -> Client {
    let config = aws_sdk_ecs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .endpoint_url(url)
        .http_client(https_client())
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(5))
                .with_max_backoff(Duration::from_millis(50)),
        )
        .build();
    Client::from_conf(config)
}

pub(crate) fn version(v: &str) -> Version {
    Version::parse(v).unwrap()
}

pub(crate) fn image(v: &str) -> String {
    format!("{REPO}:{v}")
}

pub(crate) fn release(v: &str) -> Release {
    Release::new(version(v), image(v))
}

/// The staging environment with `extra` TOML in its table.
pub(crate) fn environment(extra: &str) -> Environment {
    environment_with(extra, "")
}

/// The staging environment with `ecs_extra` TOML in its `[ecs]` table.
pub(crate) fn environment_with_ecs(ecs_extra: &str) -> Environment {
    environment_with("", ecs_extra)
}

fn environment_with(extra: &str, ecs_extra: &str) -> Environment {
    let text = format!(
        "[environments.staging]\ntarget = \"ecs\"\n{extra}\n\
         [environments.staging.ecs]\ncluster = \"{CLUSTER}\"\nservice = \"{SERVICE}\"\nregion = \"us-east-1\"\n{ecs_extra}\n\
         [environments.staging.env]\nENVIRONMENT = \"staging\"\n\
         [environments.staging.verify]\nbase_url = \"http://127.0.0.1:9\"\n"
    );
    Config::from_toml(&text)
        .unwrap()
        .environment("staging")
        .unwrap()
}

/// A cluster and a Fargate service of 2 tasks running `initial`, registered directly
/// (as infrastructure code would), rolled out to COMPLETED.
pub(crate) async fn service_running(sim: &RunningSimulator, initial: &str) {
    let c = client(sim);
    c.create_cluster()
        .cluster_name(CLUSTER)
        .send()
        .await
        .unwrap();
    let registered = c
        .register_task_definition()
        .family(FAMILY)
        .network_mode(NetworkMode::Awsvpc)
        .requires_compatibilities(Compatibility::Fargate)
        .cpu("256")
        .memory("512")
        .container_definitions(
            ContainerDefinition::builder()
                .name("api")
                .image(image(initial))
                .essential(true)
                .port_mappings(PortMapping::builder().container_port(8080).build())
                .docker_labels(kyb_deploy_ecs::VERSION_LABEL, initial)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let arn = registered
        .task_definition
        .unwrap()
        .task_definition_arn
        .unwrap();
    c.create_service()
        .cluster(CLUSTER)
        .service_name(SERVICE)
        .task_definition(arn)
        .desired_count(2)
        .launch_type(LaunchType::Fargate)
        .network_configuration(
            NetworkConfiguration::builder()
                .awsvpc_configuration(
                    AwsVpcConfiguration::builder()
                        .subnets("subnet-12345")
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    wait_steady(sim).await;
}

/// Waits until the service's only deployment is COMPLETED.
pub(crate) async fn wait_steady(sim: &RunningSimulator) {
    let c = client(sim);
    for _ in 0..400 {
        let out = c
            .describe_services()
            .cluster(CLUSTER)
            .services(SERVICE)
            .send()
            .await
            .unwrap();
        let s = &out.services()[0];
        if s.deployments().len() == 1
            && s.deployments()[0].rollout_state().map(|r| r.as_str()) == Some("COMPLETED")
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the service never reached a steady state");
}

/// Polling fast enough for the simulator's time scale.
pub(crate) fn fast_poll() -> kyb_deploy_ecs::EcsPoll {
    kyb_deploy_ecs::EcsPoll {
        interval: Duration::from_millis(10),
        max_interval: Duration::from_millis(40),
        max_calls_per_second: 200,
    }
}

pub(crate) fn fast_retry() -> ThrottleRetry {
    ThrottleRetry {
        attempts: 10,
        delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(40),
    }
}

/// A target for `sim`, with the template when `template` is set.
pub(crate) fn target(sim: &RunningSimulator, env: &Environment, template: bool) -> EcsTarget {
    let mut spec = EcsTargetSpec::from_environment(env, std::path::Path::new(".")).unwrap();
    if template {
        spec.template =
            Some(kyb_deploy_ecs::TaskDefinitionSpec::from_template(TEMPLATE, "test").unwrap());
        spec.container = Some("api".into());
    }
    EcsTarget::new(client(sim), spec, fast_poll()).with_throttle_retry(fast_retry())
}

/// The seams of one pipeline test, kept for inspection afterwards.
pub(crate) struct Harness {
    pub(crate) sim: RunningSimulator,
    pub(crate) target: Arc<EcsTarget>,
    pub(crate) probe: Arc<ScriptedProbe>,
    pub(crate) store: Arc<InMemoryRecordStore>,
    pub(crate) env: Environment,
}

impl Harness {
    /// A simulator from `builder` whose service runs `initial`, and a pipeline for it.
    pub(crate) async fn new(
        builder: EcsSimulatorBuilder,
        initial: &str,
        probe: ScriptedProbe,
    ) -> Self {
        let sim = serve(builder.time_scale(TIME_SCALE).seed(7)).await;
        service_running(&sim, initial).await;
        let env = environment("");
        let target = Arc::new(target(&sim, &env, true));
        Self {
            sim,
            target,
            probe: Arc::new(probe),
            store: Arc::new(InMemoryRecordStore::new()),
            env,
        }
    }

    /// The same harness with the target reaching ECS through `url` (a fault proxy).
    pub(crate) fn through(mut self, url: &str) -> Self {
        let mut spec = self.target.spec().clone();
        spec.template =
            Some(kyb_deploy_ecs::TaskDefinitionSpec::from_template(TEMPLATE, "test").unwrap());
        self.target = Arc::new(
            EcsTarget::new(client_at(url), spec, fast_poll()).with_throttle_retry(fast_retry()),
        );
        self
    }

    pub(crate) fn pipeline(&self, v: &str) -> Pipeline {
        Pipeline::new(
            self.target.clone(),
            self.probe.clone(),
            self.store.clone(),
            Arc::new(InMemoryLock::new()),
        )
        .with_version_source(Arc::new(FixedVersion::new(v)))
    }

    pub(crate) fn request(&self) -> DeployRequest {
        let mut r = DeployRequest::new(self.env.clone());
        r.image.repository = REPO.into();
        r
    }

    pub(crate) async fn deploy(&self, v: &str) -> RunReport {
        self.pipeline(v)
            .deploy(&self.request(), &RunControl::new(CancellationToken::new()))
            .await
    }

    /// The final ledger record of a run.
    pub(crate) fn record(&self, report: &RunReport) -> kyb_deploy_core::DeploymentRecord {
        self.store
            .records()
            .into_iter()
            .find(|r| r.id == report.run_id)
            .expect("the run is recorded")
    }

    /// The service as the simulator's state shows it.
    pub(crate) fn service_state(&self) -> Value {
        let snapshot = self.sim.handle().snapshot();
        find_service(&snapshot).unwrap_or_else(|| panic!("no service in {snapshot:#}"))
    }

    /// The service, read through the SDK.
    pub(crate) async fn described_service(&self) -> aws_sdk_ecs::types::Service {
        let out = client(&self.sim)
            .describe_services()
            .cluster(CLUSTER)
            .services(SERVICE)
            .send()
            .await
            .unwrap();
        out.services()[0].clone()
    }

    /// The image the service's primary deployment runs, read through the SDK.
    pub(crate) async fn running_image(&self) -> String {
        let td = self
            .described_service()
            .await
            .task_definition()
            .unwrap()
            .to_owned();
        let d = client(&self.sim)
            .describe_task_definition()
            .task_definition(td)
            .send()
            .await
            .unwrap();
        d.task_definition().unwrap().container_definitions()[0]
            .image()
            .unwrap()
            .to_owned()
    }
}

fn find_service(v: &Value) -> Option<Value> {
    match v {
        Value::Object(map) => {
            if map.get("serviceName").and_then(Value::as_str) == Some(SERVICE) {
                return Some(v.clone());
            }
            map.values().find_map(find_service)
        }
        Value::Array(items) => items.iter().find_map(find_service),
        _ => None,
    }
}

/// Shorthand for an unused value in `EcsSimulator::builder()` chains.
pub(crate) fn sim() -> EcsSimulatorBuilder {
    EcsSimulator::builder()
}
