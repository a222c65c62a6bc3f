//! The built-in image policy check against images built by the real Docker engine.
//!
//! These tests need the engine: they fail (never skip) when it is missing.

use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use kyb_deploy_core::{BuiltImage, CancellationToken, ScanReport, Scanner, Stage, StageProgress};
use kyb_deploy_docker::{DockerEngine, ImagePolicyScanner, PolicySettings};

const NO_ENGINE: &str = "these tests need the Docker engine and the docker CLI: run \
                         scripts/setup.sh (as root on Debian) or start dockerd";

/// An image built from a temporary context with the docker CLI, removed when dropped.
struct TestImage {
    tag: String,
    id: String,
}

impl TestImage {
    /// Builds `dockerfile` over a context holding one small file, `hello.txt`.
    fn build(name: &str, dockerfile: &str) -> Self {
        let context = tempfile::tempdir().unwrap();
        std::fs::write(context.path().join("hello.txt"), "hello from kyb-deploy\n").unwrap();
        std::fs::write(context.path().join("Dockerfile"), dockerfile).unwrap();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let tag = format!("kyb-deploy-it-policy-{name}:{}-{nanos}", std::process::id());
        // The engine here has no BuildKit; the classic builder is what it runs.
        let out = docker(&["build", "--quiet", "--tag", &tag], Some(context.path()));
        assert!(
            out.status.success(),
            "docker build of {tag} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = docker(&["image", "inspect", "--format", "{{.Id}}", &tag], None);
        assert!(out.status.success(), "docker image inspect {tag} failed");
        let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        Self { tag, id }
    }

    fn built(&self) -> BuiltImage {
        let (repository, tag) = self.tag.split_once(':').unwrap();
        BuiltImage {
            id: self.id.clone(),
            repository: repository.into(),
            tags: vec![tag.into()],
            platforms: Vec::new(),
        }
    }
}

impl Drop for TestImage {
    fn drop(&mut self) {
        // Best effort: a failed removal leaves a small image behind, nothing worse.
        // --no-prune keeps the parent layers, which other tests building at the same time may
        // be using as their build cache.
        let _ = docker(&["image", "rm", "--force", "--no-prune", &self.tag], None);
    }
}

/// Runs the docker CLI (with the build context as last argument when given).
fn docker(args: &[&str], context: Option<&Path>) -> std::process::Output {
    let mut command = Command::new("docker");
    command.args(args).env("DOCKER_BUILDKIT", "0");
    if let Some(context) = context {
        command.arg(context);
    }
    command
        .output()
        .unwrap_or_else(|e| panic!("cannot run the docker CLI ({e}); {NO_ENGINE}"))
}

/// The engine, or a loud failure that says how to start it.
async fn engine() -> DockerEngine {
    let engine = DockerEngine::connect()
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the Docker engine ({e}); {NO_ENGINE}"));
    let check = engine.check().await;
    assert!(check.ok, "{}; {NO_ENGINE}", check.describe());
    engine
}

fn settings() -> PolicySettings {
    PolicySettings {
        port: 8080,
        max_size: 50_000_000,
        allow_root: false,
    }
}

async fn scan(scanner: &ImagePolicyScanner, image: &TestImage) -> ScanReport {
    scanner
        .scan(
            &image.built(),
            &StageProgress::discard(Stage::Scan),
            &CancellationToken::new(),
        )
        .await
        .unwrap()
}

fn ids(report: &ScanReport) -> Vec<&str> {
    report.findings.iter().map(|f| f.id.as_str()).collect()
}

#[tokio::test]
async fn an_image_running_as_root_with_a_baked_in_token_is_caught() {
    let scanner = ImagePolicyScanner::new(engine().await, settings());
    let image = TestImage::build(
        "root",
        "FROM scratch\n\
         ARG DEPLOY_PASSWORD=hunter2hunter2\n\
         COPY hello.txt /hello.txt\n\
         ENV API_TOKEN=supersecret123\n\
         EXPOSE 8080\n",
    );
    let report = scan(&scanner, &image).await;
    assert!(!report.passed, "{report:#?}");
    assert_eq!(
        ids(&report),
        [
            "policy/root-user",
            "policy/secret-env",
            "policy/secret-build-arg"
        ],
        "{report:#?}"
    );
    assert!(report.findings[1].title.contains("API_TOKEN"));
    assert!(report.findings[2].title.contains("DEPLOY_PASSWORD"));
    let shown = format!(
        "{report:?}\n{report:#?}\n{}",
        serde_json::to_string(&report).unwrap()
    );
    for value in ["supersecret123", "hunter2hunter2"] {
        assert!(!shown.contains(value), "the value {value} leaked: {shown}");
    }

    // Allowing root leaves only the secrets.
    let allowed = ImagePolicyScanner::new(
        engine().await,
        PolicySettings {
            allow_root: true,
            ..settings()
        },
    );
    let report = scan(&allowed, &image).await;
    assert_eq!(
        ids(&report),
        ["policy/secret-env", "policy/secret-build-arg"]
    );
}

#[tokio::test]
async fn a_non_root_image_exposing_the_service_port_passes() {
    let engine = engine().await;
    let image = TestImage::build(
        "clean",
        "FROM scratch\n\
         COPY hello.txt /hello.txt\n\
         ENV RUST_LOG=info\n\
         USER 10001\n\
         EXPOSE 8080\n",
    );
    let report = scan(&ImagePolicyScanner::new(engine.clone(), settings()), &image).await;
    assert!(report.passed, "{report:#?}");
    assert!(report.findings.is_empty(), "{report:#?}");

    // The same image against another port and a tiny size budget.
    let strict = ImagePolicyScanner::new(
        engine,
        PolicySettings {
            port: 9090,
            max_size: 10,
            allow_root: false,
        },
    );
    let report = scan(&strict, &image).await;
    assert!(!report.passed);
    assert_eq!(ids(&report), ["policy/port", "policy/size"], "{report:#?}");
    assert!(
        report.findings[0].title.contains("EXPOSE 8080/tcp")
            && report.findings[0].title.contains("9090/tcp"),
        "{report:#?}"
    );
    assert!(report.findings[1].title.contains("10 B"), "{report:#?}");
}
