//! Conformance: the same request sequence against `moto_server` (a third-party ECS emulator
//! that checks requests well) and against the simulator, comparing for everything both
//! implement the HTTP status, the error code, a few stable values, and the response fields:
//! the simulator must return every field moto returns at the top level and in the main
//! objects (cluster, task definition, service, deployments, failures), except the
//! documented [`MOTO_ONLY`] fields. Fields only the simulator returns are real ECS fields
//! that moto leaves out, and are fine.
//!
//! The test set-up (`scripts/test.sh`) installs moto into the project virtualenv and exports
//! `KYB_MOTO_SERVER`; this test starts and stops the server itself.

use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use kyb_deploy_testkit::ecs_sim::{EcsSimulator, RunningSimulator};
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};

use super::{ARN, AUTHORIZATION, PATIENCE, TARGET_PREFIX};

/// How long moto may take to answer after it is started.
const MOTO_START: Duration = Duration::from_secs(20);

/// Fields moto returns that the simulator leaves out on purpose: `(object, field, why)`.
const MOTO_ONLY: [(&str, &str, &str); 4] = [
    (
        "service",
        "taskSets",
        "moto lists task sets (empty) for every service; ECS returns them only for services \
         of the EXTERNAL or CODE_DEPLOY deployment controllers, and the simulator has only \
         the ECS controller",
    ),
    (
        "service",
        "tags",
        "moto echoes its stored tag list (even empty) in UpdateService's answer; the \
         simulator returns a service's tags when DescribeServices asks with include=TAGS, \
         as ECS documents",
    ),
    (
        "task",
        "stoppedReason",
        "moto returns an empty stoppedReason for a task that has not stopped; ECS (and the \
         simulator) set it when the task is stopped",
    ),
    (
        "task",
        "startedBy",
        "moto returns an empty startedBy for a RunTask call that gave none; ECS (and the \
         simulator) leave the field out",
    ),
];

/// The `moto_server` executable: `KYB_MOTO_SERVER`, else `moto_server` on PATH, else the
/// project virtualenv's; the test fails, saying how to install it, when there is none.
fn moto_server() -> PathBuf {
    if let Some(path) = std::env::var_os("KYB_MOTO_SERVER") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "KYB_MOTO_SERVER names {}, which is not a file; run scripts/test.sh, or \
             pip install 'moto[server]'",
            path.display()
        );
        return path;
    }
    let on_path = std::env::var_os("PATH")
        .map(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join("moto_server"))
                .find(|candidate| candidate.is_file())
        })
        .unwrap_or_default();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the testkit lives in the workspace");
    let venv = repo.join(".kyb-deploy/venv/bin/moto_server");
    on_path.or_else(|| venv.is_file().then_some(venv)).expect(
        "moto_server was not found (KYB_MOTO_SERVER, PATH, .kyb-deploy/venv): this \
             conformance test needs it; run scripts/test.sh, or pip install 'moto[server]'",
    )
}

/// A running `moto_server`, killed when dropped.
struct Moto {
    _child: Child,
    url: String,
}

impl Moto {
    async fn start() -> Self {
        // A free port: bind, read, release; moto binds it right after.
        let port = StdListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|listener| listener.local_addr())
            .unwrap()
            .port();
        let executable = moto_server();
        let mut child = Command::new(&executable)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", executable.display()));
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let deadline = tokio::time::Instant::now() + MOTO_START;
        loop {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                break;
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!("{} exited at start ({status})", executable.display());
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} did not answer on {addr} within {MOTO_START:?}",
                executable.display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Self {
            _child: child,
            url: format!("http://{addr}"),
        }
    }
}

/// An ECS endpoint under comparison.
struct Endpoint {
    name: &'static str,
    url: String,
    client: reqwest::Client,
}

impl Endpoint {
    /// Sends `operation` signed for us-east-1; returns the status and the JSON body.
    async fn call(&self, operation: &str, body: &Value) -> (u16, Value) {
        let request = self
            .client
            .post(&self.url)
            .header("x-amz-target", format!("{TARGET_PREFIX}{operation}"))
            .header("content-type", "application/x-amz-json-1.1")
            .header("authorization", AUTHORIZATION)
            .body(body.to_string());
        let response = tokio::time::timeout(PATIENCE, request.send())
            .await
            .unwrap_or_else(|_| panic!("{} did not answer {operation}", self.name))
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let body = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .unwrap_or_else(|error| panic!("{}: {operation}: {error}: {text}", self.name))
        };
        (status, body)
    }
}

/// The error code of an answer, without the namespace some servers put before `#`.
fn error_code(body: &Value) -> Option<&str> {
    let code = body.get("__type")?.as_str()?;
    Some(code.rsplit_once('#').map_or(code, |(_, code)| code))
}

