use proptest::prelude::*;

use super::*;

/// Standard base64 with padding, for building `Basic` credentials.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn urls_lose_userinfo_and_secret_parameters_only() {
    let cases = [
        (
            "https://ci:hunter2@api.example.com:8443/health",
            "https://redacted:redacted@api.example.com:8443/health",
        ),
        (
            "https://ghp_abc123@github.com/acme/app",
            "https://redacted@github.com/acme/app",
        ),
        (
            "https://s3.example.com/b/o?X-Amz-Credential=AKIA%2F2024&X-Amz-Signature=ff00&X-Amz-Expires=60",
            "https://s3.example.com/b/o?X-Amz-Credential=redacted&X-Amz-Signature=redacted&X-Amz-Expires=60",
        ),
        (
            "https://x.example.com/?token=t&access_token=a&key=k&secret=s&signature=g&password=p&sig=q&page=2",
            "https://x.example.com/?token=redacted&access_token=redacted&key=redacted&secret=redacted&signature=redacted&password=redacted&sig=redacted&page=2",
        ),
        (
            "https://app.example.com/cb#access_token=abc&state=xyz",
            "https://app.example.com/cb#access_token=redacted&state=xyz",
        ),
        (
            "http://127.0.0.1:8080/ready?verbose=1&q=a%20b",
            "http://127.0.0.1:8080/ready?verbose=1&q=a%20b",
        ),
        ("https://example.com/", "https://example.com/"),
    ];
    for (input, expected) in cases {
        assert_eq!(redact_url(&Url::parse(input).unwrap()), expected, "{input}");
    }
}

#[test]
fn every_secret_form_in_text_is_redacted() {
    let cases = [
        (
            "Authorization: Basic Y2k6aHVudGVyMg==",
            "Authorization: Basic redacted",
        ),
        (
            "authorization: bearer eyJhbGciOi.x.y",
            "authorization: bearer redacted",
        ),
        (
            "PROXY-AUTHORIZATION: Negotiate YIIB\nnext line",
            "PROXY-AUTHORIZATION: Negotiate redacted\nnext line",
        ),
        (
            "Authorization: opaque-secret-value",
            "Authorization: redacted",
        ),
        (
            r#"{"code":"DENIED","Authorization": "Bearer tok-123"}"#,
            r#"{"code":"DENIED","Authorization": "Bearer redacted"}"#,
        ),
        (
            r#"{\"authorization\":\"Basic Y2k6cHc=\"}"#,
            r#"{\"authorization\":\"Basic redacted\"}"#,
        ),
        (
            "map[Authorization:[Basic Y2k6cHc=] User-Agent:[kyb]]",
            "map[Authorization:[Basic redacted] User-Agent:[kyb]]",
        ),
        (
            r#"Authorization: Digest username="ci", response="6629fae4""#,
            "Authorization: Digest redacted",
        ),
        ("got Basic Y2k6aHVudGVyMg== here", "got Basic redacted here"),
        (
            "sent Bearer tok-123, rejected",
            "sent Bearer redacted, rejected",
        ),
        (
            "GET https://ci:hunter2@registry.example.com/v2/ failed",
            "GET https://redacted:redacted@registry.example.com/v2/ failed",
        ),
        (
            "see 'https://x.example.com/a?token=abc&page=2'.",
            "see 'https://x.example.com/a?token=redacted&page=2'.",
        ),
        (
            "signed X-Amz-Security-Token=IQoJb3JpZ2luX2VjE&X-Amz-Credential=AKIA/2024 done",
            "signed X-Amz-Security-Token=redacted&X-Amz-Credential=redacted done",
        ),
        (
            r#"{"token":"abc","access_token": "def","expires_in":300}"#,
            r#"{"token":"redacted","access_token": "redacted","expires_in":300}"#,
        ),
        ("password=hunter2 rejected", "password=redacted rejected"),
        (
            "denied; X-Registry-Auth: eyJ1c2VybmFtZSI6ImNpIn0=",
            "denied; X-Registry-Auth: redacted",
        ),
        ("Set-Cookie: session=abc123; Path=/", "Set-Cookie: redacted"),
    ];
    for (input, expected) in cases {
        assert_eq!(redact_text(input), expected, "{input}");
    }
}

