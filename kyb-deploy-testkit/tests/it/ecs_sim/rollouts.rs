//! Rollouts on the manual clock, the circuit breaker's rollback, API faults and the request
//! log, all over HTTP.

use std::time::{Duration, Instant};

use kyb_deploy_testkit::ecs_sim::{EcsSimulator, Fault};
use serde_json::{Value, json};

use super::Sim;

/// Checks the counts of a described service against each other and `max_total`.
fn assert_consistent(service: &Value, max_total: u64) {
    let deployments = service["deployments"].as_array().unwrap();
    let sum = |field: &str| -> u64 { deployments.iter().map(|d| d[field].as_u64().unwrap()).sum() };
    assert_eq!(
        service["runningCount"].as_u64(),
        Some(sum("runningCount")),
        "{service:#}"
    );
    assert_eq!(
        service["pendingCount"].as_u64(),
        Some(sum("pendingCount")),
        "{service:#}"
    );
    let active = sum("runningCount") + sum("pendingCount");
    assert!(
        active <= max_total,
        "{active} tasks > {max_total}: {service:#}"
    );
}

/// Advances the manual clock in 5 s steps until the PRIMARY deployment is in `state`,
/// checking the counts at every step; returns the service.
async fn advance_until(sim: &Sim, state: &str, max_total: u64) -> Value {
    for _ in 0..200 {
        let service = sim.service().await;
        assert_consistent(&service, max_total);
        if service["deployments"][0]["rolloutState"] == state {
            return service;
        }
        sim.running.handle().advance(Duration::from_secs(5));
    }
    panic!(
        "the PRIMARY deployment never reached {state}: {:#}",
        sim.service().await
    );
}

