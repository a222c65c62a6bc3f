use std::collections::BTreeMap;

use super::*;
use kyb_deploy_core::Version;
use kyb_deploy_core::{Event, EventSink, Stage};

#[test]
fn platforms_parse_normalise_and_name_tags() {
    let p = Platform::parse("linux/arm/v7").unwrap();
    assert_eq!(p.to_string(), "linux/arm/v7");
    assert_eq!(p.tag_suffix(), "linux-arm-v7");
    assert_eq!(
        Platform::parse("linux/arm64/v8").unwrap().to_string(),
        "linux/arm64"
    );
    assert_eq!(
        Platform::parse("linux/x86_64").unwrap().to_string(),
        "linux/amd64"
    );
    for bad in [
        "linux",
        "linux/",
        "/amd64",
        "linux/arm/v7/x",
        "linux/am d64",
    ] {
        let err = Platform::parse(bad).unwrap_err();
        assert!(err.contains("linux/amd64"), "{err}");
    }
}

#[test]
fn a_platform_without_variant_accepts_any_variant() {
    let arm = Platform::parse("linux/arm").unwrap();
    let arm_v7 = Platform::parse("linux/arm/v7").unwrap();
    let arm_v6 = Platform::parse("linux/arm/v6").unwrap();
    assert!(arm.accepts(&arm_v7));
    assert!(arm_v7.accepts(&arm_v7));
    assert!(!arm_v7.accepts(&arm_v6));
    assert!(
        !Platform::parse("linux/arm64")
            .unwrap()
            .accepts(&Platform::parse("linux/amd64").unwrap())
    );
}

#[test]
fn references_split_at_the_tag() {
    assert_eq!(
        split_reference("127.0.0.1:5000/app:v1"),
        ("127.0.0.1:5000/app", "v1")
    );
    assert_eq!(
        split_reference("127.0.0.1:5000/app"),
        ("127.0.0.1:5000/app", "latest")
    );
    assert_eq!(split_reference("app:v1"), ("app", "v1"));
}

fn collect() -> (StageProgress, tokio::sync::mpsc::UnboundedReceiver<Event>) {
    let (sink, rx) = EventSink::new().channel();
    (sink.for_stage(Stage::Build), rx)
}

#[test]
fn output_is_split_into_lines_and_a_failure_names_the_step() {
    let (progress, mut rx) = collect();
    let mut output = BuildOutput::default();
    for chunk in [
        "Step 1/3 : FROM scratch",
        "\n",
        " ---> \n",
        "Step 2/3 : COPY a.txt /a\n ---> 1234\nStep 3/3 : COPY missing /x",
        "\n",
        "partial without newline",
    ] {
        output.push(chunk, &progress);
    }
    output.finish(&progress);
    let mut lines = Vec::new();
    while let Ok(Event::Log { line, .. }) = rx.try_recv() {
        lines.push(line);
    }
    assert_eq!(
        lines,
        [
            "Step 1/3 : FROM scratch",
            " ---> ",
            "Step 2/3 : COPY a.txt /a",
            " ---> 1234",
            "Step 3/3 : COPY missing /x",
            "partial without newline"
        ]
    );
    let error = bollard::errors::Error::DockerStreamError {
        error: "COPY failed: file not found in build context".into(),
    };
    let platform = Platform::parse("linux/arm64").unwrap();
    let message = output.failure("repo:v1", Some(&platform), &error);
    assert!(
        message.starts_with(
            "failed to build repo:v1 for linux/arm64 at Step 3/3 : COPY missing /x: COPY failed"
        ),
        "{message}"
    );
    assert!(message.contains("last 6 lines of build output:\n  | Step 1/3 : FROM scratch"));
}

#[test]
fn a_failure_keeps_only_the_last_lines() {
    let progress = StageProgress::discard(Stage::Build);
    let mut output = BuildOutput::default();
    for i in 0..40 {
        output.push(&format!("line {i}\n"), &progress);
    }
    let error = bollard::errors::Error::DockerResponseServerError {
        status_code: 500,
        message: "boom".into(),
    };
    let message = output.failure("repo:v1", None, &error);
    assert!(message.contains(": boom (HTTP 500)"), "{message}");
    assert!(message.contains("line 39") && message.contains("line 25"));
    assert!(!message.contains("line 24\n"), "{message}");
}

fn request(context: &Path, dockerfile: &str) -> BuildRequest {
    BuildRequest {
        repository: "repo".into(),
        version: Version::parse("v1").unwrap(),
        commit: None,
        context: context.to_owned(),
        dockerfile: dockerfile.into(),
        build_args: BTreeMap::new(),
        target: None,
        tags: vec![],
        labels: BTreeMap::new(),
        platforms: vec![],
    }
}

#[test]
fn the_dockerfile_must_be_inside_the_context() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("ctx")).unwrap();
    std::fs::write(dir.path().join("Dockerfile"), "FROM scratch").unwrap();
    std::fs::write(dir.path().join("ctx/Dockerfile"), "FROM scratch").unwrap();
    let ctx = dir.path().join("ctx");
    assert_eq!(
        checked_dockerfile(&request(&ctx, "Dockerfile")).unwrap(),
        Path::new("Dockerfile")
    );
    let absolute = ctx.join("Dockerfile");
    assert_eq!(
        checked_dockerfile(&request(&ctx, absolute.to_str().unwrap())).unwrap(),
        Path::new("Dockerfile")
    );
    for bad in ["../Dockerfile", "Missing"] {
        let err = checked_dockerfile(&request(&ctx, bad))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a file inside the build context"), "{err}");
    }
}
