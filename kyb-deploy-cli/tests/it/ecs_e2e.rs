//! End to end on ECS: the `kyb-deploy` binary builds the sample service's image, pushes it to
//! the registry on 127.0.0.1:5000 and deploys it to a staging environment on the testkit's
//! ECS simulator, whose Docker-backed runtime runs every task as a real container of that
//! image behind a stable local URL. The CLI reaches the simulator through the standard AWS
//! configuration chain (`EcsTarget::from_config`) with static test credentials, and
//! verifies the service through that URL.
//!
//! Needs the Docker engine, the registry (`bash scripts/setup.sh`) and the static sample
//! binary (`scripts/test.sh` builds it); without them the test fails, it never skips.

pub(crate) mod setup;

use std::time::{Duration, Instant};

use aws_sdk_ecs::Client;
use aws_sdk_ecs::types::{DeploymentRolloutState, Service};
use kyb_deploy_testkit::ecs_sim::{DockerRuntimeConfig, EcsSimulator};
use kyb_deploy_testkit::{docker, static_sample_api};
use serde_json::Value;

use self::setup::{
    Cleanup, REGION, REGISTRY, TEMPLATE, config, create_service, dockerfile, require_peers,
    sdk_client, unique,
};
use crate::support::{Project, Run, binary, get_json, output_within, runs};

/// Bounds every wait: the simulator's rollouts, the engine, each run of the binary. A bound,
/// never an assertion on speed.
pub(crate) const PATIENCE: Duration = Duration::from_secs(240);

/// Simulated seconds per real second. ECS's own phases (PROVISIONING 5 s, the pull 10 s,
/// the 10 s health check grace period, STOPPING 5 s) then take about a second of real
/// time, while the containers and their health checks run in real time.
pub(crate) const TIME_SCALE: f64 = 20.0;

async fn describe(client: &Client, name: &str) -> Service {
    let described = client
        .describe_services()
        .cluster(name)
        .services(name)
        .send()
        .await
        .unwrap();
    described.services()[0].clone()
}

