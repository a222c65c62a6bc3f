//! `DockerTarget` against the real Docker engine and the local registry (127.0.0.1:5000),
//! running the statically linked `kyb-sample-api` in a `FROM scratch` image.
//!
//! These tests need the engine, the registry and the static binary; they fail (never skip)
//! when one is missing and say how to provide it.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use bollard::Docker;
use bollard::models::ContainerInspectResponse;
use bollard::query_parameters::ListContainersOptions;
use kyb_deploy_core::config::{Config, Environment};
use kyb_deploy_core::{
    CancellationToken, DeployHandle, Event, EventSink, Release, RolloutOutcome, Stage, Target,
    Version,
};
use kyb_deploy_docker::{DockerEngine, DockerTarget};
use kyb_deploy_testkit::{ENGINE_SETUP_HINT, docker};
use tokio::sync::OnceCell;
use tokio::sync::mpsc::UnboundedReceiver;

const REGISTRY: &str = "127.0.0.1:5000";
const LABEL_ENVIRONMENT: &str = "io.kyb-deploy.environment";
const ROLLOUT_LIMIT: Duration = Duration::from_secs(60);

/// The sample image, non-root (`USER 10001:10001`), built once per test run.
static SAMPLE_IMAGE: OnceCell<String> = OnceCell::const_new();
/// The same binary in an image without a `USER`: it runs as root.
static ROOT_IMAGE: OnceCell<String> = OnceCell::const_new();

/// Builds an image of the sample binary from a temporary context.
fn build_image(tag: &str, dockerfile: &str) -> String {
    let context = tempfile::tempdir().unwrap();
    std::fs::copy(
        kyb_deploy_testkit::static_sample_api(),
        context.path().join("kyb-sample-api"),
    )
    .unwrap();
    std::fs::write(context.path().join("Dockerfile"), dockerfile).unwrap();
    docker(&["build", "-q", "-t", tag, &context.path().to_string_lossy()]);
    tag.to_owned()
}

fn dockerfile(user: Option<&str>, label: &str) -> String {
    let user = user.map(|u| format!("USER {u}\n")).unwrap_or_default();
    format!(
        "FROM scratch\nCOPY kyb-sample-api /kyb-sample-api\n{user}EXPOSE 8080\nLABEL io.kyb-deploy.it={label}\nENTRYPOINT [\"/kyb-sample-api\"]\n"
    )
}

async fn sample_image() -> String {
    SAMPLE_IMAGE
        .get_or_init(|| async {
            build_image(
                "kyb-deploy-it/sample-api:latest",
                &dockerfile(Some("10001:10001"), "sample"),
            )
        })
        .await
        .clone()
}

async fn root_image() -> String {
    ROOT_IMAGE
        .get_or_init(|| async {
            build_image(
                "kyb-deploy-it/sample-api-root:latest",
                &dockerfile(None, "root"),
            )
        })
        .await
        .clone()
}

/// An image that exists only in the local registry, referenced by digest: pushed, then
/// removed from the engine, so that deploying it has to pull it.
fn registry_only_image() -> String {
    let tag = format!("{REGISTRY}/kyb-deploy-it/sample-api:{}", random_hex());
    // A unique label gives the image its own id, so removing it removes no other test's.
    build_image(&tag, &dockerfile(Some("10001:10001"), &random_hex()));
    docker(&["push", &tag]);
    let digests = docker(&["inspect", "--format", "{{json .RepoDigests}}", &tag]);
    let digests: Vec<String> = serde_json::from_str(&digests).unwrap();
    let reference = digests
        .into_iter()
        .find(|d| d.starts_with(REGISTRY))
        .expect("a pushed image has a digest of its registry");
    docker(&["rmi", "--no-prune", &tag]);
    reference
}

