//! The Docker image builder and registry against the real engine and the local registry on
//! 127.0.0.1:5000. These tests fail (they never skip) when either is missing: run
//! `scripts/setup.sh` first.
//!
//! The tiny images they build stay in the engine: removing images while other tests build
//! races with the classic builder's search of its cache.

mod auth;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;

use bollard::Docker;
use futures::StreamExt;
use kyb_deploy_core::{
    BuildRequest, CancellationToken, Event, EventSink, ImageBuilder, Registry, Stage,
    StageProgress, Version,
};
use kyb_deploy_docker::{CredentialSource, DockerEngine, DockerImageBuilder, DockerRegistry};
use tokio::sync::mpsc::UnboundedReceiver;

const REGISTRY: &str = "127.0.0.1:5000";
const SETUP: &str =
    "run `bash scripts/setup.sh` (it starts the Docker engine and the registry on 127.0.0.1:5000)";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// The engine, after checking that it and the local registry answer.
async fn engine() -> (DockerEngine, Docker) {
    let engine = DockerEngine::connect()
        .await
        .unwrap_or_else(|e| panic!("no Docker engine: {e}; {SETUP}"));
    let check = engine.check().await;
    assert!(check.ok, "{}; {SETUP}", check.describe());
    let registry_up = reqwest::get(format!("http://{REGISTRY}/v2/"))
        .await
        .is_ok_and(|r| r.status().is_success());
    assert!(registry_up, "no registry answers on {REGISTRY}; {SETUP}");
    let docker = Docker::connect_with_local_defaults()
        .unwrap()
        .negotiate_version()
        .await
        .unwrap();
    (engine, docker)
}

/// A repository name no other test run uses.
fn unique_repository(registry: &str, what: &str) -> String {
    format!("{registry}/kyb-test-{what}-{:08x}", rand::random::<u32>())
}

fn request(context: &Path, repository: &str, tags: &[&str]) -> BuildRequest {
    BuildRequest {
        repository: repository.into(),
        version: Version::parse(tags[0]).unwrap(),
        commit: None,
        context: context.to_owned(),
        dockerfile: "Dockerfile".into(),
        build_args: BTreeMap::new(),
        target: None,
        tags: tags.iter().map(|t| t.to_string()).collect(),
        labels: BTreeMap::new(),
        platforms: Vec::new(),
    }
}

fn events(stage: Stage) -> (StageProgress, UnboundedReceiver<Event>) {
    let (sink, rx) = EventSink::new().channel();
    (sink.for_stage(stage), rx)
}

/// Every event received so far, as JSON lines.
fn drain(rx: &mut UnboundedReceiver<Event>) -> String {
    let mut text = String::new();
    while let Ok(event) = rx.try_recv() {
        text.push_str(&serde_json::to_string(&event).unwrap());
        text.push('\n');
    }
    text
}

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (name, content) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
}

/// The files in the layers of a local image, from `docker save`.
async fn image_files(docker: &Docker, image: &str) -> BTreeSet<String> {
    let mut saved = Vec::new();
    let mut stream = docker.export_image(image);
    while let Some(chunk) = stream.next().await {
        saved.extend_from_slice(&chunk.unwrap());
    }
    let mut files = BTreeSet::new();
    let mut archive = tar::Archive::new(saved.as_slice());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if !entry.path().unwrap().ends_with("layer.tar") {
            continue;
        }
        let mut layer = Vec::new();
        entry.read_to_end(&mut layer).unwrap();
        for file in tar::Archive::new(layer.as_slice()).entries().unwrap() {
            let file = file.unwrap();
            if file.header().entry_type().is_file() {
                files.insert(file.path().unwrap().to_string_lossy().into_owned());
            }
        }
    }
    files
}

/// GETs a manifest by tag or digest: the content type, the digest header and the JSON.
async fn manifest(
    registry: &str,
    path: &str,
    reference: &str,
    accept: &str,
) -> (String, String, serde_json::Value) {
    let response = reqwest::Client::new()
        .get(format!("http://{registry}/v2/{path}/manifests/{reference}"))
        .header("Accept", accept)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    let (content_type, digest) = (header("content-type"), header("docker-content-digest"));
    (content_type, digest, response.json().await.unwrap())
}

