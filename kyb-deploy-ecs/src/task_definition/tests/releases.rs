//! Releases: the image, the version label and the environment of the service's container.

use super::*;

#[test]
fn a_release_sets_the_image_the_version_label_and_the_environment() {
    let env = [
        ("PORT".to_owned(), "9090".to_owned()),
        ("ENVIRONMENT".to_owned(), "staging".to_owned()),
    ];
    let s = spec()
        .with_release(
            None,
            "registry.test/kyb-api:v2.0.1",
            &version("v2.0.1"),
            &env,
        )
        .expect("the only container is the service's");
    assert_eq!(s.image(None), Some("registry.test/kyb-api:v2.0.1"));
    assert_eq!(s.version_label(None), Some("v2.0.1"));
    let c = &s.containers[0];
    assert_eq!(
        c.docker_labels.as_ref().and_then(|l| l.get(VERSION_LABEL)),
        Some(&"v2.0.1".to_owned())
    );
    assert_eq!(
        env_of(c),
        BTreeMap::from([
            ("ENVIRONMENT".to_owned(), "staging".to_owned()),
            ("LOG_FORMAT".to_owned(), "json".to_owned()),
            ("PORT".to_owned(), "9090".to_owned()),
        ])
    );
    // Replaced, not added a second time.
    assert_eq!(c.environment().len(), 3);
    // Everything else is the template's.
    assert_eq!(c.secrets(), spec().containers[0].secrets());
    assert_eq!(c.health_check, spec().containers[0].health_check);
}

#[test]
fn a_release_keeps_the_template_labels() {
    let mut s = spec();
    s.containers[0].docker_labels = Some(HashMap::from([("team".to_owned(), "kyb".to_owned())]));
    let s = s
        .with_release(Some("api"), "img:v3", &version("v3"), &[])
        .unwrap();
    let labels = s.containers[0].docker_labels.clone().unwrap();
    assert_eq!(labels.len(), 2, "{labels:?}");
    assert_eq!(labels["team"], "kyb");
    assert_eq!(labels[VERSION_LABEL], "v3");
}

#[test]
fn a_release_changes_only_the_named_container() {
    let before = with_sidecar();
    let s = before
        .clone()
        .with_release(Some("api"), "img:v2", &version("v2"), &[])
        .unwrap();
    assert_eq!(s.containers[1], before.containers[1]);
    assert_eq!(s.containers[0].image(), Some("img:v2"));
    assert_eq!(s.image(Some("api")), Some("img:v2"));

    let s = before
        .clone()
        .with_release(
            Some("log-router"),
            "fluent-bit:v2",
            &version("v2"),
            &[("A".to_owned(), "1".to_owned())],
        )
        .unwrap();
    assert_eq!(s.containers[0], before.containers[0]);
    assert_eq!(s.image(Some("log-router")), Some("fluent-bit:v2"));
    assert_eq!(s.version_label(Some("log-router")), Some("v2"));
    assert_eq!(s.containers[1].environment(), [pair("A", "1")]);
}

#[test]
fn a_missing_container_name_lists_the_containers() {
    let error = spec().service_container(Some("web")).unwrap_err();
    assert!(
        matches!(error, TaskDefinitionError::Container(_)),
        "{error:?}"
    );
    let error = error.to_string();
    assert!(
        error.contains("task definition kyb-api has no container named \"web\" (it has \"api\")"),
        "{error}"
    );
    assert!(error.contains("ecs.container"), "{error}");
    let error = spec()
        .with_release(Some("web"), "img:v2", &version("v2"), &[])
        .unwrap_err()
        .to_string();
    assert!(error.contains("no container named \"web\""), "{error}");
}

#[test]
fn several_containers_need_a_name() {
    let s = with_sidecar();
    let error = s.service_container(None).unwrap_err().to_string();
    assert!(
        error.contains("task definition kyb-api has 2 containers (\"api\", \"log-router\")"),
        "{error}"
    );
    assert!(error.contains("set ecs.container"), "{error}");
    assert_eq!(s.service_container(Some("log-router")), Ok(1));
    assert_eq!(s.service_container(Some("api")), Ok(0));
    assert_eq!(s.image(None), None);
    assert_eq!(s.version_label(None), None);
    assert!(s.with_release(None, "img:v2", &version("v2"), &[]).is_err());
}
