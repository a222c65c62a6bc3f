//! `config validate` refuses what a deployment would trip on: exit 2, naming the key.

use crate::support::{Project, Run, binary, output};

/// A Docker environment `development` and an ECS environment `staging`; `{top}` is added
/// at the top level, `{dev}` in `[environments.development]`, `{ecs}` in
/// `[environments.staging.ecs]`.
fn config(top: &str, dev: &str, ecs: &str) -> String {
    format!(
        r#"{top}
[environments.development]
target = "docker"
{dev}
[environments.development.docker]

[environments.staging]
target = "ecs"
[environments.staging.ecs]
cluster = "kyb-staging"
service = "kyb-platform-api"
{ecs}
"#
    )
}

fn validate(project: &Project) -> Run {
    output(binary(project.path()).args(["config", "validate"]))
}

fn assert_refused(run: &Run, expected: &str) {
    assert_eq!(run.code, 2, "{expected}: {run:?}");
    assert!(
        run.stderr.contains(expected),
        "{expected:?} not in\n{}",
        run.stderr
    );
    assert_eq!(run.stdout, "");
}

#[test]
fn every_case_exits_2_naming_the_key() {
    let cases = [
        (
            config("[image]\nport = 0", "", ""),
            "image.port: 0 is not a port",
        ),
        (
            config("[image]\nport = 70000", "", ""),
            "image.port: 70000 is out of range",
        ),
        (
            config(
                "",
                "[environments.development.timeouts]\noverall = \"0s\"",
                "",
            ),
            "environments.development.timeouts.overall: must be longer than 0s",
        ),
        (
            config(
                "",
                "[environments.development.timeouts]\nrollback = \"500000000000y\"",
                "",
            ),
            "environments.development.timeouts.rollback: \"500000000000y\" is longer than the maximum of 7 days",
        ),
        (
            config("[notify]\nwebhooks = [\"file:///tmp/hook\"]", "", ""),
            "notify.webhooks[0]: the URL has the scheme \"file\"; use an http:// or https:// URL",
        ),
        (
            config(
                "",
                "[environments.development.verify]\nbase_url = \"ftp://example.com\"",
                "",
            ),
            "environments.development.verify.base_url: \"ftp://example.com/\" has the scheme \"ftp\"",
        ),
        (
            config("", "", "region = \"us_east_1\""),
            "environments.staging.ecs.region: \"us_east_1\" is not an AWS region",
        ),
        (
            config("", "", "endpoint_url = \"localhost:4566\""),
            "environments.staging.ecs.endpoint_url: \"localhost:4566\" has the scheme \"localhost\"; use an http:// or https:// URL",
        ),
        (
            config("[image]\nrepository = \"ACME/api\"", "", ""),
            "image.repository: \"ACME/api\" is not an image repository",
        ),
        (
            config("[image]\ntags = [\"v:{version}\"]", "", ""),
            "image.tags[0]: \"v:{version}\" is not a Docker tag template",
        ),
        (
            config("[image]\ntags = [\"{versoin}\"]", "", ""),
            "image.tags[0]: unknown placeholder {versoin}; did you mean {version}?",
        ),
        (
            config("[image.build_args]\nVERSION = \"{versoin}\"", "", ""),
            "image.build_args.VERSION: unknown placeholder {versoin}",
        ),
        (
            config("[notify]\nattempts = 4000000000", "", ""),
            "notify.attempts: 4000000000 is outside 1 to",
        ),
        (
            config(
                "",
                "[environments.development.verify.liveness]\nsuccess_threshold = 100000",
                "",
            ),
            "environments.development.verify.liveness.success_threshold: 100000 is more than 1000",
        ),
        (
            config(
                "",
                "[environments.development.env]\n\"LOG=LEVEL\" = \"debug\"",
                "",
            ),
            "environments.development.env.LOG=LEVEL: \"LOG=LEVEL\" is not an environment variable name",
        ),
        (
            config("", "[environments.development.env]\nX = \"a\\u0000b\"", ""),
            "environments.development.env.X: contains a NUL character",
        ),
        (
            config(
                "",
                "[environments.development.verify]\nmax_failure_ratio = 2.0",
                "",
            ),
            "environments.development.verify.max_failure_ratio: 2 is not a fraction",
        ),
        (
            config("[ledger]\npath = \"\"", "", ""),
            "ledger.path: must not be empty",
        ),
    ];
    for (text, expected) in cases {
        let project = Project::new(&text);
        assert_refused(&validate(&project), expected);
    }
}