#[tokio::test]
async fn builds_with_dockerignore_labels_and_tags_then_pushes_by_digest() {
    let (engine, docker) = engine().await;
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            ("Dockerfile", "FROM scratch\nCOPY . /ctx/\n"),
            (".dockerignore", "secret.txt\nbuild\n!build/keep.txt\n"),
            ("app.txt", &format!("app {}", rand::random::<u64>())),
            ("secret.txt", "must not reach the image"),
            ("build/keep.txt", "kept"),
            ("build/drop.txt", "dropped"),
        ],
    );
    let repository = unique_repository(REGISTRY, "build");
    let mut request = request(
        dir.path(),
        &repository,
        &["v1.0.0", "abc1234", "dev-latest"],
    );
    request
        .labels
        .insert("org.opencontainers.image.version".into(), "v1.0.0".into());
    request
        .labels
        .insert("org.opencontainers.image.revision".into(), "abc1234".into());

    let (progress, mut rx) = events(Stage::Build);
    let builder = DockerImageBuilder::new(engine.clone());
    let built = builder
        .build(&request, &progress, &CancellationToken::new())
        .await
        .unwrap();
    assert!(built.platforms.is_empty());
    let log = drain(&mut rx);
    assert!(log.contains("Step 2/4 : COPY . /ctx/"), "{log}");

    let inspect = docker.inspect_image(&built.id).await.unwrap();
    let labels = inspect.config.unwrap().labels.unwrap();
    assert_eq!(labels["org.opencontainers.image.version"], "v1.0.0");
    assert_eq!(labels["org.opencontainers.image.revision"], "abc1234");
    let repo_tags: BTreeSet<String> = inspect.repo_tags.unwrap().into_iter().collect();
    for tag in &request.tags {
        assert!(
            repo_tags.contains(&format!("{repository}:{tag}")),
            "{repo_tags:?}"
        );
    }
    let files = image_files(&docker, &built.id).await;
    assert!(
        files.contains("ctx/app.txt") && files.contains("ctx/build/keep.txt"),
        "{files:?}"
    );
    assert!(
        !files.contains("ctx/secret.txt"),
        "an ignored file reached the image: {files:?}"
    );
    assert!(!files.contains("ctx/build/drop.txt"), "{files:?}");

    let (progress, mut rx) = events(Stage::Push);
    let registry = DockerRegistry::new(engine, CredentialSource::anonymous());
    let pushed = registry
        .push(&built, &progress, &CancellationToken::new())
        .await
        .unwrap();
    assert!(pushed.digest.starts_with("sha256:"));
    assert_eq!(pushed.reference, format!("{repository}@{}", pushed.digest));
    assert!(drain(&mut rx).contains("Pushed"));
    let path = repository.trim_start_matches(&format!("{REGISTRY}/"));
    for tag in &request.tags {
        let (_, digest, _) = manifest(REGISTRY, path, tag, DOCKER_MANIFEST).await;
        assert_eq!(digest, pushed.digest, "tag {tag}");
    }

    // A mutable tag moved after verification names the same manifest; so does a local one.
    let (progress, mut rx) = events(Stage::Tag);
    registry
        .move_tags(&pushed, &["staging-latest".to_owned()], &progress)
        .await
        .unwrap();
    assert!(drain(&mut rx).contains(":staging-latest -> sha256:"));
    let (_, digest, _) = manifest(REGISTRY, path, "staging-latest", DOCKER_MANIFEST).await;
    assert_eq!(digest, pushed.digest);
    builder
        .tag(&built, &["local-latest".to_owned()])
        .await
        .unwrap();
    let local = docker
        .inspect_image(&format!("{repository}:local-latest"))
        .await
        .unwrap();
    assert_eq!(local.id.as_deref(), Some(built.id.as_str()));
}

