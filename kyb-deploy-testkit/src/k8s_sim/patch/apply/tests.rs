use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::k8s_sim::patch::record_update;

const T1: &str = "2025-01-01T00:00:00Z";
const T2: &str = "2025-01-01T00:01:00Z";
const T3: &str = "2025-01-01T00:02:00Z";

fn config(replicas: u32, labels: Value, containers: Value) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": containers}},
        },
    })
}

fn simple(replicas: u32) -> Value {
    config(
        replicas,
        json!({"app": "web"}),
        json!([{"name": "app", "image": "img:v1"}]),
    )
}

/// The object as the store would keep it after a create: server metadata added.
fn stored(mut object: Value) -> Value {
    object["metadata"]["uid"] = json!("u1");
    object["metadata"]["resourceVersion"] = json!("1");
    object["metadata"]["namespace"] = json!("default");
    object
}

fn managers(object: &Value) -> Vec<(String, String)> {
    object["metadata"]["managedFields"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|e| {
                    (
                        e["manager"].as_str().unwrap().to_owned(),
                        e["operation"].as_str().unwrap().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn conflicts_of(result: Result<Value, PatchError>) -> (String, Vec<FieldConflict>) {
    match result {
        Err(PatchError::Conflict { message, conflicts }) => (message, conflicts),
        other => panic!("expected a conflict, got {other:?}"),
    }
}

#[test]
fn an_apply_creates_the_object_with_its_managed_fields() {
    let created = apply(None, &simple(2), "kubectl", false, T1).unwrap();
    assert_eq!(created["spec"]["replicas"], json!(2));
    assert_eq!(created["metadata"]["name"], json!("web"));
    let entry = &created["metadata"]["managedFields"][0];
    assert_eq!(entry["manager"], "kubectl");
    assert_eq!(entry["operation"], "Apply");
    assert_eq!(entry["apiVersion"], "apps/v1");
    assert_eq!(entry["time"], T1);
    assert_eq!(entry["fieldsType"], "FieldsV1");
    assert_eq!(
        entry["fieldsV1"],
        json!({
            "f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {
                "f:replicas": {},
                "f:selector": {},
                "f:template": {
                    "f:metadata": {"f:labels": {"f:app": {}}},
                    "f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {".": {}, "f:image": {}, "f:name": {}}}},
                },
            },
        })
    );
}

#[test]
fn reapplying_the_same_configuration_changes_nothing() {
    let created = stored(apply(None, &simple(2), "kubectl", false, T1).unwrap());
    let again = apply(Some(&created), &simple(2), "kubectl", false, T2).unwrap();
    assert_eq!(again, created);
}

#[test]
fn fields_no_longer_applied_are_removed_unless_someone_else_owns_them() {
    let two = config(
        2,
        json!({"app": "web", "team": "a"}),
        json!([{"name": "app", "image": "img:v1"}, {"name": "sidecar", "image": "proxy"}]),
    );
    let live = stored(apply(None, &two, "kubectl", false, T1).unwrap());
    let one = config(
        2,
        json!({"app": "web"}),
        json!([{"name": "app", "image": "img:v1"}]),
    );
    let pruned = apply(Some(&live), &one, "kubectl", false, T2).unwrap();
    assert_eq!(pruned["metadata"]["labels"], json!({"app": "web"}));
    assert_eq!(
        pruned["spec"]["template"]["spec"]["containers"],
        json!([{"name": "app", "image": "img:v1"}])
    );
    assert_eq!(pruned["metadata"]["uid"], json!("u1"));
    assert_eq!(pruned["metadata"]["managedFields"][0]["time"], T2);

    // The same label applied by a second manager survives the first one dropping it.
    let other = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"team": "a"}}});
    let shared = apply(Some(&live), &other, "other", false, T2).unwrap();
    assert_eq!(
        managers(&shared),
        [
            ("kubectl".into(), "Apply".into()),
            ("other".into(), "Apply".into())
        ]
    );
    let kept = apply(Some(&shared), &one, "kubectl", false, T3).unwrap();
    assert_eq!(
        kept["metadata"]["labels"],
        json!({"app": "web", "team": "a"})
    );
}

