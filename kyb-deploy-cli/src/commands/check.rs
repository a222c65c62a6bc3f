//! `kyb-deploy check`: every prerequisite of an environment, each missing one with its fix.

use std::sync::Arc;

use kyb_deploy_core::config::VerifyConfig;
use kyb_deploy_core::verify::{HealthProbe, HttpHealthProbe};
use kyb_deploy_core::{Check, EventSink, check_prerequisites, preflight_image_seams};
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
    let kind = env.settings.target.clone();

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
    let probe = match project.probe(ctx, &env) {
        Ok(probe) => Some(probe),
        Err(e) => {
            checks.push(Check::fail(
                "verification settings",
                e.chain(),
                format!(
                    "fix environments.{}.verify in the configuration file",
                    env.name
                ),
            ));
            None
        }
    };
    // What the kind needs on this machine before its target can exist.
    checks.extend(cancellable(&ctx.cancel, ctx.targets.prerequisites(&env)).await?);
    // The image pipeline (Docker engine, scanner, registry): `deploy` needs it whatever the
    // target.
    let seams = if ctx.build_images {
        match project.image_seams().await {
            Ok(seams) => Some(seams),
            Err(e @ CliError::Engine(_)) => {
                checks.push(Check::fail(
                    "docker engine",
                    e.chain(),
                    "start the engine (dockerd, or scripts/setup.sh on Debian) or set DOCKER_HOST: it builds and pushes every image",
                ));
                None
            }
            Err(e) => {
                checks.push(Check::fail(
                    "image pipeline",
                    e.chain(),
                    "fix [image] in the configuration file",
                ));
                None
            }
        }
    } else {
        None
    };
    match project.target(ctx, &env).await {
        Ok(target) => {
            checks.push(Check::pass(
                format!("{kind} target"),
                format!("{} target created", target.kind()),
            ));
            // The run's own preflight, as `deploy` runs it: git, the target's platform
            // checks, and the image pipeline's. It never probes: with verification settings
            // reported broken above, the default probe stands in.
            let probe = match probe {
                Some(probe) => probe,
                None => {
                    Arc::new(HttpHealthProbe::new(VerifyConfig::default())?) as Arc<dyn HealthProbe>
                }
            };
            let mut pipeline = project
                .pipeline_around(&env, target, probe, EventSink::new(), Vec::new())
                .await?;
            if let Some((builder, scanner, registry)) = seams {
                pipeline = pipeline.with_image_pipeline(builder, scanner, Some(registry));
            }
            checks.extend(
                cancellable(&ctx.cancel, pipeline.preflight(&project.dir, true, true)).await?,
            );
        }
        Err(e) => {
            checks.extend(check_prerequisites(&project.dir, true).await);
            checks.push(Check::fail(
                format!("{kind} target"),
                e.chain(),
                format!(
                    "fix environments.{}.{kind}, or what the checks above name",
                    env.name
                ),
            ));
            if let Some((builder, scanner, registry)) = &seams {
                let image_checks = preflight_image_seams(
                    Some(builder.as_ref()),
                    scanner.as_deref(),
                    Some(registry.as_ref()),
                );
                checks.extend(cancellable(&ctx.cancel, image_checks).await?);
            }
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