#[tokio::test]
async fn a_failing_step_is_named_with_its_output_and_nothing_is_tagged() {
    let (engine, docker) = engine().await;
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            (
                "Dockerfile",
                "FROM scratch\nCOPY present.txt /present.txt\nCOPY missing-file /x\n",
            ),
            ("present.txt", "here"),
        ],
    );
    let repository = unique_repository(REGISTRY, "fail");
    let request = request(dir.path(), &repository, &["v1.0.0"]);
    let builder = DockerImageBuilder::new(engine);
    let (progress, _rx) = events(Stage::Build);
    let err = builder
        .build(&request, &progress, &CancellationToken::new())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("at Step 3/3 : COPY missing-file /x"), "{err}");
    assert!(err.contains("missing-file"), "{err}");
    assert!(
        err.contains("last") && err.contains("| Step 2/3 : COPY present.txt"),
        "{err}"
    );
    assert!(
        docker
            .inspect_image(&format!("{repository}:v1.0.0"))
            .await
            .is_err(),
        "a failed build must not leave the tag"
    );
    let path = repository.trim_start_matches(&format!("{REGISTRY}/"));
    let tags = reqwest::get(format!("http://{REGISTRY}/v2/{path}/tags/list"))
        .await
        .unwrap();
    assert_eq!(tags.status(), reqwest::StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn several_platforms_are_pushed_as_an_oci_index() {
    let (engine, docker) = engine().await;
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            ("Dockerfile", "FROM scratch\nCOPY hello.txt /hello.txt\n"),
            ("hello.txt", &format!("hello {}", rand::random::<u64>())),
        ],
    );
    let repository = unique_repository(REGISTRY, "multi");
    let mut request = request(dir.path(), &repository, &["v2.0.0", "dev-latest"]);
    request.platforms = vec!["linux/amd64".into(), "linux/arm64".into()];

    let (progress, _rx) = events(Stage::Build);
    let builder = DockerImageBuilder::new(engine.clone());
    let built = builder
        .build(&request, &progress, &CancellationToken::new())
        .await
        .unwrap();
    let local: Vec<(&str, &str)> = built
        .platforms
        .iter()
        .map(|p| (p.platform.as_str(), p.local_tag.as_str()))
        .collect();
    let amd64_tag = format!("{repository}:v2.0.0-linux-amd64");
    let arm64_tag = format!("{repository}:v2.0.0-linux-arm64");
    assert_eq!(
        local,
        [
            ("linux/amd64", amd64_tag.as_str()),
            ("linux/arm64", arm64_tag.as_str())
        ]
    );
    for (platform, architecture) in [(&amd64_tag, "amd64"), (&arm64_tag, "arm64")] {
        let inspect = docker.inspect_image(platform).await.unwrap();
        assert_eq!(
            inspect.architecture.as_deref(),
            Some(architecture),
            "{platform}"
        );
    }

    let (progress, mut rx) = events(Stage::Push);
    let registry = DockerRegistry::new(engine, CredentialSource::anonymous());
    let pushed = registry
        .push(&built, &progress, &CancellationToken::new())
        .await
        .unwrap();
    assert!(drain(&mut rx).contains("image index"));
    let path = repository.trim_start_matches(&format!("{REGISTRY}/"));
    for tag in &request.tags {
        let (content_type, digest, index) = manifest(REGISTRY, path, tag, OCI_INDEX).await;
        assert_eq!(content_type, OCI_INDEX);
        assert_eq!(digest, pushed.digest);
        let mut platforms = BTreeSet::new();
        for entry in index["manifests"].as_array().unwrap() {
            let os = entry["platform"]["os"].as_str().unwrap();
            let architecture = entry["platform"]["architecture"].as_str().unwrap();
            platforms.insert(format!("{os}/{architecture}"));
            // The referenced image really is of that platform.
            let digest = entry["digest"].as_str().unwrap();
            let (_, _, image_manifest) = manifest(REGISTRY, path, digest, DOCKER_MANIFEST).await;
            let config_digest = image_manifest["config"]["digest"].as_str().unwrap();
            let config: serde_json::Value =
                reqwest::get(format!("http://{REGISTRY}/v2/{path}/blobs/{config_digest}"))
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
            assert_eq!(config["architecture"], architecture);
        }
        let expected: BTreeSet<String> = ["linux/amd64", "linux/arm64"].map(String::from).into();
        assert_eq!(platforms, expected);
    }

    // Moving a mutable tag moves the whole index, every platform with it.
    registry
        .move_tags(
            &pushed,
            &["staging-latest".to_owned()],
            &events(Stage::Tag).0,
        )
        .await
        .unwrap();
    let (content_type, digest, _) = manifest(REGISTRY, path, "staging-latest", OCI_INDEX).await;
    assert_eq!((content_type.as_str(), digest), (OCI_INDEX, pushed.digest));
}

#[tokio::test]
async fn a_cancelled_build_stops_and_tags_nothing() {
    let (engine, docker) = engine().await;
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            ("Dockerfile", "FROM scratch\nCOPY a.txt /a.txt\n"),
            ("a.txt", "a"),
        ],
    );
    let repository = unique_repository(REGISTRY, "cancel");
    let request = request(dir.path(), &repository, &["v1.0.0"]);
    let cancel = CancellationToken::new();
    cancel.cancel();
    let (progress, _rx) = events(Stage::Build);
    let err = DockerImageBuilder::new(engine)
        .build(&request, &progress, &cancel)
        .await
        .unwrap_err();
    assert!(matches!(err, kyb_deploy_core::Error::Cancelled), "{err}");
    assert!(
        docker
            .inspect_image(&format!("{repository}:v1.0.0"))
            .await
            .is_err()
    );
}
