//! The ECS simulator over HTTP: the protocol, every operation, rollouts, faults, the request
//! log, the `kyb-sim` binary, and the AWS CLI against it.

mod admin;
mod aws_cli;
mod binary;
mod conformance;
mod definitions;
mod deletion;
mod docker;
mod rollouts;
mod sdk;
mod service_deployments;
mod services;
mod standalone_tasks;
mod validation;

use std::time::Duration;

use kyb_deploy_testkit::ecs_sim::{EcsSimulator, EcsSimulatorBuilder, RunningSimulator};
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// Guards against a hang; never an assertion on speed.
const PATIENCE: Duration = Duration::from_secs(60);

/// The start of every ARN in us-east-1.
const ARN: &str = "arn:aws:ecs:us-east-1:123456789012";

const TARGET_PREFIX: &str = "AmazonEC2ContainerServiceV20141113.";
const AUTHORIZATION: &str = "AWS4-HMAC-SHA256 \
    Credential=AKIDEXAMPLE/20261126/us-east-1/ecs/aws4_request, SignedHeaders=host, Signature=0";

/// A served simulator and a client that speaks its protocol.
struct Sim {
    running: RunningSimulator,
    client: reqwest::Client,
}

impl Sim {
    async fn start(builder: EcsSimulatorBuilder) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self {
            running: builder.build().serve(listener).unwrap(),
            client: reqwest::Client::new(),
        }
    }

    /// A simulator with a manual clock and a fixed seed.
    async fn manual() -> Self {
        Self::start(EcsSimulator::builder().manual_clock().seed(11)).await
    }

    /// Sends `operation` with `body`, signed with `authorization` when given.
    async fn send(
        &self,
        operation: &str,
        body: &Value,
        authorization: Option<&str>,
    ) -> (u16, Value) {
        let mut request = self
            .client
            .post(self.running.url())
            .header("x-amz-target", format!("{TARGET_PREFIX}{operation}"))
            .header("content-type", "application/x-amz-json-1.1")
            .body(body.to_string());
        if let Some(authorization) = authorization {
            request = request.header("authorization", authorization);
        }
        let response = tokio::time::timeout(PATIENCE, request.send())
            .await
            .expect("the simulator did not answer")
            .unwrap();
        let status = response.status().as_u16();
        let content_type = response.headers()["content-type"].clone();
        assert_eq!(content_type, "application/x-amz-json-1.1");
        (status, response.json().await.unwrap())
    }

    /// Sends a signed call and returns status and body.
    async fn call(&self, operation: &str, body: Value) -> (u16, Value) {
        self.send(operation, &body, Some(AUTHORIZATION)).await
    }

    /// Sends a signed call that must succeed.
    async fn ok(&self, operation: &str, body: Value) -> Value {
        let (status, response) = self.call(operation, body).await;
        assert_eq!(status, 200, "{operation}: {response}");
        response
    }

    /// Sends a signed call that must fail with `status` and `code`; returns the message.
    async fn fails(&self, operation: &str, body: Value, status: u16, code: &str) -> String {
        let (got, response) = self.call(operation, body).await;
        assert_eq!(
            (got, response["__type"].as_str()),
            (status, Some(code)),
            "{response}"
        );
        response["message"].as_str().unwrap().to_owned()
    }

    /// A cluster `c`, task definition `app` revisions 1 (`app:v1`) and 2 (`app:v2`).
    async fn seed(&self) {
        self.ok("CreateCluster", json!({"clusterName": "c"})).await;
        for image in ["example/app:v1", "example/app:v2"] {
            self.ok("RegisterTaskDefinition", task_definition("app", image))
                .await;
        }
    }

    /// Service `s` of `app:1` in cluster `c` with `desired` tasks and `configuration`.
    async fn create_service(&self, desired: u32, configuration: Value) -> Value {
        self.ok(
            "CreateService",
            json!({"cluster": "c", "serviceName": "s", "taskDefinition": "app:1",
                   "desiredCount": desired, "deploymentConfiguration": configuration}),
        )
        .await
    }

    async fn service(&self) -> Value {
        let response = self
            .ok(
                "DescribeServices",
                json!({"cluster": "c", "services": ["s"]}),
            )
            .await;
        response["services"][0].clone()
    }
}

/// An EC2 task definition of one container.
fn task_definition(family: &str, image: &str) -> Value {
    json!({
        "family": family,
        "containerDefinitions": [{"name": "app", "image": image, "memory": 256,
                                  "portMappings": [{"containerPort": 8080}]}],
    })
}

#[tokio::test]
async fn calls_without_authorization_are_refused() {
    let sim = Sim::manual().await;
    let (status, body) = sim
        .send("CreateCluster", &json!({"clusterName": "c"}), None)
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"__type": "MissingAuthenticationTokenException", "message": "Missing Authentication Token"})
    );
    // Nothing was created.
    let (status, body) = sim
        .call("DescribeClusters", json!({"clusters": ["c"]}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["failures"][0]["reason"], "MISSING");
}

#[tokio::test]
async fn unknown_operations_and_bad_bodies_are_client_errors() {
    let sim = Sim::manual().await;
    sim.fails("StartTask", json!({}), 400, "UnknownOperationException")
        .await;
    let response = sim
        .client
        .post(sim.running.url())
        .header("x-amz-target", format!("{TARGET_PREFIX}ListServices"))
        .header("authorization", AUTHORIZATION)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["__type"], "SerializationException");
}

#[tokio::test]
async fn the_region_comes_from_the_credential_scope() {
    let sim = Sim::manual().await;
    let eu = "AWS4-HMAC-SHA256 Credential=AKID/20261126/eu-west-1/ecs/aws4_request, \
              SignedHeaders=host, Signature=0";
    let (status, body) = sim
        .send("CreateCluster", &json!({"clusterName": "c"}), Some(eu))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["cluster"]["clusterArn"],
        "arn:aws:ecs:eu-west-1:123456789012:cluster/c"
    );
    // Regions are separate: us-east-1 has no cluster c.
    let body = sim.ok("DescribeClusters", json!({"clusters": ["c"]})).await;
    assert_eq!(body["clusters"], json!([]));
    assert_eq!(
        body["failures"][0]["arn"],
        "arn:aws:ecs:us-east-1:123456789012:cluster/c"
    );
}
