//! Clusters and task definitions: happy paths, ECS's shapes, validation and error codes.

use serde_json::json;

use super::{ARN, Sim, task_definition};

#[tokio::test]
async fn clusters_are_created_idempotently_and_described() {
    let sim = Sim::manual().await;
    let created = sim
        .ok(
            "CreateCluster",
            json!({"clusterName": "c", "tags": [{"key": "team", "value": "kyb"}]}),
        )
        .await;
    let cluster = &created["cluster"];
    assert_eq!(cluster["clusterArn"], format!("{ARN}:cluster/c"));
    assert_eq!(cluster["clusterName"], "c");
    assert_eq!(cluster["status"], "ACTIVE");
    assert_eq!(cluster["activeServicesCount"], 0);
    let again = sim.ok("CreateCluster", json!({"clusterName": "c"})).await;
    assert_eq!(again["cluster"]["clusterArn"], cluster["clusterArn"]);

    let described = sim
        .ok(
            "DescribeClusters",
            json!({"clusters": ["c", format!("{ARN}:cluster/c"), "nope"], "include": ["TAGS"]}),
        )
        .await;
    assert_eq!(described["clusters"].as_array().unwrap().len(), 2);
    assert_eq!(
        described["clusters"][0]["tags"],
        json!([{"key": "team", "value": "kyb"}])
    );
    assert_eq!(
        described["failures"],
        json!([{"arn": format!("{ARN}:cluster/nope"), "reason": "MISSING"}])
    );
    sim.fails(
        "CreateCluster",
        json!({"clusterName": "bad name!"}),
        400,
        "InvalidParameterException",
    )
    .await;
}

#[tokio::test]
async fn task_definitions_get_revisions_arns_and_defaults() {
    let sim = Sim::manual().await;
    let first = sim
        .ok(
            "RegisterTaskDefinition",
            task_definition("app", "example/app:v1"),
        )
        .await;
    let definition = &first["taskDefinition"];
    assert_eq!(
        definition["taskDefinitionArn"],
        format!("{ARN}:task-definition/app:1")
    );
    assert_eq!(definition["revision"], 1);
    assert_eq!(definition["status"], "ACTIVE");
    assert!(definition["registeredAt"].is_f64() || definition["registeredAt"].is_u64());
    let container = &definition["containerDefinitions"][0];
    assert_eq!(container["essential"], true);
    assert_eq!(container["cpu"], 0);
    assert_eq!(container["portMappings"][0]["protocol"], "tcp");
    assert_eq!(container["environment"], json!([]));
    assert_eq!(definition["compatibilities"], json!(["EC2"]));

    let second = sim
        .ok(
            "RegisterTaskDefinition",
            task_definition("app", "example/app:v2"),
        )
        .await;
    assert_eq!(second["taskDefinition"]["revision"], 2);

    let fargate = sim
        .ok(
            "RegisterTaskDefinition",
            json!({"family": "web", "requiresCompatibilities": ["FARGATE"],
                   "networkMode": "awsvpc", "cpu": "0.25 vCPU", "memory": "512",
                   "containerDefinitions": [{"name": "web", "image": "nginx",
                                             "portMappings": [{"containerPort": 80}]}]}),
        )
        .await;
    let fargate = &fargate["taskDefinition"];
    assert_eq!(fargate["cpu"], "256");
    assert_eq!(fargate["compatibilities"], json!(["EC2", "FARGATE"]));
    assert_eq!(
        fargate["containerDefinitions"][0]["portMappings"][0]["hostPort"],
        80
    );

    // Describe by family (latest), family:revision and ARN.
    for (reference, revision) in [
        ("app".to_owned(), 2),
        ("app:1".to_owned(), 1),
        (format!("{ARN}:task-definition/app:2"), 2),
    ] {
        let described = sim
            .ok(
                "DescribeTaskDefinition",
                json!({"taskDefinition": reference}),
            )
            .await;
        assert_eq!(
            described["taskDefinition"]["revision"], revision,
            "{reference}"
        );
    }
    sim.fails(
        "DescribeTaskDefinition",
        json!({"taskDefinition": "app:9"}),
        400,
        "ClientException",
    )
    .await;

    let listed = sim
        .ok(
            "ListTaskDefinitions",
            json!({"familyPrefix": "app", "sort": "DESC"}),
        )
        .await;
    assert_eq!(
        listed["taskDefinitionArns"],
        json!([
            format!("{ARN}:task-definition/app:2"),
            format!("{ARN}:task-definition/app:1")
        ])
    );
    let page = sim
        .ok("ListTaskDefinitions", json!({"maxResults": 2}))
        .await;
    assert_eq!(page["taskDefinitionArns"].as_array().unwrap().len(), 2);
    let token = page["nextToken"].as_str().unwrap();
    let rest = sim
        .ok(
            "ListTaskDefinitions",
            json!({"maxResults": 2, "nextToken": token}),
        )
        .await;
    assert_eq!(
        rest["taskDefinitionArns"],
        json!([format!("{ARN}:task-definition/web:1")])
    );
    assert!(rest.get("nextToken").is_none());
    sim.fails(
        "ListTaskDefinitions",
        json!({"status": "GONE"}),
        400,
        "InvalidParameterException",
    )
    .await;
}

