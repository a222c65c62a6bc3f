use super::http::parse_challenge;
use super::*;

#[test]
fn image_names_split_registry_and_path() {
    let n = ImageName::parse("127.0.0.1:5000/kyb-test");
    assert_eq!(
        (n.registry.as_str(), n.path.as_str()),
        ("127.0.0.1:5000", "kyb-test")
    );
    assert_eq!(n.base_url(), "http://127.0.0.1:5000");
    let n = ImageName::parse("ghcr.io/acme/app");
    assert_eq!(
        (n.registry.as_str(), n.path.as_str()),
        ("ghcr.io", "acme/app")
    );
    assert_eq!(n.base_url(), "https://ghcr.io");
    let n = ImageName::parse("localhost/app");
    assert_eq!(n.base_url(), "http://localhost");
    let n = ImageName::parse("acme/app");
    assert_eq!(
        (n.registry.as_str(), n.path.as_str()),
        ("docker.io", "acme/app")
    );
    assert_eq!(n.base_url(), "https://registry-1.docker.io");
    let n = ImageName::parse("app");
    assert_eq!(n.path, "library/app");
    assert_eq!(
        ImageName::parse("registry.example.com:443/a").base_url(),
        "https://registry.example.com:443"
    );
}

#[test]
fn digest_lines_are_recognised() {
    let digest = format!("sha256:{}", "ab".repeat(32));
    assert_eq!(
        parse_digest_line(&format!("v1.2.3: digest: {digest} size: 528")),
        Some((digest.clone(), 528))
    );
    assert_eq!(parse_digest_line("Pushed"), None);
    assert_eq!(parse_digest_line("v1: digest: sha256:short size: 1"), None);
}

#[test]
fn redaction_removes_the_password() {
    let c = Credentials::new("user", "hunter22");
    assert_eq!(
        redact("login user:hunter22 failed", Some(&c)),
        "login user:redacted failed"
    );
    assert_eq!(
        redact("sent Authorization: Basic dXNlcjpodW50ZXIyMg==", None),
        "sent Authorization: Basic redacted"
    );
    assert_eq!(redact("nothing", None), "nothing");
}

#[test]
fn challenges_are_parsed() {
    let (scheme, params) = parse_challenge(
        r#"Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push""#,
    );
    assert_eq!(scheme, "Bearer");
    assert_eq!(params["realm"], "https://auth.example.com/token");
    assert_eq!(params["service"], "registry.example.com");
    assert_eq!(params["scope"], "repository:a/b:pull,push");
    let (scheme, params) = parse_challenge(r#"Basic realm="kyb-test""#);
    assert_eq!(
        (scheme.as_str(), params["realm"].as_str()),
        ("Basic", "kyb-test")
    );
}

#[test]
fn registry_error_bodies_are_summarised() {
    let body = br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}"#;
    assert_eq!(
        http::error_text(body),
        "UNAUTHORIZED: authentication required"
    );
    assert_eq!(http::error_text(b"plain text\n"), "plain text");
}

/// A registry that wants a Bearer token from its token service, which wants Basic
/// credentials: the client follows the challenge and retries with the token.
#[tokio::test]
async fn the_bearer_token_flow_is_followed() {
    use std::collections::HashMap;

    use axum::Router;
    use axum::extract::Query;
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::get;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let realm = format!("http://{address}/token");
    let app = Router::new()
        .route(
            "/v2/",
            get(move |headers: HeaderMap| {
                let realm = realm.clone();
                async move {
                    let authorized = headers
                        .get("authorization")
                        .is_some_and(|v| v == "Bearer tok-123");
                    if authorized {
                        (StatusCode::OK, HeaderMap::new())
                    } else {
                        let mut h = HeaderMap::new();
                        let challenge = format!(
                            r#"Bearer realm="{realm}",service="test-registry",scope="repository:acme/app:pull""#
                        );
                        h.insert("www-authenticate", challenge.parse().unwrap());
                        (StatusCode::UNAUTHORIZED, h)
                    }
                }
            }),
        )
        .route(
            "/token",
            get(
                |headers: HeaderMap, Query(query): Query<HashMap<String, String>>| async move {
                    let basic = headers
                        .get("authorization")
                        .is_some_and(|v| v == "Basic Y2k6cHc=");
                    let scoped = query.get("scope").map(String::as_str)
                        == Some("repository:acme/app:pull,push")
                        && query.get("service").map(String::as_str) == Some("test-registry");
                    if basic && scoped {
                        (StatusCode::OK, r#"{"token":"tok-123"}"#)
                    } else {
                        (StatusCode::UNAUTHORIZED, "{}")
                    }
                },
            ),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });

    let name = ImageName::parse(&format!("{address}/acme/app"));
    let credentials = Credentials::new("ci", "pw");
    let api = http::RegistryApi::new(&name, Some(&credentials));
    let answer = api.send(Method::GET, "", &[], None).await.unwrap();
    assert_eq!(answer.status, reqwest::StatusCode::OK);

    // Without credentials the token service refuses, and the error says so without
    // guessing at a password.
    let err = http::RegistryApi::new(&name, None)
        .send(Method::GET, "", &[], None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("401") && err.contains("without credentials"),
        "{err}"
    );
}