#[test]
fn changing_a_field_another_manager_owns_is_a_conflict_in_the_servers_words() {
    let mut created = stored(simple(2));
    record_update(None, &mut created, "kubectl-client-side-apply", T1);
    let (message, conflicts) =
        conflicts_of(apply(Some(&created), &simple(3), "kubectl", false, T2));
    assert_eq!(
        message,
        "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using apps/v1: .spec.replicas"
    );
    assert_eq!(
        conflicts,
        [FieldConflict {
            manager: "kubectl-client-side-apply".into(),
            field: ".spec.replicas".into(),
            message: "conflict with \"kubectl-client-side-apply\" using apps/v1".into(),
        }]
    );

    // The same values are shared, not a conflict.
    let shared = apply(Some(&created), &simple(2), "kubectl", false, T2).unwrap();
    assert_eq!(
        managers(&shared),
        [
            ("kubectl".into(), "Apply".into()),
            ("kubectl-client-side-apply".into(), "Update".into())
        ]
    );

    // Forcing moves the field.
    let forced = apply(Some(&created), &simple(3), "kubectl", true, T2).unwrap();
    assert_eq!(forced["spec"]["replicas"], json!(3));
    let update = forced["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["operation"] == "Update")
        .unwrap();
    assert_eq!(update["fieldsV1"]["f:spec"].get("f:replicas"), None);
    assert!(update["fieldsV1"]["f:spec"]["f:template"].is_object());
}

#[test]
fn several_conflicts_are_listed_per_manager() {
    let created = stored(apply(None, &simple(2), "a", false, T1).unwrap());
    let mut changed = simple(5);
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = json!("img:v2");
    let (message, conflicts) = conflicts_of(apply(Some(&created), &changed, "b", false, T2));
    assert_eq!(
        message,
        "Apply failed with 2 conflicts: conflicts with \"a\":\n- .spec.replicas\n- .spec.template.spec.containers[name=\"app\"].image"
    );
    assert_eq!(conflicts.len(), 2);
    assert!(
        conflicts
            .iter()
            .all(|c| c.manager == "a" && c.message == "conflict with \"a\"")
    );
}

#[test]
fn an_object_without_managed_fields_belongs_to_before_first_apply() {
    let live = stored(simple(2));
    let (message, _) = conflicts_of(apply(Some(&live), &simple(3), "kubectl", false, T2));
    assert!(
        message.contains("conflict with \"before-first-apply\" using apps/v1: .spec.replicas"),
        "{message}"
    );
}

#[test]
fn the_applied_configuration_is_checked() {
    let live = stored(simple(2));
    let mut with_managed = simple(2);
    with_managed["metadata"]["managedFields"] = json!([]);
    let mut other_kind = simple(2);
    other_kind["kind"] = json!("StatefulSet");
    let mut other_name = simple(2);
    other_name["metadata"]["name"] = json!("api");
    for bad in [
        json!([]),
        json!({"kind": "Deployment"}),
        with_managed,
        other_kind,
        other_name,
    ] {
        assert!(
            matches!(
                apply(Some(&live), &bad, "m", false, T1),
                Err(PatchError::Invalid(_))
            ),
            "{bad}"
        );
    }
    let nameless = config(1, json!({}), json!([{"image": "x"}]));
    assert!(matches!(
        apply(None, &nameless, "m", false, T1),
        Err(PatchError::Unprocessable(_))
    ));
}

#[test]
fn status_nulls_and_server_metadata_in_the_configuration_are_ignored() {
    let live = stored(
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}, "status": {"loadBalancer": {}}}),
    );
    let applied = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "resourceVersion": "99", "annotations": null},
        "spec": {"ports": [{"port": 80}]},
        "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}},
    });
    let result = apply(Some(&live), &applied, "m", false, T1).unwrap();
    assert_eq!(result["status"], json!({"loadBalancer": {}}));
    assert_eq!(result["metadata"]["resourceVersion"], json!("1"));
    assert_eq!(result["metadata"].get("annotations"), None);
    let fields = &result["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["manager"] == "m")
        .unwrap()["fieldsV1"];
    assert_eq!(
        fields,
        &json!({"f:spec": {"f:ports": {"k:{\"port\":80,\"protocol\":\"TCP\"}": {".": {}, "f:port": {}}}}})
    );
}

#[test]
fn filling_a_map_another_manager_applied_empty_is_no_conflict() {
    let labels = |labels: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": labels}});
    let live = stored(apply(None, &labels(json!({})), "a", false, T1).unwrap());
    let filled = apply(Some(&live), &labels(json!({"k": "v"})), "b", false, T2).unwrap();
    assert_eq!(filled["metadata"]["labels"], json!({"k": "v"}));
    let emptied = apply(Some(&filled), &labels(json!({})), "b", false, T3).unwrap();
    assert_eq!(emptied["metadata"]["labels"], json!({}));
}

