//! The example configuration and task definition templates.
//!
//! `kyb-deploy.toml` and `deploy/ecs/*.task-definition.json` at the repository root are what
//! users copy; these tests keep them loadable and registrable as the documentation says.

use std::path::Path;

use kyb_deploy_core::Version;
use kyb_deploy_core::config::{Config, Environment};
use kyb_deploy_ecs::EcsTargetSpec;
use kyb_deploy_ecs::VERSION_LABEL;

const CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../kyb-deploy.toml");
const CONTAINER: &str = "kyb-platform-api";
const IMAGE: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/kyb-platform-api@sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";

fn repo_root() -> &'static Path {
    Path::new(CONFIG)
        .parent()
        .expect("the configuration has a directory")
}

fn environment(name: &str) -> Environment {
    let config = Config::from_toml(&std::fs::read_to_string(CONFIG).unwrap())
        .expect("the example configuration is valid");
    config.environment(name).unwrap()
}

#[test]
fn the_example_configuration_loads_from_its_file() {
    let config = Config::load(Some(Path::new(CONFIG))).expect("kyb-deploy.toml is valid");
    for name in ["staging", "production"] {
        let ecs = kyb_deploy_ecs::EcsSettings::of(&config.environment(name).unwrap()).unwrap();
        assert_eq!(ecs.container.as_deref(), Some(CONTAINER), "{name}");
        assert_eq!(
            ecs.task_definition.as_deref(),
            Some(Path::new(&format!(
                "deploy/ecs/{name}.task-definition.json"
            ))),
            "{name}"
        );
    }
}

#[test]
fn the_example_templates_are_registrable_fargate_task_definitions() {
    for (name, cpu, memory) in [("staging", "512", "1024"), ("production", "1024", "2048")] {
        let env = environment(name);
        let spec = EcsTargetSpec::from_environment(&env, repo_root())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(spec.environment, name);
        assert_eq!(spec.container.as_deref(), Some(CONTAINER));
        let template = spec.template.clone().expect("the template is set");
        assert_eq!(template.family, format!("kyb-platform-api-{name}"));
        assert_eq!(template.cpu.as_deref(), Some(cpu), "{name}");
        assert_eq!(template.memory.as_deref(), Some(memory), "{name}");
        assert_eq!(template.check(), Vec::<String>::new(), "{name}");
        assert_eq!(template.service_container(Some(CONTAINER)), Ok(0), "{name}");

        let version = Version::parse("v1.2.3").unwrap();
        let released = template
            .clone()
            .with_release(Some(CONTAINER), IMAGE, &version, &spec.env)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(released.image(Some(CONTAINER)), Some(IMAGE), "{name}");
        assert_eq!(
            released.version_label(Some(CONTAINER)),
            Some("v1.2.3"),
            "{name}"
        );
        assert_eq!(released.check(), Vec::<String>::new(), "{name}");
        let container = &released.containers[0];
        let vars: Vec<(&str, &str)> = container
            .environment()
            .iter()
            .map(|v| (v.name().unwrap_or_default(), v.value().unwrap_or_default()))
            .collect();
        // The template's own variables stay; [environments.<name>.env] is added.
        assert!(vars.contains(&("PORT", "8080")), "{name}: {vars:?}");
        assert!(vars.contains(&("ENVIRONMENT", name)), "{name}: {vars:?}");
        assert!(
            container
                .docker_labels()
                .unwrap()
                .contains_key(VERSION_LABEL),
            "{name}"
        );
        // Secrets stay references: nothing of their values is in the task definition.
        assert_eq!(container.secrets().len(), 2, "{name}");
        // A new version is a new revision; the same release is not.
        assert!(!released.same_as(&template), "{name}");
        let again = template
            .with_release(Some(CONTAINER), IMAGE, &version, &spec.env)
            .unwrap();
        assert!(released.same_as(&again), "{name}");
    }
}

#[test]
fn a_template_with_a_size_fargate_does_not_offer_is_refused_naming_the_file_and_the_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(repo_root().join("deploy/ecs/staging.task-definition.json"))
        .unwrap();
    assert!(
        text.contains("\"memory\": \"1024\""),
        "the staging template changed"
    );
    let bad = text.replace("\"memory\": \"1024\"", "\"memory\": \"512\"");
    std::fs::create_dir_all(dir.path().join("deploy/ecs")).unwrap();
    let path = dir.path().join("deploy/ecs/staging.task-definition.json");
    std::fs::write(&path, bad).unwrap();

    let err = EcsTargetSpec::from_environment(&environment("staging"), dir.path())
        .expect_err("cpu 512 with memory 512 is not a Fargate size");
    let message = err.to_string();
    assert!(
        message.contains(
            "deploy/ecs/staging.task-definition.json (environments.staging.ecs.task_definition)"
        ),
        "{message}"
    );
    assert!(
        message.contains("Fargate does not offer cpu 512 with memory 512 MiB"),
        "{message}"
    );
    assert!(
        message.contains("with cpu 512 use memory 1024, 2048, 3072, 4096"),
        "{message}"
    );
    assert!(message.contains("or cpu 256 for 512 MiB"), "{message}");
}

#[test]
fn a_template_field_kyb_deploy_does_not_register_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(repo_root().join("deploy/ecs/staging.task-definition.json"))
        .unwrap();
    // As `aws ecs describe-task-definition` prints it: a read-only field ECS fills in.
    let exported = text.replacen('{', "{\n  \"revision\": 7,", 1);
    std::fs::create_dir_all(dir.path().join("deploy/ecs")).unwrap();
    let path = dir.path().join("deploy/ecs/staging.task-definition.json");
    std::fs::write(&path, exported).unwrap();

    let message = EcsTargetSpec::from_environment(&environment("staging"), dir.path())
        .expect_err("revision is not a field of the template")
        .to_string();
    assert!(
        message.contains(
            "deploy/ecs/staging.task-definition.json (environments.staging.ecs.task_definition), line 2 column 12"
        ),
        "{message}"
    );
    assert!(message.contains("unknown field `revision`"), "{message}");
}
