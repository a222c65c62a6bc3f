//! Pushing to a registry that requires a password: the right one works, a wrong one fails
//! with an error that names the registry, the repository and the HTTP status, and neither
//! password appears in any error, event or debug output.

use std::process::Stdio;
use std::time::Duration;

use kyb_deploy_core::config::RegistryConfig;
use kyb_deploy_core::{CancellationToken, ImageBuilder, Registry, Stage};
use kyb_deploy_docker::{
    CredentialSource, DockerImageBuilder, DockerRegistry, REGISTRY_PASSWORD_ENV,
    REGISTRY_USERNAME_ENV,
};
use tokio::process::{Child, Command};

use super::{SETUP, drain, engine, events, request, unique_repository, write};

const USER: &str = "kyb-ci";
const RIGHT: &str = "Right-Pa55word-7f3a";
const WRONG: &str = "Wrong-Pa55word-91c2";

/// A registry with htpasswd authentication on a free port; killed when dropped.
struct AuthRegistry {
    _process: Child,
    _dir: tempfile::TempDir,
    address: String,
}

async fn start_registry() -> AuthRegistry {
    let dir = tempfile::tempdir().unwrap();
    let hash = bcrypt::hash(RIGHT, 4).unwrap();
    let htpasswd = dir.path().join("htpasswd");
    std::fs::write(&htpasswd, format!("{USER}:{hash}\n")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = format!("127.0.0.1:{port}");
    let config = dir.path().join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: {address}\nauth:\n  htpasswd:\n    realm: kyb-test\n    path: {}\n",
            dir.path().join("data").display(),
            htpasswd.display()
        ),
    )
    .unwrap();
    let process = Command::new("docker-registry")
        .arg("serve")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start docker-registry: {e}; {SETUP}"));
    for _ in 0..100 {
        if let Ok(r) = reqwest::get(format!("http://{address}/v2/")).await {
            assert_eq!(r.status(), reqwest::StatusCode::UNAUTHORIZED);
            return AuthRegistry {
                _process: process,
                _dir: dir,
                address,
            };
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the test registry did not start on {address}");
}

fn credentials(password: &'static str) -> CredentialSource {
    CredentialSource::with_env(&RegistryConfig::default(), move |name| match name {
        REGISTRY_USERNAME_ENV => Some(USER.to_owned()),
        REGISTRY_PASSWORD_ENV => Some(password.to_owned()),
        _ => None,
    })
}

fn assert_no_password(what: &str, text: &str) {
    for password in [RIGHT, WRONG] {
        assert!(
            !text.contains(password),
            "a password leaked into {what}: {text}"
        );
    }
}

#[tokio::test]
async fn passwords_never_reach_errors_events_or_debug_output() {
    let (engine, _docker) = engine().await;
    let registry = start_registry().await;
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            ("Dockerfile", "FROM scratch\nCOPY data.txt /data.txt\n"),
            ("data.txt", &format!("data {}", rand::random::<u64>())),
        ],
    );
    let repository = unique_repository(&registry.address, "auth");
    // Two platforms, so that the push also talks to the registry API itself (manifest
    // descriptors, the index) with the credentials, not only through the engine.
    let mut request = request(dir.path(), &repository, &["v3.0.0"]);
    request.platforms = vec!["linux/amd64".into(), "linux/arm64".into()];
    let builder = DockerImageBuilder::new(engine.clone());
    let (progress, _rx) = events(Stage::Build);
    let built = builder
        .build(&request, &progress, &CancellationToken::new())
        .await
        .unwrap();

    let (progress, mut rx) = events(Stage::Push);
    let right = DockerRegistry::new(engine.clone(), credentials(RIGHT));
    let pushed = right
        .push(&built, &progress, &CancellationToken::new())
        .await
        .unwrap_or_else(|e| panic!("push with the right password failed: {e}"));
    assert!(pushed.digest.starts_with("sha256:"));
    assert_no_password("the events of a successful push", &drain(&mut rx));
    assert_no_password("the registry's debug output", &format!("{right:?}"));

    let (progress, mut rx) = events(Stage::Push);
    let wrong = DockerRegistry::new(engine, credentials(WRONG));
    let err = wrong
        .push(&built, &progress, &CancellationToken::new())
        .await
        .unwrap_err();
    let text = err.to_string();
    let path = repository.rsplit_once('/').unwrap().1;
    assert!(text.contains(&registry.address), "{text}");
    assert!(text.contains(path), "{text}");
    assert!(text.contains("401"), "{text}");
    assert_no_password("the error", &text);
    assert_no_password("the error's debug output", &format!("{err:?}"));
    assert_no_password("the events of a failed push", &drain(&mut rx));
    let resolved = credentials(WRONG)
        .resolve(&registry.address)
        .await
        .unwrap()
        .unwrap();
    assert_no_password(
        "credentials' debug output",
        &format!("{resolved:?} {resolved}"),
    );
}
