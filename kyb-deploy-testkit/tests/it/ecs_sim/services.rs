//! Services, tasks and tags: happy paths, ECS's shapes and error codes.

use std::time::Duration;

use serde_json::{Value, json};

use super::{ARN, Sim};

#[tokio::test]
async fn services_are_created_updated_listed_and_described() {
    let sim = Sim::manual().await;
    sim.seed().await;
    let created = sim.create_service(2, json!({})).await;
    let service = &created["service"];
    assert_eq!(service["serviceArn"], format!("{ARN}:service/c/s"));
    assert_eq!(service["clusterArn"], format!("{ARN}:cluster/c"));
    assert_eq!(
        service["taskDefinition"],
        format!("{ARN}:task-definition/app:1")
    );
    assert_eq!(service["desiredCount"], 2);
    assert_eq!(service["launchType"], "EC2");
    assert!(service["createdAt"].is_number());
    let deployment = &service["deployments"][0];
    assert_eq!(deployment["status"], "PRIMARY");
    assert_eq!(deployment["rolloutState"], "IN_PROGRESS");
    let id = deployment["id"].as_str().unwrap();
    let digits = id.strip_prefix("ecs-svc/").unwrap();
    assert!(
        digits.len() == 19 && digits.bytes().all(|b| b.is_ascii_digit()),
        "{id}"
    );
    assert_eq!(
        service["deploymentConfiguration"],
        json!({"deploymentCircuitBreaker": {"enable": false, "rollback": false},
               "maximumPercent": 200, "minimumHealthyPercent": 100})
    );

    let updated = sim
        .ok(
            "UpdateService",
            json!({"cluster": "c", "service": "s", "desiredCount": 3,
                   "healthCheckGracePeriodSeconds": 30,
                   "deploymentConfiguration": {"maximumPercent": 150,
                       "deploymentCircuitBreaker": {"enable": true, "rollback": true}}}),
        )
        .await;
    let service = &updated["service"];
    assert_eq!(service["desiredCount"], 3);
    assert_eq!(service["healthCheckGracePeriodSeconds"], 30);
    assert_eq!(service["deploymentConfiguration"]["maximumPercent"], 150);
    assert_eq!(
        service["deploymentConfiguration"]["minimumHealthyPercent"],
        100
    );
    assert_eq!(
        service["deployments"].as_array().unwrap().len(),
        1,
        "no new deployment"
    );
    let forced = sim
        .ok(
            "UpdateService",
            json!({"cluster": "c", "service": "s", "forceNewDeployment": true}),
        )
        .await;
    let deployments = forced["service"]["deployments"].as_array().unwrap();
    assert_eq!(deployments.len(), 2);
    assert_eq!(deployments[1]["status"], "ACTIVE");
    assert_eq!(
        deployments[0]["taskDefinition"],
        deployments[1]["taskDefinition"]
    );

    for name in ["t1", "t2"] {
        let body = json!({"cluster": "c", "serviceName": name, "taskDefinition": "app"});
        sim.ok("CreateService", body).await;
    }
    let page = sim
        .ok("ListServices", json!({"cluster": "c", "maxResults": 2}))
        .await;
    assert_eq!(
        page["serviceArns"],
        json!([format!("{ARN}:service/c/s"), format!("{ARN}:service/c/t1")])
    );
    let rest = sim
        .ok(
            "ListServices",
            json!({"cluster": "c", "nextToken": page["nextToken"]}),
        )
        .await;
    assert_eq!(rest["serviceArns"], json!([format!("{ARN}:service/c/t2")]));

    let described = sim
        .ok(
            "DescribeServices",
            json!({"cluster": "c", "services": ["t1", "zz"], "include": ["TAGS"]}),
        )
        .await;
    assert_eq!(described["services"][0]["serviceName"], "t1");
    assert_eq!(described["services"][0]["tags"], json!([]));
    assert_eq!(
        described["failures"],
        json!([{"arn": format!("{ARN}:service/c/zz"), "reason": "MISSING"}])
    );
}

