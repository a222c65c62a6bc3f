//! `kyb-deploy plan`: `deploy --dry-run` under its own name.

use crate::args::{DeployArgs, GlobalArgs, PlanArgs};
use crate::context::CliContext;
use crate::error::CliError;

pub(crate) async fn run(
    args: PlanArgs,
    global: &GlobalArgs,
    ctx: &mut CliContext,
) -> Result<i32, CliError> {
    let deploy = DeployArgs {
        environment: args.environment,
        version: args.version,
        force: false,
        skip_tests: false,
        dry_run: true,
        yes: false,
        timeout: args.timeout,
        build_args: Vec::new(),
        image: None,
        // A plan takes no lock.
        wait_for_lock: None,
    };
    super::deploy::run(deploy, global, ctx).await
}
