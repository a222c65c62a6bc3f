//! Fidelity: the real AWS CLI drives a rollout on the simulator, including
//! `aws ecs wait services-stable`, a failed rollout the circuit breaker rolls back, and
//! throttling that the CLI's own retries ride out; a one-off task (`run-task`, `wait
//! tasks-stopped`) and deleting a service and its cluster.

use std::time::Duration;

use kyb_deploy_testkit::ecs_sim::{EcsSimulator, SimHandle};
use kyb_deploy_testkit::moto::AwsCli;
use serde_json::{Value, json};

use super::{ARN, PATIENCE, Sim};

/// Waits (real time) until service `s` in cluster `c` has one COMPLETED deployment and runs
/// its desired count, so that the waiter's first check, made at once, succeeds instead of
/// sleeping its 15 s delay.
async fn until_stable(handle: &SimHandle) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let snapshot = handle.snapshot();
        let service = &snapshot["regions"]["us-east-1"]["clusters"][0]["services"][0];
        let deployments = service["deployments"].as_array().map_or(0, Vec::len);
        if deployments == 1
            && service["deployments"][0]["rolloutState"] == "COMPLETED"
            && service["runningCount"] == service["desiredCount"]
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never stable: {service:#}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_aws_cli_drives_a_rollout_to_a_stable_service() {
    let sim = Sim::start(EcsSimulator::builder().time_scale(200.0).seed(1)).await;
    let url = sim.running.url();
    let handle = sim.running.handle().clone();
    let cli = AwsCli::new(url.clone());
    let aws = async |args: &[&str]| cli.json(args).await;

    let cluster = aws(&["ecs", "create-cluster", "--cluster-name", "c"]).await;
    assert_eq!(
        cluster["cluster"]["clusterArn"],
        "arn:aws:ecs:us-east-1:123456789012:cluster/c"
    );
    for containers in [
        r#"[{"name":"app","image":"example/app:v1","memory":128}]"#,
        r#"[{"name":"app","image":"example/app:v2","memory":128}]"#,
    ] {
        let args = [
            "ecs",
            "register-task-definition",
            "--family",
            "app",
            "--container-definitions",
            containers,
        ];
        aws(&args).await;
    }
    let created = aws(&[
        "ecs",
        "create-service",
        "--cluster",
        "c",
        "--service-name",
        "s",
        "--task-definition",
        "app:1",
        "--desired-count",
        "2",
        "--deployment-configuration",
        "deploymentCircuitBreaker={enable=true,rollback=true},maximumPercent=200,minimumHealthyPercent=100",
    ])
    .await;
    assert_eq!(
        created["service"]["deployments"][0]["rolloutState"],
        "IN_PROGRESS"
    );
    until_stable(&handle).await;
    aws(&[
        "ecs",
        "wait",
        "services-stable",
        "--cluster",
        "c",
        "--services",
        "s",
    ])
    .await;

    let updated = aws(&[
        "ecs",
        "update-service",
        "--cluster",
        "c",
        "--service",
        "s",
        "--task-definition",
        "app:2",
    ])
    .await;
    assert_eq!(
        updated["service"]["deployments"].as_array().unwrap().len(),
        2
    );
    until_stable(&handle).await;
    aws(&[
        "ecs",
        "wait",
        "services-stable",
        "--cluster",
        "c",
        "--services",
        "s",
    ])
    .await;

    let described = aws(&[
        "ecs",
        "describe-services",
        "--cluster",
        "c",
        "--services",
        "s",
    ])
    .await;
    let service = &described["services"][0];
    let primary = &service["deployments"][0];
    assert_eq!(primary["status"], "PRIMARY");
    assert_eq!(primary["rolloutState"], "COMPLETED");
    assert_eq!(
        primary["taskDefinition"],
        "arn:aws:ecs:us-east-1:123456789012:task-definition/app:2"
    );
    assert_eq!(service["runningCount"], 2);
    assert_eq!(described["failures"], serde_json::json!([]));

    let listed = aws(&["ecs", "list-tasks", "--cluster", "c", "--service-name", "s"]).await;
    assert_eq!(listed["taskArns"].as_array().unwrap().len(), 2);
    let stopped = aws(&[
        "ecs",
        "list-tasks",
        "--cluster",
        "c",
        "--desired-status",
        "STOPPED",
    ])
    .await;
    assert_eq!(stopped["taskArns"].as_array().unwrap().len(), 2);

    let counts = handle.operation_counts();
    assert_eq!(counts["DescribeServices"], 3, "{counts:?}");
    assert_eq!(handle.mutating_calls(), 5);
}

/// Posts `body` to the admin endpoint `/_kyb-sim/<path>`, as a test in another process
/// would; returns the status.
async fn admin(url: &str, path: &str, body: &Value) -> u16 {
    let response = reqwest::Client::new()
        .post(format!("{url}/_kyb-sim/{path}"))
        .json(body)
        .send()
        .await
        .unwrap();
    response.status().as_u16()
}

