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
        "login user:*** failed"
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
