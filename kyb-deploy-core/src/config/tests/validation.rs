//! What loading refuses, naming the key: everything a deployment would otherwise trip on.

use proptest::prelude::*;

use super::super::overrides::EnvOverrides;
use super::*;

/// One Docker environment `x`, with `extra` TOML added at the top level (before it) and
/// `env_extra` inside `[environments.x]`.
fn config(top: &str, env_extra: &str) -> String {
    format!("{top}\n[environments.x]\ntarget = \"docker\"\n{env_extra}\n[environments.x.docker]\n")
}

/// The configuration `text` with these `KYB_DEPLOY_*` variables, as loading merges them.
fn with_vars(text: &str, vars: &[(&str, &str)]) -> Result<Config> {
    let vars = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()));
    Config::from_figment(
        Figment::new()
            .merge(Toml::string(text))
            .merge(EnvOverrides::from_vars(vars)),
        Path::new("kyb-deploy.toml"),
        Some(text),
    )
}

#[test]
fn every_case_is_refused_as_a_usage_error_naming_the_key() {
    let cases: Vec<(String, &str)> = vec![
        // Ports.
        (
            config("[image]\nport = 0", ""),
            "image.port: 0 is not a port; use 1-65535",
        ),
        (
            config("[image]\nport = 70000", ""),
            "image.port: 70000 is out of range; write a whole number from 0 to 65535",
        ),
        // Durations: zero where a positive one is needed, and beyond the maximum.
        (
            config("", "[environments.x.timeouts]\noverall = \"0s\""),
            "environments.x.timeouts.overall: must be longer than 0s",
        ),
        (
            config("", "[environments.x.timeouts]\nwait = \"0ms\""),
            "environments.x.timeouts.wait: must be longer than 0s",
        ),
        (
            config("", "[environments.x.timeouts]\noverall = \"500000000000y\""),
            "environments.x.timeouts.overall: \"500000000000y\" is longer than the maximum of 7 days",
        ),
        (
            config(
                "",
                "[environments.x.timeouts]\nrollback = \"500000000000y\"",
            ),
            "environments.x.timeouts.rollback: \"500000000000y\" is longer than the maximum of 7 days",
        ),
        (
            config("[notify]\ntimeout = \"0s\"", ""),
            "notify.timeout: must be longer than 0s",
        ),
        (
            config("", "[environments.x.verify.readiness]\nperiod = \"0s\""),
            "environments.x.verify.readiness: period and timeout must be longer than 0s",
        ),
        (
            config(
                "",
                "[[environments.x.verify.smoke]]\nname = \"a\"\npath = \"/\"\nlatency_budget = \"0s\"",
            ),
            "environments.x.verify.smoke[0] (\"a\").latency_budget: must be longer than 0s",
        ),
        (
            config("", "[environments.x.verify]\nsoak = \"8d\""),
            "environments.x.verify.soak: \"8d\" is longer than the maximum of 7 days",
        ),
        // URLs.
        (
            config("[notify]\nwebhooks = [\"file:///tmp/hook\"]", ""),
            "notify.webhooks[0]: the URL has the scheme \"file\"; use an http:// or https:// URL",
        ),
        (
            config("[notify]\nwebhooks = [\"not a url\"]", ""),
            "notify.webhooks[0]: not a URL",
        ),
        (
            config(
                "",
                "[environments.x.verify]\nbase_url = \"ftp://example.com/\"",
            ),
            "environments.x.verify.base_url: \"ftp://example.com/\" has the scheme \"ftp\"; use an http:// or https:// URL",
        ),
        // Images: repositories, tags, placeholders.
        (
            config("[image]\nrepository = \"Acme/API\"", ""),
            "image.repository: \"Acme/API\" is not an image repository",
        ),
        (
            config("[image]\nrepository = \"ghcr.io/acme/api:v1\"", ""),
            "image.repository: \"ghcr.io/acme/api:v1\" names a tag",
        ),
        (
            config("[image]\ntags = [\"{versoin}\"]", ""),
            "image.tags[0]: unknown placeholder {versoin}; did you mean {version}?",
        ),
        (
            config("[image]\ntags = [\"-latest\"]", ""),
            "image.tags[0]: \"-latest\" is not a Docker tag template",
        ),
        (
            config("[image.build_args]\nVERSION = \"{versoin}\"", ""),
            "image.build_args.VERSION: unknown placeholder {versoin}",
        ),
        (
            config("[image.build_args]\n\"A=B\" = \"1\"", ""),
            "image.build_args.A=B: \"A=B\" is not a build argument name",
        ),
        // Absurd counts.
        (
            config("[notify]\nattempts = 1000000", ""),
            "notify.attempts: 1000000 is outside 1 to",
        ),
        (
            config(
                "",
                "[environments.x.verify.readiness]\nfailure_threshold = 4294967295",
            ),
            "environments.x.verify.readiness.failure_threshold: 4294967295 is more than 1000",
        ),
        (
            config(
                "",
                "[[environments.x.verify.smoke]]\nname = \"a\"\npath = \"/\"\nsamples = 100000",
            ),
            "environments.x.verify.smoke[0] (\"a\").samples: 100000 is more than 1000",
        ),
        // Environment variables: names and NUL.
        (
            config("", "[environments.x.env]\n\"A=B\" = \"1\""),
            "environments.x.env.A=B: \"A=B\" is not an environment variable name",
        ),
        (
            config("", "[environments.x.env]\nX = \"a\\u0000b\""),
            "environments.x.env.X: contains a NUL character",
        ),
        (
            config("[tests]\nunit = \"cargo test\\u0000\"", ""),
            "tests.unit: contains a NUL character",
        ),
        // The ledger.
        (
            config("[ledger]\npath = \"\"", ""),
            "ledger.path: must not be empty",
        ),
        (
            config("[ledger]\npath = \"records/\"", ""),
            "ledger.path: \"records/\" is a directory; name a file in it, like \"records/ledger.jsonl\"",
        ),
        // Verification keys.
        (
            config("", "[environments.x.verify]\nmax_failure_ratio = 1.5"),
            "environments.x.verify.max_failure_ratio: 1.5 is not a fraction",
        ),
        (
            config("", "[environments.x.verify]\nmax_failure_ratio = -0.1"),
            "environments.x.verify.max_failure_ratio: -0.1 is not a fraction",
        ),
        (
            config("", "[environments.x.verify]\nmax_failure_ratio = nan"),
            "environments.x.verify.max_failure_ratio: NaN is not a fraction",
        ),
        // The target kind and its section.
        (
            config("", "").replace("target = \"docker\"", "target = \"Docker Engine\""),
            "environments.x.target: \"Docker Engine\" is not a target kind",
        ),
        (
            "[environments.x]\ntarget = \"ecs\"\n".to_owned(),
            "environments.x.ecs: target = \"ecs\" needs a [environments.x.ecs] section",
        ),
        (
            config("", "").replace("[environments.x.docker]", "[environments.x.dockr]"),
            "environments.x.dockr: target = \"docker\" has no [environments.x.docker] section, but [environments.x.dockr] is there; rename the section to [environments.x.docker], or set target = \"dockr\"",
        ),
        (
            config("", "[environments.x.ecs]\ncluster = \"c\""),
            "environments.x.ecs: unknown section; this environment deploys to target = \"docker\", whose settings go in [environments.x.docker]",
        ),
        (
            config("", "").replace("target = \"docker\"", "target = \"dokcer\""),
            "environments.x.docker: target = \"dokcer\" has no [environments.x.dokcer] section, but [environments.x.docker] is there; rename the section to [environments.x.dokcer], or set target = \"docker\"",
        ),
        (
            config("", "rolback = \"never\""),
            "environments.x.rolback: unknown key \"rolback\"; did you mean \"rollback\"?",
        ),
    ];
    for (text, expected) in cases {
        let err = Config::from_toml(&text).unwrap_err();
        assert!(err.is_usage(), "{text}\n=> {err:?}");
        let err = err.to_string();
        assert!(err.contains(expected), "{text}\n=> {err}");
    }
}

