//! `scripts/deploy.sh`: the seed's options, forwarded to `kyb-deploy deploy`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{Project, Run, output};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/deploy.sh")
}

/// The script in `dir`, running `bin` as kyb-deploy.
fn deploy_sh(dir: &Path, bin: &Path) -> Command {
    let mut command = Command::new("bash");
    command
        .arg(script())
        .current_dir(dir)
        .env("KYB_DEPLOY_BIN", bin);
    command
}

/// A stand-in for kyb-deploy that prints its arguments, one per line.
fn echo_bin(dir: &Path) -> PathBuf {
    let path = dir.join("echo-args");
    std::fs::write(&path, "#!/bin/sh\nfor a in \"$@\"; do echo \"$a\"; done\n").unwrap();
    let mut perms = std::fs::metadata(&path).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&path, perms).unwrap();
    path
}

fn run(args: &[&str]) -> Run {
    let dir = Project::empty();
    let bin = echo_bin(dir.path());
    output(deploy_sh(dir.path(), &bin).args(args))
}

#[test]
fn help_exits_0_and_shows_the_seed_usage() {
    for flag in ["-h", "--help"] {
        let help = run(&[flag]);
        assert_eq!(help.code, 0, "{help:?}");
        assert!(
            help.stdout
                .starts_with("Usage: deploy.sh -e ENVIRONMENT [-v VERSION] [-f] [-s] [-d] [-h]\n")
        );
    }
}

#[test]
fn unknown_options_and_a_missing_environment_exit_2() {
    for args in [
        &["-e", "staging", "--yes"][..],
        &["-x"][..],
        &["-v", "v1"][..],
        &["-e"][..],
    ] {
        let run = run(args);
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        assert!(run.stderr.contains("Usage: deploy.sh"), "{}", run.stderr);
        assert_eq!(run.stdout, "", "nothing is run");
    }
}

#[test]
fn seed_options_are_forwarded_in_short_long_and_bundled_forms() {
    let expected =
        "deploy\n--environment=staging\n--version=v1.2.3\n--force\n--skip-tests\n--dry-run\n";
    for args in [
        &["-e", "staging", "-v", "v1.2.3", "-f", "-s", "-d"][..],
        &[
            "--environment",
            "staging",
            "--version",
            "v1.2.3",
            "--force",
            "--skip-tests",
            "--dry-run",
        ][..],
        &["-e", "staging", "-v", "v1.2.3", "-fsd"][..],
    ] {
        let run = run(args);
        assert_eq!(run.code, 0, "{args:?}: {run:?}");
        assert_eq!(run.stdout, expected, "{args:?}");
    }
}

#[test]
fn kyb_deploys_exit_code_passes_through() {
    let project = Project::new(
        "[environments.staging]\ntarget = \"docker\"\n[environments.staging.docker]\n",
    );
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_kyb-deploy"));
    let unknown = output(deploy_sh(project.path(), &bin).args(["-e", "nosuch"]));
    assert_eq!(unknown.code, 2, "{unknown:?}");
    assert!(
        unknown.stderr.contains("valid environments: staging"),
        "{}",
        unknown.stderr
    );
    let unavailable = output(deploy_sh(project.path(), &bin).args(["-e", "staging", "-v", "v1"]));
    assert_eq!(unavailable.code, 3, "{unavailable:?}");
}
