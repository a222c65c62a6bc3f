//! `kyb-deploy check`: every prerequisite of an environment, each missing one with its fix.

use kyb_deploy_core::{Check, PreflightRequest, ScanKind, check_prerequisites};
use kyb_deploy_docker::TrivyScanner;
use serde::Serialize;

use crate::args::{CheckArgs, GlobalArgs, OutputFormat};
use crate::context::CliContext;
use crate::error::CliError;
use crate::exit_codes::ExitCodes;
use crate::output::{format, json};
use crate::project::{Project, cancellable};

/// The JSON payload of `check`.
#[derive(Serialize)]
struct Checks {
    environment: String,
    target_kind: String,
    /// Whether every check passed.
    ok: bool,
    checks: Vec<Check>,
}

pub(crate) async fn run(
    args: CheckArgs,
    global: &GlobalArgs,
    ctx: &mut CliContext,
) -> Result<i32, CliError> {
    let project = Project::load(ctx, global)?;
    let env = project.environment(&args.environment, None)?;
    let kind = env.settings.target;

    let mut checks = vec![Check::pass(
        "configuration",
        format!(
            "{} in {}",
            format::count(
                project.config.environments.len(),
                "environment",
                "environments"
            ),
            project.path.file_name().map_or_else(
                || project.path.display().to_string(),
                |n| n.to_string_lossy().into_owned()
            )
        ),
    )];
    if let Err(e) = project.probe(ctx, &env) {
        checks.push(Check::fail(
            "verification settings",
            e.to_string(),
            format!(
                "fix environments.{}.verify in the configuration file",
                env.name
            ),
        ));
    }
    checks.extend(
        check_prerequisites(&PreflightRequest {
            project_dir: &project.dir,
            needs_git: true,
            target_kind: Some(kind),
        })
        .await,
    );
    match project.target(ctx, &env).await {
        Ok(target) => {
            checks.push(Check::pass(format!("{kind} target"), format!("{} target created", target.kind())));
            checks.extend(cancellable(&ctx.cancel, target.preflight()).await?);
        }
        Err(e) => checks.push(Check::fail(
            format!("{kind} target"),
            e.to_string(),
            format!(
                "use a build of kyb-deploy that includes the {kind} target, or fix environments.{}.{kind}",
                env.name
            ),
        )),
    }

    if project.config.image.scan == ScanKind::Trivy {
        match TrivyScanner::new(&project.config.image.trivy) {
            Ok(trivy) => checks.push(trivy.check().await),
            Err(e) => checks.push(Check::fail(
                "trivy",
                e.to_string(),
                "fix image.trivy in the configuration file",
            )),
        }
    }

    let failed = checks.iter().filter(|c| !c.ok).count();
    let code = if failed == 0 {
        ExitCodes::SUCCESS
    } else {
        ExitCodes::FAILED_BEFORE_DEPLOY
    };
    let mut out = ctx.stdout.clone();
    match global.output {
        OutputFormat::Json => {
            let document = Checks {
                environment: env.name.clone(),
                target_kind: kind.to_string(),
                ok: failed == 0,
                checks,
            };
            json::write_document(&mut out, code, "check", &document)
        }
        OutputFormat::Human => {
            let mut text = String::new();
            for check in &checks {
                if check.ok {
                    text.push_str(&format!(
                        "{} {}: {}\n",
                        ctx.style.good("✓"),
                        check.name,
                        check.detail
                    ));
                } else {
                    text.push_str(&format!(
                        "{} {}: {}\n",
                        ctx.style.bad("✗"),
                        check.name,
                        check.detail
                    ));
                    if let Some(fix) = &check.fix {
                        text.push_str(&format!("    fix: {fix}\n"));
                    }
                }
            }
            text.push_str(&if failed == 0 {
                format!(
                    "{}: all {} passed\n",
                    env.name,
                    format::count(checks.len(), "check", "checks")
                )
            } else {
                format!(
                    "{}: {failed} of {} failed\n",
                    env.name,
                    format::count(checks.len(), "check", "checks")
                )
            });
            ctx.stdout.write_text(&text)
        }
    }
    .map_err(CliError::Output)?;
    Ok(code)
}