#[test]
fn webhook_urls_are_never_shown() {
    let text = config(
        "[notify]\nwebhooks = [\"ftp://user:s3cret@hooks.example/T0/B0\"]",
        "",
    );
    let err = Config::from_toml(&text).unwrap_err().to_string();
    assert!(err.contains("notify.webhooks[0]"), "{err}");
    assert!(!err.contains("s3cret") && !err.contains("T0"), "{err}");
}

#[test]
fn problems_name_the_line_of_the_file() {
    let text = "[environments.x]\ntarget = \"docker\"\n[environments.x.docker]\n[environments.x.dockr]\n\n[environments.x.timeouts]\nwait = \"0s\"\n";
    let err = Config::from_toml(text).unwrap_err().to_string();
    assert!(
        err.contains("remove [environments.x.dockr] or change the target (in <inline>, line 4)"),
        "{err}"
    );
    assert!(
        err.contains("environments.x.timeouts.wait: must be longer than 0s (and at most 7 days); write a duration like \"30s\" (in <inline>, line 7)"),
        "{err}"
    );
    let text = "[environments.x]\ntarget = \"docker\"\n[environments.x.docker]\n\n[environments.x.timeouts]\nwait = \"8d\"\n";
    let err = Config::from_toml(text).unwrap_err().to_string();
    assert!(err.contains("(in <inline>, line 6)"), "{err}");
}

