//! The Docker-backed runtime against the local engine and registry: a real rollout of
//! kyb-sample-api, then a nonexistent image tag that trips the circuit breaker; a
//! container that crashes shortly after start, which fails its deployment; and a RunTask
//! task whose container override makes it exit.

use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kyb_deploy_testkit::ecs_sim::{DockerRuntimeConfig, EcsSimulator};
use kyb_deploy_testkit::{docker, require_image_peers, static_sample_api};
use serde_json::{Value, json};

use super::Sim;

/// Bounds every wait for the engine; never an assertion on speed.
const DOCKER_PATIENCE: Duration = Duration::from_secs(90);

const REGISTRY: &str = "127.0.0.1:5000";

/// Builds the `FROM scratch` image of kyb-sample-api and pushes it as `<repository>:v1`.
fn push_sample_image(repository: &str) -> String {
    let context = tempfile::tempdir().unwrap();
    std::fs::copy(static_sample_api(), context.path().join("kyb-sample-api")).unwrap();
    // The label makes the image ID unique per repository, so that the `ancestor=` filter of
    // one test never matches the containers of another test running concurrently.
    std::fs::write(
        context.path().join("Dockerfile"),
        format!(
            "FROM scratch\nCOPY kyb-sample-api /kyb-sample-api\nUSER 10001\nEXPOSE 8080\n\
             LABEL kyb-sim-test=\"{repository}\"\nENTRYPOINT [\"/kyb-sample-api\"]\n"
        ),
    )
    .unwrap();
    let image = format!("{repository}:v1");
    let context_path = context.path().to_str().unwrap();
    docker(&["build", "-q", "-t", &image, context_path]);
    docker(&["push", "-q", &image]);
    image
}

fn fargate_definition(image: &str) -> Value {
    json!({
        "family": "api",
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "cpu": "256",
        "memory": "512",
        "containerDefinitions": [{
            "name": "api",
            "image": image,
            "essential": true,
            "portMappings": [{"containerPort": 8080, "protocol": "tcp"}],
            "environment": [{"name": "KYB_SAMPLE_VERSION", "value": "v1"}],
            "healthCheck": {"command": ["CMD", "/kyb-sample-api", "--health"],
                            "interval": 5, "timeout": 2, "retries": 3},
        }],
    })
}

/// Polls the service until `done` holds for it, at most [`DOCKER_PATIENCE`].
async fn wait_for(sim: &Sim, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    wait_within(sim, DOCKER_PATIENCE, what, done).await
}

