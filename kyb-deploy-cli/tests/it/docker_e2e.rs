//! End to end with the real peers: the `kyb-deploy` binary builds the sample service's image
//! with the Docker engine, scans it, pushes it to the registry on 127.0.0.1:5000, runs it as the
//! development environment and verifies it over HTTP. These tests need the engine, the registry
//! (`scripts/setup.sh`) and the static sample binary (`scripts/test.sh` builds it); without
//! them they fail, they never skip.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{Project, binary, output};

const REGISTRY: &str = "127.0.0.1:5000";
const PASSWORD: &str = "pw-e2e-never-shown-7f3a";

pub(crate) fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

/// Fails loudly when a peer of this tier is missing.
pub(crate) fn require_peers() {
    kyb_deploy_testkit::require_image_peers();
}

/// A blocking GET through curl (the tests have no async runtime): status and body.
pub(crate) fn http_get(url: &str) -> Option<(u16, String)> {
    http(&["-sS", "-w", "\n%{http_code}", url])
}

pub(crate) fn http(args: &[&str]) -> Option<(u16, String)> {
    let out = Command::new("curl")
        .args(["-m", "10"])
        .args(args)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n')?;
    Some((status.trim().parse().ok()?, body.to_owned()))
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub(crate) fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}-{nanos:x}", std::process::id())
}