fn random_hex() -> String {
    format!("{:08x}", rand::random::<u32>())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn engine() -> DockerEngine {
    let engine = DockerEngine::connect().await.unwrap_or_else(|e| {
        panic!("cannot connect to the Docker engine ({e}); {ENGINE_SETUP_HINT}")
    });
    let check = engine.check().await;
    assert!(check.ok, "{}; {ENGINE_SETUP_HINT}", check.describe());
    engine
}

async fn bollard() -> Docker {
    Docker::connect_with_local_defaults()
        .unwrap()
        .negotiate_version()
        .await
        .unwrap()
}

/// One test's environment: a unique name, a free stable port, and containers that are
/// removed when the test ends, whether it passed or not.
struct TestEnv {
    name: String,
    host_port: u16,
    /// Images the test pulled, removed from the engine at the end.
    images: Vec<String>,
}

impl TestEnv {
    fn new(test: &str) -> Self {
        Self {
            name: format!("it-{test}-{}", random_hex()),
            host_port: free_port(),
            images: Vec::new(),
        }
    }

    /// A [`registry_only_image`] that is removed from the engine when the test ends.
    fn registry_image(&mut self) -> String {
        let reference = registry_only_image();
        self.images.push(reference.clone());
        reference
    }

    /// The environment with `env` as its variables and `extra` TOML in its docker section.
    fn environment(&self, env: &[(&str, &str)], extra: &str) -> Environment {
        let vars: String = env.iter().map(|(k, v)| format!("{k} = {v:?}\n")).collect();
        let toml = format!(
            "[environments.{name}]\ntarget = \"docker\"\n[environments.{name}.env]\n{vars}\
             [environments.{name}.docker]\ncontainer = \"kyb-it\"\nhost_port = {port}\n{extra}",
            name = self.name,
            port = self.host_port,
        );
        Config::from_toml(&toml)
            .unwrap()
            .environment(&self.name)
            .unwrap()
    }

    async fn target(&self, env: &[(&str, &str)], extra: &str) -> DockerTarget {
        DockerTarget::new(engine().await, &self.environment(env, extra)).unwrap()
    }

    /// This environment's containers (any state).
    async fn containers(&self) -> Vec<ContainerInspectResponse> {
        let docker = bollard().await;
        let options = ListContainersOptions {
            all: true,
            filters: Some(
                [(
                    "label".to_owned(),
                    vec![format!("{LABEL_ENVIRONMENT}={}", self.name)],
                )]
                .into(),
            ),
            ..ListContainersOptions::default()
        };
        let mut found = Vec::new();
        for summary in docker.list_containers(Some(options)).await.unwrap() {
            let id = summary.id.unwrap();
            found.push(
                docker
                    .inspect_container(
                        &id,
                        None::<bollard::query_parameters::InspectContainerOptions>,
                    )
                    .await
                    .unwrap(),
            );
        }
        found
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.host_port)
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        // A blocking CLI call: Drop cannot await, and it must also run after a failed assert.
        let filter = format!("label={LABEL_ENVIRONMENT}={}", self.name);
        let Ok(output) = Command::new("docker")
            .args(["ps", "-aq", "--filter", &filter])
            .output()
        else {
            return;
        };
        let ids = String::from_utf8_lossy(&output.stdout);
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if !ids.is_empty() {
            let _ = Command::new("docker")
                .args(["rm", "-f", "-v"])
                .args(&ids)
                .output();
        }
        if !self.images.is_empty() {
            let _ = Command::new("docker")
                .args(["rmi", "-f", "--no-prune"])
                .args(&self.images)
                .output();
        }
    }
}

fn release(version: &str, image: &str) -> Release {
    Release::new(Version::parse(version).unwrap(), image)
}

/// Waits for a rollout, reporting into `sink`.
async fn wait(target: &DockerTarget, handle: &DeployHandle, sink: &EventSink) -> RolloutOutcome {
    let progress = sink.for_stage(Stage::Wait);
    tokio::time::timeout(
        ROLLOUT_LIMIT,
        target.wait(handle, &progress, &CancellationToken::new()),
    )
    .await
    .expect("the rollout ends within a minute")
    .unwrap()
}

/// The version `/status` reports at `base` (no trailing slash).
async fn status_version(base: &str) -> String {
    let url = format!("{}/status", base.trim_end_matches('/'));
    let body: serde_json::Value = reqwest::get(&url)
        .await
        .unwrap_or_else(|e| panic!("GET {url} failed: {e}"))
        .json()
        .await
        .unwrap();
    body["version"].as_str().unwrap().to_owned()
}

fn drain(rx: &mut UnboundedReceiver<Event>) -> Vec<String> {
    let mut events = Vec::new();
    while let Ok(event) = rx.try_recv() {
        events.push(serde_json::to_string(&event).unwrap());
    }
    events
}

fn env_of(info: &ContainerInspectResponse) -> BTreeMap<String, String> {
    info.config
        .as_ref()
        .and_then(|c| c.env.clone())
        .unwrap_or_default()
        .iter()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn label<'a>(info: &'a ContainerInspectResponse, key: &str) -> Option<&'a str> {
    info.config
        .as_ref()?
        .labels
        .as_ref()?
        .get(key)
        .map(String::as_str)
}