/// Advances the manual clock in 1 s steps over the admin endpoint until `done` holds for
/// the snapshot of service `s` in cluster `c`; at most 30 simulated minutes.
async fn advance_until(url: &str, handle: &SimHandle, done: impl Fn(&Value) -> bool) {
    for _ in 0..1800 {
        let snapshot = handle.snapshot();
        let service = &snapshot["regions"]["us-east-1"]["clusters"][0]["services"][0];
        if done(service) {
            return;
        }
        assert_eq!(admin(url, "advance", &json!({"secs": 1})).await, 200);
    }
    panic!("never reached: {:#}", handle.snapshot());
}

fn is_stable(service: &Value) -> bool {
    service["deployments"].as_array().map_or(0, Vec::len) == 1
        && service["deployments"][0]["rolloutState"] == "COMPLETED"
        && service["runningCount"] == service["desiredCount"]
}

#[tokio::test]
async fn the_aws_cli_sees_a_failed_rollout_rolled_back_by_the_circuit_breaker() {
    let sim = Sim::start(EcsSimulator::builder().manual_clock().seed(5)).await;
    let url = sim.running.url();
    let handle = sim.running.handle().clone();
    let cli = AwsCli::new(url.clone());
    let aws = async |args: &[&str]| cli.json(args).await;
    let fault = json!({"task": {"image": "example/app:broken",
                                "fail_to_start": "CannotPullContainerError: manifest unknown"}});
    assert_eq!(admin(&url, "faults", &fault).await, 201);

    aws(&["ecs", "create-cluster", "--cluster-name", "c"]).await;
    for image in ["example/app:v1", "example/app:broken"] {
        let containers = json!([{"name": "app", "image": image, "memory": 128}]).to_string();
        let args = [
            "ecs",
            "register-task-definition",
            "--family",
            "app",
            "--container-definitions",
            &containers,
        ];
        aws(&args).await;
    }
    aws(&[
        "ecs",
        "create-service",
        "--cluster",
        "c",
        "--service-name",
        "s",
        "--task-definition",
        "app:1",
        "--desired-count",
        "2",
    ])
    .await;
    advance_until(&url, &handle, is_stable).await;

    aws(&[
        "ecs",
        "update-service",
        "--cluster",
        "c",
        "--service",
        "s",
        "--task-definition",
        "app:2",
        "--deployment-configuration",
        "deploymentCircuitBreaker={enable=true,rollback=true}",
    ])
    .await;
    advance_until(&url, &handle, |service| {
        service["deployments"]
            .as_array()
            .is_some_and(|all| all.iter().any(|d| d["rolloutState"] == "FAILED"))
    })
    .await;
    let describe = [
        "ecs",
        "describe-services",
        "--cluster",
        "c",
        "--services",
        "s",
    ];
    let tripped = aws(&describe).await;
    let deployments = tripped["services"][0]["deployments"].as_array().unwrap();
    let (rollback, failed) = (&deployments[0], &deployments[1]);
    assert_eq!(rollback["status"], "PRIMARY");
    assert_eq!(
        rollback["taskDefinition"],
        format!("{ARN}:task-definition/app:1")
    );
    assert_eq!(failed["status"], "ACTIVE");
    assert_eq!(failed["rolloutState"], "FAILED");
    assert_eq!(
        failed["taskDefinition"],
        format!("{ARN}:task-definition/app:2")
    );
    assert!(failed["failedTasks"].as_u64().unwrap() >= 3, "{failed:#}");

    advance_until(&url, &handle, is_stable).await;
    let rolled_back = aws(&describe).await;
    let service = &rolled_back["services"][0];
    let primary = &service["deployments"][0];
    assert_eq!(primary["status"], "PRIMARY");
    assert_eq!(primary["rolloutState"], "COMPLETED");
    assert_eq!(
        primary["taskDefinition"],
        format!("{ARN}:task-definition/app:1")
    );
    assert_eq!(
        service["taskDefinition"],
        format!("{ARN}:task-definition/app:1")
    );
    assert_eq!(service["runningCount"], 2);
    // ECS drops the failed deployment once the rollback completes; its event stays.
    let events: Vec<&str> = service["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|event| event["message"].as_str())
        .collect();
    assert!(
        events
            .iter()
            .any(|message| message.ends_with("deployment failed: tasks failed to start.")),
        "{events:#?}"
    );

    let stopped = aws(&[
        "ecs",
        "list-tasks",
        "--cluster",
        "c",
        "--desired-status",
        "STOPPED",
    ])
    .await;
    let arns: Vec<&str> = stopped["taskArns"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let mut args = vec!["ecs", "describe-tasks", "--cluster", "c", "--tasks"];
    args.extend(arns);
    let tasks = aws(&args).await;
    let reasons: Vec<&str> = tasks["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|task| task["stoppedReason"].as_str())
        .collect();
    assert!(
        reasons
            .iter()
            .filter(|reason| reason.starts_with("CannotPullContainerError"))
            .count()
            >= 3,
        "{reasons:#?}"
    );
}

#[tokio::test]
async fn the_aws_cli_retries_throttled_calls() {
    let sim = Sim::start(EcsSimulator::builder().manual_clock().seed(9)).await;
    let url = sim.running.url();
    let handle = sim.running.handle().clone();
    let cli = AwsCli::new(url.clone());
    let aws = async |args: &[&str]| cli.json(args).await;
    let fault = json!({"api": {"throttle_every": 2, "operation": "DescribeServices"}});
    assert_eq!(admin(&url, "faults", &fault).await, 201);

    aws(&["ecs", "create-cluster", "--cluster-name", "c"]).await;
    let describe = [
        "ecs",
        "describe-services",
        "--cluster",
        "c",
        "--services",
        "s",
    ];
    for _ in 0..2 {
        // The second call's first attempt is throttled; the CLI retries it.
        let described = aws(&describe).await;
        assert_eq!(described["failures"][0]["reason"], "MISSING");
    }

    let attempts: Vec<(u16, Option<String>)> = handle
        .request_log()
        .into_iter()
        .filter(|request| request.operation == "DescribeServices")
        .map(|request| (request.status, request.error))
        .collect();
    assert_eq!(
        attempts,
        [
            (200, None),
            (400, Some("ThrottlingException".to_owned())),
            (200, None),
        ]
    );
}

#[tokio::test]
async fn the_aws_cli_runs_a_one_off_task_and_deletes_what_it_created() {
    let builder = EcsSimulator::builder().manual_clock().seed(3).fault(
        kyb_deploy_testkit::ecs_sim::Fault::essential_exit(
            "example/migrate:*",
            3,
            Duration::from_secs(5),
        ),
    );
    let sim = Sim::start(builder).await;
    let url = sim.running.url();
    let handle = sim.running.handle().clone();
    let cli = AwsCli::new(url.clone());
    let aws = async |args: &[&str]| cli.json(args).await;

    aws(&["ecs", "create-cluster", "--cluster-name", "c"]).await;
    aws(&[
        "ecs",
        "register-task-definition",
        "--family",
        "migrate",
        "--container-definitions",
        r#"[{"name":"app","image":"example/migrate:v1","memory":128}]"#,
    ])
    .await;
    let run = aws(&[
        "ecs",
        "run-task",
        "--cluster",
        "c",
        "--task-definition",
        "migrate",
        "--started-by",
        "kyb-deploy",
        "--overrides",
        r#"{"containerOverrides":[{"name":"app","command":["./migrate","up"]}]}"#,
    ])
    .await;
    let task = run["tasks"][0]["taskArn"].as_str().unwrap().to_owned();
    assert_eq!(run["tasks"][0]["group"], "family:migrate");
    assert_eq!(
        run["tasks"][0]["overrides"]["containerOverrides"][0]["command"],
        json!(["./migrate", "up"])
    );
    handle.advance(Duration::from_secs(60));
    // The waiter's first check, made at once, sees the task stopped.
    aws(&[
        "ecs",
        "wait",
        "tasks-stopped",
        "--cluster",
        "c",
        "--tasks",
        &task,
    ])
    .await;
    let described = aws(&["ecs", "describe-tasks", "--cluster", "c", "--tasks", &task]).await;
    let stopped = &described["tasks"][0];
    assert_eq!(stopped["lastStatus"], "STOPPED");
    assert_eq!(stopped["containers"][0]["exitCode"], 3);
    assert_eq!(stopped["stopCode"], "EssentialContainerExited");

    // A service, deleted with --force, leaves the cluster free to go.
    aws(&[
        "ecs",
        "create-service",
        "--cluster",
        "c",
        "--service-name",
        "s",
        "--task-definition",
        "migrate",
        "--desired-count",
        "1",
    ])
    .await;
    let deployments = aws(&[
        "ecs",
        "list-service-deployments",
        "--cluster",
        "c",
        "--service",
        "s",
    ])
    .await;
    assert_eq!(
        deployments["serviceDeployments"][0]["status"],
        "IN_PROGRESS"
    );
    let deleted = aws(&[
        "ecs",
        "delete-service",
        "--cluster",
        "c",
        "--service",
        "s",
        "--force",
    ])
    .await;
    assert_eq!(deleted["service"]["status"], "DRAINING");
    handle.advance(Duration::from_secs(30));
    let cluster = aws(&["ecs", "delete-cluster", "--cluster", "c"]).await;
    assert_eq!(cluster["cluster"]["status"], "INACTIVE");
    let listed = aws(&["ecs", "list-clusters"]).await;
    assert_eq!(listed["clusterArns"], json!([]));
}
