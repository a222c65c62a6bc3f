//! `kyb-deploy deploy`: the whole pipeline, from tests to verification.

use kyb_deploy_core::{DeployRequest, RunControl};

use crate::args::{DeployArgs, GlobalArgs};
use crate::context::CliContext;
use crate::error::CliError;
use crate::output::progress::Progress;
use crate::output::run;
use crate::project::{Project, parse_version};
use crate::prompt;

pub(crate) async fn run(
    args: DeployArgs,
    global: &GlobalArgs,
    ctx: &mut CliContext,
) -> Result<i32, CliError> {
    let version = parse_version(args.version.as_deref())?;
    let project = Project::load(ctx, global)?;
    let env = project.environment(&args.environment, args.timeout)?;
    ctx.grace.set_for(&env);

    let title = if args.dry_run {
        "dry run: deploy to"
    } else {
        "deploy to"
    };
    let progress = Progress::start(ctx, global.output, title);
    // A prebuilt image is deployed as it is: nothing to build, scan or push.
    let build = !args.dry_run && args.image.is_none();
    let pipeline = project.pipeline(ctx, &env, progress.sink(), build).await?;

    let shown = version
        .as_ref()
        .map_or_else(|| "the current commit".to_owned(), ToString::to_string);
    let confirmed = prompt::confirm(
        ctx,
        env.settings.guards.confirm,
        args.yes,
        args.dry_run,
        &format!("Deploy {shown} to {}?", env.name),
        &format!("deployment of {shown} to {}", env.name),
    )
    .await?;

    let mut request = DeployRequest::new(env);
    request.project = project.config.project.clone();
    request.image = project.config.image.clone();
    request.image.build_args.extend(args.build_args);
    request.prebuilt_image = args.image;
    request.tests = project.test_suites();
    request.version = version;
    request.project_dir = project.dir.clone();
    request.force = args.force;
    request.skip_tests = args.skip_tests;
    request.dry_run = args.dry_run;
    request.confirmed = confirmed;
    request.wait_for_lock = args.wait_for_lock.unwrap_or_default();

    let report = pipeline
        .deploy(&request, &RunControl::new(ctx.cancel.clone()))
        .await;
    progress.finish();
    run::print(ctx, global, &report)
}