#[tokio::test]
async fn deploys_beside_the_old_release_promotes_and_survives_a_crashing_one() {
    let mut test = TestEnv::new("promote");
    let v1_image = test.registry_image();
    let target = test.target(&[("KYB_SAMPLE_VERSION", "v1")], "").await;
    let (sink, mut rx) = EventSink::new().channel();

    let checks = target.preflight().await;
    assert!(checks.iter().all(|c| c.ok), "{checks:?}");
    assert_eq!(target.current_release().await.unwrap(), None);
    let v1 = release("v1", &v1_image);
    let plan = target.plan(&v1).await.unwrap();
    assert!(
        plan.changes
            .iter()
            .any(|c| c.field == "image" && c.to.as_deref() == Some(v1_image.as_str())),
        "{plan:?}"
    );

    // v1: pulled by digest from the registry, started as a candidate on an ephemeral port.
    let handle = target.deploy(&v1).await.unwrap();
    let candidate = handle
        .candidate_endpoint
        .clone()
        .expect("a candidate endpoint");
    assert_eq!(candidate.host_str(), Some("127.0.0.1"));
    assert_ne!(candidate.port(), Some(test.host_port));
    assert_eq!(
        wait(&target, &handle, &sink).await,
        RolloutOutcome::Completed
    );
    assert_eq!(status_version(candidate.as_str()).await, "v1");
    assert!(
        reqwest::get(test.url("/status")).await.is_err(),
        "nothing serves the stable port before the promotion"
    );

    target
        .promote(&handle, &sink.for_stage(Stage::Promote))
        .await
        .unwrap();
    assert_eq!(status_version(&test.url("")).await, "v1");
    assert_eq!(target.current_release().await.unwrap(), Some(v1.clone()));
    let description = target.describe().await.unwrap();
    assert_eq!(
        description.endpoint.as_ref().map(|u| u.as_str()),
        Some(test.url("/").as_str())
    );

    // Exactly one container remains: the hardened serving one.
    let containers = test.containers().await;
    assert_eq!(containers.len(), 1, "the candidate was removed");
    let serving = &containers[0];
    assert_eq!(label(serving, "io.kyb-deploy.role"), Some("serving"));
    assert_eq!(label(serving, "io.kyb-deploy.version"), Some("v1"));
    assert_eq!(
        label(serving, "io.kyb-deploy.image"),
        Some(v1_image.as_str())
    );
    assert_eq!(
        label(serving, "org.opencontainers.image.version"),
        Some("v1")
    );
    let host = serving.host_config.clone().unwrap();
    assert_eq!(host.readonly_rootfs, Some(true));
    assert_eq!(host.cap_drop, Some(vec!["ALL".to_owned()]));
    assert!(
        host.security_opt
            .unwrap_or_default()
            .iter()
            .any(|o| o.starts_with("no-new-privileges")),
    );
    let user = serving
        .config
        .as_ref()
        .unwrap()
        .user
        .clone()
        .unwrap_or_default();
    assert_eq!(user, "10001:10001", "runs as the image's non-root user");
    assert_eq!(
        env_of(serving).get("PORT").map(String::as_str),
        Some("8080")
    );
    let serving_id = serving.id.clone().unwrap();

    // v2 crashes 0.1 s after it starts: the rollout fails, v1 keeps serving untouched.
    let crashing = test
        .target(
            &[
                ("KYB_SAMPLE_VERSION", "v2"),
                ("KYB_SAMPLE_FAULT_EXIT_AFTER", "0.1"),
            ],
            "",
        )
        .await;
    let v2 = release("v2", &sample_image().await);
    let handle = crashing.deploy(&v2).await.unwrap();
    let RolloutOutcome::Failed { reason, .. } = wait(&crashing, &handle, &sink).await else {
        panic!("a crashing release must not complete");
    };
    assert!(reason.contains("exited with code 3"), "{reason}");
    assert!(reason.contains("removed the failed candidate"), "{reason}");
    assert!(reason.contains("v1"), "names what still serves: {reason}");
    assert_eq!(status_version(&test.url("")).await, "v1");
    assert_eq!(target.current_release().await.unwrap(), Some(v1.clone()));
    let containers = test.containers().await;
    assert_eq!(containers.len(), 1, "the failed candidate was removed");
    assert_eq!(containers[0].id.as_deref(), Some(serving_id.as_str()));

    let history = target.history().await.unwrap();
    assert_eq!(history.len(), 1);
    assert!(history[0].active);
    assert_eq!(history[0].release, v1);

    // Rolling back to the release that serves keeps its container.
    let handle = target.rollback(&v1).await.unwrap();
    assert_eq!(
        wait(&target, &handle, &sink).await,
        RolloutOutcome::Completed
    );
    target
        .promote(&handle, &sink.for_stage(Stage::Promote))
        .await
        .unwrap();
    let containers = test.containers().await;
    assert_eq!(containers.len(), 1);
    assert_eq!(containers[0].id.as_deref(), Some(serving_id.as_str()));
    assert_eq!(status_version(&test.url("")).await, "v1");

    let events = drain(&mut rx);
    assert!(
        events.iter().any(|e| e.contains("accepts connections")),
        "{events:#?}"
    );
}