/// The first id of `element` (like `subnetId`) in one of moto's EC2 answers.
async fn moto_ec2_id(moto: &Moto, client: &reqwest::Client, action: &str, element: &str) -> String {
    // EC2 speaks the query protocol; moto picks the service from the credential scope.
    let authorization = AUTHORIZATION.replace("/ecs/", "/ec2/");
    let xml = client
        .post(&moto.url)
        .header("authorization", authorization)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("Action={action}&Version=2016-11-15"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let open = format!("<{element}>");
    let start = xml
        .find(&open)
        .unwrap_or_else(|| panic!("no {element} in moto's {action}: {xml}"))
        + open.len();
    let end = start + xml[start..].find('<').unwrap();
    xml[start..end].to_owned()
}

/// One request of the sequence, and what to compare of its answers.
struct Step {
    operation: &'static str,
    body: Value,
    /// JSON pointers whose values must be equal in both answers.
    same_values: &'static [&'static str],
}

fn step(operation: &'static str, body: Value, same_values: &'static [&'static str]) -> Step {
    Step {
        operation,
        body,
        same_values,
    }
}

/// A Fargate task definition of family `web` with one container running `image`.
fn fargate_definition(image: &str) -> Value {
    json!({
        "family": "web",
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "cpu": "256",
        "memory": "512",
        "containerDefinitions": [{
            "name": "web",
            "image": image,
            // moto's RunTask needs the container's memory (ECS takes the task's).
            "memory": 256,
            "essential": true,
            "portMappings": [{"containerPort": 8080, "protocol": "tcp"}],
            "healthCheck": {"command": ["CMD-SHELL", "curl -f http://localhost:8080/health"],
                            "interval": 10, "timeout": 5, "retries": 3},
        }],
    })
}

/// The request sequence. `network` is an awsvpc configuration moto accepts (its subnets and
/// security groups must exist in its EC2; the simulator takes any).
fn sequence(network: &Value) -> Vec<Step> {
    let service_arn = format!("{ARN}:service/conf/api");
    vec![
        step(
            "CreateCluster",
            json!({"clusterName": "conf"}),
            &["/cluster/clusterArn", "/cluster/status"],
        ),
        step(
            "DescribeClusters",
            json!({"clusters": ["conf", "ghost"]}),
            &["/clusters/0/clusterArn", "/failures"],
        ),
        step(
            "RegisterTaskDefinition",
            fargate_definition("example/web:v1"),
            &[
                "/taskDefinition/taskDefinitionArn",
                "/taskDefinition/revision",
                "/taskDefinition/status",
                "/taskDefinition/compatibilities",
            ],
        ),
        // A container without memory in a task without memory: both refuse it. (moto does
        // not check Fargate's network mode nor its cpu/memory pairs: those cases are asserted
        // on the simulator alone, below.)
        step(
            "RegisterTaskDefinition",
            json!({"family": "nomem", "containerDefinitions": [{"name": "a", "image": "x"}]}),
            &[],
        ),
        step(
            "RegisterTaskDefinition",
            fargate_definition("example/web:v2"),
            &["/taskDefinition/revision"],
        ),
        step(
            "DescribeTaskDefinition",
            json!({"taskDefinition": "web:1"}),
            &["/taskDefinition/taskDefinitionArn", "/taskDefinition/cpu"],
        ),
        step(
            "ListTaskDefinitions",
            json!({"familyPrefix": "web"}),
            &["/taskDefinitionArns"],
        ),
        step(
            "CreateService",
            json!({
                "cluster": "conf", "serviceName": "api", "taskDefinition": "web:1",
                "desiredCount": 2, "launchType": "FARGATE", "networkConfiguration": network,
                "deploymentConfiguration": {
                    "deploymentCircuitBreaker": {"enable": true, "rollback": true},
                    "maximumPercent": 200, "minimumHealthyPercent": 100,
                },
            }),
            &[
                "/service/serviceArn",
                "/service/status",
                "/service/desiredCount",
                "/service/taskDefinition",
                "/service/deployments/0/status",
            ],
        ),
        step(
            "DescribeServices",
            json!({"cluster": "conf", "services": ["api", "ghost"]}),
            &["/services/0/serviceArn", "/failures/0/reason"],
        ),
        // No values compared: moto answers with the task definition as given ("web:2") and
        // keeps the old deployment, where ECS (and the simulator) resolve it to its ARN and
        // start a new PRIMARY deployment of it.
        step(
            "UpdateService",
            json!({"cluster": "conf", "service": "api", "taskDefinition": "web:2"}),
            &[],
        ),
        step(
            "ListServices",
            json!({"cluster": "conf"}),
            &["/serviceArns"],
        ),
        step("ListTasks", json!({"cluster": "conf"}), &[]),
        step(
            "ListTasks",
            json!({"cluster": "conf", "desiredStatus": "STOPPED"}),
            &[],
        ),
        step(
            "TagResource",
            json!({"resourceArn": service_arn, "tags": [{"key": "team", "value": "kyb"},
                                                         {"key": "tier", "value": "api"}]}),
            &[],
        ),
        step(
            "ListTagsForResource",
            json!({"resourceArn": service_arn}),
            &["/tags"],
        ),
        step(
            "UntagResource",
            json!({"resourceArn": service_arn, "tagKeys": ["tier"]}),
            &[],
        ),
        step(
            "ListTagsForResource",
            json!({"resourceArn": service_arn}),
            &["/tags"],
        ),
        step(
            "DescribeServices",
            json!({"cluster": "ghost", "services": ["api"]}),
            &[],
        ),
        step(
            "UpdateService",
            json!({"cluster": "conf", "service": "ghost", "desiredCount": 1}),
            &[],
        ),
        step(
            "DeregisterTaskDefinition",
            json!({"taskDefinition": "web:1"}),
            &["/taskDefinition/status"],
        ),
        step("ListClusters", json!({}), &[]),
        step(
            "ListTaskDefinitionFamilies",
            json!({"familyPrefix": "we"}),
            &["/families"],
        ),
        step(
            "RunTask",
            json!({
                "cluster": "conf", "taskDefinition": "web:2", "launchType": "FARGATE",
                "networkConfiguration": network, "startedBy": "kyb-migrate",
                "overrides": {"containerOverrides": [
                    {"name": "web", "command": ["./migrate"]}]},
            }),
            &[
                "/tasks/0/group",
                "/tasks/0/startedBy",
                "/tasks/0/taskDefinitionArn",
                "/tasks/0/desiredStatus",
                "/tasks/0/overrides/containerOverrides/0/command",
            ],
        ),
        // Scaled above 0: refused without force, deleted with it. (moto keeps the desired
        // count where ECS, as its documented example shows, answers DRAINING with 0.)
        step(
            "DeleteService",
            json!({"cluster": "conf", "service": "api"}),
            &[],
        ),
        step(
            "DeleteService",
            json!({"cluster": "conf", "service": "api", "force": true}),
            &["/service/serviceArn"],
        ),
        step("CreateCluster", json!({"clusterName": "empty"}), &[]),
        step(
            "DeleteCluster",
            json!({"cluster": "empty"}),
            &["/cluster/clusterArn", "/cluster/status"],
        ),
        step("DeleteCluster", json!({"cluster": "ghost"}), &[]),
    ]
}

/// The main objects of an answer, each with its kind: the answer itself (`response`), and
/// its clusters, task definition, services, their deployments, and failures.
fn objects(response: &Value) -> Vec<(&'static str, &Map<String, Value>)> {
    let mut found = Vec::new();
    let Some(top) = response.as_object() else {
        return found;
    };
    found.push(("response", top));
    let kinds = [
        ("cluster", "cluster"),
        ("clusters", "cluster"),
        ("taskDefinition", "taskDefinition"),
        ("service", "service"),
        ("services", "service"),
        ("task", "task"),
        ("tasks", "task"),
        ("failures", "failure"),
    ];
    for (field, kind) in kinds {
        let items: Vec<&Value> = match top.get(field) {
            Some(Value::Array(items)) => items.iter().collect(),
            Some(item) => vec![item],
            None => Vec::new(),
        };
        for item in items.into_iter().filter_map(Value::as_object) {
            found.push((kind, item));
            if kind == "service" {
                let deployments = item.get("deployments").and_then(Value::as_array);
                for deployment in deployments
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_object)
                {
                    found.push(("deployment", deployment));
                }
            }
        }
    }
    found
}

