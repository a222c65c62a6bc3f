use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;

use super::*;

/// A fake environment and a temporary home with a Docker config directory.
struct Fixture {
    dir: tempfile::TempDir,
    vars: HashMap<String, String>,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("home/.docker")).unwrap();
        std::fs::create_dir_all(dir.path().join("bin")).unwrap();
        let mut vars = HashMap::new();
        vars.insert("HOME".into(), dir.path().join("home").display().to_string());
        vars.insert("PATH".into(), dir.path().join("bin").display().to_string());
        Self { dir, vars }
    }

    fn set(mut self, name: &str, value: &str) -> Self {
        self.vars.insert(name.into(), value.into());
        self
    }

    fn docker_config(self, json: &str) -> Self {
        std::fs::write(self.dir.path().join("home/.docker/config.json"), json).unwrap();
        self
    }

    /// A credential helper that answers for `server` only and records what it was asked.
    fn helper(self, name: &str, server: &str, user: &str, secret: &str) -> Self {
        let log = self.dir.path().join(format!("{name}.log"));
        let script = format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 2\nread -r server\necho \"$server\" >> '{}'\n\
             if [ \"$server\" = '{server}' ]; then\n\
             printf '{{\"ServerURL\":\"%s\",\"Username\":\"{user}\",\"Secret\":\"{secret}\"}}' \"$server\"\n\
             else echo 'credentials not found in native keychain'; exit 1; fi\n",
            log.display()
        );
        let path = self
            .dir
            .path()
            .join(format!("bin/docker-credential-{name}"));
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        self
    }

    fn source(&self, config: &RegistryConfig) -> CredentialSource {
        let vars = self.vars.clone();
        CredentialSource::with_env(config, move |name| vars.get(name).cloned())
    }

    async fn resolve(&self, registry: &str) -> Result<Option<Credentials>> {
        self.source(&RegistryConfig::default())
            .resolve(registry)
            .await
    }
}

fn user_pass(c: &Credentials) -> (&str, &str) {
    (c.username(), c.password())
}

#[tokio::test]
async fn explicit_environment_comes_first() {
    let f = Fixture::new()
        .set(REGISTRY_USERNAME_ENV, "env-user")
        .set(REGISTRY_PASSWORD_ENV, "env-pass")
        .docker_config(r#"{"auths":{"ghcr.io":{"auth":"ZmlsZTpmaWxlLXBhc3M="}}}"#);
    let c = f.resolve("ghcr.io").await.unwrap().unwrap();
    assert_eq!(user_pass(&c), ("env-user", "env-pass"));
    assert!(c.origin().contains(REGISTRY_PASSWORD_ENV));
}

#[tokio::test]
async fn configured_user_with_a_password_file() {
    let f = Fixture::new();
    let file = f.dir.path().join("password");
    std::fs::write(&file, "file-pass\n").unwrap();
    let config = RegistryConfig {
        username: Some("cfg-user".into()),
        password_file: Some(file),
    };
    let c = f.source(&config).resolve("ghcr.io").await.unwrap().unwrap();
    assert_eq!(user_pass(&c), ("cfg-user", "file-pass"));

    // The environment overrides the configured user name.
    let f = f.set(REGISTRY_USERNAME_ENV, "env-user");
    let c = f.source(&config).resolve("ghcr.io").await.unwrap().unwrap();
    assert_eq!(user_pass(&c), ("env-user", "file-pass"));
}

#[tokio::test]
async fn half_explicit_credentials_are_a_configuration_error() {
    let f = Fixture::new().set(REGISTRY_USERNAME_ENV, "someone");
    let err = f.resolve("ghcr.io").await.unwrap_err();
    assert!(err.is_usage());
    assert!(err.to_string().contains(REGISTRY_PASSWORD_ENV), "{err}");

    let f = Fixture::new().set(REGISTRY_PASSWORD_ENV, "secret-only");
    let err = f.resolve("ghcr.io").await.unwrap_err().to_string();
    assert!(
        err.contains(REGISTRY_USERNAME_ENV) && !err.contains("secret-only"),
        "{err}"
    );
}

#[tokio::test]
async fn auths_match_with_or_without_scheme_and_both_forms() {
    // "alice:pw-a" and "bob:pw-b" in base64.
    let f = Fixture::new().docker_config(
        r#"{"auths":{
            "https://127.0.0.1:5000":{"auth":"YWxpY2U6cHctYQ=="},
            "ghcr.io":{"username":"bob","password":"pw-b"},
            "https://index.docker.io/v1/":{"auth":"aHViOnB3LWg"}
        }}"#,
    );
    let c = f.resolve("127.0.0.1:5000").await.unwrap().unwrap();
    assert_eq!(user_pass(&c), ("alice", "pw-a"));
    let c = f.resolve("ghcr.io").await.unwrap().unwrap();
    assert_eq!(user_pass(&c), ("bob", "pw-b"));
    let c = f.resolve("docker.io").await.unwrap().unwrap();
    assert_eq!(user_pass(&c), ("hub", "pw-h"));
    assert!(f.resolve("quay.io").await.unwrap().is_none());
}

