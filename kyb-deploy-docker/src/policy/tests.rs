use proptest::prelude::*;

use super::*;
use kyb_deploy_core::config::PolicyConfig;

fn settings() -> PolicySettings {
    PolicySettings {
        port: 8080,
        max_size: 200_000_000,
        allow_root: false,
    }
}

/// An image that meets the policy: non-root, port 8080 exposed, small, no secrets.
fn compliant() -> ImageFacts {
    ImageFacts {
        user: "10001".into(),
        env: vec![
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            "RUST_LOG=info".into(),
        ],
        exposed_ports: vec!["8080/tcp".into()],
        size: 12_000_000,
        history: vec![
            "/bin/sh -c #(nop) COPY file:8582af4daeaf in /kyb-sample-api ".into(),
            "/bin/sh -c #(nop)  EXPOSE 8080".into(),
            "/bin/sh -c #(nop)  USER 10001".into(),
        ],
    }
}

fn ids(findings: &[Finding]) -> Vec<&str> {
    findings.iter().map(|f| f.id.as_str()).collect()
}

#[test]
fn a_compliant_image_has_no_findings() {
    assert_eq!(evaluate(&settings(), &compliant()), []);
}

#[test]
fn root_users_are_found_unless_allowed() {
    for user in [
        "",
        " ",
        "root",
        "0",
        "0:0",
        "root:root",
        "root:1000",
        "0:1000",
    ] {
        let facts = ImageFacts {
            user: user.into(),
            ..compliant()
        };
        let findings = evaluate(&settings(), &facts);
        assert_eq!(ids(&findings), ["policy/root-user"], "user {user:?}");
        assert_eq!(findings[0].severity, "HIGH");
        assert!(findings[0].title.contains("allow_root"), "{findings:?}");
        let allowed = PolicySettings {
            allow_root: true,
            ..settings()
        };
        assert_eq!(evaluate(&allowed, &facts), [], "user {user:?} allowed");
    }
    for user in ["10001", "app", "10001:0", "nobody:nogroup", "rooty"] {
        let facts = ImageFacts {
            user: user.into(),
            ..compliant()
        };
        assert_eq!(evaluate(&settings(), &facts), [], "user {user:?}");
    }
    let none = evaluate(
        &settings(),
        &ImageFacts {
            user: String::new(),
            ..compliant()
        },
    );
    assert!(none[0].title.contains("no USER instruction"), "{none:?}");
}

#[test]
fn secret_names() {
    for name in [
        "DB_PASSWORD",
        "db_password",
        "MYSQL_ROOT_PASSWD",
        "SECRET_KEY_BASE",
        "CLIENT_SECRET",
        "API_TOKEN",
        "GITHUB_TOKEN",
        "NPMTOKEN",
        "REFRESH_TOKENS",
        "API_KEY",
        "STRIPE_APIKEY",
        "X-API-KEY",
        "SSH_PRIVATE_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "GOOGLE_APPLICATION_CREDENTIALS_JSON",
        "REGISTRY_CREDENTIAL",
        "AUTH",
        "BASIC_AUTH",
        "OAUTH_CLIENT",
    ] {
        assert!(is_secret_name(name), "{name} should look like a secret");
    }
    for name in [
        "PATH",
        "HOME",
        "RUST_LOG",
        "GPG_KEY",
        "TOKENIZERS_PARALLELISM",
        "AUTHOR",
        "POSTGRES_PASSWORD_FILE",
        "VAULT_TOKEN_PATH",
        "SECRETS_DIR",
        "AUTH_HOST",
        "AUTH_PORT",
        "AUTH_ENABLED",
        "LANG",
    ] {
        assert!(
            !is_secret_name(name),
            "{name} should not look like a secret"
        );
    }
}

#[test]
fn secret_env_names_the_variable_once_and_never_its_value() {
    let facts = ImageFacts {
        env: vec![
            "PATH=/usr/bin".into(),
            "API_TOKEN=supersecret123".into(),
            "DB_PASSWORD=".into(),
            "POSTGRES_PASSWORD_FILE=/run/secrets/db".into(),
            "NOT_AN_ASSIGNMENT".into(),
        ],
        history: vec![
            "/bin/sh -c #(nop)  ENV API_TOKEN=supersecret123 OTHER=x".into(),
            // Set and then emptied: the value stays in the history.
            "ENV SESSION_SECRET=s3ss10nsecret # buildkit".into(),
        ],
        ..compliant()
    };
    let findings = evaluate(&settings(), &facts);
    assert_eq!(ids(&findings), ["policy/secret-env", "policy/secret-env"]);
    assert!(findings[0].title.contains("API_TOKEN"));
    assert!(findings[0].title.contains("image config"));
    assert!(findings[1].title.contains("SESSION_SECRET"));
    assert!(findings[1].title.contains("image history"));
    let text = format!("{findings:?}");
    for value in ["supersecret123", "s3ss10nsecret"] {
        assert!(!text.contains(value), "{value} leaked: {text}");
    }
}

