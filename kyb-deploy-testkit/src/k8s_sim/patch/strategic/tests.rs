use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::k8s_sim::patch::merge_patch;

fn smp(target: Value, patch: Value) -> Value {
    strategic_merge_patch(&target, &patch).unwrap()
}

fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "finalizers": ["a"]},
        "spec": {
            "replicas": 2,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "img:v1",
                            "args": ["serve", "--port=80"],
                            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                            "ports": [{"containerPort": 80}],
                        },
                        {"name": "sidecar", "image": "proxy:v1"},
                    ],
                    "tolerations": [{"key": "a", "operator": "Exists"}],
                }
            }
        }
    })
}

fn containers(object: &Value) -> &Vec<Value> {
    object["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
}

#[test]
fn kubectl_set_image_merges_the_container_by_name() {
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"image": "img:v2", "name": "app"}]}}}});
    let patched = smp(deployment(), patch);
    let mut expected = deployment();
    expected["spec"]["template"]["spec"]["containers"][0]["image"] = json!("img:v2");
    assert_eq!(patched, expected);
}

#[test]
fn set_element_order_keeps_the_order_kubectl_computed() {
    let patch = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "app"}],
        "containers": [{"image": "img:v2", "name": "app"}],
    }}}});
    let patched = smp(deployment(), patch);
    let names: Vec<&Value> = containers(&patched).iter().map(|c| &c["name"]).collect();
    assert_eq!(names, [&json!("sidecar"), &json!("app")]);
    assert_eq!(containers(&patched)[1]["image"], json!("img:v2"));
}

#[test]
fn rollout_pause_resume_and_restart() {
    let paused = smp(deployment(), json!({"spec": {"paused": true}}));
    assert_eq!(paused["spec"]["paused"], json!(true));
    let resumed = smp(paused, json!({"spec": {"paused": null}}));
    assert_eq!(resumed, deployment());
    let restart = json!({"spec": {"template": {"metadata": {"annotations": {
        "kubectl.kubernetes.io/restartedAt": "2025-01-01T00:00:00Z"
    }}}}});
    let restarted = smp(deployment(), restart);
    assert_eq!(
        restarted["spec"]["template"]["metadata"],
        json!({"labels": {"app": "web"}, "annotations": {"kubectl.kubernetes.io/restartedAt": "2025-01-01T00:00:00Z"}})
    );
}

#[test]
fn nested_keyed_lists_merge_and_delete_items() {
    let patch = json!({"spec": {"template": {"spec": {"containers": [{
        "name": "app",
        "env": [{"name": "A", "$patch": "delete"}, {"name": "B", "value": "3"}, {"name": "C", "value": "4"}],
        "ports": [{"containerPort": 80, "name": "http"}],
    }]}}}});
    let patched = smp(deployment(), patch);
    let app = &containers(&patched)[0];
    assert_eq!(
        app["env"],
        json!([{"name": "B", "value": "3"}, {"name": "C", "value": "4"}])
    );
    assert_eq!(app["ports"], json!([{"containerPort": 80, "name": "http"}]));
}

#[test]
fn new_items_land_ahead_of_server_only_items_as_with_the_real_server() {
    let patch =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "new", "image": "n"}]}}}});
    let patched = smp(deployment(), patch);
    let names: Vec<&Value> = containers(&patched).iter().map(|c| &c["name"]).collect();
    assert_eq!(names, [&json!("new"), &json!("app"), &json!("sidecar")]);
}

#[test]
fn list_replace_directive_and_atomic_lists() {
    let patch = json!({"spec": {"template": {"spec": {
        "containers": [{"$patch": "replace"}, {"name": "only", "image": "o", "stale": null}],
        "tolerations": [{"operator": "Exists"}],
    }}}});
    let patched = smp(deployment(), patch);
    assert_eq!(
        *containers(&patched),
        vec![json!({"name": "only", "image": "o"})]
    );
    assert_eq!(
        patched["spec"]["template"]["spec"]["tolerations"],
        json!([{"operator": "Exists"}])
    );
    let args =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "args": ["x"]}]}}}});
    assert_eq!(
        containers(&smp(deployment(), args))[0]["args"],
        json!(["x"])
    );
}

#[test]
fn map_directives_and_retain_keys() {
    let replaced = smp(
        deployment(),
        json!({"spec": {"strategy": {"$patch": "replace", "type": "Recreate"}}}),
    );
    assert_eq!(replaced["spec"]["strategy"], json!({"type": "Recreate"}));
    let retained = smp(
        deployment(),
        json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": null}}}),
    );
    assert_eq!(retained["spec"]["strategy"], json!({"type": "Recreate"}));
    let deleted = smp(
        deployment(),
        json!({"spec": {"strategy": {"$patch": "delete"}}}),
    );
    assert_eq!(deleted["spec"]["strategy"], json!({}));
    let absent = smp(
        deployment(),
        json!({"spec": {"absent": {"$patch": "delete"}}}),
    );
    assert_eq!(absent, deployment());
    let merged = smp(
        deployment(),
        json!({"spec": {"$patch": "merge", "replicas": 5}}),
    );
    assert_eq!(merged["spec"]["replicas"], json!(5));
    assert_eq!(merged["spec"]["strategy"], deployment()["spec"]["strategy"]);
}

