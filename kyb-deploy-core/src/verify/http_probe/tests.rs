use std::collections::BTreeMap;

use super::*;

fn url(text: &str) -> Url {
    Url::parse(text).unwrap()
}

fn smoke(name: &str) -> SmokeTest {
    SmokeTest {
        name: name.into(),
        method: "post".into(),
        path: "/classify".into(),
        headers: BTreeMap::from([("x-api-key".into(), "s3cret".into())]),
        json: None,
        expect_status: 200,
        expect_json: BTreeMap::new(),
        latency_budget: None,
        samples: 1,
    }
}

fn response(status: u16, body: &str) -> Answer {
    Answer::Response {
        status: StatusCode::from_u16(status).unwrap(),
        body: body.as_bytes().to_vec(),
    }
}

#[test]
fn join_keeps_the_base_path_and_takes_the_query() {
    let cases = [
        ("http://h:8080", "/ready", "http://h:8080/ready"),
        ("http://h/api", "/ready", "http://h/api/ready"),
        ("http://h/api/", "ready", "http://h/api/ready"),
        (
            "http://h/api?x=1#f",
            "/v1/search?q=a",
            "http://h/api/v1/search?q=a",
        ),
    ];
    for (base, path, joined) in cases {
        assert_eq!(join(&url(base), path).as_str(), joined);
    }
}

#[test]
fn messages_show_urls_without_credentials() {
    let shown = crate::redact::redact_url(&url("https://user:pw@h/api?token=t0k"));
    assert!(!shown.contains("pw") && !shown.contains("t0k"), "{shown}");
}

#[test]
fn invalid_smoke_settings_are_config_errors_without_header_values() {
    let mut bad_method = smoke("m");
    bad_method.method = "GE T".into();
    let mut bad_header = smoke("h");
    bad_header
        .headers
        .insert("authorization".into(), "Bearer s3cret\n".into());
    let mut bad_pointer = smoke("p");
    bad_pointer
        .expect_json
        .insert("industry".into(), "x".into());
    let mut no_samples = smoke("n");
    no_samples.samples = 0;
    for (test, problem) in [
        (bad_method, "invalid HTTP method"),
        (bad_header, "invalid value of header \"authorization\""),
        (bad_pointer, "invalid JSON pointer \"industry\""),
        (no_samples, "samples must be at least 1"),
    ] {
        let settings = VerifyConfig {
            smoke: vec![test],
            ..VerifyConfig::default()
        };
        let err = HttpHealthProbe::new(settings).unwrap_err();
        assert!(matches!(err, Error::Config { .. }), "{err:?}");
        assert!(err.to_string().contains(problem), "{err}");
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }
}

#[test]
fn debug_does_not_show_header_values() {
    let settings = VerifyConfig {
        smoke: vec![smoke("classify")],
        ..VerifyConfig::default()
    };
    let probe = HttpHealthProbe::new(settings).unwrap();
    let shown = format!("{probe:?}");
    assert!(
        shown.contains("classify") && !shown.contains("s3cret"),
        "{shown}"
    );
}

#[test]
fn status_outcomes() {
    let judge = |answer: &Answer| judge_status(answer, "http://h/status", "/build/version", "v2");
    let (ok, reported) = judge(&response(200, r#"{"build":{"version":"v2"}}"#));
    assert_eq!(
        (ok, reported.as_deref()),
        (Ok("version v2".into()), Some("v2"))
    );

    let (err, reported) = judge(&response(200, r#"{"build":{"version":"v1"}}"#));
    assert_eq!(reported.as_deref(), Some("v1"));
    assert_eq!(
        err.unwrap_err(),
        "service reports version \"v1\" at /build/version, expected \"v2\""
    );

    let problems = [
        (
            response(200, r#"{"build":{}}"#),
            "no version at /build/version (expected \"v2\")",
        ),
        (
            response(200, r#"{"build":{"version":2}}"#),
            "/build/version is 2, not a version",
        ),
        (response(200, "<html>"), "the body is not JSON"),
        (
            response(503, "{}"),
            "GET http://h/status answered 503 Service Unavailable",
        ),
        (
            Answer::Failed("connection failed: refused".into()),
            "connection failed: refused",
        ),
    ];
    for (answer, problem) in problems {
        let (outcome, reported) = judge(&answer);
        let detail = outcome.unwrap_err();
        assert!(detail.contains(problem), "{problem:?} not in {detail:?}");
        assert_eq!(reported, None);
    }
}

#[test]
fn smoke_outcomes() {
    let mut test = smoke("classify");
    test.expect_json
        .insert("/industry".into(), "technology".into());
    let judge = |answer: Answer| judge_smoke(&test, &answer);
    assert_eq!(judge(response(200, r#"{"industry":"technology"}"#)), Ok(()));
    assert_eq!(
        judge(response(500, "")).unwrap_err(),
        "expected status 200, got 500"
    );
    assert_eq!(
        judge(response(200, r#"{"industry":"finance"}"#)).unwrap_err(),
        "/industry: expected \"technology\", got \"finance\""
    );
    assert_eq!(
        judge(response(200, "{}")).unwrap_err(),
        "/industry: expected \"technology\", got nothing"
    );
}

#[test]
fn shorten_cuts_long_values() {
    assert_eq!(shorten("short"), "short");
    assert_eq!(shorten(&"é".repeat(300)).chars().count(), 203);
}