#[test]
fn secret_build_args_are_found_in_both_builders_history() {
    let history = [
        // The classic builder: build args prefix RUN steps.
        "|2 DB_PASSWORD=hunter2 VERSION=1.2.3 /bin/sh -c make release",
        // BuildKit.
        "RUN |3 NPM_TOKEN=npm_abcdef RUST_VERSION=1.89 GIT_SHA=abc /bin/sh -c cargo build # buildkit",
        "ARG SIGNING_KEY_PASSWORD=changeme",
        "/bin/sh -c #(nop)  ARG DEPLOY_TOKEN=letmein",
        // Declared without a default: no value is recorded.
        "/bin/sh -c #(nop)  ARG REGISTRY_PASSWORD",
        "ARG GITHUB_TOKEN # buildkit",
        // Again: one finding per name.
        "|1 DB_PASSWORD=hunter2 /bin/sh -c true",
    ];
    let findings = evaluate(
        &settings(),
        &ImageFacts {
            history: history.map(String::from).to_vec(),
            ..compliant()
        },
    );
    let names: Vec<_> = findings
        .iter()
        .map(|f| {
            assert_eq!(f.id, "policy/secret-build-arg");
            assert_eq!(f.severity, "HIGH");
            f.title.split_whitespace().nth(2).unwrap()
        })
        .collect();
    assert_eq!(
        names,
        [
            "DB_PASSWORD",
            "NPM_TOKEN",
            "SIGNING_KEY_PASSWORD",
            "DEPLOY_TOKEN"
        ]
    );
    let text = format!("{findings:?}");
    for value in ["hunter2", "npm_abcdef", "changeme", "letmein"] {
        assert!(!text.contains(value), "{value} leaked: {text}");
    }
}

#[test]
fn a_missing_port_names_what_is_declared_and_expected() {
    let facts = ImageFacts {
        exposed_ports: vec!["443/tcp".into(), "80/tcp".into()],
        ..compliant()
    };
    let findings = evaluate(&settings(), &facts);
    assert_eq!(ids(&findings), ["policy/port"]);
    assert_eq!(findings[0].severity, "MEDIUM");
    assert!(
        findings[0].title.contains("EXPOSE 443/tcp, 80/tcp")
            && findings[0].title.contains("8080/tcp"),
        "{findings:?}"
    );
    let none = evaluate(
        &settings(),
        &ImageFacts {
            exposed_ports: Vec::new(),
            ..compliant()
        },
    );
    assert!(none[0].title.contains("declares no EXPOSE"), "{none:?}");
    // 8080/udp is not the service's port.
    let udp = ImageFacts {
        exposed_ports: vec!["8080/udp".into()],
        ..compliant()
    };
    assert_eq!(ids(&evaluate(&settings(), &udp)), ["policy/port"]);
}

#[test]
fn an_oversized_image_shows_both_sizes() {
    let facts = ImageFacts {
        size: 612_400_000,
        ..compliant()
    };
    let findings = evaluate(&settings(), &facts);
    assert_eq!(ids(&findings), ["policy/size"]);
    assert_eq!(
        findings[0].title,
        "image is 612.4 MB, over the size budget of 200.0 MB (image.policy.max_size)"
    );
    // Exactly at the budget is fine; one byte over is not, and says so in bytes.
    let at = ImageFacts {
        size: 200_000_000,
        ..compliant()
    };
    assert_eq!(evaluate(&settings(), &at), []);
    let over = evaluate(
        &settings(),
        &ImageFacts {
            size: 200_000_001,
            ..compliant()
        },
    );
    assert!(over[0].title.contains("200000001 bytes"), "{over:?}");
}

#[test]
fn human_sizes() {
    assert_eq!(human_size(0), "0 B");
    assert_eq!(human_size(999), "999 B");
    assert_eq!(human_size(1000), "1.0 kB");
    assert_eq!(human_size(3_610_000), "3.6 MB");
    assert_eq!(human_size(999_999), "1.0 MB");
    assert_eq!(human_size(1_500_000_000), "1.5 GB");
}

#[test]
fn settings_come_from_the_image_config() {
    let mut config = ImageConfig {
        port: 9000,
        policy: PolicyConfig {
            max_size: "1GiB".into(),
            allow_root: true,
        },
        ..ImageConfig::default()
    };
    assert_eq!(
        PolicySettings::from_config(&config).unwrap(),
        PolicySettings {
            port: 9000,
            max_size: 1 << 30,
            allow_root: true
        }
    );
    config.policy.max_size = "huge".into();
    let err = PolicySettings::from_config(&config).unwrap_err();
    assert!(err.is_usage());
    assert!(err.to_string().contains("image.policy.max_size"), "{err}");
}

/// A secret-looking name, with a random prefix.
fn secret_name() -> impl Strategy<Value = String> {
    (
        "[A-Z]{0,6}_",
        prop::sample::select(vec![
            "PASSWORD",
            "TOKEN",
            "SECRET",
            "API_KEY",
            "ACCESS_KEY",
            "AUTH",
            "CREDENTIALS",
        ]),
    )
        .prop_map(|(prefix, word)| format!("{prefix}{word}"))
}

proptest! {
    /// Whatever the value and wherever it is baked in, a finding names the variable and
    /// never shows the value.
    #[test]
    fn secret_values_never_reach_a_finding(
        name in secret_name(),
        value in "[!-~]{10,40}",
        other in "[a-z0-9]{1,12}",
    ) {
        let facts = ImageFacts {
            env: vec![format!("{name}={value}"), format!("OTHER={other}")],
            history: vec![
                format!("/bin/sh -c #(nop)  ENV {name}={value}"),
                format!("|2 {name}={value} OTHER={other} /bin/sh -c make"),
                format!("RUN |1 {name}={value} /bin/sh -c make # buildkit"),
                format!("ARG {name}={value}"),
            ],
            ..compliant()
        };
        let findings = evaluate(&settings(), &facts);
        prop_assert_eq!(ids(&findings), ["policy/secret-env", "policy/secret-build-arg"]);
        for finding in &findings {
            prop_assert!(finding.title.contains(&name));
            prop_assert!(!finding.title.contains(&value), "{} leaked in {:?}", value, finding);
        }
        let json = serde_json::to_string(&findings).unwrap();
        prop_assert!(!json.contains(&value));
    }

    /// History parsing never panics on arbitrary text.
    #[test]
    fn any_history_line_is_parsed(line in "\\PC{0,80}") {
        let _ = secrets_in_history(&line);
    }
}