#[test]
fn finalizers_merge_as_a_set_and_delete_from_primitive_list() {
    let added = smp(
        deployment(),
        json!({"metadata": {"finalizers": ["b", "a"]}}),
    );
    assert_eq!(added["metadata"]["finalizers"], json!(["b", "a"]));
    let new_first = smp(deployment(), json!({"metadata": {"finalizers": ["b"]}}));
    assert_eq!(new_first["metadata"]["finalizers"], json!(["b", "a"]));
    let removed = smp(
        added,
        json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}),
    );
    assert_eq!(removed["metadata"]["finalizers"], json!(["b"]));
    let ordered = smp(
        json!({"metadata": {"finalizers": ["a", "b", "c"]}}),
        json!({"metadata": {"$setElementOrder/finalizers": ["c", "a", "b"]}}),
    );
    assert_eq!(ordered["metadata"]["finalizers"], json!(["c", "a", "b"]));
}

#[test]
fn service_ports_merge_by_port_and_conditions_by_type() {
    let service = json!({"spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 443}]}});
    let patched = smp(
        service,
        json!({"spec": {"ports": [{"port": 80, "targetPort": 9090}]}}),
    );
    assert_eq!(
        patched["spec"]["ports"],
        json!([{"port": 80, "targetPort": 9090}, {"port": 443}])
    );
    let status = json!({"status": {"conditions": [
        {"type": "Available", "status": "False"},
        {"type": "Progressing", "status": "True"},
    ]}});
    let patched = smp(
        status,
        json!({"status": {"conditions": [{"type": "Available", "status": "True"}]}}),
    );
    assert_eq!(
        patched["status"]["conditions"][0],
        json!({"type": "Available", "status": "True"})
    );
    assert_eq!(
        patched["status"]["conditions"][1]["type"],
        json!("Progressing")
    );
}

#[test]
fn new_values_carry_no_directives_or_nulls() {
    let patch = json!({"spec": {"template": {"spec": {"volumes": [
        {"name": "data", "emptyDir": {}, "hostPath": null},
        {"name": "gone", "$patch": "delete"},
    ]}}, "extra": {"a": null, "b": {"$patch": "replace", "c": 1}}}});
    let patched = smp(json!({}), patch);
    assert_eq!(
        patched,
        json!({"spec": {"template": {"spec": {"volumes": [{"name": "data", "emptyDir": {}}]}}, "extra": {"b": {"c": 1}}}})
    );
}

#[test]
fn malformed_patches_are_rejected() {
    let bad = [
        json!([]),
        json!({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}}),
        json!({"spec": {"template": {"spec": {"containers": [{"$patch": "delete"}]}}}}),
        json!({"spec": {"template": {"spec": {"containers": ["x"]}}}}),
        json!({"spec": {"$patch": "explode"}}),
        json!({"spec": {"$retainKeys": "type"}}),
        json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {}}}}),
        json!({"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}}),
        json!({"metadata": {"$setElementOrder/finalizers": "a"}}),
        json!({"spec": {"$unknown": 1}}),
    ];
    for patch in bad {
        let result = strategic_merge_patch(&deployment(), &patch);
        assert!(
            matches!(result, Err(PatchError::Invalid(_))),
            "{patch}: {result:?}"
        );
    }
    let lists_of_lists = json!({"metadata": {"finalizers": [["a"]]}});
    assert!(matches!(
        strategic_merge_patch(&deployment(), &lists_of_lists),
        Err(PatchError::Unprocessable(_))
    ));
}

fn arb_map_patch() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i16>().prop_map(Value::from),
        "[a-z]{0,2}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 20, 3, |inner| {
        proptest::collection::btree_map("[a-c]", inner, 0..3)
            .prop_map(|map| Value::Object(map.into_iter().collect()))
    })
}

fn arb_containers() -> impl Strategy<Value = Vec<Value>> {
    proptest::collection::btree_map("[a-d]", "[a-z]{1,2}", 0..4).prop_map(|named| {
        named
            .into_iter()
            .map(|(name, image)| json!({"name": name, "image": image}))
            .collect()
    })
}

proptest! {
    #[test]
    fn without_lists_or_directives_it_is_a_json_merge_patch(
        target in arb_map_patch(),
        patch in arb_map_patch(),
    ) {
        prop_assume!(patch.is_object());
        prop_assert_eq!(strategic_merge_patch(&target, &patch).unwrap(), merge_patch(&target, &patch));
    }

    #[test]
    fn a_container_patch_is_idempotent_and_keeps_every_container(
        live in arb_containers(),
        patch in arb_containers(),
    ) {
        let wrap = |list: &Vec<Value>| json!({"spec": {"containers": list}});
        let once = smp(wrap(&live), wrap(&patch));
        let twice = smp(once.clone(), wrap(&patch));
        prop_assert_eq!(&once, &twice);
        let merged = once["spec"]["containers"].as_array().unwrap();
        for container in live.iter().chain(&patch) {
            let found = merged.iter().find(|c| c["name"] == container["name"]).unwrap();
            let expected = patch.iter().find(|c| c["name"] == container["name"]).unwrap_or(container);
            prop_assert_eq!(found, expected);
        }
        prop_assert_eq!(merged.len(), live.iter().chain(&patch).filter_map(|c| c["name"].as_str()).collect::<std::collections::BTreeSet<_>>().len());
    }
}
