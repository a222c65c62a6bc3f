use kyb_deploy_core::{Release, Version};

use super::*;
use crate::manifests::{ManifestInput, SecretValues, built_in};
use crate::settings::KubernetesSettings;

fn render(secrets: &SecretValues, env_value: &str, version: &str) -> Vec<Manifest> {
    let settings: KubernetesSettings =
        toml::from_str("namespace = \"kyb\"\n[secrets.DATABASE_URL]\nenv = \"KYB_DATABASE_URL\"\n")
            .unwrap();
    let env = BTreeMap::from([("LOG_LEVEL".to_owned(), env_value.to_owned())]);
    let release = Release::new(
        Version::parse(version).unwrap(),
        "registry.test/kyb@sha256:abc",
    );
    let input = ManifestInput {
        environment: "staging",
        settings: &settings,
        release: &release,
        env: &env,
    };
    built_in(&input, secrets)
}

fn resolved() -> SecretValues {
    SecretValues::Resolved(BTreeMap::from([(
        "DATABASE_URL".to_owned(),
        "postgres://user:hunter2@db/kyb".to_owned(),
    )]))
}

fn data_of(record: &Manifest) -> BTreeMap<String, String> {
    serde_json::from_value(record.object["data"].clone()).unwrap()
}

#[test]
fn a_record_holds_every_object_and_no_secret_value() {
    let manifests = render(&resolved(), "info", "v1");
    let record = record_of(&manifests, "staging", "kyb-platform-api", "v1").unwrap();
    assert_eq!(record.kind(), "ConfigMap");
    assert_eq!(Some(record.name()), record_name(&manifests));
    assert!(
        is_record_of("kyb-platform-api", record.name()),
        "{}",
        record.name()
    );
    assert_eq!(record.object["metadata"]["namespace"], "kyb");
    assert_eq!(
        record.object["metadata"]["labels"][RECORD_LABEL],
        "kyb-platform-api"
    );
    let text = record.object.to_string();
    assert!(!text.contains("hunter2"), "{text}");
    assert!(
        !text.contains(&BASE64.encode("postgres://user:hunter2@db/kyb")),
        "{text}"
    );

    let back = recorded_manifests(record.name(), Some(&data_of(&record))).unwrap();
    assert_eq!(back.len(), manifests.len());
    for (recorded, applied) in back.iter().zip(&manifests) {
        if applied.kind() == "Secret" {
            assert_eq!(recorded.object["stringData"]["DATABASE_URL"], REDACTED);
            assert!(recorded.object.get("data").is_none());
        } else {
            assert_eq!(recorded, applied);
        }
    }
}

#[test]
fn recorded_secrets_are_filled_from_todays_values_as_a_deploy_applies_them() {
    let applied = render(&resolved(), "info", "v1");
    let record = record_of(&applied, "staging", "kyb-platform-api", "v1").unwrap();
    let back = recorded_manifests(record.name(), Some(&data_of(&record))).unwrap();
    let SecretValues::Resolved(values) = resolved() else {
        unreachable!()
    };
    assert_eq!(with_secret_values(back.clone(), &values).unwrap(), applied);

    let missing = with_secret_values(back, &BTreeMap::new()).unwrap_err();
    assert_eq!(
        missing,
        RecordProblem::MissingSecret {
            secret: "kyb-platform-api-secrets".into(),
            variable: "DATABASE_URL".into()
        }
    );
    assert!(
        missing.to_string().contains("add its source back"),
        "{missing}"
    );
}

#[test]
fn the_record_changes_with_the_pod_template_and_only_with_it() {
    let name = |m: &[Manifest]| record_name(m).unwrap().to_owned();
    let v1 = name(&render(&SecretValues::Redacted, "info", "v1"));
    assert_eq!(
        v1,
        name(&render(&resolved(), "info", "v1")),
        "secret values"
    );
    assert_ne!(
        v1,
        name(&render(&SecretValues::Redacted, "debug", "v1")),
        "variables"
    );
    assert_ne!(
        v1,
        name(&render(&SecretValues::Redacted, "info", "v2")),
        "version"
    );
}

#[test]
fn records_of_other_services_and_other_references_are_not_ours() {
    assert!(is_record_of("web", "web-manifests-0123abcd"));
    assert!(!is_record_of("web", "web-manifests-"));
    assert!(!is_record_of("web", "api-manifests-0123abcd"));
    assert!(!is_record_of("web", "web-2-manifests-0123abcd"));
    assert!(!is_record_of("web", "revision 3"));
}

#[test]
fn an_unreadable_record_is_named() {
    let garbage = BTreeMap::from([(RECORD_KEY.to_owned(), "{not json".to_owned())]);
    for data in [None, Some(&garbage), Some(&BTreeMap::new())] {
        assert_eq!(
            recorded_manifests("web-manifests-00", data).unwrap_err(),
            RecordProblem::Unreadable {
                name: "web-manifests-00".into()
            }
        );
    }
    let empty = BTreeMap::from([(RECORD_KEY.to_owned(), "[]".to_owned())]);
    assert!(recorded_manifests("web-manifests-00", Some(&empty)).is_err());
}