#[tokio::test]
async fn task_definitions_are_validated_like_ecs() {
    let sim = Sim::manual().await;
    let no_memory =
        json!({"family": "app", "containerDefinitions": [{"name": "app", "image": "a"}]});
    let message = sim
        .fails("RegisterTaskDefinition", no_memory, 400, "ClientException")
        .await;
    assert_eq!(
        message,
        "Invalid setting for container 'app'. At least one of 'memory' or 'memoryReservation' must be specified."
    );
    let bridge_fargate = json!({"family": "app", "requiresCompatibilities": ["FARGATE"],
        "cpu": "256", "memory": "512", "containerDefinitions": [{"name": "app", "image": "a"}]});
    let message = sim
        .fails(
            "RegisterTaskDefinition",
            bridge_fargate,
            400,
            "ClientException",
        )
        .await;
    assert_eq!(message, "Fargate only supports network mode 'awsvpc'.");
    let bad_pair = json!({"family": "app", "requiresCompatibilities": ["FARGATE"],
        "networkMode": "awsvpc", "cpu": "256", "memory": "4096",
        "containerDefinitions": [{"name": "app", "image": "a"}]});
    let message = sim
        .fails("RegisterTaskDefinition", bad_pair, 400, "ClientException")
        .await;
    assert!(
        message.starts_with("No Fargate configuration exists for given values"),
        "{message}"
    );
    let bad_mode = json!({"family": "app", "networkMode": "mesh", "memory": "512",
        "containerDefinitions": [{"name": "app", "image": "a"}]});
    sim.fails(
        "RegisterTaskDefinition",
        bad_mode,
        400,
        "InvalidParameterException",
    )
    .await;
    let no_containers = json!({"family": "app", "containerDefinitions": []});
    sim.fails(
        "RegisterTaskDefinition",
        no_containers,
        400,
        "ClientException",
    )
    .await;
}

#[tokio::test]
async fn deregistered_revisions_turn_inactive() {
    let sim = Sim::manual().await;
    sim.seed().await;
    let gone = sim
        .ok(
            "DeregisterTaskDefinition",
            json!({"taskDefinition": "app:2"}),
        )
        .await;
    assert_eq!(gone["taskDefinition"]["status"], "INACTIVE");
    assert!(gone["taskDefinition"]["deregisteredAt"].is_number());
    let inactive = sim
        .ok("ListTaskDefinitions", json!({"status": "INACTIVE"}))
        .await;
    assert_eq!(
        inactive["taskDefinitionArns"],
        json!([format!("{ARN}:task-definition/app:2")])
    );
    // The family now resolves to its latest ACTIVE revision.
    let latest = sim
        .ok("DescribeTaskDefinition", json!({"taskDefinition": "app"}))
        .await;
    assert_eq!(latest["taskDefinition"]["revision"], 1);
    let message = sim
        .fails(
            "CreateService",
            json!({"cluster": "c", "serviceName": "s", "taskDefinition": "app:2"}),
            400,
            "ClientException",
        )
        .await;
    assert_eq!(message, "TaskDefinition is inactive");
    sim.fails(
        "DeregisterTaskDefinition",
        json!({"taskDefinition": "app:7"}),
        400,
        "ClientException",
    )
    .await;
    sim.fails(
        "DeregisterTaskDefinition",
        json!({"taskDefinition": "app"}),
        400,
        "ClientException",
    )
    .await;
}
