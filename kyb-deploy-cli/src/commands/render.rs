//! `kyb-deploy render`: the manifests a deployment would apply, as a stream of JSON
//! documents (what `kubectl apply -f` reads), secret values redacted. Nothing is built, pushed or called: the image is
//! named by its tag (a deployment applies it by digest once pushed).

use kyb_deploy_core::{GitVersionSource, Release, VersionSource as _};

use crate::args::{GlobalArgs, RenderArgs};
use crate::context::CliContext;
use crate::error::CliError;
use crate::exit_codes::ExitCodes;
use crate::project::{Project, parse_version};

pub(crate) async fn run(
    args: RenderArgs,
    global: &GlobalArgs,
    ctx: &mut CliContext,
) -> Result<i32, CliError> {
    let project = Project::load(ctx, global)?;
    let env = project.environment(&args.environment, None)?;
    let explicit = parse_version(args.version.as_deref())?;
    let version = GitVersionSource::new(&project.dir, explicit)
        .resolve()
        .await?
        .version;
    let image = format!("{}:{}", project.config.image.repository, version);
    let release = Release::new(version, image);
    let rendered = ctx
        .targets
        .render(&env, &project.config, &release)
        .map_err(|error| CliError::Target {
            kind: env.settings.target.clone(),
            error,
        })?;
    let Some(text) = rendered else {
        return Err(CliError::Usage {
            message: format!(
                "environment {}'s target kind \"{}\" has no manifests to render; render works for Kubernetes environments",
                env.name,
                env.settings.target.as_str()
            ),
        });
    };
    ctx.stdout.write_text(&text).map_err(CliError::Output)?;
    Ok(ExitCodes::SUCCESS)
}