#[tokio::test]
async fn a_new_release_replaces_the_serving_one() {
    let test = TestEnv::new("replace");
    let image = sample_image().await;
    let sink = EventSink::new();
    for version in ["v1", "v2"] {
        let target = test.target(&[("KYB_SAMPLE_VERSION", version)], "").await;
        let release = release(version, &image);
        let handle = target.deploy(&release).await.unwrap();
        assert_eq!(
            wait(&target, &handle, &sink).await,
            RolloutOutcome::Completed
        );
        target
            .promote(&handle, &sink.for_stage(Stage::Promote))
            .await
            .unwrap();
        assert_eq!(status_version(&test.url("")).await, version);
        assert_eq!(target.current_release().await.unwrap(), Some(release));
    }
    let containers = test.containers().await;
    assert_eq!(containers.len(), 1, "the v1 container was removed");
    assert_eq!(label(&containers[0], "io.kyb-deploy.version"), Some("v2"));
    let restart = containers[0]
        .host_config
        .as_ref()
        .and_then(|h| h.restart_policy.clone())
        .and_then(|p| p.name)
        .map(|n| n.to_string());
    assert_eq!(restart.as_deref(), Some("unless-stopped"));
}

/// Kills the first running serving container of `version` in `environment`, as soon as it
/// appears: a release that dies right after it took over the stable port.
async fn kill_serving_container_of(environment: String, version: &'static str) {
    let docker = bollard().await;
    let options = ListContainersOptions {
        filters: Some(
            [(
                "label".to_owned(),
                vec![
                    format!("{LABEL_ENVIRONMENT}={environment}"),
                    "io.kyb-deploy.role=serving".to_owned(),
                    format!("io.kyb-deploy.version={version}"),
                ],
            )]
            .into(),
        ),
        ..ListContainersOptions::default()
    };
    loop {
        let running = docker.list_containers(Some(options.clone())).await.unwrap();
        if let Some(id) = running.into_iter().find_map(|c| c.id) {
            docker
                .kill_container(&id, None::<bollard::query_parameters::KillContainerOptions>)
                .await
                .unwrap();
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_failed_promotion_restarts_the_previous_release() {
    let test = TestEnv::new("restore");
    let image = sample_image().await;
    let sink = EventSink::new();
    let v1_target = test.target(&[("KYB_SAMPLE_VERSION", "v1")], "").await;
    let v1 = release("v1", &image);
    let handle = v1_target.deploy(&v1).await.unwrap();
    assert_eq!(
        wait(&v1_target, &handle, &sink).await,
        RolloutOutcome::Completed
    );
    v1_target
        .promote(&handle, &sink.for_stage(Stage::Promote))
        .await
        .unwrap();
    let v1_id = test.containers().await[0].id.clone().unwrap();

    // v2 passes as a candidate, but its serving container dies once it has started.
    let v2_target = test.target(&[("KYB_SAMPLE_VERSION", "v2")], "").await;
    let handle = v2_target.deploy(&release("v2", &image)).await.unwrap();
    assert_eq!(
        wait(&v2_target, &handle, &sink).await,
        RolloutOutcome::Completed
    );
    let killer = tokio::spawn(kill_serving_container_of(test.name.clone(), "v2"));
    let error = tokio::time::timeout(
        ROLLOUT_LIMIT,
        v2_target.promote(&handle, &sink.for_stage(Stage::Promote)),
    )
    .await
    .expect("the promotion ends within a minute")
    .expect_err("a serving container that dies fails the promotion");
    killer.await.unwrap();
    let message = error.to_string();
    assert!(
        message.contains("restarted the previous serving container"),
        "{message}"
    );
    assert!(message.contains("serves again"), "{message}");

    // The very same v1 container serves again; the dead v2 container is gone.
    assert_eq!(status_version(&test.url("")).await, "v1");
    assert_eq!(v1_target.current_release().await.unwrap(), Some(v1.clone()));
    let serving: Vec<_> = test
        .containers()
        .await
        .into_iter()
        .filter(|c| label(c, "io.kyb-deploy.role") == Some("serving"))
        .collect();
    assert_eq!(serving.len(), 1, "only the restored v1 serves");
    assert_eq!(serving[0].id.as_deref(), Some(v1_id.as_str()));

    // The pipeline then rolls back to v1, which keeps its container and removes the
    // leftover v2 candidate.
    let handle = v1_target.rollback(&v1).await.unwrap();
    assert_eq!(
        wait(&v1_target, &handle, &sink).await,
        RolloutOutcome::Completed
    );
    let containers = test.containers().await;
    assert_eq!(containers.len(), 1);
    assert_eq!(containers[0].id.as_deref(), Some(v1_id.as_str()));
}

#[tokio::test]
async fn a_promotion_onto_a_port_held_by_another_process_changes_nothing() {
    let test = TestEnv::new("held");
    let target = test.target(&[("KYB_SAMPLE_VERSION", "v1")], "").await;
    let sink = EventSink::new();
    let handle = target
        .deploy(&release("v1", &sample_image().await))
        .await
        .unwrap();
    assert_eq!(
        wait(&target, &handle, &sink).await,
        RolloutOutcome::Completed
    );
    let _holder = std::net::TcpListener::bind(("127.0.0.1", test.host_port)).unwrap();
    let error = target
        .promote(&handle, &sink.for_stage(Stage::Promote))
        .await
        .expect_err("the stable port is taken");
    let message = format!("{error} {:?}", std::error::Error::source(&error));
    assert!(message.contains(&test.host_port.to_string()), "{message}");
    assert!(
        message.contains("no release served the environment before"),
        "{message}"
    );
    assert_eq!(target.current_release().await.unwrap(), None);
    assert!(
        test.containers()
            .await
            .iter()
            .all(|c| label(c, "io.kyb-deploy.role") == Some("candidate")),
        "the serving container that could not start was removed"
    );
}

#[tokio::test]
async fn secrets_reach_the_container_and_nothing_else() {
    let test = TestEnv::new("secrets");
    let secret = format!("kyb-it-secret-{}", random_hex());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("api-token");
    std::fs::write(&file, format!("{secret}\n")).unwrap();
    let extra = format!(
        "[environments.{}.docker.secrets.API_TOKEN]\nfile = {:?}\n",
        test.name,
        file.display().to_string()
    );
    let target = test.target(&[("KYB_SAMPLE_VERSION", "v1")], &extra).await;
    let (sink, mut rx) = EventSink::new().channel();
    let v1 = release("v1", &sample_image().await);

    let checks = target.preflight().await;
    assert!(checks.iter().all(|c| c.ok), "{checks:?}");
    let plan = target.plan(&v1).await.unwrap();
    let handle = target.deploy(&v1).await.unwrap();
    let outcome = wait(&target, &handle, &sink).await;
    assert_eq!(outcome, RolloutOutcome::Completed);
    target
        .promote(&handle, &sink.for_stage(Stage::Promote))
        .await
        .unwrap();

    let containers = test.containers().await;
    assert_eq!(containers.len(), 1);
    let env = env_of(&containers[0]);
    assert_eq!(
        env.get("API_TOKEN"),
        Some(&secret),
        "the value is the file's, trimmed"
    );
    assert_eq!(
        label(&containers[0], "io.kyb-deploy.secret-keys"),
        Some("API_TOKEN")
    );

    let mut texts = drain(&mut rx);
    texts.extend([
        format!("{target:?}"),
        format!("{handle:?}"),
        format!("{outcome:?}"),
        format!("{plan:?}"),
        format!("{:?}", target.describe().await.unwrap()),
        format!("{:?}", target.history().await.unwrap()),
        format!("{:?}", target.plan(&v1).await.unwrap()),
        format!("{:?}", target.preflight().await),
    ]);

    // A crashing release with the secret: its failure reason must not carry the value.
    let crashing = test
        .target(
            &[
                ("KYB_SAMPLE_VERSION", "v2"),
                ("KYB_SAMPLE_FAULT_EXIT_AFTER", "0.1"),
            ],
            &extra,
        )
        .await;
    let handle = crashing
        .deploy(&release("v2", &sample_image().await))
        .await
        .unwrap();
    let outcome = wait(&crashing, &handle, &sink).await;
    assert!(
        matches!(outcome, RolloutOutcome::Failed { .. }),
        "{outcome:?}"
    );
    texts.push(format!("{outcome:?}"));
    texts.extend(drain(&mut rx));

    // A secret whose source is missing: the error names the secret and its source.
    let missing_var = format!("KYB_IT_MISSING_{}", random_hex().to_uppercase());
    let missing = test
        .target(
            &[("KYB_SAMPLE_VERSION", "v3")],
            &format!(
                "[environments.{}.docker.secrets.API_TOKEN]\nenv = {missing_var:?}\n",
                test.name
            ),
        )
        .await;
    let error = missing
        .deploy(&release("v3", &sample_image().await))
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(message.contains("API_TOKEN"), "{message}");
    assert!(message.contains(&missing_var), "{message}");
    let failed_check = missing.preflight().await;
    assert!(
        failed_check
            .iter()
            .any(|c| !c.ok && c.name == "docker secrets")
    );
    texts.push(format!("{error:?}"));

    assert!(texts.len() > 10);
    for text in &texts {
        assert!(!text.contains(&secret), "the secret leaked into: {text}");
    }
    assert!(
        texts.iter().any(|t| t.contains("API_TOKEN")),
        "keys may be named"
    );
}

#[tokio::test]
async fn refuses_an_image_that_runs_as_root() {
    let test = TestEnv::new("root");
    let image = root_image().await;
    let target = test.target(&[("KYB_SAMPLE_VERSION", "v1")], "").await;
    let error = target
        .deploy(&release("v1", &image))
        .await
        .expect_err("a root image is refused");
    let message = error.to_string();
    assert!(message.contains("runs as root"), "{message}");
    assert!(
        message.contains("non_root"),
        "names the setting that relaxes it: {message}"
    );
    assert!(test.containers().await.is_empty(), "nothing was started");

    // Relaxed in the configuration, the same image runs (still without capabilities).
    let relaxed = format!(
        "[environments.{}.docker.security]\nnon_root = false\n",
        test.name
    );
    let target = test.target(&[("KYB_SAMPLE_VERSION", "v1")], &relaxed).await;
    let handle = target.deploy(&release("v1", &image)).await.unwrap();
    assert_eq!(
        wait(&target, &handle, &EventSink::new()).await,
        RolloutOutcome::Completed
    );
}

#[tokio::test]
async fn a_missing_image_is_an_error_naming_it() {
    let test = TestEnv::new("missing");
    let target = test.target(&[], "").await;
    let reference = format!("{REGISTRY}/kyb-deploy-it/never-pushed:{}", random_hex());
    let error = target
        .deploy(&release("v1", &reference))
        .await
        .expect_err("a missing image fails the deployment");
    assert!(error.to_string().contains(&reference), "{error}");
    assert!(test.containers().await.is_empty());
}

#[tokio::test]
async fn preflight_names_who_holds_the_port_and_config_needs_the_docker_section() {
    let test = TestEnv::new("port");
    let _holder = std::net::TcpListener::bind(("127.0.0.1", test.host_port)).unwrap();
    let target = test.target(&[], "").await;
    let checks = target.preflight().await;
    let port = checks
        .iter()
        .find(|c| c.name == "docker host port")
        .expect("a port check");
    assert!(!port.ok, "{port:?}");
    assert!(
        port.detail.contains(&test.host_port.to_string()),
        "{port:?}"
    );
    assert!(
        port.fix
            .as_deref()
            .unwrap_or_default()
            .contains("host_port"),
        "{port:?}"
    );

    let mut environment = test.environment(&[], "");
    environment.settings.sections.remove("docker");
    let error = DockerTarget::new(engine().await, &environment).unwrap_err();
    assert!(
        error
            .to_string()
            .contains(&format!("environments.{}.docker", test.name)),
        "{error}"
    );
    assert!(error.is_usage());
}
