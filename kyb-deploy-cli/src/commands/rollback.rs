//! `kyb-deploy rollback`: back to the last known-good release, or to `--to VERSION`.

use kyb_deploy_core::{RollbackRequest, RunControl};

use crate::args::{GlobalArgs, RollbackArgs};
use crate::context::CliContext;
use crate::error::CliError;
use crate::output::progress::Progress;
use crate::output::run;
use crate::project::{Project, parse_version};
use crate::prompt;

pub(crate) async fn run(
    args: RollbackArgs,
    global: &GlobalArgs,
    ctx: &mut CliContext,
) -> Result<i32, CliError> {
    let to = parse_version(args.to.as_deref())?;
    let project = Project::load(ctx, global)?;
    let env = project.environment(&args.environment, args.timeout)?;
    ctx.grace.set_for(&env);

    let title = if args.dry_run {
        "dry run: rollback of"
    } else {
        "rollback of"
    };
    let progress = Progress::start(ctx, global.output, title);
    let pipeline = project.pipeline(ctx, &env, progress.sink(), false).await?;

    let shown = to.as_ref().map_or_else(
        || "its last known-good release".to_owned(),
        ToString::to_string,
    );
    let confirmed = prompt::confirm(
        ctx,
        env.settings.guards.confirm,
        args.yes,
        args.dry_run,
        &format!("Roll {} back to {shown}?", env.name),
        &format!("rollback of {} to {shown}", env.name),
    )
    .await?;

    let request = RollbackRequest {
        environment: env,
        project: project.config.project.clone(),
        to,
        project_dir: project.dir.clone(),
        confirmed,
        dry_run: args.dry_run,
    };
    let report = pipeline
        .rollback(&request, &RunControl::new(ctx.cancel.clone()))
        .await;
    progress.finish();
    run::print(ctx, global, &report)
}