#[tokio::test]
async fn service_errors_use_ecs_codes() {
    let sim = Sim::manual().await;
    sim.seed().await;
    sim.create_service(1, json!({})).await;
    let cases: [(&str, Value, &str); 9] = [
        (
            "CreateService",
            json!({"cluster": "nope", "serviceName": "s", "taskDefinition": "app"}),
            "ClusterNotFoundException",
        ),
        (
            "CreateService",
            json!({"cluster": "c", "serviceName": "s", "taskDefinition": "app"}),
            "InvalidParameterException",
        ),
        (
            "CreateService",
            json!({"cluster": "c", "serviceName": "x", "taskDefinition": "nope"}),
            "ClientException",
        ),
        (
            "CreateService",
            json!({"cluster": "c", "serviceName": "x", "taskDefinition": "app", "desiredCount": -1}),
            "InvalidParameterException",
        ),
        (
            "UpdateService",
            json!({"cluster": "c", "service": "nope", "desiredCount": 1}),
            "ServiceNotFoundException",
        ),
        (
            "UpdateService",
            json!({"cluster": "c", "service": "s", "deploymentConfiguration": {"minimumHealthyPercent": 120}}),
            "InvalidParameterException",
        ),
        (
            "DescribeServices",
            json!({"cluster": "c", "services": (0..11).map(|i| format!("s{i}")).collect::<Vec<_>>()}),
            "InvalidParameterException",
        ),
        (
            "DescribeServices",
            json!({"cluster": "nope", "services": ["s"]}),
            "ClusterNotFoundException",
        ),
        (
            "ListServices",
            json!({"cluster": "nope"}),
            "ClusterNotFoundException",
        ),
    ];
    for (operation, body, code) in cases {
        sim.fails(operation, body, 400, code).await;
    }
    let message = sim
        .fails(
            "CreateService",
            json!({"cluster": "c", "serviceName": "s", "taskDefinition": "app"}),
            400,
            "InvalidParameterException",
        )
        .await;
    assert_eq!(message, "Creation of service was not idempotent.");

    // An awsvpc task definition needs a network configuration.
    let web = json!({"family": "web", "requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc",
        "cpu": "256", "memory": "512", "containerDefinitions": [{"name": "web", "image": "nginx"}]});
    sim.ok("RegisterTaskDefinition", web).await;
    let message = sim
        .fails("CreateService", json!({"cluster": "c", "serviceName": "w", "taskDefinition": "web", "launchType": "FARGATE"}), 400, "InvalidParameterException")
        .await;
    assert_eq!(
        message,
        "Network Configuration must be provided when networkMode 'awsvpc' is specified."
    );
    let network =
        json!({"awsvpcConfiguration": {"subnets": ["subnet-1"], "assignPublicIp": "ENABLED"}});
    let created = sim
        .ok(
            "CreateService",
            json!({"cluster": "c", "serviceName": "w", "taskDefinition": "web",
            "launchType": "FARGATE", "networkConfiguration": network}),
        )
        .await;
    assert_eq!(created["service"]["platformVersion"], "LATEST");
    assert_eq!(created["service"]["networkConfiguration"], network);
    let message = sim
        .fails("CreateService", json!({"cluster": "c", "serviceName": "f", "taskDefinition": "app", "launchType": "FARGATE"}), 400, "InvalidParameterException")
        .await;
    assert_eq!(
        message,
        "Task definition does not support launch_type FARGATE."
    );
}

