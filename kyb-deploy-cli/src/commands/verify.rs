//! `kyb-deploy verify`: probes and smoke tests against what runs now.

use kyb_deploy_core::config::Environment;
use kyb_deploy_core::verify::{VerificationReport, VerifyOutcome, VerifyRequest, verify_stage};
use kyb_deploy_core::{DeploymentRecord, Error, Url, Version, redact_url, service_url};
use serde::Serialize;

use crate::args::{GlobalArgs, OutputFormat, VerifyArgs};
use crate::context::CliContext;
use crate::error::CliError;
use crate::exit_codes::ExitCodes;
use crate::output::progress::Progress;
use crate::output::{format, json};
use crate::project::{Project, cancellable, parse_version};

/// The JSON payload of `verify`.
#[derive(Serialize)]
struct Verification {
    environment: String,
    /// The URL verified, through `redact_url` (a password in `verify.base_url` stays there).
    base_url: String,
    expected_version: String,
    /// `flag` (`--expect-version`) or `ledger` (the last successful deployment).
    expected_from: &'static str,
    passed: bool,
    /// The checks; null when verification timed out or was interrupted.
    report: Option<VerificationReport>,
    /// Why there is no report.
    error: Option<String>,
}

pub(crate) async fn run(
    args: VerifyArgs,
    global: &GlobalArgs,
    ctx: &mut CliContext,
) -> Result<i32, CliError> {
    let flag = parse_version(args.expect_version.as_deref())?;
    let project = Project::load(ctx, global)?;
    let mut env = project.environment(&args.environment, None)?;
    if let Some(limit) = args.timeout {
        env.settings.timeouts.verify = limit;
    }
    let probe = project.probe(ctx, &env)?;
    let (expected, expected_from) = match flag {
        Some(version) => (version, "flag"),
        None => (last_good_version(&project, &env).await?, "ledger"),
    };
    let base_url = base_url(&project, ctx, &env).await?;
    // Everything this command prints or puts into JSON shows the URL without its secrets.
    let shown_url = redact_url(&base_url);

    let progress = Progress::start(ctx, global.output, "verify");
    if global.output == OutputFormat::Human {
        let _ = ctx.stderr.write_text(&format!(
            "{}\n",
            ctx.style.bold(&format!(
                "verify {} at {shown_url}, expecting {expected}{}",
                env.name,
                if expected_from == "ledger" {
                    " (its last successful deployment)"
                } else {
                    ""
                }
            ))
        ));
    }
    // The probe stops itself at the limit and reports what it saw.
    let request = VerifyRequest::new(base_url.clone(), expected.clone())
        .with_time_limit(env.settings.timeouts.verify);
    let outcome = verify_stage(probe.as_ref(), &request, &progress.sink(), &ctx.cancel).await;
    progress.finish();
    let (code, report, error) = match outcome {
        VerifyOutcome::Passed(report) => (ExitCodes::SUCCESS, Some(report), None),
        VerifyOutcome::Failed(report) => (ExitCodes::VERIFICATION_FAILED, Some(report), None),
        VerifyOutcome::TimedOut { limit, report } => {
            let after = format!("timed out after {}", humantime::format_duration(limit));
            let reason = match &report {
                Some(report) => format!(
                    "{after}: {}",
                    report.failure().unwrap_or_else(|| "no verdict".to_owned())
                ),
                None => after,
            };
            (ExitCodes::TIMED_OUT, report, Some(reason))
        }
        VerifyOutcome::Cancelled => (ExitCodes::INTERRUPTED, None, Some("interrupted".to_owned())),
        VerifyOutcome::Error(e) => return Err(e.into()),
    };

    let verification = Verification {
        environment: env.name.clone(),
        base_url: shown_url,
        expected_version: expected.to_string(),
        expected_from,
        passed: code == ExitCodes::SUCCESS,
        report,
        error,
    };
    let mut out = ctx.stdout.clone();
    match global.output {
        OutputFormat::Json => json::write_document(&mut out, code, "verification", &verification),
        OutputFormat::Human => ctx.stdout.write_text(&render(&verification)),
    }
    .map_err(CliError::Output)?;
    Ok(code)
}

/// The version of the environment's last successful deployment.
async fn last_good_version(project: &Project, env: &Environment) -> Result<Version, CliError> {
    let records = project.state(env).await?.records;
    records
        .find_latest_verified(&env.name, &DeploymentRecord::is_known_good)
        .await?
        .map(|r| r.version.clone())
        .ok_or_else(|| CliError::Usage {
            message: format!(
                "no version to expect: the ledger has no successful deployment of {}; pass --expect-version VERSION",
                env.name
            ),
        })
}

/// The environment's `verify.base_url`, else the endpoint its target reports (the target is
/// created only when the URL is not configured).
async fn base_url(project: &Project, ctx: &CliContext, env: &Environment) -> Result<Url, CliError> {
    if let Some(url) = &env.settings.verify.base_url {
        return Ok(url.clone());
    }
    let kind = &env.settings.target;
    let target = project.target(ctx, env).await.map_err(|e| {
        CliError::from(Error::Config {
            message: format!(
                "environments.{}.verify.base_url: not set, and the {kind} target cannot report its endpoint ({}); set the URL the service answers on",
                env.name,
                e.chain()
            ),
        })
    })?;
    Ok(cancellable(&ctx.cancel, service_url(env, target.as_ref())).await??)
}

fn render(v: &Verification) -> String {
    let mut text = String::new();
    if let Some(report) = &v.report {
        for check in &report.checks {
            text.push_str(&format!(
                "{} {}: {} ({})\n",
                if check.passed { "✓" } else { "✗" },
                check.name,
                check.detail,
                format::count(check.attempts as usize, "attempt", "attempts")
            ));
        }
        if let Some(reported) = &report.reported_version {
            text.push_str(&format!("reported version: {reported}\n"));
        }
        if let (Some(p50), Some(p95)) = (report.latency.p50_ms, report.latency.p95_ms) {
            text.push_str(&format!(
                "latency: p50 {}, p95 {} over {}\n",
                format::millis(p50),
                format::millis(p95),
                format::count(report.latency.samples as usize, "request", "requests")
            ));
        }
    }
    let verdict = match (&v.report, &v.error) {
        (Some(_), _) if v.passed => "passed".to_owned(),
        (Some(report), _) => format!(
            "failed: {}",
            report
                .failure()
                .unwrap_or_else(|| "a check failed".to_owned())
        ),
        (None, error) => error.clone().unwrap_or_default(),
    };
    text.push_str(&format!(
        "verification of {} ({}) at {}: {verdict}\n",
        v.environment, v.expected_version, v.base_url
    ));
    text
}