/// A Docker engine and a registry that echo the credentials they received in their error
/// bodies (as some registries and proxies do): the push errors name the registry, the
/// repository and the status, and never carry a credential. The engine is a fake on a TCP
/// port, so no Docker engine is needed.
#[tokio::test]
async fn credentials_echoed_by_peers_never_reach_errors_or_events() {
    use std::sync::Arc;

    use axum::Router;
    use axum::http::{HeaderMap, Method as HttpMethod, StatusCode, Uri};
    use axum::response::IntoResponse;

    use kyb_deploy_core::{BuiltImage, PlatformImage, Registry as _};
    use kyb_deploy_core::{EventSink, Stage};

    const USER: &str = "kyb-ci";
    const PASSWORD: &str = "Pa55-hunter2-7f3a";

    // The registry: challenges for Basic credentials, then accepts the manifest HEAD and
    // refuses the index PUT with an error body quoting the request's Authorization.
    let registry = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let registry_address = registry.local_addr().unwrap();
    let app = Router::new().fallback(|method: HttpMethod, headers: HeaderMap| async move {
        let Some(auth) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
            return (
                StatusCode::UNAUTHORIZED,
                [("www-authenticate", r#"Basic realm="echo""#)],
            )
                .into_response();
        };
        if method == HttpMethod::HEAD {
            return (
                StatusCode::OK,
                [("content-type", "application/vnd.oci.image.manifest.v1+json")],
            )
                .into_response();
        }
        let body = serde_json::json!({"errors": [{
            "code": "MANIFEST_INVALID",
            "message": format!("manifest invalid; request had Authorization: {auth}"),
            "detail": {"Authorization": auth},
        }]});
        (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
    });
    tokio::spawn(async move { axum::serve(registry, app).await });

    // The engine: pushes every tag but `denied`, which fails quoting the credential header
    // it was given (the password inside base64 JSON) and the Authorization it would send.
    let engine = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let engine_address = engine.local_addr().unwrap();
    let engine_auth = Arc::new(std::sync::Mutex::new(String::new()));
    let seen = engine_auth.clone();
    let app = Router::new().fallback(move |uri: Uri, headers: HeaderMap| async move {
        let tag = url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
            .find(|(k, _)| k == "tag")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        let registry_auth = headers
            .get("x-registry-auth")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        seen.lock().unwrap().clone_from(&registry_auth);
        let line = if tag == "denied" {
            let basic = "a3liLWNpOlBhNTUtaHVudGVyMi03ZjNh";
            serde_json::json!({
                "error": format!(
                    "denied: X-Registry-Auth: {registry_auth}\nAuthorization: Basic {basic}"
                )
            })
        } else {
            serde_json::json!({
                "status": format!("{tag}: digest: sha256:{} size: 528", "ab".repeat(32))
            })
        };
        ([("content-type", "application/json")], format!("{line}\n"))
    });
    tokio::spawn(async move { axum::serve(engine, app).await });
    let client = bollard::Docker::connect_with_http(
        &format!("tcp://{engine_address}"),
        30,
        bollard::API_DEFAULT_VERSION,
    )
    .unwrap();
    let engine = DockerEngine {
        client: Arc::new(client),
    };
    let credentials = CredentialSource::with_env(
        &kyb_deploy_core::config::RegistryConfig::default(),
        |name| match name {
            super::super::REGISTRY_USERNAME_ENV => Some(USER.to_owned()),
            super::super::REGISTRY_PASSWORD_ENV => Some(PASSWORD.to_owned()),
            _ => None,
        },
    );
    let registry = DockerRegistry::new(engine, credentials);
    let repository = format!("{registry_address}/acme/app");

    let (sink, mut events) = EventSink::new().channel();
    let progress = sink.for_stage(Stage::Push);
    let cancel = CancellationToken::new();
    let multi_platform = BuiltImage {
        id: format!("sha256:{}", "cd".repeat(32)),
        repository: repository.clone(),
        tags: vec!["v1".into()],
        platforms: vec![PlatformImage {
            platform: "linux/amd64".into(),
            id: format!("sha256:{}", "cd".repeat(32)),
            local_tag: format!("{repository}:v1-linux-amd64"),
        }],
    };
    let index_error = registry
        .push(&multi_platform, &progress, &cancel)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        index_error.contains(&format!("registry {registry_address}"))
            && index_error.contains("acme/app")
            && index_error.contains("PUT manifests/v1 answered HTTP 400")
            && index_error.contains("Authorization: Basic redacted"),
        "{index_error}"
    );

    let denied = BuiltImage {
        tags: vec!["denied".into()],
        platforms: Vec::new(),
        ..multi_platform
    };
    let push_error = registry
        .push(&denied, &progress, &cancel)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        push_error.contains("pushing tag denied: denied: X-Registry-Auth: redacted"),
        "{push_error}"
    );

    // What a peer may quote: the password, Authorization's base64 `user:password`, and the
    // engine's credential header (base64 JSON holding the password).
    let secrets = [
        PASSWORD.to_owned(),
        "a3liLWNpOlBhNTUtaHVudGVyMi03ZjNh".to_owned(),
        engine_auth.lock().unwrap().clone(),
    ];
    assert!(secrets[2].len() > 20, "the engine got no credentials");
    let mut recorded = String::new();
    while let Ok(event) = events.try_recv() {
        recorded.push_str(&serde_json::to_string(&event).unwrap());
    }
    for text in [&index_error, &push_error, &recorded] {
        for secret in &secrets {
            assert!(!text.contains(secret.as_str()), "{secret} in {text}");
        }
    }
}
