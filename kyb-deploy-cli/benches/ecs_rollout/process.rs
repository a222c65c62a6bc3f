//! The processes the benchmark runs: `kyb-deploy --version` and `aws --version` start-up,
//! and the peak memory of a full staging deploy.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kyb_deploy_core::{Release, Version};
use kyb_deploy_testkit::SampleApiProcess;
use kyb_deploy_testkit::ecs_sim::EcsSimulator;

use crate::sim;
use crate::support::{
    BenchResult, Binaries, DOCKERFILE, REGISTRY, free_port, max_rss, require_docker,
};

/// The `aws` command, with test credentials and no user configuration: the simulator
/// accepts any signature, and nothing of the machine's AWS set-up may leak in.
pub(crate) fn aws_command() -> Command {
    let mut command = Command::new("aws");
    aws_environment(&mut command);
    command
}

/// Test credentials, region and no configuration files for an AWS client process.
fn aws_environment(command: &mut Command) {
    let none = std::env::temp_dir().join("kyb-bench-no-aws-config");
    for key in [
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_ECS",
    ] {
        command.env_remove(key);
    }
    command
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", sim::REGION)
        .env("AWS_DEFAULT_REGION", sim::REGION)
        .env("AWS_CONFIG_FILE", none.join("config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", none.join("credentials"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_PAGER", "");
}

/// Start-up times of one command, run `runs` times after one warm-up run.
pub(crate) struct Startup {
    pub(crate) times: Vec<Duration>,
    /// What the command printed (its version).
    pub(crate) output: String,
}

pub(crate) fn startup(mut command: impl FnMut() -> Command, runs: usize) -> BenchResult<Startup> {
    let mut times = Vec::new();
    let mut output = String::new();
    for run in 0..=runs {
        let started = Instant::now();
        let out = command().stdin(Stdio::null()).output()?;
        let took = started.elapsed();
        if !out.status.success() {
            return Err(format!(
                "{:?} failed ({}): {}",
                command(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )
            .into());
        }
        if run == 0 {
            // Warm-up: page cache and, for `aws`, Python's bytecode cache.
            let text = [out.stdout, out.stderr].concat();
            output = String::from_utf8_lossy(&text).trim().to_owned();
        } else {
            times.push(took);
        }
    }
    Ok(Startup { times, output })
}

/// A full staging deploy by the `kyb-deploy` binary.
pub(crate) struct StagingDeploy {
    pub(crate) peak_rss: u64,
    pub(crate) took: Duration,
}

const STAGING_CLUSTER: &str = "kyb-bench-staging";
const STAGING_SERVICE: &str = "kyb-bench-api";

/// `kyb-deploy deploy -e staging -v v2 --skip-tests` in a project of its own: the image
/// (`FROM scratch` with the sample service's binary) built by the Docker engine and pushed
/// to the local registry, the ECS service of an in-process simulator updated and followed
/// to COMPLETED, and a local `kyb-sample-api` (reporting v2) verified.
pub(crate) async fn staging_deploy(binaries: &Binaries) -> BenchResult<StagingDeploy> {
    require_docker().await?;
    // Fast enough that the rollout takes a couple of seconds; memory does not depend on it.
    let sim = sim::serve(EcsSimulator::builder().time_scale(30.0).seed(3)).await?;
    let client = sim::client(&sim.url());
    sim::create_cluster(&client, STAGING_CLUSTER).await?;
    let first = format!("{REGISTRY}/{STAGING_SERVICE}:v1");
    sim::create_service(&client, STAGING_CLUSTER, STAGING_SERVICE, &first, true).await?;
    sim::wait_steady(sim.handle(), STAGING_CLUSTER, 1, Duration::from_secs(30)).await?;

    let port = free_port()?;
    let sample = SampleApiProcess::new(&binaries.sample_api, port);
    (sample.activate_hook())(Release::new(Version::parse("v2")?, "sample")).await?;

    let project = tempfile::tempdir()?;
    let context = project.path().join("context");
    std::fs::create_dir(&context)?;
    std::fs::copy(&binaries.sample_api, context.join("kyb-sample-api"))?;
    std::fs::write(context.join("Dockerfile"), DOCKERFILE)?;
    std::fs::write(
        project.path().join("kyb-deploy.toml"),
        staging_config(&sim.url(), sample.endpoint().as_str()),
    )?;

    let mut command = Command::new(&binaries.kyb_deploy);
    command
        .args(["deploy", "-e", "staging", "-v", "v2", "--skip-tests"])
        .current_dir(project.path())
        .env("NO_COLOR", "1");
    aws_environment(&mut command);
    let started = Instant::now();
    let (peak_rss, out) = tokio::task::spawn_blocking(move || max_rss(&command)).await??;
    let took = started.elapsed();
    sample.stop().await;
    sim.shutdown().await?;
    if !out.status.success() {
        return Err(format!(
            "kyb-deploy deploy -e staging failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(StagingDeploy { peak_rss, took })
}

fn staging_config(ecs_url: &str, base_url: &str) -> String {
    format!(
        r#"[project]
name = "{STAGING_SERVICE}"

[image]
repository = "{REGISTRY}/{STAGING_SERVICE}"
context = "context"
port = 8080
scan = "policy"

[image.build_args]
VERSION = "{{version}}"

[ledger]
path = "ledger.jsonl"

[environments.staging]
target = "ecs"
rollback = "auto"

[environments.staging.ecs]
cluster = "{STAGING_CLUSTER}"
service = "{STAGING_SERVICE}"
region = "{region}"
endpoint_url = "{ecs_url}"

[environments.staging.env]
ENVIRONMENT = "staging"

[environments.staging.verify]
base_url = "{base_url}"

[environments.staging.verify.readiness]
period = "250ms"

[environments.staging.verify.liveness]
period = "250ms"

[[environments.staging.verify.smoke]]
name = "classify"
method = "POST"
path = "/v1/classify"
json = {{ business_name = "Test Corp" }}
expect_status = 200
expect_json = {{ "/business_name" = "Test Corp" }}
"#,
        region = sim::REGION,
    )
}
