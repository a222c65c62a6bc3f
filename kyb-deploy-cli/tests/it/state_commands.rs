//! `state import` and `unlock` through the binary, against moto's S3; the bucket is read
//! back with the store.

use kyb_deploy_core::config::{StateBackendKind, StateConfig};
use kyb_deploy_core::shared_state::{ObjectDeployLock, ObjectRecordStore};
use kyb_deploy_core::{
    DeployLock as _, DeploymentRecord, JsonlRecordStore, Operation, RecordStatus, RecordStore as _,
    Release, Version,
};
use kyb_deploy_testkit::moto::{AwsCli, MotoServer};

use crate::ecs_e2e::kyb_deploy_command;
use crate::support::{Project, moto_s3, output};

const BUCKET: &str = "kyb-deploy-state";

/// A project whose staging keeps its state in moto's S3, and the store and lock of it.
async fn project() -> (MotoServer, Project, ObjectRecordStore, ObjectDeployLock) {
    let moto = MotoServer::start().await;
    AwsCli::new(moto.url())
        .json(&["s3api", "create-bucket", "--bucket", BUCKET])
        .await;
    let project = Project::new(&format!(
        r#"
[environments.staging]
target = "docker"
[environments.staging.docker]
[environments.staging.state]
backend = "s3"
bucket = "{BUCKET}"
region = "us-east-1"
endpoint_url = "{}"

[environments.development]
target = "docker"
[environments.development.docker]
"#,
        moto.url()
    ));
    let client = moto_s3(&moto.url());
    let state = StateConfig {
        backend: StateBackendKind::S3,
        bucket: Some(BUCKET.into()),
        ..StateConfig::default()
    };
    let (store, lock) = kyb_deploy_ecs::s3_state_with_client(client, &state, "staging").unwrap();
    (moto, project, store, lock)
}

/// `kyb-deploy <args>` in the project, with static test credentials only.
fn kyb_deploy(project: &Project, args: &[&str]) -> crate::support::Run {
    output(&mut kyb_deploy_command(project, args))
}

fn record(id: &str, env: &str, version: &str, status: RecordStatus) -> DeploymentRecord {
    let version = Version::parse(version).unwrap();
    let mut r = DeploymentRecord::start(id, Operation::Deploy, env, "docker", version.clone());
    r.release = Some(Release::new(version, format!("repo@sha256:{id:0>64}")));
    r.status = status;
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_copies_an_environment_s_local_runs_once() {
    let (_moto, project, store, _) = project().await;
    let local = JsonlRecordStore::new(project.ledger());
    for r in [
        record("r1", "staging", "v1", RecordStatus::InProgress),
        record("r1", "staging", "v1", RecordStatus::Succeeded),
        record("d1", "development", "v1", RecordStatus::Succeeded),
        record("r2", "staging", "v2", RecordStatus::RolledBack),
    ] {
        local.append(&r).await.unwrap();
    }
    let first = kyb_deploy(&project, &["state", "import", "-e", "staging"]);
    assert_eq!(first.code, 0, "{}", first.all());
    assert!(
        first.stdout.contains("imported 2 run(s) of staging from ")
            && first
                .stdout
                .contains("into s3://kyb-deploy-state/kyb-deploy/staging (0 already there)"),
        "{}",
        first.all()
    );
    let copied = store.recent(Some("staging"), 10).await.unwrap().records;
    let states: Vec<(&str, &str)> = copied
        .iter()
        .map(|r| (r.id.as_str(), r.status.as_str()))
        .collect();
    assert_eq!(states, [("r1", "succeeded"), ("r2", "rolled_back")]);
    let again = kyb_deploy(
        &project,
        &["--output", "json", "state", "import", "-e", "staging"],
    );
    assert_eq!(again.code, 0, "{}", again.all());
    let document = again.json();
    assert_eq!(document["import"]["imported"], 0, "{document:#}");
    assert_eq!(document["import"]["already_there"], 2, "{document:#}");
    assert_eq!(
        store
            .recent(Some("staging"), 10)
            .await
            .unwrap()
            .records
            .len(),
        2
    );

    // An environment on the file backend has nothing to import into.
    let file = kyb_deploy(&project, &["state", "import", "-e", "development"]);
    assert_eq!(file.code, 2, "{}", file.all());
    assert!(
        file.all()
            .contains("environments.development.state.backend is \"file\""),
        "{}",
        file.all()
    );
    let missing = kyb_deploy(
        &project,
        &["state", "import", "-e", "staging", "--from", "nope.jsonl"],
    );
    assert_eq!(missing.code, 2, "{}", missing.all());
    assert!(
        missing.all().contains("no ledger file at"),
        "{}",
        missing.all()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlock_breaks_a_shared_lock_only_when_confirmed() {
    let (_moto, project, _, lock) = project().await;
    let held = lock.acquire("staging").await.unwrap();
    // No terminal and no --yes: refused, nothing broken.
    let refused = kyb_deploy(&project, &["unlock", "-e", "staging"]);
    assert_eq!(refused.code, 2, "{}", refused.all());
    assert!(refused.all().contains("pass --yes"), "{}", refused.all());
    assert!(lock.acquire("staging").await.is_err(), "still held");

    let broken = kyb_deploy(&project, &["unlock", "-e", "staging", "--yes"]);
    assert_eq!(broken.code, 0, "{}", broken.all());
    assert!(
        broken.stdout.contains(&format!(
            "broke the lock of staging (held by pid {}",
            std::process::id()
        )),
        "{}",
        broken.all()
    );
    let taken = lock.acquire("staging").await.unwrap();
    drop(held);
    let none = kyb_deploy(
        &project,
        &["--output", "json", "unlock", "-e", "staging", "--yes"],
    );
    assert_eq!(none.code, 0, "{}", none.all());
    assert!(
        none.json()["unlock"]["broken"].is_string(),
        "the new holder's lock was broken"
    );
    drop(taken);
    let again = kyb_deploy(&project, &["unlock", "-e", "staging", "--yes"]);
    assert_eq!(again.code, 0, "{}", again.all());
    assert!(
        again.stdout.contains("staging was not locked"),
        "{}",
        again.all()
    );

    // The file backend's lock belongs to a live process.
    let file = kyb_deploy(&project, &["unlock", "-e", "development", "--yes"]);
    assert_eq!(file.code, 2, "{}", file.all());
    assert!(
        file.all().contains("stop that process instead"),
        "{}",
        file.all()
    );
}

/// `history` without an environment shows every readable store, and names the one it could
/// not read instead of failing as a whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_of_every_environment_survives_an_unreadable_store() {
    let (_moto, project, store, _) = project().await;
    store
        .append(&record("r1", "staging", "v1", RecordStatus::Succeeded))
        .await
        .unwrap();
    let config = std::fs::read_to_string(project.path().join("kyb-deploy.toml")).unwrap();
    std::fs::write(
        project.path().join("kyb-deploy.toml"),
        format!(
            "{config}\n[environments.production]\ntarget = \"docker\"\n[environments.production.docker]\n[environments.production.state]\nbackend = \"s3\"\nbucket = \"{BUCKET}\"\nregion = \"us-east-1\"\nendpoint_url = \"http://127.0.0.1:1\"\n"
        ),
    )
    .unwrap();
    let run = kyb_deploy(&project, &["history"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains("r1"), "{}", run.all());
    assert!(
        run.stderr
            .contains("the runs of production are not shown: its shared state could not be read"),
        "{}",
        run.all()
    );
    assert!(
        run.stderr.contains("`history -e production`"),
        "{}",
        run.all()
    );
}