/// Polls the service until `done` holds for it, at most `patience`.
async fn wait_within(
    sim: &Sim,
    patience: Duration,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let start = Instant::now();
    loop {
        let service = sim.service_named("api").await;
        if done(&service) {
            return service;
        }
        assert!(
            start.elapsed() < patience,
            "timed out waiting for {what}: {service:#}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn completed_with(service: &Value, task_definition_suffix: &str) -> bool {
    let deployments = service["deployments"].as_array().unwrap();
    deployments.len() == 1
        && deployments[0]["rolloutState"] == "COMPLETED"
        && deployments[0]["taskDefinition"]
            .as_str()
            .unwrap()
            .ends_with(task_definition_suffix)
        && service["runningCount"] == 2
}

async fn get(client: &reqwest::Client, url: &str) -> (u16, Value) {
    let response = tokio::time::timeout(DOCKER_PATIENCE, client.get(url).send())
        .await
        .expect("the service URL did not answer")
        .unwrap_or_else(|error| panic!("GET {url}: {error}"));
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

impl Sim {
    async fn service_named(&self, name: &str) -> Value {
        let response = self
            .ok(
                "DescribeServices",
                json!({"cluster": "c", "services": [name]}),
            )
            .await;
        response["services"][0].clone()
    }
}

/// Checks the engine and the registry, then names a repository no other run uses.
async fn unique_repository() -> String {
    require_image_peers();
    let unique = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{REGISTRY}/kyb-sim-test-{}-{unique:x}", std::process::id())
}

/// A simulator on the Docker runtime, with a fast health check poll.
async fn start_docker_sim() -> Sim {
    let config = DockerRuntimeConfig {
        health_check_interval: Duration::from_millis(200),
        ..DockerRuntimeConfig::default()
    };
    Sim::start(
        EcsSimulator::builder()
            .time_scale(100.0)
            .seed(5)
            .docker_runtime(config),
    )
    .await
}

/// The service's tasks with `desiredStatus` STOPPED, as DescribeTasks reports them.
async fn stopped_tasks(sim: &Sim) -> Value {
    let stopped = sim
        .ok(
            "ListTasks",
            json!({"cluster": "c", "desiredStatus": "STOPPED"}),
        )
        .await;
    sim.ok(
        "DescribeTasks",
        json!({"cluster": "c", "tasks": stopped["taskArns"]}),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_docker_backed_rollout_serves_its_url_and_a_missing_tag_rolls_back() {
    let repository = unique_repository().await;
    let image = push_sample_image(&repository);
    let sim = start_docker_sim().await;
    let handle = sim.running.handle().clone();
    sim.ok("CreateCluster", json!({"clusterName": "c"})).await;
    sim.ok("RegisterTaskDefinition", fargate_definition(&image))
        .await;
    let network = json!({"awsvpcConfiguration": {"subnets": ["subnet-1"]}});
    sim.ok(
        "CreateService",
        json!({"cluster": "c", "serviceName": "api", "taskDefinition": "api:1",
               "desiredCount": 2, "launchType": "FARGATE", "networkConfiguration": network}),
    )
    .await;

    // The first rollout runs two real containers and completes once both pass /health.
    let first = wait_for(&sim, "the first deployment to complete", |service| {
        completed_with(service, "api:1")
    })
    .await;
    let first_deployment = first["deployments"][0]["id"].clone();
    let url = handle
        .service_url("us-east-1", "c", "api")
        .expect("a docker-backed service has a URL");
    let snapshot = handle.snapshot();
    let services = &snapshot["regions"]["us-east-1"]["clusters"][0]["services"];
    assert_eq!(services[0]["serviceUrl"], url.as_str());
    let client = reqwest::Client::new();
    assert_eq!(get(&client, &format!("{url}/health")).await.0, 200);
    let (status, body) = get(&client, &format!("{url}/status")).await;
    assert_eq!((status, &body["version"]), (200, &json!("v1")));

    // A tag that does not exist: every task fails to pull, the breaker trips after 3 of them
    // and the rollback to revision 1 completes.
    let missing = format!("{repository}:does-not-exist");
    sim.ok("RegisterTaskDefinition", fargate_definition(&missing))
        .await;
    sim.ok(
        "UpdateService",
        json!({"cluster": "c", "service": "api", "taskDefinition": "api:2",
               "deploymentConfiguration": {
                   "deploymentCircuitBreaker": {"enable": true, "rollback": true},
                   "maximumPercent": 200, "minimumHealthyPercent": 100}}),
    )
    .await;
    // The rollback is a new deployment of revision 1.
    let service = wait_for(&sim, "the rollback to complete", |service| {
        service["deployments"][0]["id"] != first_deployment && completed_with(service, "api:1")
    })
    .await;
    let events: Vec<&str> = service["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["message"].as_str().unwrap())
        .collect();
    assert!(
        events
            .iter()
            .any(|message| message.ends_with("deployment failed: tasks failed to start.")),
        "{events:#?}"
    );

    let tasks = stopped_tasks(&sim).await;
    let pull_failures: Vec<&Value> = tasks["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|task| {
            task["stoppedReason"]
                .as_str()
                .is_some_and(|reason| reason.starts_with("CannotPullContainerError: "))
        })
        .collect();
    assert!(pull_failures.len() >= 3, "{tasks:#}");
    assert!(
        pull_failures.iter().all(|task| task["taskDefinitionArn"]
            .as_str()
            .unwrap()
            .ends_with("api:2")),
        "{tasks:#}"
    );
    assert_eq!(get(&client, &format!("{url}/health")).await.0, 200);

    // Shutting down removes every container the simulator ran.
    sim.running.shutdown().await.unwrap();
    let left = docker(&["ps", "-aq", "--filter", &format!("ancestor={image}")]);
    assert_eq!(left.trim(), "", "containers left behind");
    let _ = Command::new("docker")
        .args(["rmi", "--no-prune", &image])
        .output();
}

/// Bounds every wait of the crash test.
const CRASH_PATIENCE: Duration = Duration::from_secs(60);

fn crashed_with_code_3(task: &Value) -> bool {
    task["stoppedReason"]
        .as_str()
        .is_some_and(|reason| reason.contains("Essential container in task exited"))
        && task["containers"][0]["exitCode"] == 3
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_container_that_exits_after_start_fails_the_deployment_with_its_exit_code() {
    let repository = unique_repository().await;
    let image = push_sample_image(&repository);
    let sim = start_docker_sim().await;
    sim.ok("CreateCluster", json!({"clusterName": "c"})).await;
    let mut definition = fargate_definition(&image);
    definition["containerDefinitions"][0]["environment"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "KYB_SAMPLE_FAULT_EXIT_AFTER", "value": "0.3"}));
    sim.ok("RegisterTaskDefinition", definition).await;
    let network = json!({"awsvpcConfiguration": {"subnets": ["subnet-1"]}});
    sim.ok(
        "CreateService",
        json!({"cluster": "c", "serviceName": "api", "taskDefinition": "api:1",
               "desiredCount": 1, "launchType": "FARGATE", "networkConfiguration": network,
               "deploymentConfiguration": {
                   "deploymentCircuitBreaker": {"enable": true, "rollback": false}}}),
    )
    .await;

    // Every task crashes 0.3 s after start; the breaker trips after 3 of them.
    let service = wait_within(&sim, CRASH_PATIENCE, "the deployment to fail", |service| {
        service["deployments"][0]["rolloutState"] == "FAILED"
    })
    .await;
    assert_eq!(
        service["deployments"][0]["taskDefinition"],
        json!(service["taskDefinition"])
    );
    assert!(
        service["deployments"][0]["failedTasks"]
            .as_u64()
            .is_some_and(|failed| failed >= 3),
        "{service:#}"
    );

    let tasks = stopped_tasks(&sim).await;
    let tasks = tasks["tasks"].as_array().unwrap();
    // On a loaded machine the engine may report a failed health check of a dying container
    // before its exit, and that task stops for its health checks; the others are crashes
    // with the exit code.
    assert!(tasks.len() >= 3, "{tasks:#?}");
    assert!(tasks.iter().any(crashed_with_code_3), "{tasks:#?}");
    assert!(
        tasks.iter().all(|t| crashed_with_code_3(t)
            || t["stoppedReason"] == "Task failed container health checks"),
        "{tasks:#?}"
    );

    // Shutting down removes every container the simulator ran.
    sim.running.shutdown().await.unwrap();
    let left = docker(&["ps", "-aq", "--filter", &format!("ancestor={image}")]);
    assert_eq!(left.trim(), "", "containers left behind");
    let _ = Command::new("docker")
        .args(["rmi", "--no-prune", &image])
        .output();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_run_task_task_is_a_real_container_with_its_overrides() {
    let repository = unique_repository().await;
    let image = push_sample_image(&repository);
    let sim = start_docker_sim().await;
    sim.ok("CreateCluster", json!({"clusterName": "c"})).await;
    let mut definition = fargate_definition(&image);
    // No health check: the container's exit alone decides how the task ends.
    definition["containerDefinitions"][0]
        .as_object_mut()
        .unwrap()
        .remove("healthCheck");
    sim.ok("RegisterTaskDefinition", definition).await;
    // The override, and only it, makes the sample service exit (with code 3) after start.
    let exit_soon = json!({"containerOverrides": [{"name": "api", "environment": [
        {"name": "KYB_SAMPLE_FAULT_EXIT_AFTER", "value": "0.3"}]}]});
    let run = sim
        .ok(
            "RunTask",
            json!({"cluster": "c", "taskDefinition": "api:1", "launchType": "FARGATE",
                   "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-1"]}},
                   "overrides": exit_soon}),
        )
        .await;
    let arn = run["tasks"][0]["taskArn"].clone();
    let start = Instant::now();
    let task = loop {
        let described = sim
            .ok("DescribeTasks", json!({"cluster": "c", "tasks": [arn]}))
            .await;
        let task = described["tasks"][0].clone();
        if task["lastStatus"] == "STOPPED" {
            break task;
        }
        assert!(
            start.elapsed() < DOCKER_PATIENCE,
            "the task never stopped: {task:#}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(crashed_with_code_3(&task), "{task:#}");
    assert_eq!(task["stopCode"], "EssentialContainerExited");
    assert!(task["startedAt"].is_number(), "it ran: {task:#}");

    sim.running.shutdown().await.unwrap();
    let left = docker(&["ps", "-aq", "--filter", &format!("ancestor={image}")]);
    assert_eq!(left.trim(), "", "containers left behind");
    let _ = Command::new("docker")
        .args(["rmi", "--no-prune", &image])
        .output();
}