#[test]
fn text_without_secrets_is_unchanged() {
    for text in [
        "unauthorized: authentication required",
        "UNAUTHORIZED: authentication required; authorization failed for acme/app",
        r#"Bearer realm="https://auth.example.com/token",service="registry",scope="repository:a/b:pull""#,
        r#"Basic realm="kyb-test""#,
        "the bearer token has expired; Basic auth is disabled",
        "push to registry 127.0.0.1:5000 (repository acme/app) failed: HTTP 500",
        "duplicate key=app in labels; token: expired",
        "verify staging at https://api.example.com:8443/health?verbose=1 (see https://docs.example.com/).",
        "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
        "état: échoué — Authorization absente",
        "",
    ] {
        assert_eq!(redact_text(text), text);
    }
}

#[test]
fn redaction_is_idempotent() {
    let once =
        redact_text("Authorization: Bearer tok-123 at https://u:p@h.example.com/?sig=1 password=x");
    assert_eq!(redact_text(&once), once);
}

#[test]
fn report_urls_serialise_redacted() {
    #[derive(serde::Serialize)]
    struct Report {
        #[serde(serialize_with = "serialize_redacted_url")]
        url: Option<Url>,
    }
    let url = Url::parse("https://ci:pw@api.example.com/?token=t").unwrap();
    let json = serde_json::to_string(&Report { url: Some(url) }).unwrap();
    assert_eq!(
        json,
        r#"{"url":"https://redacted:redacted@api.example.com/?token=redacted"}"#
    );
    let json = serde_json::to_string(&Report { url: None }).unwrap();
    assert_eq!(json, r#"{"url":null}"#);
}

proptest! {
    #[test]
    fn userinfo_never_survives(user in "[ -~]{1,16}", password in "[ -~]{8,32}") {
        let mut url = Url::parse("https://registry.example.com/v2/acme/app").unwrap();
        url.set_username(&user).unwrap();
        url.set_password(Some(&password)).unwrap();
        let encoded = url.password().unwrap().to_owned();
        let redacted = redact_url(&url);
        prop_assert!(!redacted.contains(&encoded), "{redacted}");
        prop_assert!(!redacted.contains(&password), "{redacted}");
        for text in [
            format!("GET {url} failed"),
            format!(r#"{{"url":"{url}"}}"#),
            format!("({url})."),
        ] {
            let redacted = redact_text(&text);
            prop_assert!(!redacted.contains(&encoded), "{text} -> {redacted}");
        }
    }

    #[test]
    fn any_text_is_handled(text in "(\\PC|[:/@?&=#\"'\\\\ \\[\\]]|Authorization|Basic |Bearer |https://|token=){0,40}") {
        // No panic on odd input: slicing stays on character boundaries.
        let once = redact_text(&text);
        let _ = redact_text(&once);
        if let Ok(url) = Url::parse("https://example.com/").unwrap().join(&text) {
            let _ = redact_url(&url);
        }
    }

    #[test]
    fn query_tokens_never_survive(token in "[ -~]{8,32}") {
        let mut url = Url::parse("https://api.example.com/health").unwrap();
        url.query_pairs_mut().append_pair("page", "2").append_pair("access_token", &token);
        let encoded = url.query().unwrap().rsplit('=').next().unwrap().to_owned();
        let redacted = redact_url(&url);
        prop_assert!(!redacted.contains(&encoded), "{redacted}");
        let redacted = redact_text(&format!("probing {url}: refused"));
        prop_assert!(!redacted.contains(&encoded), "{redacted}");
    }

    #[test]
    fn authorization_headers_never_survive(
        user in "[a-z]{1,12}",
        password in "[ -~]{8,32}",
        token in "[A-Za-z0-9._~+/-]{8,40}",
        header in prop::sample::select(vec!["Authorization", "authorization", "PROXY-AUTHORIZATION"]),
    ) {
        let basic = base64(format!("{user}:{password}").as_bytes());
        for (secret, value) in [(basic.clone(), format!("Basic {basic}")), (token.clone(), format!("Bearer {token}"))] {
            for text in [
                format!("denied: {header}: {value}\nretry later"),
                format!(r#"{{"errors":[{{"message":"{header}: {value} rejected"}}]}}"#),
                format!(r#"{{"{header}": "{value}"}}"#),
                format!("map[{header}:[{value}] Accept:[*/*]]"),
            ] {
                let redacted = redact_text(&text);
                prop_assert!(!redacted.contains(&secret), "{text} -> {redacted}");
            }
        }
        // Without a header name, a `Basic` credential is recognised by its content.
        let text = format!("the registry received Basic {basic} and refused it");
        let redacted = redact_text(&text);
        prop_assert!(!redacted.contains(&basic), "{text} -> {redacted}");
    }
}
