use proptest::prelude::*;

use super::*;

mod validation;

const MINIMAL: &str = r#"
[environments.development]
target = "docker"
[environments.development.docker]
"#;

#[test]
fn minimal_config_gets_defaults() {
    let config = Config::from_toml(MINIMAL).unwrap();
    let env = config.environment("development").unwrap();
    assert_eq!(env.settings.rollback, RollbackPolicy::Auto);
    assert_eq!(env.settings.verify.readiness.path, "/ready");
    assert_eq!(env.settings.verify.liveness.path, "/health");
    assert_eq!(config.ledger.path, Path::new(".kyb-deploy/ledger.jsonl"));
}

#[test]
fn a_partial_probe_table_keeps_that_probes_defaults() {
    let text = format!(
        "{MINIMAL}[environments.development.verify.readiness]\nperiod = \"500ms\"\n\
         [environments.development.verify.liveness]\nfailure_threshold = 5\n"
    );
    let verify = Config::from_toml(&text)
        .unwrap()
        .environment("development")
        .unwrap()
        .settings
        .verify;
    assert_eq!(verify.readiness.path, "/ready");
    assert_eq!(verify.readiness.period, Duration::from_millis(500));
    assert_eq!(verify.readiness.failure_threshold, 30);
    assert_eq!(verify.liveness.path, "/health");
    assert_eq!(verify.liveness.success_threshold, 3);
    assert_eq!(verify.liveness.failure_threshold, 5);
}

#[test]
fn unknown_environment_lists_the_valid_ones() {
    let config = Config::from_toml(MINIMAL).unwrap();
    let err = config.environment("nosuch").unwrap_err().to_string();
    assert!(err.contains("\"nosuch\""), "{err}");
    assert!(err.contains("valid environments: development"), "{err}");
}

#[test]
fn misspelled_key_is_named_with_its_path() {
    let text = format!("{MINIMAL}\n[environments.development.verify]\nreadines = {{}}\n");
    let err = Config::from_toml(&text).unwrap_err().to_string();
    assert!(err.contains("environments.development.verify"), "{err}");
    assert!(
        err.contains("unknown key \"readines\"; did you mean \"readiness\"?"),
        "{err}"
    );
    // In the target's own settings, read by its backend: named with the whole path and line.
    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Ecs {
        cluster: String,
        service: String,
    }
    let text = "[environments.x]\ntarget = \"ecs\"\n[environments.x.ecs]\ncluster = \"c\"\nservise = \"s\"\n";
    let env = Config::from_toml(text).unwrap().environment("x").unwrap();
    let err = env.target_settings::<Ecs>().unwrap_err();
    assert!(err.is_usage());
    let err = err.to_string();
    assert!(
        err.contains(
            "environments.x.ecs.servise: unknown key \"servise\"; did you mean \"service\"?"
        ),
        "{err}"
    );
    assert!(err.contains("(in <inline>, line 5)"), "{err}");
}

#[test]
fn edit_distance_counts_single_character_edits() {
    assert_eq!(edit_distance("confirn", "confirm"), 1);
    assert_eq!(edit_distance("", "abc"), 3);
    assert_eq!(edit_distance("kitten", "sitting"), 3);
}

#[test]
fn bad_values_are_named() {
    let cases = [
        (
            "[environments.x]\ntarget = \"no mad\"",
            "environments.x.target",
        ),
        (
            "[environments.x]\ntarget = \"docker\"\n[environments.x.docker]\n[environments.x.timeouts]\nwait = \"soon\"",
            "environments.x.timeouts.wait",
        ),
        (
            "[environments.x]\ntarget = \"ecs\"",
            "environments.x.ecs: target = \"ecs\" needs",
        ),
        (
            "[environments.x]\ntarget = \"docker\"\nrollback = \"sometimes\"\n[environments.x.docker]",
            "environments.x.rollback",
        ),
        (
            "[environments.x]\ntarget = \"docker\"\n[environments.x.docker]\n[[environments.x.verify.smoke]]\nname = \"a\"\npath = \"/\"\nmethod = \"FETCH me\"",
            "method",
        ),
        (
            "[environments.x]\ntarget = \"docker\"\n[environments.x.docker]\n[environments.x.verify.readiness]\nfailure_threshold = 0",
            "environments.x.verify.readiness",
        ),
    ];
    for (text, expected) in cases {
        let err = Config::from_toml(text).unwrap_err();
        assert!(err.is_usage());
        let err = err.to_string();
        assert!(err.contains(expected), "{text}\n=> {err}");
    }
}

