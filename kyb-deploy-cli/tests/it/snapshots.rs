//! Snapshots of `--help` and of the main error messages, as users see them.

use crate::support::{Project, binary, output, settings_for};

fn help(args: &[&str]) -> String {
    let project = Project::empty();
    let run = output(binary(project.path()).args(args).arg("--help"));
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stderr, "");
    run.stdout
}

#[test]
fn help_texts() {
    let cases: [(&str, &[&str]); 14] = [
        ("help", &[]),
        ("help_deploy", &["deploy"]),
        ("help_plan", &["plan"]),
        ("help_rollback", &["rollback"]),
        ("help_status", &["status"]),
        ("help_history", &["history"]),
        ("help_verify", &["verify"]),
        ("help_check", &["check"]),
        ("help_render", &["render"]),
        ("help_unlock", &["unlock"]),
        ("help_state", &["state"]),
        ("help_state_import", &["state", "import"]),
        ("help_config", &["config"]),
        ("help_config_validate", &["config", "validate"]),
    ];
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    for (name, args) in cases {
        settings.bind(|| insta::assert_snapshot!(name, help(args)));
    }
}

const CONFIG: &str = r#"
[environments.staging]
target = "ecs"
[environments.staging.ecs]
cluster = "kyb-staging"
service = "kyb-platform-api"

[environments.production]
target = "ecs"
[environments.production.guards]
confirm = true
[environments.production.ecs]
cluster = "kyb-production"
service = "kyb-platform-api"
"#;

/// An environment of a kind this build cannot deploy to.
const NOMAD: &str = r#"
[environments.staging]
target = "nomad"
[environments.staging.nomad]
job = "kyb-platform-api"
"#;

fn snapshot_error(name: &str, config: Option<&str>, args: &[&str]) {
    let project = config.map_or_else(Project::empty, Project::new);
    let run = output(binary(project.path()).args(args));
    assert_eq!(run.stdout, "", "errors go to stderr");
    let text = format!("exit code: {}\n{}", run.code, run.stderr);
    settings_for(project.path()).bind(|| insta::assert_snapshot!(name, text));
}

#[test]
fn error_messages() {
    snapshot_error(
        "error_unknown_environment",
        Some(CONFIG),
        &["deploy", "-e", "nosuch"],
    );
    snapshot_error(
        "error_invalid_version",
        Some(CONFIG),
        &["deploy", "-e", "staging", "-v", "v1;rm -rf /"],
    );
    snapshot_error(
        "error_misspelled_key",
        Some(&CONFIG.replace("confirm = true", "confirn = true")),
        &["config", "validate"],
    );
    snapshot_error("error_missing_config", None, &["deploy", "-e", "staging"]);
    snapshot_error(
        "error_target_kind_not_in_this_build",
        Some(NOMAD),
        &["deploy", "-e", "staging", "-v", "v1"],
    );
    snapshot_error("error_missing_environment_flag", Some(CONFIG), &["deploy"]);
}
