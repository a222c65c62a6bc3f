//! The result of a deploy, plan or rollback run: details on stderr and the outcome on
//! stdout, or the JSON report.

use std::io::{self, Write};

use kyb_deploy_core::verify::VerificationReport;
use kyb_deploy_core::{Operation, Outcome, RollbackSummary, RunReport, StageResult, redact_url};

use super::format;
use super::github::GithubActions;
use super::json;
use super::style::Style;
use crate::args::{GlobalArgs, OutputFormat};
use crate::context::CliContext;
use crate::error::CliError;
use crate::exit_codes::ExitCodes;

/// Prints the result of a run in the output format `global` asks for, tells the CI system
/// it runs in (GitHub Actions: summary, outputs, annotations), and returns its exit code.
pub(crate) fn print(
    ctx: &CliContext,
    global: &GlobalArgs,
    report: &RunReport,
) -> Result<i32, CliError> {
    let code = ExitCodes::for_report(report);
    let mut out = ctx.stdout.clone();
    match global.output {
        OutputFormat::Json => write_json(&mut out, code, report),
        OutputFormat::Human => write_human(&mut ctx.stderr.clone(), &mut out, ctx.style, report),
    }
    .map_err(CliError::Output)?;
    if let Some(github) = GithubActions::detect(global.ci, |name| ctx.var(name)) {
        // The run is over and recorded: a summary that cannot be written is a warning.
        if let Err(e) = github.announce(report, code, global.output, &mut out) {
            let _ = ctx.stderr.clone().write_all(
                format!(
                    "{} GitHub Actions summary or outputs not written: {e}\n",
                    ctx.style.warn("warning:")
                )
                .as_bytes(),
            );
        }
    }
    Ok(code)
}

/// Writes the JSON document of a run: `{"schema_version", "exit_code", "report"}`.
pub(crate) fn write_json(
    out: &mut dyn Write,
    exit_code: i32,
    report: &RunReport,
) -> io::Result<()> {
    json::write_document(out, exit_code, "report", report)
}

/// Writes what people need after a run: the details (rollback, verification, warnings, the
/// record) to `err`, then the one-line outcome and any planned changes to `out`.
pub(crate) fn write_human(
    err: &mut dyn Write,
    out: &mut dyn Write,
    style: Style,
    report: &RunReport,
) -> io::Result<()> {
    // Details are progress-like: failing to show them must not hide the outcome.
    let _ = err.write_all(details(report, style).as_bytes());
    let _ = err.flush();
    out.write_all(result(report).as_bytes())?;
    out.flush()
}

/// The outcome line and, for dry runs, the plan.
pub(crate) fn result(report: &RunReport) -> String {
    let mut text = report.summary();
    text.push('\n');
    if let Some(plan) = &report.plan {
        if plan.changes.is_empty() {
            text.push_str("  no changes: the release runs already\n");
        }
        for change in &plan.changes {
            text.push_str(&format!(
                "  {} {}: {} -> {}\n",
                change.resource,
                change.field,
                change.from.as_deref().unwrap_or("(none)"),
                change.to.as_deref().unwrap_or("(none)")
            ));
        }
    }
    text
}

