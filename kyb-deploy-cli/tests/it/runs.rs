//! Whole deploy, plan and rollback runs in process, against a fake target and a scripted
//! probe, checking exit codes, output and what changed.

use std::time::Duration;

use kyb_deploy_core::CancellationToken;
use kyb_deploy_testkit::{FakeRollout, TargetCall};

use crate::support::{CONFIG, Harness};

#[test]
fn a_verified_deployment_exits_0_with_a_json_report() {
    let h = Harness::new(CONFIG);
    let run = h.run(&["--output", "json", "deploy", "-e", "staging", "-v", "v1"]);
    assert_eq!(run.code, 0, "{run:?}");
    let doc = run.json();
    assert_eq!(doc["schema_version"], 1);
    assert_eq!(doc["exit_code"], 0);
    let report = &doc["report"];
    assert_eq!(report["outcome"]["outcome"], "succeeded");
    assert_eq!(report["environment"], "staging");
    assert_eq!(report["version"]["version"], "v1");
    assert_eq!(report["recorded"], true);
    assert_eq!(h.target.current().unwrap().version.as_str(), "v1");
    assert_eq!(
        h.ledger_lines(),
        [
            ("v1".to_owned(), "in_progress".to_owned()),
            ("v1".to_owned(), "succeeded".to_owned())
        ]
    );
    // Events go to stderr as JSON lines, so that stdout stays one document.
    for line in run.stderr.lines() {
        let event: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(event["event"].is_string(), "{line}");
    }
    assert!(run.stderr.contains(r#""event":"run_finished""#));
}

#[test]
fn human_output_shows_stages_on_stderr_and_the_outcome_on_stdout() {
    let h = Harness::new(CONFIG);
    let run = h.run(&["deploy", "-e", "staging", "-v", "v1"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout, "deployed v1 (kyb-platform-api:v1)\n");
    assert!(
        run.stderr
            .contains("deploy to staging with the fake target (run "),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("▸ verify ... ok ("), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("- tests skipped: no test commands configured"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("recorded in the ledger"),
        "{}",
        run.stderr
    );
    assert!(!run.all().contains('\x1b'), "no colour without a terminal");
}

#[test]
fn failed_verification_rolls_back_to_the_last_good_release_and_exits_4() {
    let h = Harness::new(CONFIG);
    assert_eq!(h.run(&["deploy", "-e", "staging", "-v", "v1"]).code, 0);
    let _ = h.probe.clone().fail_version("v2", "liveness", "HTTP 503");
    let run = h.run(&["deploy", "-e", "staging", "-v", "v2"]);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(run.stdout.contains("rolled back to v1"), "{}", run.stdout);
    assert!(run.stderr.contains("✗ verify failed"), "{}", run.stderr);
    assert!(
        run.stderr.contains("liveness check failed: HTTP 503"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("rollback: v1 (kyb-platform-api:v1) runs now and passed verification")
    );
    assert_eq!(h.target.current().unwrap().version.as_str(), "v1");
}

#[test]
fn a_failed_rollback_exits_5_and_asks_for_attention() {
    let h = Harness::new(CONFIG);
    assert_eq!(h.run(&["deploy", "-e", "staging", "-v", "v1"]).code, 0);
    let _ = h
        .target
        .clone()
        .script(FakeRollout::Complete(Duration::ZERO))
        .script(FakeRollout::Fail(
            Duration::ZERO,
            "task exited with code 1".into(),
        ));
    let _ = h
        .probe
        .clone()
        .fail_version("v2", "readiness", "connection refused");
    let run = h.run(&["deploy", "-e", "staging", "-v", "v2"]);
    assert_eq!(run.code, 5, "{run:?}");
    assert!(run.stdout.contains("NOT rolled back"), "{}", run.stdout);
    assert!(
        run.stderr.contains("staging needs attention"),
        "{}",
        run.stderr
    );
    assert!(
        h.target
            .calls()
            .contains(&TargetCall::Rollback("v1".into()))
    );
}

#[test]
fn a_run_past_its_time_limit_exits_6() {
    let h = Harness::new(CONFIG);
    let _ = h.target.clone().script(FakeRollout::Hang);
    let run = h.run(&[
        "--output",
        "json",
        "deploy",
        "-e",
        "staging",
        "-v",
        "v1",
        "--timeout",
        "200ms",
    ]);
    assert_eq!(run.code, 6, "{run:?}");
    assert_eq!(run.json()["report"]["outcome"]["outcome"], "timed_out");
}

#[test]
fn cancellation_stops_the_run_and_exits_130() {
    let h = Harness::new(CONFIG);
    let _ = h.target.clone().script(FakeRollout::Hang);
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    let target = h.target.clone();
    // Cancel once the rollout is being waited for, as a Ctrl-C during a long rollout would.
    let canceller = std::thread::spawn(move || {
        let give_up = std::time::Instant::now() + Duration::from_secs(30);
        while !target
            .calls()
            .iter()
            .any(|c| matches!(c, TargetCall::Wait(_)))
            && std::time::Instant::now() < give_up
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        trigger.cancel();
    });
    let run = h.run_in(&["deploy", "-e", "staging", "-v", "v1"], |ctx| {
        ctx.with_cancel_token(cancel)
    });
    canceller.join().unwrap();
    assert_eq!(run.code, 130, "{run:?}");
    assert!(
        run.stdout.starts_with("cancelled at wait"),
        "{}",
        run.stdout
    );
    // The record was finalized, not left in progress.
    let last = h.ledger_lines().pop().unwrap();
    assert_eq!(last, ("v1".to_owned(), "cancelled".to_owned()));
}

#[test]
fn a_dry_run_changes_nothing_and_records_nothing() {
    let h = Harness::new(CONFIG);
    for args in [
        &["deploy", "-e", "staging", "-v", "v2", "--dry-run"][..],
        &["plan", "-e", "staging", "-v", "v2"][..],
    ] {
        let run = h.run(args);
        assert_eq!(run.code, 0, "{run:?}");
        assert!(
            run.stdout.starts_with(
                "dry run: would deploy v2 (kyb-platform-api:v2); nothing was changed\n"
            ),
            "{}",
            run.stdout
        );
        assert!(
            run.stdout
                .contains("fake service image: (none) -> kyb-platform-api:v2"),
            "{}",
            run.stdout
        );
    }
    assert!(
        h.target.mutating_calls().is_empty(),
        "{:?}",
        h.target.calls()
    );
    assert!(
        !h.project.ledger().exists(),
        "a dry run must not create the ledger"
    );
}

#[test]
fn a_guarded_environment_without_yes_and_without_a_terminal_is_refused_with_3() {
    let h = Harness::new(CONFIG);
    let run = h.run(&["deploy", "-e", "production", "-v", "v1"]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.all().contains("pass --yes"), "{}", run.all());
    assert!(h.target.mutating_calls().is_empty());

    let run = h.run(&["deploy", "-e", "production", "-v", "v1", "--yes"]);
    assert_eq!(run.code, 0, "{run:?}");
}

#[test]
fn on_a_terminal_the_user_is_asked_to_confirm() {
    let h = Harness::new(CONFIG);
    let refused = h.run_answering(&["deploy", "-e", "production", "-v", "v1"], "n\n");
    assert_eq!(refused.code, 3, "{refused:?}");
    assert!(
        refused
            .stderr
            .starts_with("Deploy v1 to production? [y/N] "),
        "{}",
        refused.stderr
    );
    assert!(
        refused
            .stderr
            .contains("error: deployment of v1 to production was not confirmed")
    );
    assert!(h.target.mutating_calls().is_empty());

    let accepted = h.run_answering(&["deploy", "-e", "production", "-v", "v1"], "y\n");
    assert_eq!(accepted.code, 0, "{accepted:?}");
    assert_eq!(h.target.current().unwrap().version.as_str(), "v1");
}

#[test]
fn force_and_skip_tests_are_warnings_in_the_report() {
    let config = format!("[tests]\nunit = \"echo unit failed; exit 1\"\n{CONFIG}");
    let h = Harness::new(&config);

    let refused = h.run(&["deploy", "-e", "staging", "-v", "v1"]);
    assert_eq!(refused.code, 3, "{refused:?}");
    assert!(
        refused.stdout.contains("pass --force"),
        "{}",
        refused.stdout
    );
    assert!(
        refused.stderr.contains("│ unit failed"),
        "test output is shown: {}",
        refused.stderr
    );

    let forced = h.run(&[
        "--output", "json", "deploy", "-e", "staging", "-v", "v1", "--force",
    ]);
    assert_eq!(forced.code, 0, "{forced:?}");
    let warnings = forced.json()["report"]["warnings"].to_string();
    assert!(
        warnings.contains("FORCED past") && warnings.contains("unit tests failed"),
        "{warnings}"
    );

    let skipped = h.run(&[
        "--output", "json", "deploy", "-e", "staging", "-v", "v2", "-s",
    ]);
    assert_eq!(skipped.code, 0, "{skipped:?}");
    let warnings = skipped.json()["report"]["warnings"].to_string();
    assert!(
        warnings.contains("tests were skipped (--skip-tests)"),
        "{warnings}"
    );
}

#[test]
fn rollback_goes_to_the_last_good_release_or_a_named_one() {
    let h = Harness::new(CONFIG);
    for version in ["v1", "v2"] {
        assert_eq!(h.run(&["deploy", "-e", "staging", "-v", version]).code, 0);
    }
    let dry = h.run(&["rollback", "-e", "staging", "--dry-run"]);
    assert_eq!(dry.code, 0, "{dry:?}");
    assert!(
        dry.stdout
            .starts_with("dry run: would roll back staging to v1"),
        "{}",
        dry.stdout
    );
    assert_eq!(h.target.current().unwrap().version.as_str(), "v2");

    let run = h.run(&["rollback", "-e", "staging"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stdout,
        "rolled back staging to v1 (kyb-platform-api:v1)\n"
    );
    assert_eq!(h.target.current().unwrap().version.as_str(), "v1");

    let unknown = h.run(&["rollback", "-e", "staging", "--to", "v9"]);
    assert_eq!(unknown.code, 3, "{unknown:?}");
    assert!(
        unknown.stdout.contains("v9 was never deployed to staging"),
        "{}",
        unknown.stdout
    );

    let invalid = h.run(&["rollback", "-e", "staging", "--to", "v1;reboot"]);
    assert_eq!(invalid.code, 2, "{invalid:?}");
}

#[test]
fn a_target_kind_this_build_lacks_fails_before_anything_with_2() {
    // The real registration list: this build has no Nomad target.
    let h = Harness::new(&crate::support::CONFIG.replace(
        "target = \"ecs\"\n[environments.staging.ecs]\ncluster = \"kyb-staging\"\nservice = \"kyb-api\"",
        "target = \"nomad\"\n[environments.staging.nomad]\njob = \"kyb-api\"",
    ));
    let run = h.run_in(&["deploy", "-e", "staging", "-v", "v1"], |ctx| {
        ctx.with_targets(std::sync::Arc::new(
            kyb_deploy_cli::BuiltinTargets::default(),
        ))
    });
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains(r#"environments.staging.target: "nomad" is not a target kind of this build"#),
        "{}",
        run.stderr
    );
    assert!(!h.project.ledger().exists());
}

#[test]
fn on_a_terminal_stage_lines_are_coloured_unless_no_color() {
    let h = Harness::new(CONFIG);
    let coloured = h.run_in(&["deploy", "-e", "staging", "-v", "v1"], |ctx| {
        ctx.with_terminal(true, true)
    });
    assert_eq!(coloured.code, 0, "{coloured:?}");
    assert!(
        coloured.stderr.contains("verify ... \x1b[32mok\x1b[0m"),
        "{}",
        coloured.stderr
    );

    let plain = h.run_in(&["deploy", "-e", "staging", "-v", "v2"], |ctx| {
        ctx.with_terminal(true, false)
    });
    assert_eq!(plain.code, 0, "{plain:?}");
    assert!(
        plain.stderr.contains("▸ verify ... ok ("),
        "{}",
        plain.stderr
    );
    assert!(!plain.all().contains('\x1b'), "{}", plain.stderr);
}

/// The ledger becomes unwritable while the release rolls out (its file replaced by a
/// directory): the release is deployed and verified, but its final record cannot be written,
/// so the run does not claim success: exit 7, with the reason, and the ledger as it was.
#[test]
fn a_final_record_that_cannot_be_written_exits_7() {
    let project = crate::support::Project::new(CONFIG);
    let ledger = project.ledger();
    let moved = ledger.with_extension("moved");
    let hook: kyb_deploy_testkit::ActivateHook = {
        let (ledger, moved) = (ledger.clone(), moved.clone());
        std::sync::Arc::new(move |_release| {
            std::fs::rename(&ledger, &moved).unwrap();
            std::fs::create_dir(&ledger).unwrap();
            Box::pin(async { Ok(()) })
        })
    };
    let h = Harness {
        project,
        target: kyb_deploy_testkit::FakeTarget::new().on_activate(hook),
        probe: kyb_deploy_testkit::ScriptedProbe::new(),
    };
    let run = h.run(&["--output", "json", "deploy", "-e", "staging", "-v", "v1"]);
    assert_eq!(run.code, 7, "{run:?}");
    let doc = run.json();
    assert_eq!(doc["exit_code"], 7);
    assert_eq!(doc["report"]["outcome"]["outcome"], "succeeded");
    assert_eq!(doc["report"]["recorded"], false);
    let warnings = doc["report"]["warnings"].to_string();
    assert!(
        warnings.contains("writing the final deployment record failed after 3 attempts"),
        "{warnings}"
    );
    assert_eq!(h.target.current().unwrap().version.as_str(), "v1");

    std::fs::remove_dir(&ledger).unwrap();
    std::fs::rename(&moved, &ledger).unwrap();
    assert_eq!(
        h.ledger_lines(),
        [("v1".to_owned(), "in_progress".to_owned())],
        "the record written before the deploy is all there is"
    );
}

/// `--image` deploys an image built elsewhere, pinned by digest, as it is; a reference that a
/// tag could move is refused before anything runs.
#[test]
fn a_prebuilt_image_is_deployed_by_its_digest() {
    let h = Harness::new(CONFIG);
    let image = format!("ghcr.io/acme/kyb-platform-api@sha256:{}", "ab".repeat(32));
    let run = h.run(&[
        "--output", "json", "deploy", "-e", "staging", "-v", "v7", "--image", &image,
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    let report = &run.json()["report"];
    assert_eq!(report["release"]["image"], image.as_str(), "{report:#}");
    assert_eq!(h.target.current().unwrap().image, image);
    for stage in ["build", "scan", "push"] {
        assert!(
            report["stages"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["stage"] == stage && s["result"]["status"] == "skipped"),
            "{stage}: {report:#}"
        );
    }
    for bad in [
        "ghcr.io/acme/api:v7",
        "ghcr.io/acme/api@sha256:abc",
        "@sha256:0",
    ] {
        let refused = h.run(&["deploy", "-e", "staging", "-v", "v8", "--image", bad]);
        assert_eq!(refused.code, 2, "{bad}: {refused:?}");
        assert!(
            refused.stderr.contains("must name the image by its digest"),
            "{bad}: {}",
            refused.stderr
        );
    }
    assert_eq!(h.target.current().unwrap().version.as_str(), "v7");
}