/// Ids of the test's serving containers.
pub(crate) fn serving_containers(name: &str) -> Vec<String> {
    let out = Command::new("docker")
        .args(["ps", "-q", "--no-trunc"])
        .args(["--filter", &format!("label=io.kyb-deploy.container={name}")])
        .args(["--filter", "label=io.kyb-deploy.role=serving"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// Removes the test's containers, whatever happened.
pub(crate) struct Containers(pub(crate) String);

impl Drop for Containers {
    fn drop(&mut self) {
        let filter = format!("label=io.kyb-deploy.container={}", self.0);
        if let Ok(out) = Command::new("docker")
            .args(["ps", "-aq", "--filter", &filter])
            .output()
        {
            let ids = String::from_utf8_lossy(&out.stdout);
            let ids: Vec<&str> = ids.split_whitespace().collect();
            if !ids.is_empty() {
                let _ = Command::new("docker")
                    .args(["rm", "-f"])
                    .args(&ids)
                    .output();
            }
        }
    }
}

/// A development environment of the sample service on a free port, with its own repository,
/// container name and ledger.
pub(crate) fn project(
    context: &Path,
    dockerfile_target: Option<&str>,
    host_port: u16,
    name: &str,
) -> Project {
    project_soaking(context, dockerfile_target, host_port, name, "2s")
}

/// [`project`] with the development environment's `verify.soak`.
pub(crate) fn project_soaking(
    context: &Path,
    dockerfile_target: Option<&str>,
    host_port: u16,
    name: &str,
    soak: &str,
) -> Project {
    let target = dockerfile_target.map_or_else(String::new, |t| format!("target = \"{t}\"\n"));
    Project::new(&format!(
        r#"
[image]
repository = "{REGISTRY}/{name}"
context = "{context}"
{target}
[image.build_args]
VERSION = "{{version}}"

[ledger]
path = "ledger.jsonl"

[environments.development]
target = "docker"
[environments.development.docker]
container = "{name}"
host_port = {host_port}
[environments.development.verify]
soak = "{soak}"
[environments.development.verify.readiness]
period = "200ms"
[environments.development.verify.liveness]
period = "200ms"
success_threshold = 5
[[environments.development.verify.smoke]]
name = "classify"
method = "POST"
path = "/v1/classify"
json = {{ business_name = "Test Corp" }}
expect_json = {{ "/business_name" = "Test Corp" }}
samples = 3
"#,
        context = context.display(),
    ))
}

pub(crate) fn ledger(project: &Project) -> Vec<serde_json::Value> {
    std::fs::read_to_string(project.path().join("ledger.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The last state of each run, in order.
pub(crate) fn runs(project: &Project) -> Vec<serde_json::Value> {
    let mut last: Vec<serde_json::Value> = Vec::new();
    for record in ledger(project) {
        match last.iter_mut().find(|r| r["id"] == record["id"]) {
            Some(existing) => *existing = record,
            None => last.push(record),
        }
    }
    last
}

#[test]
fn the_sample_service_is_deployed_and_a_broken_release_rolled_back() {
    require_peers();
    let name = unique("kyb-e2e");
    let _cleanup = Containers(name.clone());
    let port = free_port();
    let project = project(&repo_root(), Some("prebuilt"), port, &name);
    let url = format!("http://127.0.0.1:{port}");

    // v1: built, scanned, pushed, run, verified, recorded.
    // With registry credentials in the environment: the local registry needs none, but they
    // travel through the whole push, and the password must never show.
    let v1 = output(
        binary(project.path())
            .args(["deploy", "-e", "development", "-v", "v1"])
            .env("KYB_DEPLOY_REGISTRY_USERNAME", "kyb-ci")
            .env("KYB_DEPLOY_REGISTRY_PASSWORD", PASSWORD),
    );
    assert_eq!(v1.code, 0, "{}", v1.all());
    assert!(
        v1.all().contains(&format!("development serves at {url}/")),
        "{}",
        v1.all()
    );
    let (status, body) = http(&[
        "-sS",
        "-w",
        "\n%{http_code}",
        "-X",
        "POST",
        "-H",
        "content-type: application/json",
        "-d",
        r#"{"business_name":"Test Corp"}"#,
        &format!("{url}/v1/classify"),
    ])
    .unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"risk_score\""), "{body}");
    assert!(v1.all().contains("as user kyb-ci"), "{}", v1.all());
    assert!(!v1.all().contains(PASSWORD), "the password was printed");
    let ledger_text = std::fs::read_to_string(project.path().join("ledger.jsonl")).unwrap();
    assert!(
        !ledger_text.contains(PASSWORD),
        "the password reached the ledger"
    );
    let first = runs(&project);
    assert_eq!(first[0]["status"], "succeeded");
    let image = first[0]["release"]["image"].as_str().unwrap().to_owned();
    assert!(
        image.starts_with(&format!("{REGISTRY}/{name}@sha256:")),
        "{image}"
    );
    // The tag and the digest agree in the registry.
    let (status, _) = http_get(&format!("http://{REGISTRY}/v2/{name}/manifests/v1")).unwrap();
    assert_eq!(status, 200);

    let v1_container = serving_containers(&name);
    assert_eq!(v1_container.len(), 1, "{v1_container:?}");

    // v2 is built with a fault that makes it unhealthy: rolled back, v1 still serves. It runs
    // as in GitHub Actions: the job summary, the step outputs and an error annotation.
    let (summary, outputs) = (
        project.path().join("step-summary.md"),
        project.path().join("step-outputs"),
    );
    let v2 = output(
        binary(project.path())
            .args([
                "deploy",
                "-e",
                "development",
                "-v",
                "v2",
                "--build-arg",
                "FAULT_UNHEALTHY_AFTER=0.1",
            ])
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_STEP_SUMMARY", &summary)
            .env("GITHUB_OUTPUT", &outputs)
            .env("GITHUB_SERVER_URL", "https://github.com")
            .env("GITHUB_REPOSITORY", "acme/kyb-platform-api")
            .env("GITHUB_RUN_ID", "4242")
            .env("GITHUB_ACTOR", "octocat"),
    );
    assert_eq!(v2.code, 4, "{}", v2.all());
    assert!(v2.all().contains("rolled back to v1"), "{}", v2.all());
    assert!(
        v2.stdout
            .contains("::error title=kyb-deploy deploy to development::failed at verify"),
        "{}",
        v2.stdout
    );
    let outputs = std::fs::read_to_string(&outputs).unwrap();
    for line in [
        "outcome=rolled_back",
        "exit_code=4",
        "version=v2",
        "rolled_back_to=v1",
        &format!("url={url}/"),
    ] {
        assert!(outputs.lines().any(|l| l == line), "{line}:\n{outputs}");
    }
    assert!(
        outputs
            .lines()
            .any(|l| l.starts_with("digest=sha256:") && l.len() == "digest=sha256:".len() + 64),
        "{outputs}"
    );
    let summary = std::fs::read_to_string(&summary).unwrap();
    assert!(
        summary.contains("### ❌ kyb-deploy deploy to development"),
        "{summary}"
    );
    assert!(summary.contains("| rolled back to | `v1` |"), "{summary}");
    assert!(summary.contains("| build | ok |"), "{summary}");
    assert!(summary.contains("| verify | **failed**"), "{summary}");
    let (_, status_body) = http_get(&format!("{url}/status")).unwrap();
    assert!(status_body.contains("\"version\":\"v1\""), "{status_body}");
    let all = runs(&project);
    assert_eq!(all[1]["status"], "rolled_back");
    assert_eq!(
        all[1]["ci_run_url"],
        "https://github.com/acme/kyb-platform-api/actions/runs/4242"
    );
    assert_eq!(all[1]["actor"], "octocat");
    assert_eq!(all[1]["rollback"]["to"]["version"], "v1");
    assert_eq!(all[1]["rollback"]["succeeded"], true);

    // The serving container is still the very one v1 started.
    assert_eq!(serving_containers(&name), v1_container);
    let status =
        output(binary(project.path()).args(["--output", "json", "status", "-e", "development"]));
    assert_eq!(status.code, 0, "{}", status.all());
    let json: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(json["status"]["running"]["version"], "v1", "{json}");
}

#[test]
fn a_failing_build_step_stops_before_anything_is_pushed_or_run() {
    require_peers();
    let name = unique("kyb-e2e-broken");
    let _cleanup = Containers(name.clone());
    let context = tempfile::tempdir().unwrap();
    std::fs::write(
        context.path().join("Dockerfile"),
        "FROM scratch\nLABEL purpose=test\nCOPY does-not-exist /app\n",
    )
    .unwrap();
    let project = project(context.path(), None, free_port(), &name);

    let run = output(binary(project.path()).args(["deploy", "-e", "development", "-v", "v1"]));
    assert_eq!(run.code, 3, "{}", run.all());
    assert!(
        run.all().contains("COPY does-not-exist /app"),
        "{}",
        run.all()
    );
    assert!(run.all().contains("failed at build"), "{}", run.all());
    // Nothing reached the registry or the engine.
    let (status, _) = http_get(&format!("http://{REGISTRY}/v2/{name}/tags/list")).unwrap();
    assert_eq!(status, 404);
    let filter = format!("label=io.kyb-deploy.container={name}");
    let out = Command::new("docker")
        .args(["ps", "-aq", "--filter", &filter])
        .output()
        .unwrap();
    assert!(out.stdout.is_empty(), "a container was started");
    assert_eq!(runs(&project)[0]["status"], "failed_before_deploy");
}