fn details(report: &RunReport, style: Style) -> String {
    let mut lines = Vec::new();
    let rollback_ran = report.stages.iter().any(|s| {
        s.stage == kyb_deploy_core::Stage::Rollback
            && !matches!(s.result, StageResult::Skipped { .. })
    });
    match &report.outcome {
        Outcome::RolledBack {
            to, by_platform, ..
        } => lines.push(format!(
            "rollback: {} ({}) runs now and passed verification{}",
            to.version,
            to.image,
            if *by_platform {
                "; the platform rolled back on its own"
            } else {
                ""
            }
        )),
        Outcome::RollbackFailed { rollback_error, .. } if report.operation == Operation::Deploy => {
            lines.push(format!(
                "{} {}: {rollback_error}",
                style.error("rollback:"),
                if rollback_ran { "failed" } else { "not done" }
            ));
            lines.push(format!(
                "{} {} needs attention: the failed release may still be running",
                style.error("attention:"),
                report.environment
            ));
        }
        Outcome::TimedOut {
            rollback: Some(r), ..
        }
        | Outcome::Cancelled {
            rollback: Some(r), ..
        } => match r {
            RollbackSummary::RolledBack { to } => lines.push(format!(
                "rollback: {} ({}) runs now and passed verification",
                to.version, to.image
            )),
            RollbackSummary::Failed { error } => {
                lines.push(format!("{} not done: {error}", style.error("rollback:")));
                lines.push(format!(
                    "{} {} needs attention: the interrupted release may still be running",
                    style.error("attention:"),
                    report.environment
                ));
            }
        },
        _ => {}
    }
    if let Some(v) = &report.verification {
        lines.push(verification_line("verification", v));
    }
    if let Some(v) = &report.rollback_verification {
        lines.push(verification_line("verification of the rollback", v));
    }
    for run in &report.interrupted_runs {
        lines.push(format!(
            "interrupted run: {} ({} of {} by {}, started {}) never finished; it is now marked abandoned",
            run.id,
            run.operation,
            run.version,
            run.actor,
            format::timestamp(run.started_at)
        ));
    }
    if !report.warnings.is_empty() {
        lines.push(format!(
            "{} during the run:",
            format::count(report.warnings.len(), "warning", "warnings")
        ));
        for warning in &report.warnings {
            lines.push(format!("  - {warning}"));
        }
    }
    if let Some(url) = &report.url {
        lines.push(format!(
            "{} serves at {}",
            report.environment,
            redact_url(url)
        ));
    }
    let dry_run = matches!(report.outcome, Outcome::Succeeded { dry_run: true, .. });
    if dry_run {
        lines.push(format!("run {} (dry runs are not recorded)", report.run_id));
    } else if report.recorded {
        lines.push(format!("run {} recorded in the ledger", report.run_id));
    } else {
        lines.push(format!(
            "{} run {} could not be recorded in the ledger",
            style.warn("warning:"),
            report.run_id
        ));
    }
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

fn verification_line(label: &str, v: &VerificationReport) -> String {
    let mut line = format!(
        "{label}: {} ({})",
        if v.passed { "passed" } else { "failed" },
        format::count(v.checks.len(), "check", "checks")
    );
    if let (Some(p50), Some(p95)) = (v.latency.p50_ms, v.latency.p95_ms) {
        line.push_str(&format!(
            "; latency p50 {}, p95 {} over {}",
            format::millis(p50),
            format::millis(p95),
            format::count(v.latency.samples as usize, "request", "requests")
        ));
    }
    if let Some(failure) = v.failure() {
        line.push_str(&format!(": {failure}"));
    }
    line
}

#[cfg(test)]
mod tests {
    use kyb_deploy_core::verify::{CheckReport, LatencySummary};
    use kyb_deploy_core::{Plan, PlannedChange, Release, Stage, Version};

    use super::*;

    fn release(v: &str) -> Release {
        Release::new(Version::parse(v).unwrap(), format!("repo:{v}"))
    }

    fn report(outcome: Outcome) -> RunReport {
        RunReport {
            run_id: "r1".into(),
            operation: Operation::Deploy,
            environment: "staging".into(),
            target: "fake".into(),
            started_at: time::OffsetDateTime::UNIX_EPOCH,
            outcome,
            version: None,
            release: Some(release("v2")),
            previous: None,
            rollout_id: None,
            stages: Vec::new(),
            tests: Vec::new(),
            scan: None,
            plan: None,
            verification: None,
            rollback_verification: None,
            warnings: vec!["tests were skipped (--skip-tests)".into()],
            interrupted_runs: Vec::new(),
            recorded: true,
            url: None,
        }
    }

    #[test]
    fn rolled_back_runs_say_what_runs_now() {
        let r = report(Outcome::RolledBack {
            stage: Stage::Verify,
            reason: "liveness check failed: HTTP 503".into(),
            to: release("v1"),
            by_platform: false,
        });
        assert_eq!(
            result(&r),
            "failed at verify: liveness check failed: HTTP 503; rolled back to v1\n"
        );
        assert_eq!(
            details(&r, Style::new(false)),
            "rollback: v1 (repo:v1) runs now and passed verification\n\
             1 warning during the run:\n  - tests were skipped (--skip-tests)\n\
             run r1 recorded in the ledger\n"
        );
    }

    #[test]
    fn failed_rollbacks_call_for_attention() {
        let r = report(Outcome::RollbackFailed {
            stage: Stage::Verify,
            reason: "x".into(),
            rollback_error: "no known-good release".into(),
        });
        let text = details(&r, Style::new(false));
        assert!(
            text.starts_with(
                "rollback: not done: no known-good release\nattention: staging needs attention"
            ),
            "{text}"
        );
    }

    #[test]
    fn dry_runs_list_the_plan() {
        let mut r = report(Outcome::Succeeded {
            release: release("v2"),
            dry_run: true,
        });
        r.plan = Some(Plan {
            current: Some(release("v1")),
            changes: vec![PlannedChange {
                resource: "service".into(),
                field: "image".into(),
                from: Some("repo:v1".into()),
                to: Some("repo:v2".into()),
            }],
        });
        assert_eq!(
            result(&r),
            "dry run: would deploy v2 (repo:v2); nothing was changed\n  service image: repo:v1 -> repo:v2\n"
        );
        assert!(details(&r, Style::new(false)).ends_with("run r1 (dry runs are not recorded)\n"));
    }

    #[test]
    fn the_service_url_is_shown_without_its_secrets() {
        let mut r = report(Outcome::Succeeded {
            release: release("v2"),
            dry_run: false,
        });
        r.url = Some(
            "https://ci:hunter2@api.example.com:8443/?token=abc&page=1"
                .parse()
                .unwrap(),
        );
        let text = details(&r, Style::new(false));
        assert!(
            text.contains(
                "staging serves at https://redacted:redacted@api.example.com:8443/?token=redacted&page=1\n"
            ),
            "{text}"
        );
        assert!(!text.contains("hunter2") && !text.contains("abc"), "{text}");
        let json = serde_json::to_string(&r).unwrap();
        assert!(!json.contains("hunter2") && !json.contains("abc"), "{json}");
    }

    #[test]
    fn verification_lines_show_latency_and_the_failure() {
        let v = VerificationReport {
            passed: false,
            checks: vec![CheckReport {
                name: "liveness".into(),
                passed: false,
                detail: "HTTP 503".into(),
                attempts: 3,
                latency: LatencySummary::default(),
            }],
            reported_version: None,
            latency: LatencySummary {
                samples: 3,
                p50_ms: Some(12.4),
                p95_ms: Some(30.0),
                max_ms: Some(31.0),
            },
            timed_out: false,
        };
        assert_eq!(
            verification_line("verification", &v),
            "verification: failed (1 check); latency p50 12ms, p95 30ms over 3 requests: liveness check failed: HTTP 503"
        );
    }
}