/// The differences between moto's answer and the simulator's to one step.
fn compare(step: &Step, moto: &(u16, Value), sim: &(u16, Value)) -> Vec<String> {
    let at = format!("{} {}", step.operation, step.body);
    let mut differences = Vec::new();
    let outcome = |(status, body): &(u16, Value)| (*status, error_code(body).map(str::to_owned));
    if outcome(moto) != outcome(sim) {
        differences.push(format!(
            "{at}: moto answered {:?}, the simulator {:?}: {} / {}",
            outcome(moto),
            outcome(sim),
            moto.1,
            sim.1
        ));
        return differences;
    }
    if moto.0 != 200 {
        return differences;
    }
    // Objects pair up by kind and position. The simulator may have more of a kind: moto
    // replaces a service's deployment on UpdateService, where ECS keeps the old one ACTIVE
    // beside the new PRIMARY until its tasks are drained.
    let sim_objects = objects(&sim.1);
    let mut seen: Vec<&str> = Vec::new();
    for (kind, moto_object) in objects(&moto.1) {
        let position = seen.iter().filter(|seen| **seen == kind).count();
        seen.push(kind);
        let Some((_, sim_object)) = sim_objects
            .iter()
            .filter(|(sim_kind, _)| *sim_kind == kind)
            .nth(position)
        else {
            differences.push(format!(
                "{at}: the simulator's answer has no {kind} #{position}: {}",
                sim.1
            ));
            continue;
        };
        for field in moto_object.keys() {
            let excepted = MOTO_ONLY
                .iter()
                .any(|(object, name, _)| *object == kind && name == field);
            if !sim_object.contains_key(field) && !excepted {
                differences.push(format!(
                    "{at}: the simulator's {kind} lacks `{field}` (moto: {})",
                    moto_object[field]
                ));
            }
        }
    }
    for pointer in step.same_values {
        let (moto_value, sim_value) = (moto.1.pointer(pointer), sim.1.pointer(pointer));
        if moto_value.is_none() || moto_value != sim_value {
            differences.push(format!(
                "{at}: {pointer} is {moto_value:?} in moto, {sim_value:?} in the simulator"
            ));
        }
    }
    differences
}