/// Polls the service (which also drives the simulator's controller) until it runs only
/// `task_definition`, completed, with every task running.
pub(crate) async fn wait_steady(client: &Client, name: &str, task_definition: &str) -> Service {
    let start = Instant::now();
    loop {
        let service = describe(client, name).await;
        let deployments = service.deployments();
        if deployments.len() == 1
            && deployments[0].rollout_state == Some(DeploymentRolloutState::Completed)
            && deployments[0].task_definition() == Some(task_definition)
            && service.running_count == 2
        {
            return service;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "timed out waiting for service {name} to run {task_definition}: {service:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs `kyb-deploy <args>` in the project ([`kyb_deploy_command`]), killed after
/// [`PATIENCE`].
pub(crate) async fn kyb_deploy(project: &Project, args: &[&str]) -> Run {
    output_within(kyb_deploy_command(project, args), args, PATIENCE).await
}

/// `kyb-deploy <args>` in the project, with AWS settings from the test only: static test
/// credentials, and config/credential files in the project, so that nothing of the machine
/// (profiles, SSO, instance metadata) leaks in.
pub(crate) fn kyb_deploy_command(project: &Project, args: &[&str]) -> std::process::Command {
    let mut command = binary(project.path());
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("AWS_") {
            command.env_remove(key);
        }
    }
    let aws = project.path().join("aws");
    command
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", aws.join("config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", aws.join("credentials"));
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_sample_service_is_deployed_to_ecs_and_a_broken_release_rolled_back_by_ecs() {
    require_peers();
    let name = unique("kyb-ecs-e2e");
    let repository = format!("{REGISTRY}/{name}");
    let _cleanup = Cleanup {
        cluster: name.clone(),
        repository: repository.clone(),
    };

    // The project: the sample binary on scratch, a task definition template, AWS files
    // that say nothing (the credentials come from the environment).
    let project = Project::empty();
    let dir = project.path();
    std::fs::copy(static_sample_api(), dir.join("kyb-sample-api")).unwrap();
    std::fs::write(dir.join("Dockerfile"), dockerfile(&name)).unwrap();
    std::fs::create_dir(dir.join("ecs")).unwrap();
    std::fs::write(
        dir.join("ecs/task-definition.json"),
        TEMPLATE.replace("FAMILY", &name),
    )
    .unwrap();
    std::fs::create_dir(dir.join("aws")).unwrap();
    std::fs::write(dir.join("aws/config"), "").unwrap();
    std::fs::write(dir.join("aws/credentials"), "").unwrap();

    // v1 exists before kyb-deploy does anything: built and pushed here, and running as the
    // service's first task definition, healthy.
    let v1_image = format!("{repository}:v1");
    docker(&[
        "build",
        "-q",
        "--build-arg",
        "VERSION=v1",
        "-t",
        &v1_image,
        dir.to_str().unwrap(),
    ]);
    docker(&["push", "-q", &v1_image]);

    let sim = EcsSimulator::builder()
        .time_scale(TIME_SCALE)
        .seed(17)
        .docker_runtime(DockerRuntimeConfig {
            health_check_interval: Duration::from_millis(200),
            ..DockerRuntimeConfig::default()
        })
        .build()
        .serve(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap())
        .unwrap();
    let client = sdk_client(&sim);
    let v1_arn = create_service(&client, &name, &v1_image).await;
    wait_steady(&client, &name, &v1_arn).await;
    let url = sim
        .handle()
        .service_url(REGION, &name, &name)
        .expect("a docker-backed service has a URL");
    let (status, body) = get_json(&format!("{url}/status")).await;
    assert_eq!(
        (status, &body["version"]),
        (200, &Value::from("v1")),
        "{body}"
    );

    std::fs::write(
        dir.join("kyb-deploy.toml"),
        config(&repository, &name, &sim.url(), &url),
    )
    .unwrap();

    // v2: built, pushed, registered from the template, rolled out by ECS, verified through
    // the service's URL, recorded.
    let v2 = kyb_deploy(
        &project,
        &["deploy", "-e", "staging", "-v", "v2", "--skip-tests"],
    )
    .await;
    let all = v2.all();
    assert_eq!(v2.code, 0, "{all}");
    assert!(
        all.contains(&format!(
            "ecs service: {name} in cluster {name} answers (ACTIVE, 2 of 2 tasks running)"
        )),
        "{all}"
    );
    assert!(all.contains("rollout ecs-svc/"), "{all}");
    assert!(
        all.contains("event: "),
        "no ECS service event shown:\n{all}"
    );
    assert!(all.contains("deployment completed."), "{all}");
    assert!(all.contains("has reached a steady state."), "{all}");
    assert!(all.contains("▸ verify ... ok"), "{all}");
    // The five checks, then the soak of `soak = "3s"` (the project's ECS configuration).
    assert!(all.contains("▸ soak ... ok"), "{all}");
    assert!(all.contains("verification: passed (6 checks)"), "{all}");
    assert!(v2.stdout.contains("deployed v2"), "{all}");

    let first = runs(&project);
    assert_eq!(first.len(), 1, "{first:#?}");
    let record = &first[0];
    assert_eq!(record["status"], "succeeded", "{record:#}");
    assert_eq!(record["version"], "v2");
    assert_eq!(record["target"], "ecs");
    let v2_arn = record["release"]["platform_ref"]
        .as_str()
        .unwrap_or_else(|| panic!("no platform_ref: {record:#}"))
        .to_owned();
    assert!(
        v2_arn.starts_with(&format!(
            "arn:aws:ecs:{REGION}:123456789012:task-definition/{name}:"
        )),
        "{v2_arn}"
    );
    assert_ne!(v2_arn, v1_arn);
    assert!(
        record["rollout_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("ecs-svc/")),
        "{record:#}"
    );
    let v2_image = record["release"]["image"].as_str().unwrap().to_owned();
    assert!(
        v2_image.starts_with(&format!("{repository}@sha256:")),
        "{v2_image}"
    );

    // ECS runs the new task definition, with the image kyb-deploy pushed, and the URL
    // serves v2.
    let service = wait_steady(&client, &name, &v2_arn).await;
    assert_eq!(service.task_definition(), Some(v2_arn.as_str()));
    let registered = client
        .describe_task_definition()
        .task_definition(&v2_arn)
        .send()
        .await
        .unwrap();
    let container = &registered
        .task_definition()
        .unwrap()
        .container_definitions()[0];
    assert_eq!(container.image(), Some(v2_image.as_str()));
    assert!(
        container
            .environment()
            .iter()
            .any(|kv| kv.name() == Some("ENVIRONMENT") && kv.value() == Some("staging")),
        "{container:#?}"
    );
    let (status, body) = get_json(&format!("{url}/status")).await;
    assert_eq!(
        (status, &body["version"]),
        (200, &Value::from("v2")),
        "{body}"
    );

    // v3 is built with FAULT_UNHEALTHY_AFTER=0: its /health answers 503 from the start. The
    // runtime never finds its tasks healthy and stops each after three failed checks
    // ("Task failed container health checks"); ECS's circuit breaker fails the deployment
    // after three such tasks and rolls back to v2's task definition on its own, while v2's
    // tasks keep serving (minimumHealthyPercent 100). kyb-deploy follows ECS's rollback,
    // verifies v2 and does not roll back a second time. This path is deterministic: the
    // broken tasks never pass a health check, so the rollout never completes and
    // verification of v3 never starts.
    let v3 = kyb_deploy(
        &project,
        &[
            "deploy",
            "-e",
            "staging",
            "-v",
            "v3",
            "--skip-tests",
            "--build-arg",
            "FAULT_UNHEALTHY_AFTER=0",
        ],
    )
    .await;
    let all = v3.all();
    assert_eq!(v3.code, 4, "{all}");
    assert!(
        all.contains("stopped: Task failed container health checks"),
        "{all}"
    );
    assert!(
        all.contains("deployment failed: tasks failed to start."),
        "{all}"
    );
    assert!(all.contains("circuit breaker"), "{all}");
    assert!(
        all.contains(&format!("ECS is rolling back to {v2_arn}")),
        "{all}"
    );
    assert!(all.contains("ECS rolled back to v2"), "{all}");
    assert!(
        all.contains("the platform rolled back to v2; verifying it"),
        "{all}"
    );
    assert!(
        v3.stdout.contains("rolled back to v2 (by the platform)"),
        "{all}"
    );

    let all_runs = runs(&project);
    assert_eq!(all_runs.len(), 2, "{all_runs:#?}");
    let failed = &all_runs[1];
    assert_eq!(failed["version"], "v3");
    assert_eq!(failed["status"], "rolled_back", "{failed:#}");
    assert_eq!(failed["outcome"]["stage"], "wait", "{failed:#}");
    assert_eq!(failed["rollback"]["by_platform"], true, "{failed:#}");
    assert_eq!(failed["rollback"]["succeeded"], true, "{failed:#}");
    assert_eq!(failed["rollback"]["to"]["version"], "v2", "{failed:#}");
    assert_eq!(failed["rollback"]["to"]["platform_ref"], v2_arn.as_str());
    assert!(
        failed["rollout_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("ecs-svc/") && id != record["rollout_id"]),
        "{failed:#}"
    );
    let v3_arn = failed["release"]["platform_ref"].as_str().unwrap();
    assert_ne!(v3_arn, v2_arn);

    // ECS runs v2's task definition again and the URL still serves v2.
    let service = wait_steady(&client, &name, &v2_arn).await;
    assert_eq!(service.task_definition(), Some(v2_arn.as_str()));
    let (status, body) = get_json(&format!("{url}/status")).await;
    assert_eq!(
        (status, &body["version"]),
        (200, &Value::from("v2")),
        "{body}"
    );

    // `status` asks ECS and the ledger; `history` reads the ledger.
    let status = kyb_deploy(&project, &["status", "-e", "staging"]).await;
    assert_eq!(status.code, 0, "{}", status.all());
    assert!(status.stdout.contains(&v2_arn), "{}", status.all());
    assert!(status.stdout.contains("v2"), "{}", status.all());
    assert!(
        status
            .stdout
            .lines()
            .any(|l| l.starts_with("running") && l.contains("v2") && l.contains("2/2 running")),
        "{}",
        status.all()
    );
    let json = kyb_deploy(&project, &["--output", "json", "status", "-e", "staging"]).await;
    assert_eq!(json.code, 0, "{}", json.all());
    let json = json.json();
    assert_eq!(json["status"]["running"]["version"], "v2", "{json:#}");
    assert_eq!(
        json["status"]["running"]["platform_ref"],
        v2_arn.as_str(),
        "{json:#}"
    );
    let serving = json["status"]["serving"].as_array().unwrap();
    assert_eq!(serving.len(), 1, "{json:#}");
    assert_eq!(serving[0]["release"]["version"], "v2", "{json:#}");
    assert_eq!(serving[0]["running"], 2, "{json:#}");
    assert_eq!(
        json["status"]["last_known_good"]["version"], "v2",
        "{json:#}"
    );

    let history = kyb_deploy(&project, &["history", "-e", "staging"]).await;
    assert_eq!(history.code, 0, "{}", history.all());
    let run_line = |id: &Value| {
        let id = id.as_str().unwrap();
        history
            .stdout
            .lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("run {id} is not in the history:\n{}", history.stdout))
    };
    let v2_line = run_line(&all_runs[0]["id"]);
    assert!(
        v2_line.contains(" v2 ") && v2_line.contains(" succeeded "),
        "{v2_line}"
    );
    let v3_line = run_line(&all_runs[1]["id"]);
    assert!(
        v3_line.contains(" v3 ")
            && v3_line.contains(" rolled_back ")
            && v3_line.contains(" v2 ")
            && v3_line.contains("rolled back by the platform"),
        "{v3_line}"
    );

    // Shutting down removes every container the simulator ran.
    sim.shutdown().await.unwrap();
    let filter = format!("label=io.kyb-sim.cluster={name}");
    let left = docker(&["ps", "-aq", "--filter", &filter]);
    assert_eq!(left.trim(), "", "containers left behind");
}