#[test]
fn file_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kyb-deploy.toml");
    std::fs::write(&path, format!("[project]\nbogus = 1\n{MINIMAL}")).unwrap();
    let err = Config::load(Some(&path)).unwrap_err().to_string();
    assert!(err.contains("bogus"), "{err}");
    assert!(err.contains("kyb-deploy.toml"), "{err}");
    let missing = Config::load(Some(&dir.path().join("nope.toml")))
        .unwrap_err()
        .to_string();
    assert!(missing.contains("not found"), "{missing}");
}

#[test]
fn the_shipped_example_is_valid() {
    let text = include_str!("../../../kyb-deploy.toml");
    let config = Config::from_toml(text).unwrap();
    for name in ["development", "staging", "production"] {
        config.environment(name).unwrap();
    }
    let production = config.environment("production").unwrap().settings;
    assert!(production.guards.confirm);
    assert!(production.guards.require_clean_tree);
    // CI environments share their records and lock; development keeps the local ledger.
    assert_eq!(
        production.state.backend,
        crate::config::StateBackendKind::S3
    );
    let staging = config.environment("staging").unwrap().settings;
    assert_eq!(
        staging.state.bucket.as_deref(),
        Some("kyb-platform-deploy-state")
    );
    let development = config.environment("development").unwrap().settings;
    assert_eq!(
        development.state.backend,
        crate::config::StateBackendKind::File
    );
}

fn duration_text() -> impl Strategy<Value = (String, Duration)> {
    (
        // Up to 7 days in any unit (7d = 168h).
        1u64..=168,
        prop_oneof![Just("ms"), Just("s"), Just("m"), Just("h")],
    )
        .prop_map(|(n, unit)| {
            let d = match unit {
                "ms" => Duration::from_millis(n),
                "s" => Duration::from_secs(n),
                "m" => Duration::from_secs(n * 60),
                _ => Duration::from_secs(n * 3600),
            };
            (format!("{n}{unit}"), d)
        })
}

proptest! {
    #[test]
    fn timeouts_and_thresholds_parse(
        (wait_text, wait) in duration_text(),
        failure in 1u32..100,
        success in 1u32..10,
        policy in prop_oneof![Just("auto"), Just("never")],
    ) {
        let text = format!(
            "[environments.e]\ntarget = \"docker\"\nrollback = \"{policy}\"\n[environments.e.docker]\n\
             [environments.e.timeouts]\nwait = \"{wait_text}\"\n\
             [environments.e.verify.readiness]\nfailure_threshold = {failure}\nsuccess_threshold = {success}\n"
        );
        let config = Config::from_toml(&text).unwrap();
        let env = config.environment("e").unwrap().settings;
        prop_assert_eq!(env.timeouts.wait, wait);
        prop_assert_eq!(env.verify.readiness.failure_threshold, failure);
        prop_assert_eq!(env.verify.readiness.success_threshold, success);
        prop_assert_eq!(env.rollback == RollbackPolicy::Never, policy == "never");
    }

    #[test]
    fn unknown_keys_anywhere_are_rejected(key in "[a-z]{3,12}") {
        prop_assume!(!["target", "rollback", "guards", "timeouts", "verify", "env", "docker", "ecs", "kubernetes"].contains(&key.as_str()));
        let text = format!("[environments.e]\ntarget = \"docker\"\n{key} = 1\n[environments.e.docker]\n");
        let err = Config::from_toml(&text).unwrap_err().to_string();
        prop_assert!(err.contains(&key), "{}", err);
        prop_assert!(err.contains("environments.e"), "{}", err);
    }

    #[test]
    fn serialised_config_parses_back(name in "[a-z][a-z0-9-]{0,10}", confirm: bool) {
        let text = format!("[environments.{name}]\ntarget = \"docker\"\n[environments.{name}.docker]\n[environments.{name}.guards]\nconfirm = {confirm}\n");
        let config = Config::from_toml(&text).unwrap();
        let again = Config::from_toml(&toml::to_string(&config).unwrap()).unwrap();
        prop_assert_eq!(again.environments, config.environments);
    }
}

/// Settings built by a program (no file behind them): errors in the target's settings still
/// name the whole key.
#[test]
fn target_settings_without_a_file_name_the_key() {
    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Local {
        port: u16,
    }
    let loaded = Config::from_toml(
        "[environments.x]\ntarget = \"local\"\n[environments.x.local]\nport = 70000\n",
    )
    .unwrap();
    let settings = loaded.environments["x"].clone();
    let env = Environment::new("x", settings);
    let err = env.target_settings::<Local>().unwrap_err();
    assert!(err.is_usage());
    let err = err.to_string();
    assert!(
        err.contains("environments.x.local.port: 70000 is out of range"),
        "{err}"
    );
    let mut settings = loaded.environments["x"].clone();
    settings.sections.clear();
    let err = Environment::new("x", settings)
        .target_settings::<Local>()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            "environments.x.local: target = \"local\" needs a [environments.x.local] section"
        ),
        "{err}"
    );
}