#[test]
fn the_ledger_path_is_checked_relative_to_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kyb-deploy.toml");
    let load = |text: &str| {
        std::fs::write(&path, text).unwrap();
        Config::load(Some(&path))
    };
    std::fs::create_dir_all(dir.path().join("records")).unwrap();
    let err = load(&config("[ledger]\npath = \"records\"", ""))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("ledger.path: \"records\" is a directory"),
        "{err}"
    );
}

#[test]
fn the_shipped_example_loads_with_its_templates() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../kyb-deploy.toml");
    Config::load(Some(&path)).unwrap();
}

#[test]
fn env_table_overrides_keep_the_variables_case_and_accept_numbers_and_booleans() {
    let config = with_vars(
        &config("", ""),
        &[
            ("KYB_DEPLOY_ENVIRONMENTS__X__ENV__LOG_LEVEL", "debug"),
            ("KYB_DEPLOY_ENVIRONMENTS__X__ENV__WORKERS", "1"),
            ("KYB_DEPLOY_ENVIRONMENTS__X__ENV__TRACE", "true"),
            ("KYB_DEPLOY_ENVIRONMENTS__X__ENV__ZIP", "007"),
            ("KYB_DEPLOY_ENVIRONMENTS__X__ENV__RATIO", "1.50"),
            ("KYB_DEPLOY_IMAGE__BUILD_ARGS__RUST_VERSION", "1.89"),
            ("KYB_DEPLOY_ENVIRONMENTS__X__ROLLBACK", "never"),
            (
                "KYB_DEPLOY_ENVIRONMENTS__X__VERIFY__READINESS__FAILURE_THRESHOLD",
                "7",
            ),
        ],
    )
    .unwrap();
    let env = config.environment("x").unwrap().settings;
    let vars: Vec<(&str, &str)> = env
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        vars,
        [
            ("LOG_LEVEL", "debug"),
            ("RATIO", "1.50"),
            ("TRACE", "true"),
            ("WORKERS", "1"),
            ("ZIP", "007"),
        ]
    );
    assert_eq!(config.image.build_args["RUST_VERSION"], "1.89");
    assert_eq!(env.rollback, RollbackPolicy::Never);
    assert_eq!(env.verify.readiness.failure_threshold, 7);
}

#[test]
fn a_bad_override_names_the_key_and_the_variables() {
    let err = with_vars(
        &config("", ""),
        &[("KYB_DEPLOY_ENVIRONMENTS__X__TIMEOUTS__OVERALL", "0s")],
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains(
            "environments.x.timeouts.overall: must be longer than 0s (and at most 7 days); write a duration like \"30s\" (in `KYB_DEPLOY_` environment variable(s))"
        ),
        "{err}"
    );
    let err = with_vars(
        &config("", ""),
        &[(
            "KYB_DEPLOY_ENVIRONMENTS__X__TIMEOUTS__ROLLBACK",
            "500000000000y",
        )],
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("environments.x.timeouts.rollback: \"500000000000y\" is longer than the maximum of 7 days"),
        "{err}"
    );
    assert!(err.contains("environment variable(s)"), "{err}");
}

