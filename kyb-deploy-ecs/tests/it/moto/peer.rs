//! The peer of the moto conformance tests: finding and starting `moto_server` (killed by a
//! guard however a test ends), the real AWS CLI run against it, SDK clients for it, and the
//! set-up of the cluster, the task definitions and the service the tests deploy to.

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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
use serde_json::Value;
use tempfile::TempDir;

use crate::support::{
    CLUSTER, FAMILY, SERVICE, TEMPLATE, environment, fast_poll, fast_retry, image,
};

/// How long moto may take to answer after it is started.
const MOTO_START: Duration = Duration::from_secs(30);

/// The longest one AWS CLI command or one SDK call may take.
const PATIENCE: Duration = Duration::from_secs(60);

/// How to get what these tests need: the README's test command installs it.
const FIX: &str = "run scripts/test.sh (it installs moto, and the AWS CLI when none is on \
                   PATH, into .kyb-deploy/venv and exports KYB_MOTO_SERVER), or pip install \
                   'moto[server]>=5,<6' awscli";

/// The workspace root.
fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate lives in the workspace")
}

/// `name` in a directory of PATH, else in the project virtualenv.
fn executable(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .or_else(|| {
            let venv = workspace().join(".kyb-deploy/venv/bin").join(name);
            venv.is_file().then_some(venv)
        })
}

/// The `moto_server` executable: `KYB_MOTO_SERVER`, else PATH, else the project
/// virtualenv's. A missing one fails the test, saying how to install it.
fn moto_server() -> PathBuf {
    if let Some(path) = std::env::var_os("KYB_MOTO_SERVER") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "KYB_MOTO_SERVER names {}, which is not a file; {FIX}",
            path.display()
        );
        return path;
    }
    executable("moto_server").unwrap_or_else(|| {
        panic!(
            "moto_server was not found (KYB_MOTO_SERVER, PATH, .kyb-deploy/venv/bin): the \
             moto conformance tests need it; {FIX}"
        )
    })
}

/// The AWS CLI (`aws`, v1) on PATH or in the project virtualenv. A missing one fails the
/// test, saying how to install it.
fn aws_cli() -> PathBuf {
    executable("aws").unwrap_or_else(|| {
        panic!(
            "the AWS CLI (`aws`) was not found (PATH, .kyb-deploy/venv/bin): the moto \
             conformance tests read what kyb-deploy did through it; {FIX}"
        )
    })
}

/// A running `moto_server`, killed (and reaped) when dropped, also when a test panics.
pub(super) struct Moto {
    child: Child,
    url: String,
    /// Holds moto's log, shown when it fails to start.
    _logs: TempDir,
}

impl Moto {
    pub(super) async fn start() -> Self {
        let executable = moto_server();
        // A free port: bind, read, release; moto binds it right after.
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|listener| listener.local_addr())
            .expect("a free port on 127.0.0.1")
            .port();
        let logs = tempfile::tempdir().unwrap();
        let log_path = logs.path().join("moto.log");
        let log = File::create(&log_path).unwrap();
        let child = Command::new(&executable)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|error| {
                panic!("cannot start {}: {error}; {FIX}", executable.display())
            });
        // From here on the guard owns the process: a failed start still kills it.
        let mut moto = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _logs: logs,
        };
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let deadline = tokio::time::Instant::now() + MOTO_START;
        loop {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return moto;
            }
            let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
            if let Some(status) = moto.child.try_wait().unwrap() {
                panic!(
                    "{} exited at start ({status}); {FIX}. Its output:\n{}",
                    executable.display(),
                    log()
                );
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} did not answer on {addr} within {MOTO_START:?}. Its output:\n{}",
                executable.display(),
                log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        // Only our own child, by its handle; an error means it is gone already.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The real AWS CLI against moto, with static test credentials and an empty home, so that
/// no user configuration (nor any real account) is involved.
pub(super) struct Aws {
    cli: PathBuf,
    home: TempDir,
    url: String,
}

impl Aws {
    pub(super) fn new(moto: &Moto) -> Self {
        Self {
            cli: aws_cli(),
            home: tempfile::tempdir().unwrap(),
            url: moto.url.clone(),
        }
    }

    /// Runs `aws --endpoint-url <moto> --region us-east-1 --output json <args>` and returns
    /// the JSON it printed.
    async fn json(&self, args: &[&str]) -> Value {
        let home = self.home.path();
        let mut command = tokio::process::Command::new(&self.cli);
        command
            .args([
                "--endpoint-url",
                &self.url,
                "--region",
                "us-east-1",
                "--output",
                "json",
            ])
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home)
            .env("AWS_CONFIG_FILE", home.join("config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", home.join("credentials"))
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_PAGER", "")
            .current_dir(home)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let output = tokio::time::timeout(PATIENCE, command.output())
            .await
            .unwrap_or_else(|_| panic!("aws {args:?} did not finish within {PATIENCE:?}"))
            .unwrap_or_else(|error| panic!("cannot run {}: {error}", self.cli.display()));
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "aws {args:?} failed ({}):\n{stdout}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_str(&stdout)
            .unwrap_or_else(|error| panic!("aws {args:?}: {error}: {stdout}"))
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
        .endpoint_url(&moto.url)
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
        .endpoint_url(&moto.url)
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