fn arb_labels() -> impl Strategy<Value = std::collections::BTreeMap<String, String>> {
    proptest::collection::btree_map("[a-e]", "[xy]", 0..5)
}

proptest! {
    #[test]
    fn a_second_applier_conflicts_exactly_on_the_labels_it_changes(
        first in arb_labels(),
        second in arb_labels(),
    ) {
        let deployment = |labels: &std::collections::BTreeMap<String, String>| json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": labels},
        });
        let live = stored(apply(None, &deployment(&first), "a", false, T1).unwrap());
        prop_assert_eq!(apply(Some(&live), &deployment(&first), "a", false, T2).unwrap(), live.clone());
        let expected: Vec<String> = second
            .iter()
            .filter(|(key, value)| first.get(*key).is_some_and(|v| v != *value))
            .map(|(key, _)| format!(".metadata.labels.{key}"))
            .collect();
        match apply(Some(&live), &deployment(&second), "b", false, T2) {
            Ok(result) => {
                prop_assert!(expected.is_empty());
                let mut union = first.clone();
                union.extend(second.clone());
                prop_assert_eq!(&result["metadata"]["labels"], &json!(union));
                // Dropping its labels again gives back exactly the first applier's.
                let none = deployment(&Default::default());
                let back = apply(Some(&result), &none, "b", false, T3).unwrap();
                let labels = back["metadata"].get("labels").cloned().unwrap_or(json!({}));
                prop_assert_eq!(labels, json!(first));
            }
            Err(PatchError::Conflict { conflicts, .. }) => {
                let fields: Vec<String> = conflicts.into_iter().map(|c| c.field).collect();
                prop_assert_eq!(fields, expected);
            }
            Err(other) => prop_assert!(false, "{other:?}"),
        }
    }
}

/// An object as client-side `kubectl apply` leaves it: `configuration` with its
/// last-applied annotation, every field owned by the client-side apply manager.
fn client_side_applied(configuration: &Value) -> Value {
    let mut object = stored(configuration.clone());
    object["metadata"]["annotations"][LAST_APPLIED] = json!(configuration.to_string());
    record_update(None, &mut object, "kubectl-client-side-apply", T1);
    object
}

#[test]
fn kubectl_moves_from_client_side_apply_without_conflicts_on_what_it_applied_last() {
    let live = client_side_applied(&simple(2));
    let migrated = apply(Some(&live), &simple(3), KUBECTL, false, T2).unwrap();
    assert_eq!(migrated["spec"]["replicas"], json!(3));
    // The annotation now holds what was applied, for the next client-side apply.
    let annotation = migrated["metadata"]["annotations"][LAST_APPLIED]
        .as_str()
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(annotation).unwrap(),
        simple(3)
    );
    let update = migrated["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["manager"] == "kubectl-client-side-apply")
        .unwrap();
    assert_eq!(update["fieldsV1"]["f:spec"].get("f:replicas"), None);

    // Only kubectl's own field manager migrates.
    let (message, _) = conflicts_of(apply(Some(&live), &simple(3), "kyb-deploy", false, T2));
    assert!(message.contains(".spec.replicas"), "{message}");
}

#[test]
fn a_field_changed_since_the_last_client_side_apply_still_conflicts() {
    let live = client_side_applied(&simple(2));
    let mut scaled = live.clone();
    scaled["spec"]["replicas"] = json!(5);
    record_update(Some(&live), &mut scaled, "kubectl-scale", T2);
    let (message, conflicts) = conflicts_of(apply(Some(&scaled), &simple(3), KUBECTL, false, T3));
    assert_eq!(conflicts.len(), 1, "{message}");
    assert_eq!(conflicts[0].manager, "kubectl-scale");

    // An annotation of another apiVersion, or one that does not parse, allows nothing.
    for annotation in [
        json!(simple(2).to_string().replace("apps/v1", "apps/v1beta2")),
        json!("{not json"),
    ] {
        let mut odd = live.clone();
        odd["metadata"]["annotations"][LAST_APPLIED] = annotation;
        conflicts_of(apply(Some(&odd), &simple(3), KUBECTL, false, T2));
    }
}

#[test]
fn without_a_last_applied_annotation_a_server_side_apply_adds_none() {
    let created = apply(None, &simple(2), KUBECTL, false, T1).unwrap();
    assert!(created["metadata"]["annotations"].is_null(), "{created:#}");
}
