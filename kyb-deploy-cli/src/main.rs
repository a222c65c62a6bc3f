//! The `kyb-deploy` binary; everything lives in the `kyb_deploy_cli` library.

fn main() -> std::process::ExitCode {
    kyb_deploy_cli::main()
}