#[tokio::test]
async fn docker_config_env_names_the_directory() {
    let f = Fixture::new();
    let dir = f.dir.path().join("elsewhere");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("config.json"),
        r#"{"auths":{"ghcr.io":{"username":"u","password":"p"}}}"#,
    )
    .unwrap();
    let f = f.set("DOCKER_CONFIG", &dir.display().to_string());
    assert!(f.resolve("ghcr.io").await.unwrap().is_some());
}

#[tokio::test]
async fn credential_helpers_come_before_auths_and_fall_back_to_them() {
    let f = Fixture::new()
        .helper("fake", "ghcr.io", "helper-user", "helper-secret")
        .docker_config(
            r#"{"credHelpers":{"ghcr.io":"fake","quay.io":"fake"},
                "auths":{"ghcr.io":{"auth":"YWxpY2U6cHctYQ=="},"quay.io":{"auth":"YWxpY2U6cHctYQ=="}}}"#,
        );
    let c = f.resolve("ghcr.io").await.unwrap().unwrap();
    assert_eq!(user_pass(&c), ("helper-user", "helper-secret"));
    assert!(c.origin().contains("docker-credential-fake"));
    // The helper does not know quay.io: the auths entry answers.
    let c = f.resolve("quay.io").await.unwrap().unwrap();
    assert_eq!(user_pass(&c), ("alice", "pw-a"));
    let asked = std::fs::read_to_string(f.dir.path().join("fake.log")).unwrap();
    assert_eq!(asked, "ghcr.io\nquay.io\n");
}

#[tokio::test]
async fn the_credentials_store_is_asked_with_the_docker_hub_server_url() {
    let f = Fixture::new()
        .helper("store", DOCKER_HUB_SERVER, "hub-user", "hub-secret")
        .docker_config(r#"{"credsStore":"store"}"#);
    let c = f.resolve("docker.io").await.unwrap().unwrap();
    assert_eq!(user_pass(&c), ("hub-user", "hub-secret"));
    assert!(f.resolve("ghcr.io").await.unwrap().is_none());
}

#[tokio::test]
async fn a_missing_helper_says_what_to_install() {
    let f = Fixture::new().docker_config(r#"{"credsStore":"desktop"}"#);
    let err = f.resolve("ghcr.io").await.unwrap_err().to_string();
    assert!(err.contains("docker-credential-desktop"), "{err}");
}

#[tokio::test]
async fn nothing_configured_is_anonymous() {
    let f = Fixture::new();
    assert!(f.resolve("ghcr.io").await.unwrap().is_none());
    assert!(
        CredentialSource::anonymous()
            .resolve("ghcr.io")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_bad_auth_entry_does_not_echo_it() {
    let f = Fixture::new().docker_config(r#"{"auths":{"ghcr.io":{"auth":"not*base64!"}}}"#);
    let err = f.resolve("ghcr.io").await.unwrap_err().to_string();
    assert!(
        err.contains("ghcr.io") && !err.contains("not*base64"),
        "{err}"
    );
}

#[test]
fn debug_and_display_hide_the_password() {
    let c = Credentials::new("ci-user", "pa55word");
    let shown = format!("{c:?} {c} {c:#?}");
    assert!(!shown.contains("pa55word"), "{shown}");
    assert!(
        shown.contains("ci-user") && shown.contains("***"),
        "{shown}"
    );
}

#[test]
fn base64_decodes_with_and_without_padding() {
    assert_eq!(base64_decode("YWxpY2U6cHctYQ==").unwrap(), b"alice:pw-a");
    assert_eq!(base64_decode("YWxpY2U6cHctYQ").unwrap(), b"alice:pw-a");
    assert_eq!(base64_decode("").unwrap(), b"");
    assert!(base64_decode("a*b").is_none());
}

#[test]
fn registry_keys() {
    assert_eq!(registry_key("https://ghcr.io/v2/"), "ghcr.io");
    assert_eq!(registry_key(DOCKER_HUB_SERVER), "index.docker.io");
    assert_eq!(registry_key("docker.io"), "index.docker.io");
    assert_eq!(registry_key("127.0.0.1:5000"), "127.0.0.1:5000");
}

#[tokio::test]
async fn a_malformed_config_file_error_quotes_no_credential() {
    // An `auth` given as a bare string where an object belongs: base64 of "user:hunter2".
    let f = Fixture::new().docker_config(r#"{"auths":{"ghcr.io":"dXNlcjpodW50ZXIy"}}"#);
    let err = f
        .source(&RegistryConfig::default())
        .resolve("ghcr.io")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("line 1"), "{err}");
    assert!(!err.contains("dXNlcjpodW50ZXIy"), "{err}");
}
