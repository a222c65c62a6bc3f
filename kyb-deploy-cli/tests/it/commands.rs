//! status, history, verify and check, in process.

use std::io::Write;

use crate::support::{CONFIG, Harness};

#[test]
fn history_lists_runs_and_flags_what_matters() {
    let h = Harness::new(CONFIG);
    let empty = h.run(&["history"]);
    assert_eq!(empty.code, 0, "{empty:?}");
    assert_eq!(
        empty.stdout,
        "no runs recorded in .kyb-deploy/ledger.jsonl\n"
    );

    assert_eq!(
        h.run(&["deploy", "-e", "staging", "-v", "v1", "-s"]).code,
        0
    );
    assert_eq!(
        h.run(&["deploy", "-e", "production", "-v", "v1", "--yes"])
            .code,
        0
    );
    let _ = h.probe.clone().fail_version("v2", "liveness", "HTTP 503");
    assert_eq!(h.run(&["deploy", "-e", "staging", "-v", "v2"]).code, 4);

    let run = h.run(&["history", "-e", "staging"]);
    assert_eq!(run.code, 0, "{run:?}");
    let (runs, releases) = run.stdout.split_once("\n\n").expect("two sections");
    let lines: Vec<&str> = runs.lines().collect();
    assert_eq!(lines.len(), 3, "{}", run.stdout);
    assert!(lines[0].starts_with("RUN "), "{}", lines[0]);
    assert!(
        lines[1].contains(" v1 ")
            && lines[1].contains("succeeded")
            && lines[1].ends_with("tests skipped")
    );
    assert!(
        lines[2].contains(" v2 ") && lines[2].contains("rolled_back") && lines[2].ends_with(" v1"),
        "{}",
        run.stdout
    );

    // The target's releases, joined with the runs that deployed them.
    let releases: Vec<&str> = releases.lines().collect();
    assert_eq!(
        releases[0],
        "releases known to the ecs target, newest first (* runs now):"
    );
    let v2_run = lines[2].split_whitespace().next().unwrap();
    assert!(
        releases
            .iter()
            .any(|l| l.contains(" v2 ") && l.contains(v2_run) && !l.starts_with('*')),
        "{}",
        run.stdout
    );
    assert!(
        releases.iter().any(|l| l.starts_with("*  v1 ")),
        "{}",
        run.stdout
    );

    let json = h
        .run(&["--output", "json", "history", "--limit", "1"])
        .json();
    let records = json["history"]["records"].as_array().unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["version"], "v2");
    assert_eq!(json["history"]["revisions"], serde_json::json!([]));

    let json = h
        .run(&["--output", "json", "history", "-e", "staging"])
        .json();
    let revisions = json["history"]["revisions"].as_array().unwrap();
    // The harness's one fake target serves both environments and remembers every rollout:
    // v1 (staging), v1 (production), v2, and v1 again (the rollback).
    assert_eq!(revisions.len(), 4, "{json:#}");
    let v2 = revisions
        .iter()
        .find(|r| r["release"]["version"] == "v2")
        .unwrap();
    assert_eq!(v2["run_id"], v2_run);
    assert_eq!(v2["active"], false);
    assert_eq!(json["history"]["target_error"], serde_json::Value::Null);
}

