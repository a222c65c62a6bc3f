//! Diffs: the plan's changes between what ECS runs and what a release registers.

use super::*;

#[test]
fn no_changes_between_a_spec_and_what_ecs_returns_for_it() {
    assert_eq!(diff(Some(&registered()), &spec()), []);
}

#[test]
fn an_image_change_is_one_change_of_the_container() {
    let mut desired = spec();
    desired.containers[0].image = Some("registry.test/kyb-api:v2".into());
    assert_eq!(
        diff(Some(&registered()), &desired),
        [change(
            "image",
            Some(IMAGE),
            Some("registry.test/kyb-api:v2")
        )]
    );
}

#[test]
fn a_release_shows_its_image_label_and_new_variables() {
    let current = described(
        &spec()
            .with_release(None, "img:v1", &version("v1"), &[])
            .unwrap(),
        "1024",
        "2048",
    );
    let desired = spec()
        .with_release(
            None,
            "img:v2",
            &version("v2"),
            &[("ENVIRONMENT".to_owned(), "staging".to_owned())],
        )
        .unwrap();
    assert_eq!(
        diff(Some(&current), &desired),
        [
            change(
                &format!("dockerLabels.{VERSION_LABEL}"),
                Some("v1"),
                Some("v2")
            ),
            change("environment.ENVIRONMENT", None, Some("staging")),
            change("image", Some("img:v1"), Some("img:v2")),
        ]
    );
}

#[test]
fn an_added_variable_and_a_removed_secret_show_the_missing_side_as_none() {
    let mut desired = spec();
    let c = &mut desired.containers[0];
    c.environment
        .as_mut()
        .unwrap()
        .push(pair("FEATURE_X", "on"));
    c.secrets
        .as_mut()
        .unwrap()
        .retain(|s| s.name != "DATABASE_URL");
    assert_eq!(
        diff(Some(&registered()), &desired),
        [
            change("environment.FEATURE_X", None, Some("on")),
            change(
                "secrets.DATABASE_URL",
                Some(&format!("valueFrom {DB_SECRET}")),
                None
            ),
        ]
    );
}

#[test]
fn task_size_changes_show_normalised_values() {
    let mut desired = spec();
    desired.memory = Some("4 GB".into());
    assert_eq!(
        diff(Some(&registered()), &desired),
        [PlannedChange {
            resource: "task definition".into(),
            field: "memory".into(),
            from: Some("2048".into()),
            to: Some("4096".into()),
        }]
    );
}

#[test]
fn a_first_deployment_adds_every_field() {
    let changes = diff(None, &spec());
    assert!(
        changes.iter().all(|c| c.from.is_none() && c.to.is_some()),
        "{changes:?}"
    );
    let field = |resource: &str, field: &str| {
        changes
            .iter()
            .find(|c| c.resource == resource && c.field == field)
            .and_then(|c| c.to.clone())
    };
    assert_eq!(
        field("task definition", "family").as_deref(),
        Some("kyb-api")
    );
    assert_eq!(field("task definition", "cpu").as_deref(), Some("1024"));
    assert_eq!(
        field("task definition", "requiresCompatibilities").as_deref(),
        Some("FARGATE")
    );
    assert_eq!(field("container api", "image").as_deref(), Some(IMAGE));
    assert_eq!(
        field("container api", "environment.PORT").as_deref(),
        Some("8080")
    );
    assert_eq!(
        field("container api", "secrets.SIGNING_KEY"),
        Some(format!("valueFrom {KEY_PARAMETER}"))
    );
    assert_eq!(
        field("container api", "portMappings.8080/tcp").as_deref(),
        Some("host 8080")
    );
    assert_eq!(
        field("container api", "healthCheck").as_deref(),
        Some("interval 10s, timeout 5s, retries 5, startPeriod 0s")
    );
    assert_eq!(
        field("container api", "logConfiguration.options.awslogs-group").as_deref(),
        Some("/ecs/kyb-api")
    );
    // Tags are not shown, as they are not compared.
    assert!(
        changes.iter().all(|c| !c.field.contains("tag")),
        "{changes:?}"
    );
    // The same fields as a diff against ECS's copy, all added.
    assert_eq!(changes, diff(None, &registered()));
}
