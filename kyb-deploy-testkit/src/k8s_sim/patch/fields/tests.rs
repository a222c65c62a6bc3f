use proptest::prelude::*;
use serde_json::json;

use super::*;

fn set_of(object: &Value) -> FieldSet {
    field_set(&paths(object, Scope::Main, true).unwrap())
}

fn path(elements: &[&str]) -> FieldPath {
    elements.iter().map(|e| (*e).to_owned()).collect()
}

#[test]
fn fields_v1_of_an_applied_deployment_reads_like_the_real_servers() {
    let deployment = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}, "finalizers": ["x/y"]},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"spec": {"containers": [{
                "name": "app",
                "image": "img",
                "ports": [{"containerPort": 80}],
                "resources": {},
                "args": ["a"],
            }]}},
        },
        "status": {"replicas": 2},
    });
    assert_eq!(
        to_fields_v1(&set_of(&deployment)),
        json!({
            "f:metadata": {"f:labels": {"f:app": {}}, "f:finalizers": {"v:\"x/y\"": {}}},
            "f:spec": {
                "f:replicas": {},
                "f:selector": {},
                "f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {
                    ".": {},
                    "f:args": {},
                    "f:image": {},
                    "f:name": {},
                    "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {
                        ".": {},
                        "f:containerPort": {},
                    }},
                    "f:resources": {},
                }}}},
            },
        })
    );
}

#[test]
fn status_scope_sees_status_only() {
    let object = json!({"spec": {"replicas": 1}, "status": {"replicas": 1, "conditions": [{"type": "Available", "status": "True"}]}});
    let set = field_set(&paths(&object, Scope::Status, true).unwrap());
    assert_eq!(
        to_fields_v1(&set),
        json!({"f:status": {"f:replicas": {}, "f:conditions": {"k:{\"type\":\"Available\"}": {".": {}, "f:type": {}, "f:status": {}}}}})
    );
}

#[test]
fn items_without_keys_or_with_duplicate_keys() {
    let nameless = json!({"spec": {"containers": [{"image": "x"}]}});
    let duplicated = json!({"spec": {"containers": [{"name": "a"}, {"name": "a"}]}});
    for object in [&nameless, &duplicated] {
        assert!(matches!(
            paths(object, Scope::Main, true),
            Err(PatchError::Unprocessable(_))
        ));
        let lenient = paths(object, Scope::Main, false).unwrap();
        assert!(matches!(
            lenient.get(&path(&["f:spec", "f:containers"])),
            Some(Node::Leaf(_))
        ));
    }
    let error = paths(&duplicated, Scope::Main, true).unwrap_err();
    assert_eq!(
        error.message(),
        ".spec.containers: element 1: duplicate entries for key [name=\"a\"]"
    );
}

#[test]
fn comparisons_report_added_modified_and_removed() {
    let old = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"replicas": 1}});
    let new = json!({"metadata": {"labels": {"a": "1", "c": "3"}, "annotations": {"x": "y"}}, "spec": {"replicas": 2}});
    let old = paths(&old, Scope::Main, false).unwrap();
    let new = paths(&new, Scope::Main, false).unwrap();
    let comparison = Comparison::of(Some(&old), &new);
    let show = |set: &FieldSet| set.iter().map(|p| display_path(p)).collect::<Vec<_>>();
    assert_eq!(
        show(&comparison.added),
        [
            ".metadata.annotations",
            ".metadata.annotations.x",
            ".metadata.labels.c"
        ]
    );
    assert_eq!(show(&comparison.modified), [".spec.replicas"]);
    assert_eq!(show(&comparison.removed), [".metadata.labels.b"]);
    let created = Comparison::of(None, &new);
    assert!(!created.added.contains(&path(&["f:metadata"])));
    assert!(created.added.contains(&path(&["f:metadata", "f:labels"])));
}

#[test]
fn paths_print_as_the_api_server_prints_them() {
    let p = path(&[
        "f:spec",
        "f:template",
        "f:spec",
        "f:containers",
        "k:{\"name\":\"app\"}",
        "f:image",
    ]);
    assert_eq!(
        display_path(&p),
        ".spec.template.spec.containers[name=\"app\"].image"
    );
    let p = path(&["f:spec", "f:ports", "k:{\"port\":80,\"protocol\":\"TCP\"}"]);
    assert_eq!(display_path(&p), ".spec.ports[port=80,protocol=\"TCP\"]");
    assert_eq!(
        display_path(&path(&["f:metadata", "f:finalizers", "v:\"a\""])),
        ".metadata.finalizers[=\"a\"]"
    );
    assert_eq!(display_path(&path(&["f:x", "i:3"])), ".x[3]");
}

#[test]
fn malformed_fields_v1_is_refused() {
    assert!(from_fields_v1(&json!([])).is_err());
    assert!(from_fields_v1(&json!({"spec": {}})).is_err());
    assert!(from_fields_v1(&json!({"f:spec": 1})).is_err());
}

fn arb_object() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        any::<bool>().prop_map(Value::from),
        any::<i16>().prop_map(Value::from),
        "[a-z]{0,3}".prop_map(Value::from),
        Just(json!({})),
        Just(json!([])),
    ];
    let container =
        ("[a-d]", leaf.clone()).prop_map(|(name, image)| json!({"name": name, "image": image}));
    let containers =
        proptest::collection::btree_map("[a-d]", container, 0..4).prop_map(|by_name| {
            by_name
                .into_iter()
                .map(|(name, mut c)| {
                    c["name"] = json!(name);
                    c
                })
                .collect::<Vec<_>>()
        });
    let labels = proptest::collection::btree_map("[a-c/~.]{1,4}", leaf.clone(), 0..4);
    let finalizers = proptest::collection::btree_set("[a-c]{1,2}", 0..3);
    (labels, finalizers, containers, leaf).prop_map(|(labels, finalizers, containers, replicas)| {
        json!({
            "metadata": {"labels": labels, "finalizers": finalizers},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": containers}}},
        })
    })
}

proptest! {
    #[test]
    fn fields_v1_round_trips(object in arb_object()) {
        let set = set_of(&object);
        prop_assert_eq!(from_fields_v1(&to_fields_v1(&set)).unwrap(), set);
    }

}