#[test]
fn history_reports_a_torn_ledger_line_as_a_warning_and_unfinished_runs() {
    let h = Harness::new(CONFIG);
    assert_eq!(h.run(&["deploy", "-e", "staging", "-v", "v1"]).code, 0);
    // A run killed after writing its in-progress record, and a write torn by a crash.
    let ledger = std::fs::read_to_string(h.project.ledger()).unwrap();
    let started = ledger
        .lines()
        .next()
        .unwrap()
        .replace(r#""version":"v1""#, r#""version":"v2""#);
    let started = started.replacen(r#""id":""#, r#""id":"killed-"#, 1);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(h.project.ledger())
        .unwrap();
    write!(file, "{started}\n{{\"id\":\"torn").unwrap();

    let run = h.run(&["history", "-e", "staging"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr
            .contains("warning: ledger .kyb-deploy/ledger.jsonl line 4: incomplete last line"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.contains("never finished"), "{}", run.stdout);
    assert!(
        run.stderr.contains("note: 1 run never finished"),
        "{}",
        run.stderr
    );
}

#[test]
fn status_shows_what_runs_and_the_last_good_release() {
    let h = Harness::new(CONFIG);
    assert_eq!(h.run(&["deploy", "-e", "staging", "-v", "v1"]).code, 0);
    let run = h.run(&["status", "-e", "staging"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("running     v1 (kyb-platform-api:v1)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("last good   v1 (run "),
        "{}",
        run.stdout
    );

    let json = h
        .run(&["--output", "json", "status", "-e", "staging"])
        .json();
    assert_eq!(json["status"]["running"]["version"], "v1");
    assert_eq!(json["status"]["target"]["kind"], "fake");
}

#[test]
fn status_without_a_target_still_shows_the_ledger_and_exits_3() {
    /// A platform that cannot be reached from this machine.
    struct Unreachable;

    #[kyb_deploy_core::async_trait]
    impl kyb_deploy_cli::TargetFactory for Unreachable {
        async fn create(
            &self,
            _env: &kyb_deploy_core::config::Environment,
            _config: &kyb_deploy_core::config::Config,
        ) -> Result<std::sync::Arc<dyn kyb_deploy_core::Target>, kyb_deploy_core::Error> {
            Err(kyb_deploy_core::Error::target(
                "ecs",
                "no AWS credentials found",
            ))
        }
    }

    let h = Harness::new(CONFIG);
    assert_eq!(h.run(&["deploy", "-e", "staging", "-v", "v1"]).code, 0);
    let run = h.run_in(&["status", "-e", "staging"], |ctx| {
        ctx.with_targets(std::sync::Arc::new(Unreachable))
    });
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.stdout.contains("last good   v1"), "{}", run.stdout);
    assert!(
        run.stderr
            .contains("error: ecs target: no AWS credentials found"),
        "{}",
        run.stderr
    );
}

#[test]
fn verify_checks_what_runs_against_the_ledger_or_the_flag() {
    let h = Harness::new(CONFIG);
    let nothing = h.run(&["verify", "-e", "staging"]);
    assert_eq!(nothing.code, 2, "{nothing:?}");
    assert!(
        nothing.stderr.contains("pass --expect-version VERSION"),
        "{}",
        nothing.stderr
    );

    assert_eq!(h.run(&["deploy", "-e", "staging", "-v", "v1"]).code, 0);
    let run = h.run(&["verify", "-e", "staging"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .ends_with("verification of staging (v1) at http://127.0.0.1:9/: passed\n"),
        "{}",
        run.stdout
    );
    assert_eq!(
        h.probe.requests().last().unwrap().expected_version.as_str(),
        "v1"
    );

    let _ = h.probe.clone().fail_version("v7", "status", "reported v1");
    let failed = h.run(&[
        "--output",
        "json",
        "verify",
        "-e",
        "staging",
        "--expect-version",
        "v7",
    ]);
    assert_eq!(failed.code, 8, "{failed:?}");
    let json = failed.json();
    assert_eq!(json["verification"]["passed"], false);
    assert_eq!(json["verification"]["expected_from"], "flag");
    assert_eq!(
        json["verification"]["report"]["checks"][0]["detail"],
        "reported v1"
    );
}

#[test]
fn verify_without_a_base_url_uses_the_target_endpoint_or_names_the_key() {
    let config = "[environments.qa]\ntarget = \"docker\"\n[environments.qa.docker]\n";
    let h = Harness::new(config);
    let run = h.run(&["verify", "-e", "qa", "--expect-version", "v1"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains("environments.qa.verify.base_url: not set"),
        "{}",
        run.stderr
    );
}

#[test]
fn check_lists_every_prerequisite_with_its_fix() {
    let h = Harness::new(CONFIG);
    let run = h.run_in(&["--output", "json", "check", "-e", "staging"], |ctx| {
        ctx.with_targets(std::sync::Arc::new(
            kyb_deploy_cli::BuiltinTargets::default(),
        ))
    });
    assert_eq!(run.code, 3, "{run:?}");
    let json = run.json();
    let checks = json["check"]["checks"].as_array().unwrap();
    let names: Vec<&str> = checks.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert!(
        names.contains(&"configuration") && names.contains(&"git") && names.contains(&"ecs target"),
        "{names:?}"
    );
    let target = checks.iter().find(|c| c["name"] == "ecs target").unwrap();
    assert_eq!(target["ok"], false, "{target}");
    assert!(
        target["fix"]
            .as_str()
            .unwrap()
            .contains("fix environments.staging.ecs"),
        "{target}"
    );
}

#[test]
fn verify_past_its_time_limit_exits_6() {
    let h = Harness::new(CONFIG);
    let _ = h.probe.clone().hang_version("v1");
    let run = h.run(&[
        "--output",
        "json",
        "verify",
        "-e",
        "staging",
        "--expect-version",
        "v1",
        "--timeout",
        "200ms",
    ]);
    assert_eq!(run.code, 6, "{run:?}");
    let json = run.json();
    assert_eq!(json["verification"]["report"], serde_json::Value::Null);
    assert_eq!(json["verification"]["error"], "timed out after 200ms");
}

/// Shell completions and the manual page come from the same definition as `--help`: every
/// command is in them, and the bash script is valid bash.
#[test]
fn completions_and_the_manual_page_cover_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let bash =
        crate::support::output(crate::support::binary(dir.path()).args(["completions", "bash"]));
    assert_eq!(bash.code, 0, "{}", bash.all());
    for command in ["deploy", "rollback", "unlock", "completions", "man"] {
        assert!(
            bash.stdout.contains(command),
            "{command} missing from the bash script"
        );
    }
    let script = dir.path().join("kyb-deploy.bash");
    std::fs::write(&script, &bash.stdout).unwrap();
    let syntax = std::process::Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        syntax.status.success(),
        "{}",
        String::from_utf8_lossy(&syntax.stderr)
    );
    let zsh =
        crate::support::output(crate::support::binary(dir.path()).args(["completions", "zsh"]));
    assert!(
        zsh.stdout.starts_with("#compdef kyb-deploy"),
        "{}",
        zsh.stdout
    );
    let man = crate::support::output(crate::support::binary(dir.path()).arg("man"));
    assert_eq!(man.code, 0, "{}", man.all());
    assert!(man.stdout.contains(".TH kyb-deploy 1"), "{}", man.stdout);
    assert!(
        ["deploy", "rollback", "unlock", "completions"]
            .iter()
            .all(|c| man.stdout.contains(&format!("kyb\\-deploy\\-{c}(1)"))),
        "{}",
        man.stdout
    );
    let unknown =
        crate::support::output(crate::support::binary(dir.path()).args(["completions", "nosh"]));
    assert_eq!(unknown.code, 2, "{}", unknown.all());
    assert!(
        unknown.stderr.contains("possible values: bash"),
        "{}",
        unknown.stderr
    );
}

/// `--version` names the commit and the build date, so a report or a bug says exactly
/// which build ran.
#[test]
fn the_version_names_the_commit_and_the_build_date() {
    let dir = tempfile::tempdir().unwrap();
    let run = crate::support::output(crate::support::binary(dir.path()).arg("--version"));
    assert_eq!(run.code, 0, "{}", run.all());
    let line = run.stdout.trim_end();
    let rest = line
        .strip_prefix(&format!(
            "kyb-deploy {} (commit ",
            env!("CARGO_PKG_VERSION")
        ))
        .unwrap_or_else(|| panic!("{line}"));
    let (commit, date) = rest
        .strip_suffix(')')
        .and_then(|r| r.split_once(", built "))
        .unwrap_or_else(|| panic!("{line}"));
    assert!(
        commit == "unknown"
            || (commit.len() == 12 && commit.bytes().all(|b| b.is_ascii_hexdigit())),
        "{line}"
    );
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(date, &format).unwrap_or_else(|e| panic!("{line}: {e}"));
}
