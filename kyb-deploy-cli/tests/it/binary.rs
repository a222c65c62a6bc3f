//! The binary's exit codes for the cases the issue names.

use crate::support::{Project, binary, output};

const STAGING_ECS: &str = r#"
[environments.staging]
target = "ecs"
[environments.staging.ecs]
cluster = "kyb-staging"
service = "kyb-platform-api"

[environments.production]
target = "ecs"
[environments.production.ecs]
cluster = "kyb-production"
service = "kyb-platform-api"
"#;

#[test]
fn an_unknown_environment_exits_2_and_lists_the_valid_ones() {
    let project = Project::new(STAGING_ECS);
    let run = output(binary(project.path()).args(["deploy", "-e", "nosuch"]));
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains("valid environments: production, staging"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stdout, "");
}

#[test]
fn an_invalid_version_exits_2_and_explains_the_rule() {
    let project = Project::new(STAGING_ECS);
    let run = output(binary(project.path()).args(["deploy", "-e", "staging", "-v", "v1;rm -rf /"]));
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("it contains ';'"), "{}", run.stderr);
    assert!(
        run.stderr.contains("a version must be a Docker tag"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_misspelled_key_fails_validation_with_2_naming_the_key() {
    let project = Project::new(&STAGING_ECS.replace(
        "service = \"kyb-platform-api\"\n\n[environments.production]",
        "service = \"kyb-platform-api\"\nclustr = \"x\"\n\n[environments.production]",
    ));
    let run = output(binary(project.path()).args(["config", "validate"]));
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains(
            "environments.staging.ecs.clustr: unknown key \"clustr\"; did you mean \"cluster\"?"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn the_shipped_configuration_is_valid() {
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../kyb-deploy.toml");
    let project = Project::empty();
    let run = output(
        binary(project.path())
            .arg("--config")
            .arg(&shipped)
            .args(["config", "validate"]),
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.starts_with("configuration OK: "),
        "{}",
        run.stdout
    );
}

#[test]
fn the_config_file_can_come_from_the_environment() {
    let project = Project::new(STAGING_ECS);
    let elsewhere = Project::empty();
    let run = output(
        binary(elsewhere.path())
            .env("KYB_DEPLOY_CONFIG", project.path().join("kyb-deploy.toml"))
            .args(["--output", "json", "config", "validate"]),
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.json()["config"]["environments"],
        serde_json::json!(["production", "staging"])
    );
}

#[test]
fn history_of_a_project_that_never_deployed_exits_0() {
    let project = Project::new(STAGING_ECS);
    let run = output(binary(project.path()).args(["history", "-e", "staging"]));
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stdout,
        "no runs of staging recorded in .kyb-deploy/ledger.jsonl\n"
    );
}

/// An environment of a kind this build cannot deploy to.
const STAGING_NOMAD: &str = r#"
[environments.staging]
target = "nomad"
[environments.staging.nomad]
job = "kyb-platform-api"
"#;

#[test]
fn an_ecs_environment_without_a_region_fails_before_anything_with_3() {
    let project = Project::new(STAGING_ECS);
    let run = output(
        binary(project.path())
            .args(["deploy", "-e", "staging", "-v", "v1"])
            // No instance metadata lookups for a region: this is not an EC2 instance.
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("AWS_REGION")
            .env_remove("AWS_DEFAULT_REGION")
            .env("AWS_CONFIG_FILE", project.path().join("no-aws-config")),
    );
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stderr.contains(
            "no AWS region for environments.staging: set environments.staging.ecs.region"
        ),
        "{}",
        run.stderr
    );
    assert!(!project.ledger().exists());
}

#[test]
fn a_target_kind_this_build_lacks_is_a_configuration_error() {
    let project = Project::new(STAGING_NOMAD);
    for args in [
        &["deploy", "-e", "staging", "-v", "v1"][..],
        &["rollback", "-e", "staging"][..],
        &["status", "-e", "staging"][..],
        &["config", "validate"][..],
    ] {
        let run = output(binary(project.path()).args(args));
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        assert!(
            run.stderr.contains(
                r#"environments.staging.target: "nomad" is not a target kind of this build; it deploys to: docker, ecs, kubernetes"#
            ),
            "{}",
            run.stderr
        );
    }
    assert!(!project.ledger().exists());
}

#[test]
fn usage_errors_exit_2_and_json_errors_are_one_document() {
    let project = Project::new(STAGING_ECS);
    let run = output(binary(project.path()).args(["deploy"]));
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("--environment <ENV>"), "{}", run.stderr);

    let run = output(binary(project.path()).args(["--output", "json", "deploy", "-e", "nosuch"]));
    assert_eq!(run.code, 2);
    let json = run.json();
    assert_eq!(json["exit_code"], 2);
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("unknown environment")
    );
    assert_eq!(
        run.stderr, "",
        "with --output json, stderr carries only JSON lines"
    );
}

#[test]
fn no_color_and_no_terminal_mean_no_escape_codes() {
    let project = Project::new(STAGING_ECS);
    let run = output(
        binary(project.path())
            .args(["deploy", "-e", "nosuch"])
            .env_remove("NO_COLOR"),
    );
    assert!(!run.stderr.contains('\x1b'), "{}", run.stderr);
}

#[test]
fn a_misspelled_key_from_an_environment_variable_names_the_variables_not_the_file() {
    let project = Project::new(STAGING_ECS);
    let run = output(
        binary(project.path())
            .args(["config", "validate"])
            .env("KYB_DEPLOY_ENVIRONMENTS__STAGING__ROLLBAK", "never"),
    );
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains("environments.staging.rollbak: unknown key")
            && run
                .stderr
                .contains("(in `KYB_DEPLOY_` environment variable(s))"),
        "{}",
        run.stderr
    );
}

#[test]
fn check_says_when_trivy_is_configured_but_missing() {
    let project = Project::new(&format!(
        "[image]\nscan = \"trivy\"\n[image.trivy]\nbinary = \"/nonexistent/trivy\"\n{STAGING_ECS}"
    ));
    let run = output(binary(project.path()).args(["check", "-e", "staging"]));
    assert_eq!(run.code, 3, "{run:?}");
    let all = run.all();
    assert!(all.contains("trivy"), "{all}");
    assert!(all.contains("image.scan = \"policy\""), "{all}");
}

#[test]
fn config_validate_checks_ecs_task_definition_templates_without_aws() {
    // Both environments use the template; production comes first in name order.
    let config = STAGING_ECS.replace(
        "service = \"kyb-platform-api\"\n",
        "service = \"kyb-platform-api\"\ntask_definition = \"deploy/td.json\"\n",
    );
    let project = Project::new(&config);
    std::fs::create_dir_all(project.path().join("deploy")).unwrap();
    let template = |memory: &str| {
        format!(
            r#"{{"family": "kyb", "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
               "cpu": "256", "memory": "{memory}",
               "containerDefinitions": [{{"name": "api", "image": "placeholder"}}]}}"#
        )
    };
    std::fs::write(project.path().join("deploy/td.json"), template("512")).unwrap();
    let run = output(binary(project.path()).args(["config", "validate"]));
    assert_eq!(run.code, 0, "{run:?}");

    std::fs::write(project.path().join("deploy/td.json"), template("4096")).unwrap();
    let run = output(binary(project.path()).args(["config", "validate"]));
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains(
            "deploy/td.json (environments.production.ecs.task_definition): Fargate does not offer cpu 256 with memory 4096 MiB"
        ),
        "{}",
        run.stderr
    );
}
