//! The admin endpoint under `/_kyb-sim/`: state, request log, faults and the manual clock
//! over HTTP, none of it in the ECS request log.

use kyb_deploy_testkit::ecs_sim::EcsSimulator;
use serde_json::{Value, json};

use super::{PATIENCE, Sim};

impl Sim {
    /// Sends `method` to `/_kyb-sim/<path>` with a JSON `body`; returns status and body
    /// (`null` when empty).
    async fn admin(&self, method: reqwest::Method, path: &str, body: Option<&str>) -> (u16, Value) {
        let url = format!("{}/_kyb-sim/{path}", self.running.url());
        let mut request = self.client.request(method, url);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        let response = tokio::time::timeout(PATIENCE, request.send())
            .await
            .expect("the admin endpoint did not answer")
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|error| panic!("{error}: {text}"))
        };
        (status, body)
    }
}

#[tokio::test]
async fn state_and_requests_are_served_and_not_logged() {
    let sim = Sim::manual().await;
    sim.ok("CreateCluster", json!({"clusterName": "c"})).await;
    sim.fails(
        "DescribeServices",
        json!({"cluster": "nope", "services": ["s"]}),
        400,
        "ClusterNotFoundException",
    )
    .await;

    let (status, state) = sim.admin(reqwest::Method::GET, "state", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        state["regions"]["us-east-1"]["clusters"][0]["clusterName"],
        "c"
    );
    let (status, requests) = sim.admin(reqwest::Method::GET, "requests", None).await;
    assert_eq!(status, 200);
    let log = requests["requests"].as_array().unwrap();
    assert_eq!(log.len(), 2, "{requests:#}");
    assert_eq!(log[0]["operation"], "CreateCluster");
    assert_eq!(log[0]["status"], 200);
    assert_eq!(log[0]["mutating"], true);
    assert_eq!(log[1]["error"], "ClusterNotFoundException");
    assert_eq!(
        requests["counts"],
        json!({"CreateCluster": 1, "DescribeServices": 1})
    );
    // Neither admin call is an ECS request.
    assert_eq!(sim.running.handle().request_log().len(), 2);
}

#[tokio::test]
async fn faults_are_added_and_cleared_over_http() {
    let sim = Sim::manual().await;
    let (status, added) = sim
        .admin(
            reqwest::Method::POST,
            "faults",
            Some(r#"{"api": {"throttle_every": 1, "operation": "CreateCluster"}}"#),
        )
        .await;
    assert_eq!(status, 201, "{added}");
    let (status, _) = sim
        .admin(
            reqwest::Method::POST,
            "faults",
            Some(r#"{"task": {"image": "*:broken", "fail_to_start": "CannotPullContainerError: not found"}}"#),
        )
        .await;
    assert_eq!(status, 201);
    sim.fails(
        "CreateCluster",
        json!({"clusterName": "c"}),
        400,
        "ThrottlingException",
    )
    .await;
    let (_, state) = sim.admin(reqwest::Method::GET, "state", None).await;
    assert_eq!(
        state["faults"]["api"].as_array().unwrap().len(),
        1,
        "{state:#}"
    );
    assert_eq!(
        state["faults"]["task"].as_array().unwrap().len(),
        1,
        "{state:#}"
    );

    let (status, body) = sim.admin(reqwest::Method::DELETE, "faults", None).await;
    assert_eq!((status, body), (204, Value::Null));
    sim.ok("CreateCluster", json!({"clusterName": "c"})).await;
    let (_, state) = sim.admin(reqwest::Method::GET, "state", None).await;
    assert_eq!(state["faults"]["api"], json!([]));
    assert_eq!(state["faults"]["task"], json!([]));
}

#[tokio::test]
async fn bad_fault_bodies_are_400_with_a_message() {
    let sim = Sim::manual().await;
    for body in [
        "{not json",
        r#"{"api": {"throttle": 2}}"#,
        r#"{"api": {"server_errors": 1, "latency_ms": 5}}"#,
        r#"{"api": {"throttle_every": 0}}"#,
        r#"{"task": {"image": "a", "health_check_fails": false}}"#,
        r#"{"queue": {}}"#,
    ] {
        let (status, response) = sim.admin(reqwest::Method::POST, "faults", Some(body)).await;
        assert_eq!(status, 400, "{body}: {response}");
        assert!(
            !response["message"].as_str().unwrap().is_empty(),
            "{body}: {response}"
        );
    }
    let (status, response) = sim
        .admin(
            reqwest::Method::POST,
            "faults",
            Some(r#"{"api": {"throttle": 2}}"#),
        )
        .await;
    assert_eq!(status, 400);
    assert!(response["message"].as_str().unwrap().contains("throttle"));
    let (_, state) = sim.admin(reqwest::Method::GET, "state", None).await;
    assert_eq!(state["faults"]["api"], json!([]));
}

#[tokio::test]
async fn advance_moves_a_manual_clock_and_conflicts_with_a_scaled_one() {
    let sim = Sim::manual().await;
    let before = sim.running.handle().now();
    let (status, body) = sim
        .admin(reqwest::Method::POST, "advance", Some(r#"{"secs": 30}"#))
        .await;
    assert_eq!(status, 200, "{body}");
    let moved = sim.running.handle().now().duration_since(before).unwrap();
    assert_eq!(moved.as_secs(), 30);
    for bad in [r#"{"secs": -1}"#, r#"{"seconds": 1}"#, "30"] {
        let (status, _) = sim.admin(reqwest::Method::POST, "advance", Some(bad)).await;
        assert_eq!(status, 400, "{bad}");
    }

    let scaled = Sim::start(EcsSimulator::builder().time_scale(10.0).seed(1)).await;
    let (status, body) = scaled
        .admin(reqwest::Method::POST, "advance", Some(r#"{"secs": 30}"#))
        .await;
    assert_eq!(status, 409);
    assert!(body["message"].as_str().unwrap().contains("manual"));
}
