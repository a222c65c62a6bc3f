//! The GitHub Actions workflows hold the seed's delivery structure: the triggers and their
//! inputs, the job graph, environments, per-environment concurrency, OIDC and least
//! privilege, and deployments of the image built in the same run, by digest. (actionlint,
//! run by the test script, checks that they are valid workflows.)

use std::path::Path;

use serde_json::{Value, json};

fn workflow(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../.github/workflows")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

fn needs(job: &Value) -> Vec<&str> {
    match &job["needs"] {
        Value::String(one) => vec![one.as_str()],
        Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

#[test]
fn deployment_triggers_and_inputs_are_the_seed_s() {
    let w = workflow("deployment.yml");
    let on = &w["on"];
    assert_eq!(on["push"]["branches"], json!(["main", "develop"]), "{on:#}");
    let inputs = &on["workflow_dispatch"]["inputs"];
    assert_eq!(inputs["environment"]["type"], "choice");
    assert_eq!(
        inputs["environment"]["options"],
        json!(["staging", "production"])
    );
    assert_eq!(inputs["environment"]["default"], "staging");
    assert_eq!(inputs["force_deploy"]["type"], "boolean");
    assert_eq!(inputs["force_deploy"]["default"], false);
    assert_eq!(inputs["version"]["type"], "string");
    assert_eq!(inputs["rollback"]["type"], "boolean");
    assert_eq!(inputs["rollback"]["default"], false);
}

#[test]
fn deployment_jobs_form_the_seed_s_graph_with_least_privilege() {
    let w = workflow("deployment.yml");
    assert_eq!(w["permissions"], json!({}), "no permission by default");
    let jobs = &w["jobs"];
    // The graph is in `needs`; the names, in any order.
    let mut names: Vec<&str> = jobs
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "build",
            "deploy-production",
            "deploy-staging",
            "rollback",
            "validate"
        ]
    );
    assert_eq!(needs(&jobs["build"]), ["validate"]);
    assert_eq!(needs(&jobs["deploy-staging"]), ["validate", "build"]);
    assert_eq!(
        needs(&jobs["deploy-production"]),
        ["validate", "build", "deploy-staging"]
    );
    assert_eq!(needs(&jobs["rollback"]), ["validate"]);

    // The image: both platforms, to GHCR, its digest handed on.
    let build = &jobs["build"];
    assert_eq!(build["permissions"]["packages"], "write");
    assert!(
        build["outputs"]["digest"]
            .as_str()
            .unwrap()
            .contains("digest")
    );
    let push = build["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "push")
        .expect("the push step");
    assert_eq!(push["with"]["platforms"], "linux/amd64,linux/arm64");
    assert_eq!(push["with"]["push"], true);

    for (job, environment) in [
        ("deploy-staging", "staging"),
        ("deploy-production", "production"),
    ] {
        let job = &jobs[job];
        assert_eq!(job["environment"]["name"], environment, "{job:#}");
        assert_eq!(
            job["concurrency"]["group"],
            format!("kyb-deploy-{environment}")
        );
        assert_eq!(job["concurrency"]["cancel-in-progress"], false);
        assert_eq!(job["permissions"]["id-token"], "write", "OIDC to AWS");
        let steps = job["steps"].as_array().unwrap();
        assert!(
            steps.iter().any(|s| s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("aws-actions/configure-aws-credentials@"))),
            "{job:#}"
        );
        let deploy = steps.iter().find(|s| s["id"] == "deploy").unwrap();
        assert_eq!(
            deploy["run"],
            format!("bash scripts/ci-deploy.sh {environment}")
        );
        let image = deploy["env"]["IMAGE"].as_str().unwrap();
        assert!(
            image.contains("needs.build.outputs.digest"),
            "deployed by the digest built above: {image}"
        );
    }
    let production = &jobs["deploy-production"];
    assert_eq!(
        production["permissions"]["contents"], "write",
        "the release"
    );
    assert!(
        production["steps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["run"]
                .as_str()
                .is_some_and(|r| r.contains("gh release create"))),
        "{production:#}"
    );
    let rollback = &jobs["rollback"];
    assert_eq!(rollback["concurrency"]["cancel-in-progress"], false);
    assert!(
        rollback["concurrency"]["group"]
            .as_str()
            .unwrap()
            .starts_with("kyb-deploy-"),
        "the same group as the environment's deployments"
    );
}

/// The deploy script hands kyb-deploy the digest, never a tag, and waits for another run's
/// lock rather than failing.
#[test]
fn the_ci_scripts_deploy_the_image_by_digest_and_wait_for_the_lock() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let deploy = std::fs::read_to_string(root.join("scripts/ci-deploy.sh")).unwrap();
    assert!(deploy.contains(r#"--image "$IMAGE""#), "{deploy}");
    assert!(deploy.contains("--wait-for-lock"), "{deploy}");
    let rollback = std::fs::read_to_string(root.join("scripts/ci-rollback.sh")).unwrap();
    assert!(rollback.contains("kyb-deploy verify -e"), "{rollback}");
}

#[test]
fn ci_runs_the_readme_s_test_command_on_debian() {
    let w = workflow("ci.yml");
    let test = &w["jobs"]["test"];
    assert_eq!(test["container"]["image"], "debian:12");
    assert!(
        test["steps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["run"] == "bash .ci/run"),
        "{test:#}"
    );
    assert_eq!(w["permissions"]["contents"], "read");
}
