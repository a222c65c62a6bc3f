//! `kyb-deploy config validate`: load the configuration as every command would (each
//! environment's target settings checked offline by its kind's backend: files, templates),
//! and check the settings that are otherwise checked only when used (probe settings,
//! webhooks). Needs no target and no credentials.

use kyb_deploy_core::Error;
use kyb_deploy_core::verify::HttpHealthProbe;
use serde::Serialize;

use crate::args::{GlobalArgs, OutputFormat};
use crate::context::CliContext;
use crate::error::CliError;
use crate::exit_codes::ExitCodes;
use crate::output::json;
use crate::project::Project;

/// The JSON payload of `config validate`.
#[derive(Serialize)]
struct Validated {
    /// The configuration file.
    path: String,
    /// The environments it defines.
    environments: Vec<String>,
}

pub(crate) fn run(global: &GlobalArgs, ctx: &mut CliContext) -> Result<i32, CliError> {
    let project = Project::load(ctx, global)?;
    for (name, settings) in &project.config.environments {
        // Smoke-test methods and headers are parsed when the probe is built.
        HttpHealthProbe::new(settings.verify.clone()).map_err(|e| match e {
            Error::Config { message } => Error::Config {
                message: format!("environments.{name}.verify: {message}"),
            },
            other => other,
        })?;
    }
    project.notifiers()?;

    let environments = project.config.environment_names();
    let mut out = ctx.stdout.clone();
    match global.output {
        OutputFormat::Json => {
            let document = Validated {
                path: project.path.display().to_string(),
                environments,
            };
            json::write_document(&mut out, ExitCodes::SUCCESS, "config", &document)
        }
        OutputFormat::Human => ctx.stdout.write_text(&format!(
            "configuration OK: {} {} ({})\n",
            environments.len(),
            if environments.len() == 1 {
                "environment"
            } else {
                "environments"
            },
            environments.join(", ")
        )),
    }
    .map_err(CliError::Output)?;
    Ok(ExitCodes::SUCCESS)
}