#[test]
fn the_line_of_the_problem_is_named() {
    let project = Project::new(&config("[image]\nport = 0", "", ""));
    assert_refused(
        &validate(&project),
        "image.port: 0 is not a port; use 1-65535 (in ",
    );
    let run = validate(&project);
    assert!(
        run.stderr.contains("kyb-deploy.toml, line 2)"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_ledger_path_that_is_a_directory_exits_2() {
    let project = Project::new(&config("[ledger]\npath = \"records\"", "", ""));
    std::fs::create_dir_all(project.path().join("records")).unwrap();
    assert_refused(
        &validate(&project),
        "ledger.path: \"records\" is a directory",
    );
}

#[test]
fn template_paths_that_cannot_be_read_exit_2_in_validate_and_in_deploy() {
    let project = Project::new(&config("", "", "task_definition = \"deploy/td.json\""));
    let expected = [
        (None, "template deploy/td.json does not exist"),
        (Some(Template::Directory), "deploy/td.json is a directory"),
        (
            Some(Template::Latin1),
            "template deploy/td.json is not UTF-8 text",
        ),
    ];
    for (template, problem) in expected {
        let path = project.path().join("deploy/td.json");
        let _ = std::fs::remove_dir_all(&path);
        let _ = std::fs::remove_file(&path);
        std::fs::create_dir_all(project.path().join("deploy")).unwrap();
        match template {
            None => {}
            Some(Template::Directory) => std::fs::create_dir_all(&path).unwrap(),
            Some(Template::Latin1) => std::fs::write(&path, b"{\"family\": \"caf\xe9\"}").unwrap(),
        }
        let expected = format!("environments.staging.ecs.task_definition: {problem}");
        assert_refused(&validate(&project), &expected);
        let run = output(binary(project.path()).args(["deploy", "-e", "staging", "-v", "v1"]));
        assert_refused(&run, &expected);
        assert!(!project.ledger().exists());
    }
}

enum Template {
    Directory,
    Latin1,
}

#[test]
fn template_contents_are_checked_naming_the_key() {
    let project = Project::new(&config("", "", "task_definition = \"td.json\""));
    std::fs::write(
        project.path().join("td.json"),
        r#"{"family": "kyb", "containerDefinitions": [
             {"name": "api", "image": "x", "portMappings": [{"containerPort": 70000}],
              "healthCheck": {"command": ["CMD", "true"], "interval": -5}},
             {"name": "api", "image": "y"}]}"#,
    )
    .unwrap();
    let run = validate(&project);
    for expected in [
        "td.json (environments.staging.ecs.task_definition)",
        "container \"api\" portMappings.containerPort 70000 is outside 1-65535",
        "container \"api\" healthCheck.interval -5 is outside 5-300 seconds",
        "container name \"api\" is used twice",
    ] {
        assert_refused(&run, expected);
    }
}

#[test]
fn huge_timeouts_on_the_command_line_exit_2() {
    let project = Project::new(&config("", "", ""));
    for command in ["deploy", "plan", "rollback", "verify"] {
        let run = output(binary(project.path()).args([
            command,
            "-e",
            "development",
            "--timeout",
            "500000000000y",
        ]));
        assert_refused(&run, "is longer than the maximum of 7 days");
        assert!(run.stderr.contains("--timeout"), "{}", run.stderr);
    }
}

#[test]
fn env_overrides_keep_the_variables_case_and_take_numbers_and_booleans_as_text() {
    let project = Project::new(&config("", "", ""));
    let run = output(
        binary(project.path())
            .args(["config", "validate"])
            .env(
                "KYB_DEPLOY_ENVIRONMENTS__DEVELOPMENT__ENV__LOG_LEVEL",
                "debug",
            )
            .env("KYB_DEPLOY_ENVIRONMENTS__DEVELOPMENT__ENV__WORKERS", "1")
            .env("KYB_DEPLOY_ENVIRONMENTS__DEVELOPMENT__ENV__TRACE", "true"),
    );
    assert_eq!(run.code, 0, "{run:?}");

    // The name is kept as written, so a bad one is named as written.
    let run = output(
        binary(project.path())
            .args(["config", "validate"])
            .env("KYB_DEPLOY_ENVIRONMENTS__DEVELOPMENT__ENV__Log-Level", "1"),
    );
    assert_refused(
        &run,
        "environments.development.env.Log-Level: \"Log-Level\" is not an environment variable name",
    );
    assert!(
        run.stderr
            .contains("(in `KYB_DEPLOY_` environment variable(s))"),
        "{}",
        run.stderr
    );

    let run = output(binary(project.path()).args(["config", "validate"]).env(
        "KYB_DEPLOY_ENVIRONMENTS__DEVELOPMENT__TIMEOUTS__OVERALL",
        "500000000000y",
    ));
    assert_refused(
        &run,
        "environments.development.timeouts.overall: \"500000000000y\" is longer than the maximum of 7 days",
    );
}