#[tokio::test]
async fn moto_and_the_simulator_agree_on_codes_and_fields() {
    let moto = Moto::start().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim: RunningSimulator = EcsSimulator::builder()
        .manual_clock()
        .seed(31)
        .build()
        .serve(listener)
        .unwrap();
    let client = reqwest::Client::new();
    let subnet = moto_ec2_id(&moto, &client, "DescribeSubnets", "subnetId").await;
    let group = moto_ec2_id(&moto, &client, "DescribeSecurityGroups", "groupId").await;
    let network = json!({"awsvpcConfiguration": {
        "subnets": [subnet], "securityGroups": [group], "assignPublicIp": "DISABLED"}});
    let moto_endpoint = Endpoint {
        name: "moto",
        url: moto.url.clone(),
        client: client.clone(),
    };
    let sim_endpoint = Endpoint {
        name: "the simulator",
        url: sim.url(),
        client,
    };

    let mut differences = Vec::new();
    let mut outcomes = Vec::new();
    for step in sequence(&network) {
        let moto_answer = moto_endpoint.call(step.operation, &step.body).await;
        let sim_answer = sim_endpoint.call(step.operation, &step.body).await;
        differences.extend(compare(&step, &moto_answer, &sim_answer));
        outcomes.push((step.operation, error_code(&sim_answer.1).map(str::to_owned)));
    }
    assert!(
        differences.is_empty(),
        "moto and the simulator differ:\n{}",
        differences.join("\n")
    );
    // The comparison covered the errors it was meant to: not everything succeeded.
    let errors: Vec<(&str, &str)> = outcomes
        .iter()
        .filter_map(|(operation, code)| Some((*operation, code.as_deref()?)))
        .collect();
    assert_eq!(
        errors,
        [
            ("RegisterTaskDefinition", "ClientException"),
            ("DescribeServices", "ClusterNotFoundException"),
            ("UpdateService", "ServiceNotFoundException"),
            ("DeleteService", "InvalidParameterException"),
            ("DeleteCluster", "ClusterNotFoundException"),
        ]
    );

    // StopTask on a task each one started: the same stop and reason.
    let mut stopped = Vec::new();
    for endpoint in [&moto_endpoint, &sim_endpoint] {
        let (_, run) = endpoint
            .call(
                "RunTask",
                &json!({"cluster": "conf", "taskDefinition": "web:2", "launchType": "FARGATE",
                        "networkConfiguration": network}),
            )
            .await;
        let arn = run["tasks"][0]["taskArn"].clone();
        let (status, answer) = endpoint
            .call(
                "StopTask",
                &json!({"cluster": "conf", "task": arn, "reason": "cancelled"}),
            )
            .await;
        assert_eq!(status, 200, "{}: {answer}", endpoint.name);
        stopped.push(answer);
    }
    let step = step(
        "StopTask",
        json!({}),
        &["/task/desiredStatus", "/task/stoppedReason"],
    );
    let moto_answer = (200, stopped[0].clone());
    let sim_answer = (200, stopped[1].clone());
    let differences = compare(&step, &moto_answer, &sim_answer);
    assert!(differences.is_empty(), "{}", differences.join("\n"));

    // What moto does not validate, the simulator still refuses as ECS does.
    let bridge = json!({"networkMode": "bridge"});
    let odd_size = json!({"cpu": "256", "memory": "4096"});
    for overrides in [bridge, odd_size] {
        let mut body = fargate_definition("example/web:v3");
        for (field, value) in overrides.as_object().unwrap() {
            body[field] = value.clone();
        }
        let (status, answer) = sim_endpoint.call("RegisterTaskDefinition", &body).await;
        assert_eq!(
            (status, error_code(&answer)),
            (400, Some("ClientException")),
            "{answer}"
        );
    }
}