#[tokio::test]
async fn tasks_are_listed_and_described() {
    let sim = Sim::manual().await;
    sim.seed().await;
    sim.create_service(2, json!({})).await;
    sim.running.handle().advance(Duration::from_secs(30));

    let listed = sim
        .ok("ListTasks", json!({"cluster": "c", "serviceName": "s"}))
        .await;
    let arns: Vec<&str> = listed["taskArns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|arn| arn.as_str().unwrap())
        .collect();
    assert_eq!(arns.len(), 2);
    for arn in &arns {
        let id = arn.strip_prefix(&format!("{ARN}:task/c/")).unwrap();
        assert!(
            id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "{arn}"
        );
    }
    let short_id = arns[1].rsplit('/').next().unwrap();
    let described = sim
        .ok(
            "DescribeTasks",
            json!({"cluster": "c", "tasks": [arns[0], short_id, "0123"]}),
        )
        .await;
    let task = &described["tasks"][0];
    assert_eq!(task["lastStatus"], "RUNNING");
    assert_eq!(task["desiredStatus"], "RUNNING");
    assert_eq!(
        task["taskDefinitionArn"],
        format!("{ARN}:task-definition/app:1")
    );
    assert_eq!(task["group"], "service:s");
    assert_eq!(task["containers"][0]["image"], "example/app:v1");
    assert!(task["startedAt"].as_f64().unwrap() > task["createdAt"].as_f64().unwrap());
    assert_eq!(described["tasks"][1]["taskArn"], arns[1]);
    assert_eq!(
        described["failures"],
        json!([{"arn": format!("{ARN}:task/c/0123"), "reason": "MISSING"}])
    );
    let stopped = sim
        .ok(
            "ListTasks",
            json!({"cluster": "c", "desiredStatus": "STOPPED"}),
        )
        .await;
    assert_eq!(stopped["taskArns"], json!([]));

    sim.fails(
        "ListTasks",
        json!({"cluster": "c", "serviceName": "nope"}),
        400,
        "ServiceNotFoundException",
    )
    .await;
    sim.fails(
        "ListTasks",
        json!({"cluster": "c", "desiredStatus": "DONE"}),
        400,
        "InvalidParameterException",
    )
    .await;
    sim.fails(
        "ListTasks",
        json!({"cluster": "nope"}),
        400,
        "ClusterNotFoundException",
    )
    .await;
    sim.fails(
        "DescribeTasks",
        json!({"cluster": "c", "tasks": []}),
        400,
        "InvalidParameterException",
    )
    .await;
}

#[tokio::test]
async fn resources_are_tagged_and_untagged() {
    let sim = Sim::manual().await;
    sim.seed().await;
    sim.create_service(1, json!({})).await;
    for arn in [
        format!("{ARN}:cluster/c"),
        format!("{ARN}:service/c/s"),
        format!("{ARN}:task-definition/app:1"),
    ] {
        let tags = json!([{"key": "env", "value": "staging"}, {"key": "team", "value": "kyb"}]);
        sim.ok("TagResource", json!({"resourceArn": arn, "tags": tags}))
            .await;
        sim.ok(
            "UntagResource",
            json!({"resourceArn": arn, "tagKeys": ["team"]}),
        )
        .await;
        let listed = sim
            .ok("ListTagsForResource", json!({"resourceArn": arn}))
            .await;
        assert_eq!(
            listed["tags"],
            json!([{"key": "env", "value": "staging"}]),
            "{arn}"
        );
    }
    let cases = [
        (format!("{ARN}:cluster/nope"), "ClusterNotFoundException"),
        (format!("{ARN}:service/c/nope"), "ResourceNotFoundException"),
        (
            format!("{ARN}:task-definition/app:9"),
            "ResourceNotFoundException",
        ),
        ("not-an-arn".to_owned(), "InvalidParameterException"),
    ];
    for (arn, code) in cases {
        sim.fails(
            "ListTagsForResource",
            json!({"resourceArn": arn}),
            400,
            code,
        )
        .await;
    }
    sim.fails(
        "TagResource",
        json!({"resourceArn": format!("{ARN}:cluster/c"), "tags": []}),
        400,
        "InvalidParameterException",
    )
    .await;
}