fn messages(service: &Value) -> Vec<String> {
    service["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["message"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_rollout_completes_with_consistent_counts_and_events() {
    let sim = Sim::manual().await;
    sim.seed().await;
    sim.create_service(3, json!({})).await;
    let service = advance_until(&sim, "COMPLETED", 6).await;
    assert_eq!(service["runningCount"], 3);

    let updated = sim
        .ok(
            "UpdateService",
            json!({"cluster": "c", "service": "s", "taskDefinition": "app:2"}),
        )
        .await;
    let deployments = &updated["service"]["deployments"];
    assert_eq!(deployments[0]["status"], "PRIMARY");
    assert_eq!(deployments[0]["rolloutState"], "IN_PROGRESS");
    assert_eq!(deployments[1]["status"], "ACTIVE");
    assert_eq!(deployments[1]["runningCount"], 3);
    let id = deployments[0]["id"].as_str().unwrap().to_owned();

    let service = advance_until(&sim, "COMPLETED", 6).await;
    let deployments = service["deployments"].as_array().unwrap();
    assert_eq!(deployments.len(), 1);
    let primary = &deployments[0];
    assert_eq!(primary["id"], id.as_str());
    assert_eq!(primary["taskDefinition"], service["taskDefinition"]);
    assert!(
        primary["taskDefinition"]
            .as_str()
            .unwrap()
            .ends_with("task-definition/app:2")
    );
    assert_eq!(
        (
            primary["runningCount"].as_u64(),
            primary["pendingCount"].as_u64()
        ),
        (Some(3), Some(0))
    );
    assert_eq!(primary["failedTasks"], 0);
    assert_eq!(
        primary["rolloutStateReason"],
        format!("ECS deployment {id} completed.")
    );
    assert_eq!(
        (
            service["runningCount"].as_u64(),
            service["pendingCount"].as_u64()
        ),
        (Some(3), Some(0))
    );

    let messages = messages(&service);
    assert_eq!(messages[0], "(service s) has reached a steady state.");
    assert_eq!(
        messages[1],
        format!("(service s) (deployment {id}) deployment completed.")
    );
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("(service s) has started 3 tasks: (task ")),
        "{messages:#?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("(service s) has stopped 3 running tasks: (task ")),
        "{messages:#?}"
    );

    // The old tasks are listed as stopped by the scheduler for the new deployment.
    sim.running.handle().advance(Duration::from_secs(10));
    let stopped = sim
        .ok(
            "ListTasks",
            json!({"cluster": "c", "serviceName": "s", "desiredStatus": "STOPPED"}),
        )
        .await;
    let stopped = sim
        .ok(
            "DescribeTasks",
            json!({"cluster": "c", "tasks": stopped["taskArns"]}),
        )
        .await;
    let tasks = stopped["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 3);
    for task in tasks {
        assert_eq!(task["lastStatus"], "STOPPED");
        assert_eq!(task["stopCode"], "ServiceSchedulerInitiated");
        assert_eq!(
            task["stoppedReason"],
            format!("Scaling activity initiated by (deployment {id})")
        );
        assert!(
            task["taskDefinitionArn"]
                .as_str()
                .unwrap()
                .ends_with("app:1")
        );
    }
}

#[tokio::test]
async fn a_failing_image_trips_the_breaker_and_rolls_back() {
    let builder = EcsSimulator::builder()
        .manual_clock()
        .seed(5)
        .fault(Fault::fail_to_start(
            "*/app:v2",
            "CannotPullContainerError: manifest unknown",
        ));
    let sim = Sim::start(builder).await;
    sim.seed().await;
    let breaker = json!({"deploymentCircuitBreaker": {"enable": true, "rollback": true}});
    sim.create_service(4, breaker).await;
    let service = advance_until(&sim, "COMPLETED", 8).await;
    let completed_id = service["deployments"][0]["id"].as_str().unwrap().to_owned();
    let updated = sim
        .ok(
            "UpdateService",
            json!({"cluster": "c", "service": "s", "taskDefinition": "app:2"}),
        )
        .await;
    let failing_id = updated["service"]["deployments"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Run until the breaker trips: the failed deployment turns ACTIVE and FAILED, and a new
    // PRIMARY rolls the last completed task definition out again.
    let mut tripped = None;
    for _ in 0..100 {
        let service = sim.service().await;
        assert_consistent(&service, 8);
        if service["deployments"][0]["id"] != failing_id.as_str() {
            tripped = Some(service);
            break;
        }
        assert!(service["deployments"][0]["failedTasks"].as_u64().unwrap() < 3);
        sim.running.handle().advance(Duration::from_secs(5));
    }
    let service = tripped.expect("the circuit breaker never tripped");
    let deployments = service["deployments"].as_array().unwrap();
    let (rollback, failed) = (&deployments[0], &deployments[1]);
    assert_eq!(rollback["status"], "PRIMARY");
    assert_eq!(rollback["rolloutState"], "IN_PROGRESS");
    assert!(
        rollback["taskDefinition"]
            .as_str()
            .unwrap()
            .ends_with("task-definition/app:1")
    );
    assert_eq!(
        rollback["rolloutStateReason"],
        format!("ECS deployment circuit breaker: rolling back to deploymentId {completed_id}.")
    );
    assert_eq!(service["taskDefinition"], rollback["taskDefinition"]);
    assert_eq!(failed["id"], failing_id.as_str());
    assert_eq!(failed["status"], "ACTIVE");
    assert_eq!(failed["rolloutState"], "FAILED");
    assert_eq!(
        failed["rolloutStateReason"],
        "ECS deployment circuit breaker: tasks failed to start."
    );
    assert!(
        failed["failedTasks"].as_u64().unwrap() >= 3,
        "threshold is 3 for 4 tasks"
    );
    let failure =
        format!("(service s) (deployment {failing_id}) deployment failed: tasks failed to start.");
    assert!(
        messages(&service).contains(&failure),
        "{:#?}",
        messages(&service)
    );

    let service = advance_until(&sim, "COMPLETED", 8).await;
    assert_eq!(service["deployments"].as_array().unwrap().len(), 1);
    assert!(
        service["taskDefinition"]
            .as_str()
            .unwrap()
            .ends_with("app:1")
    );
    assert_eq!(service["runningCount"], 4);

    let stopped = sim
        .ok(
            "ListTasks",
            json!({"cluster": "c", "desiredStatus": "STOPPED"}),
        )
        .await;
    let stopped = sim
        .ok(
            "DescribeTasks",
            json!({"cluster": "c", "tasks": stopped["taskArns"]}),
        )
        .await;
    let failed: Vec<&Value> = stopped["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|task| task["stopCode"] == "TaskFailedToStart")
        .collect();
    assert!(failed.len() >= 3);
    for task in failed {
        assert_eq!(
            task["stoppedReason"],
            "CannotPullContainerError: manifest unknown"
        );
        assert!(
            task["taskDefinitionArn"]
                .as_str()
                .unwrap()
                .ends_with("app:2")
        );
        assert_eq!(task["containers"][0]["image"], "example/app:v2");
    }
}

#[tokio::test]
async fn every_third_call_is_throttled() {
    let sim = Sim::start(
        EcsSimulator::builder()
            .manual_clock()
            .fault(Fault::throttle_every(3)),
    )
    .await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let (status, body) = sim
            .call("ListServices", json!({"cluster": "default"}))
            .await;
        if status == 400 && body["__type"] == "ThrottlingException" {
            assert_eq!(body["message"], "Rate exceeded");
            statuses.push("throttled");
        } else {
            assert_eq!(body["__type"], "ClusterNotFoundException", "{body}");
            statuses.push("served");
        }
    }
    assert_eq!(
        statuses,
        [
            "served",
            "served",
            "throttled",
            "served",
            "served",
            "throttled"
        ]
    );
    let log = sim.running.handle().request_log();
    let errors: Vec<Option<&str>> = log.iter().map(|r| r.error.as_deref()).collect();
    assert_eq!(errors[2], Some("ThrottlingException"));
    assert_eq!(log[2].status, 400);
}

#[tokio::test]
async fn server_error_bursts_and_latency_hit_their_operation() {
    let sim = Sim::manual().await;
    sim.seed().await;
    let handle = sim.running.handle();
    handle.add_fault(Fault::server_errors(2).on_operation("DescribeClusters"));
    handle.add_fault(Fault::latency(Duration::from_millis(150)).on_operation("ListServices"));
    for _ in 0..2 {
        sim.fails(
            "DescribeClusters",
            json!({"clusters": ["c"]}),
            500,
            "ServerException",
        )
        .await;
    }
    sim.ok("DescribeClusters", json!({"clusters": ["c"]})).await;
    sim.ok("DescribeTaskDefinition", json!({"taskDefinition": "app"}))
        .await;
    let started = Instant::now();
    sim.ok("ListServices", json!({"cluster": "c"})).await;
    assert!(started.elapsed() >= Duration::from_millis(150));
    handle.clear_faults();
    let started = Instant::now();
    sim.ok("ListServices", json!({"cluster": "c"})).await;
    assert!(started.elapsed() < Duration::from_millis(150));
}

#[tokio::test]
async fn the_request_log_counts_operations_and_flags_mutations() {
    let sim = Sim::manual().await;
    sim.seed().await;
    sim.create_service(1, json!({})).await;
    let handle = sim.running.handle();
    handle.clear_request_log();

    // A "dry run": reads only.
    sim.service().await;
    sim.ok("DescribeTaskDefinition", json!({"taskDefinition": "app:2"}))
        .await;
    sim.ok("ListTasks", json!({"cluster": "c"})).await;
    sim.fails(
        "DescribeServices",
        json!({"cluster": "nope", "services": ["s"]}),
        400,
        "ClusterNotFoundException",
    )
    .await;
    assert_eq!(handle.mutating_calls(), 0);

    sim.ok(
        "UpdateService",
        json!({"cluster": "c", "service": "s", "taskDefinition": "app:2"}),
    )
    .await;
    sim.fails(
        "UpdateService",
        json!({"cluster": "c", "service": "x"}),
        400,
        "ServiceNotFoundException",
    )
    .await;
    assert_eq!(handle.mutating_calls(), 2);
    let counts = handle.operation_counts();
    let expected = [
        ("DescribeServices", 2),
        ("DescribeTaskDefinition", 1),
        ("ListTasks", 1),
        ("UpdateService", 2),
    ];
    assert_eq!(
        counts,
        expected
            .map(|(op, n)| (op.to_owned(), n))
            .into_iter()
            .collect()
    );
    let log = handle.request_log();
    let last = log.last().unwrap();
    assert_eq!(
        (last.operation.as_str(), last.mutating, last.status),
        ("UpdateService", true, 400)
    );
    assert_eq!(last.error.as_deref(), Some("ServiceNotFoundException"));
    assert!(!log[0].mutating && log[0].status == 200);
    assert!(log.windows(2).all(|pair| pair[0].at <= pair[1].at));

    let snapshot = handle.snapshot();
    let cluster = &snapshot["regions"]["us-east-1"]["clusters"][0];
    assert_eq!(cluster["clusterName"], "c");
    assert_eq!(cluster["services"][0]["serviceName"], "s");
    assert_eq!(
        cluster["services"][0]["deployments"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        snapshot["regions"]["us-east-1"]["taskDefinitions"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}