#[test]
fn soak_defaults_by_environment_and_the_ratio_to_a_tenth() {
    let defaults = Config::from_toml(&config("", "")).unwrap();
    let settings = defaults.environment("x").unwrap().settings;
    assert_eq!(settings.verify.max_failure_ratio, 0.1);
    assert_eq!(settings.verify.soak, None);
    assert_eq!(settings.soak("development"), Duration::from_secs(10));
    assert_eq!(settings.soak("x"), Duration::from_secs(60));
    let set = Config::from_toml(&config(
        "",
        "[environments.x.verify]\nsoak = \"5m\"\nmax_failure_ratio = 0.0",
    ))
    .unwrap();
    let settings = set.environment("x").unwrap().settings;
    assert_eq!(settings.soak("development"), Duration::from_secs(300));
    assert_eq!(settings.verify.max_failure_ratio, 0.0);
    let again = Config::from_toml(&toml::to_string(&set).unwrap()).unwrap();
    assert_eq!(again.environments, set.environments);
}

/// A TOML string holding `raw` exactly.
fn toml_string(raw: &str) -> String {
    toml::Value::String(raw.to_owned()).to_string()
}

proptest! {
    /// Any text as a duration either parses within the bound (and above zero for a time
    /// limit) or is refused naming the key; it never panics.
    #[test]
    fn any_duration_text_is_bounded_or_refused_naming_the_key(
        raw in prop_oneof![
            "\\PC{0,16}",
            "[0-9]{1,25} ?(ns|us|ms|s|m|h|d|w|M|y|years|days)",
            "[0-9]{1,6}(\\.[0-9]{1,6})?(ms|s|m|h|d)( [0-9]{1,4}(s|m|h))?",
        ],
        stage in prop_oneof![Just("overall"), Just("rollback"), Just("wait")],
    ) {
        let text = config("", &format!("[environments.x.timeouts]\n{stage} = {}", toml_string(&raw)));
        match Config::from_toml(&text) {
            Ok(config) => {
                let timeouts = config.environment("x").unwrap().settings.timeouts;
                let limit = match stage {
                    "overall" => timeouts.overall,
                    "rollback" => timeouts.rollback,
                    _ => timeouts.wait,
                };
                prop_assert!(!limit.is_zero() && limit <= Config::MAX_DURATION);
            }
            Err(e) => {
                prop_assert!(e.is_usage());
                let key = format!("environments.x.timeouts.{stage}");
                prop_assert!(e.to_string().contains(&key), "{}", e);
            }
        }
    }

    /// Any URL whose scheme is not http or https is refused as a base URL and as a webhook.
    #[test]
    fn urls_of_other_schemes_are_refused(
        scheme in "[a-z][a-z0-9+.-]{0,8}",
        rest in "[a-z0-9./-]{0,20}",
    ) {
        prop_assume!(scheme != "http" && scheme != "https");
        let url = format!("{scheme}://example.com/{rest}");
        let base = config("", &format!("[environments.x.verify]\nbase_url = {}", toml_string(&url)));
        let err = Config::from_toml(&base).unwrap_err();
        prop_assert!(err.is_usage());
        prop_assert!(err.to_string().contains("environments.x.verify.base_url"), "{}", err);

        let hook = config(&format!("[notify]\nwebhooks = [{}]", toml_string(&url)), "");
        let err = Config::from_toml(&hook).unwrap_err();
        prop_assert!(err.is_usage());
        prop_assert!(err.to_string().contains("notify.webhooks[0]"), "{}", err);
    }

    /// http and https URLs with a host pass.
    #[test]
    fn http_urls_pass(https: bool, host in "[a-z]{1,10}(\\.[a-z]{2,5})?", port in 1u16..) {
        let url = format!("{}://{host}:{port}/", if https { "https" } else { "http" });
        let text = config(
            &format!("[notify]\nwebhooks = [{}]", toml_string(&url)),
            &format!("[environments.x.verify]\nbase_url = {}", toml_string(&url)),
        );
        prop_assert!(Config::from_toml(&text).is_ok(), "{}", url);
    }
}
