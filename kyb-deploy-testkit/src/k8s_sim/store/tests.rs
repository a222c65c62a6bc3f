//! The store: metadata on create, optimistic concurrency, generations, watch history.

use rand::SeedableRng as _;

use super::*;
use crate::k8s_sim::resources::kind;

fn store() -> (Store, StdRng) {
    let mut s = Store::new();
    let mut rng = StdRng::seed_from_u64(1);
    s.create(
        kind("Namespace"),
        "",
        json!({"metadata": {"name": "default"}}),
        "t",
        &mut rng,
    )
    .unwrap();
    (s, rng)
}

#[test]
fn create_fills_in_metadata_and_refuses_duplicates() {
    let (mut s, mut rng) = store();
    let d = s
        .create(
            kind("Deployment"),
            "default",
            json!({"metadata": {"name": "web"}, "spec": {"replicas": 1}}),
            "2026-01-01T00:00:00Z",
            &mut rng,
        )
        .unwrap();
    assert_eq!(d["metadata"]["namespace"], "default");
    assert_eq!(d["metadata"]["generation"], 1);
    assert_eq!(d["metadata"]["resourceVersion"], "3");
    assert_eq!(d["kind"], "Deployment");
    assert_eq!(d["apiVersion"], "apps/v1");
    assert_eq!(d["metadata"]["uid"].as_str().unwrap().len(), 36);
    let again = s.create(
        kind("Deployment"),
        "default",
        json!({"metadata": {"name": "web"}}),
        "t",
        &mut rng,
    );
    assert_eq!(again.unwrap_err().reason, "AlreadyExists");
    let elsewhere = s.create(
        kind("Deployment"),
        "nope",
        json!({"metadata": {"name": "web"}}),
        "t",
        &mut rng,
    );
    assert_eq!(
        elsewhere.unwrap_err().message,
        "namespaces \"nope\" not found"
    );
    let bad = s.create(
        kind("ConfigMap"),
        "default",
        json!({"metadata": {"name": "Bad_Name"}}),
        "t",
        &mut rng,
    );
    assert_eq!(bad.unwrap_err().code, 422);
    let generated = s
        .create(
            kind("Pod"),
            "default",
            json!({"metadata": {"generateName": "web-"}}),
            "t",
            &mut rng,
        )
        .unwrap();
    assert!(
        generated["metadata"]["name"]
            .as_str()
            .unwrap()
            .starts_with("web-")
    );
}

#[test]
fn updates_check_the_resource_version_and_count_generations() {
    let (mut s, mut rng) = store();
    let d = s
        .create(
            kind("Deployment"),
            "default",
            json!({"metadata": {"name": "web"}, "spec": {"replicas": 1}}),
            "t",
            &mut rng,
        )
        .unwrap();
    let mut changed = d.clone();
    changed["spec"]["replicas"] = json!(2);
    let updated = s
        .update(kind("Deployment"), "default", "web", changed.clone(), false)
        .unwrap();
    assert_eq!(updated["metadata"]["generation"], 2);
    // The old resourceVersion is stale now.
    assert_eq!(
        s.update(kind("Deployment"), "default", "web", changed, false)
            .unwrap_err()
            .code,
        409
    );
    // A label changes the resourceVersion but not the generation.
    let mut labelled = updated.clone();
    labelled["metadata"]["labels"] = json!({"a": "b"});
    let labelled = s
        .update(kind("Deployment"), "default", "web", labelled, false)
        .unwrap();
    assert_eq!(labelled["metadata"]["generation"], 2);
    assert_ne!(
        labelled["metadata"]["resourceVersion"],
        updated["metadata"]["resourceVersion"]
    );
    // Status writes go through the subresource only.
    let mut with_status = labelled.clone();
    with_status["status"] = json!({"replicas": 2});
    let main = s
        .update(
            kind("Deployment"),
            "default",
            "web",
            with_status.clone(),
            false,
        )
        .unwrap();
    assert_eq!(main["status"], json!({}));
    let status = s
        .update(kind("Deployment"), "default", "web", with_status, true)
        .unwrap();
    assert_eq!(status["status"]["replicas"], 2);
    // Nothing changed: same resourceVersion.
    let same = s
        .update(kind("Deployment"), "default", "web", status.clone(), false)
        .unwrap();
    assert_eq!(
        same["metadata"]["resourceVersion"],
        status["metadata"]["resourceVersion"]
    );
}

#[test]
fn watches_resume_from_history_and_old_versions_are_gone() {
    let (mut s, mut rng) = store();
    let start = s.revision();
    s.create(
        kind("ConfigMap"),
        "default",
        json!({"metadata": {"name": "a"}}),
        "t",
        &mut rng,
    )
    .unwrap();
    s.delete(kind("ConfigMap"), "default", "a").unwrap();
    let (past, _rx) = s.watch_from(start).unwrap();
    let types: Vec<_> = past.iter().map(|c| c.change).collect();
    assert_eq!(types, [ChangeType::Added, ChangeType::Deleted]);
    for i in 0..HISTORY {
        s.create(
            kind("ConfigMap"),
            "default",
            json!({"metadata": {"name": format!("c{i}")}}),
            "t",
            &mut rng,
        )
        .unwrap();
    }
    assert_eq!(s.watch_from(start).unwrap_err().code, 410);
}
