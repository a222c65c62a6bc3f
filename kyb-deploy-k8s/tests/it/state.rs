//! The Kubernetes state backend against the simulator: records as immutable Secrets, the
//! lock as a Lease, read back through the API as any client would; lost answers injected by
//! a fault proxy between the store and the API server.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::Client;
use kube::api::{Api, ListParams, PostParams};
use kyb_deploy_core::config::{StateBackendKind, StateConfig};
use kyb_deploy_core::shared_state::{ObjectDeployLock, ObjectRecordStore};
use kyb_deploy_core::{DeployLock as _, DeploymentRecord, Error, RecordStatus, RecordStore as _};
use kyb_deploy_k8s::{HOLDER_ANNOTATION, STATE_LABEL, kubernetes_state_with_client};
use kyb_deploy_testkit::state_contract::{self, finished};
use kyb_deploy_testkit::{Fault, RequestMatch};

use super::Cluster;

const NAMESPACE: &str = "kyb-state";
const SECRETS: &str = "/api/v1/namespaces/kyb-state/secrets";
const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/kyb-state/leases";

/// A cluster (behind a fault proxy when `proxied`) with the state's namespace.
async fn cluster(proxied: bool) -> Cluster {
    let cluster = if proxied {
        Cluster::behind_proxy().await
    } else {
        Cluster::start().await
    };
    let namespace: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": NAMESPACE}})).unwrap();
    Api::<Namespace>::all(cluster.client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap();
    cluster
}

fn state(client: &Client, ttl: Duration) -> (ObjectRecordStore, ObjectDeployLock) {
    let config = StateConfig {
        backend: StateBackendKind::Kubernetes,
        namespace: Some(NAMESPACE.into()),
        lock_ttl: ttl,
        ..StateConfig::default()
    };
    kubernetes_state_with_client(client.clone(), NAMESPACE, &config)
}

/// A deploy run of `version` in staging on Kubernetes, in progress.
fn started(id: &str, version: &str) -> DeploymentRecord {
    state_contract::started(id, version, "kubernetes")
}

/// The state Secrets of `kind` (`record`, `known-good`, `lock-event`), read with a client of
/// their own.
async fn secrets(client: &Client, kind: &str) -> Vec<Secret> {
    Api::<Secret>::namespaced(client.clone(), NAMESPACE)
        .list(&ListParams::default().labels(&format!("{STATE_LABEL}={kind}")))
        .await
        .unwrap()
        .items
}

async fn leases(client: &Client) -> Vec<Lease> {
    Api::<Lease>::namespaced(client.clone(), NAMESPACE)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
}

fn states(records: &[DeploymentRecord]) -> Vec<(&str, &str)> {
    records
        .iter()
        .map(|r| (r.id.as_str(), r.status.as_str()))
        .collect()
}

#[tokio::test]
async fn every_state_of_a_run_is_an_immutable_secret_and_lookups_read_the_latest() {
    let c = cluster(false).await;
    let (store, _) = state(&c.client, Duration::from_secs(60));
    state_contract::lookups_read_the_latest_state(&store, "kubernetes").await;

    let written = secrets(&c.client, "record").await;
    assert_eq!(written.len(), 4, "one Secret per state");
    for secret in &written {
        assert_eq!(secret.type_.as_deref(), Some("kyb-deploy.io/state"));
        assert_eq!(secret.immutable, Some(true));
    }
    assert_eq!(secrets(&c.client, "known-good").await.len(), 1);
    // Every environment, from the whole store.
    let mut production = started("r4", "v4");
    production.environment = "production".into();
    store.append(&production).await.unwrap();
    let all = store.load().await.unwrap();
    assert_eq!(all.records.len(), 4, "{:#?}", all.records);
    assert!(all.problems.is_empty(), "{:?}", all.problems);

    // A record Secret cannot be changed: written once.
    let api = Api::<Secret>::namespaced(c.client.clone(), NAMESPACE);
    let mut changed = written[0].clone();
    changed.data = None;
    let name = changed.metadata.name.clone().unwrap();
    assert!(
        api.replace(&name, &PostParams::default(), &changed)
            .await
            .is_err()
    );
}

/// Lookups page through the records with `limit` and `continue`: the first page holds 64.
#[tokio::test]
async fn lookups_reach_past_the_first_page() {
    let c = cluster(false).await;
    let (store, _) = state(&c.client, Duration::from_secs(60));
    for n in 0..70 {
        let id = format!("r{n:02}");
        store.append(&started(&id, "v1")).await.unwrap();
    }
    let oldest = store
        .find_latest("staging", &|r: &DeploymentRecord| r.id == "r00")
        .await
        .unwrap();
    assert_eq!(oldest.map(|r| r.id), Some("r00".into()));
    let recent = store.recent(Some("staging"), 100).await.unwrap();
    assert_eq!(recent.records.len(), 70);
    assert_eq!(recent.records[0].id, "r00", "oldest first");
    assert_eq!(recent.records[69].id, "r69");
}

#[tokio::test]
async fn one_lease_holder_at_a_time_and_the_refusal_names_it() {
    let c = cluster(false).await;
    let (_, lock) = state(&c.client, Duration::from_secs(60));
    let guard = lock.acquire("staging").await.unwrap();
    let Err(Error::Locked { holder, .. }) = lock.acquire("staging").await else {
        panic!("a second acquire must be refused");
    };
    assert!(
        holder.contains(&format!("pid {}", std::process::id())),
        "{holder}"
    );
    assert!(holder.contains("Lease kyb-state/"), "{holder}");
    // The Lease says who holds it, for how long, as kubectl shows it.
    let lease = &leases(&c.client).await[0];
    let spec = lease.spec.as_ref().unwrap();
    assert!(
        spec.holder_identity
            .as_deref()
            .is_some_and(|h| h.ends_with(&format!("pid {}", std::process::id()))),
        "{spec:?}"
    );
    assert_eq!(spec.lease_duration_seconds, Some(60));
    assert!(spec.renew_time.is_some() && spec.acquire_time.is_some());
    let annotations = lease.metadata.annotations.as_ref().unwrap();
    assert!(annotations.contains_key(HOLDER_ANNOTATION));
    guard.release().await.unwrap();
    assert!(leases(&c.client).await.is_empty(), "released means deleted");
    lock.acquire("staging")
        .await
        .unwrap()
        .release()
        .await
        .unwrap();
}

/// Two runs racing for the Lease from two clients: exactly one wins each time.
#[tokio::test]
async fn racing_acquirers_get_one_lease() {
    let c = cluster(false).await;
    let (_, a) = state(&c.client, Duration::from_secs(60));
    let (_, b) = state(&c.client, Duration::from_secs(60));
    state_contract::racing_acquirers_get_one_lock(&a, &b, 10).await;
}

/// A rollback's run verifies the release it went back to.
#[tokio::test]
async fn a_verified_rollback_is_known_good() {
    let c = cluster(false).await;
    let (store, _) = state(&c.client, Duration::from_secs(60));
    state_contract::a_verified_rollback_is_known_good(&store, "kubernetes").await;
}

/// The heartbeat keeps the Lease past its duration; a holder that stops renewing is taken
/// over once it expires, the takeover recorded; the old holder learns it lost the lock and
/// its release leaves the new holder's Lease alone.
#[tokio::test]
async fn an_expired_lease_is_taken_over_and_the_old_holder_knows() {
    let c = cluster(false).await;
    let ttl = Duration::from_secs(3);
    let (_, lock) = state(&c.client, ttl);
    let guard = lock.acquire("staging").await.unwrap();
    tokio::time::sleep(ttl + Duration::from_secs(2)).await;
    assert!(
        matches!(lock.acquire("staging").await, Err(Error::Locked { .. })),
        "renewed, so still held"
    );
    drop(guard);
    let taken = state_contract::take_over_once_expired(&lock, ttl).await;
    assert_eq!(secrets(&c.client, "lock-event").await.len(), 1);
    let spec = leases(&c.client).await[0].spec.clone().unwrap();
    assert_eq!(spec.lease_transitions, Some(1), "{spec:?}");

    // A holder whose Lease was taken from it (here: by a break and a new holder).
    lock.break_lock("staging", "alice").await.unwrap();
    let newer = lock.acquire("staging").await.unwrap();
    state_contract::lost_within(&taken, ttl).await;
    taken.release().await.unwrap();
    assert_eq!(
        leases(&c.client).await.len(),
        1,
        "the new holder's lease stays"
    );
    assert_eq!(
        secrets(&c.client, "lock-event").await.len(),
        2,
        "the break is recorded"
    );
    newer.release().await.unwrap();
}

/// A Lease that kyb-deploy did not write is never taken over, even expired.
#[tokio::test]
async fn a_foreign_lease_is_never_taken_over() {
    let c = cluster(false).await;
    let (_, lock) = state(&c.client, Duration::from_secs(3));
    lock.acquire("staging")
        .await
        .unwrap()
        .release()
        .await
        .unwrap();
    let guard = lock.acquire("staging").await.unwrap();
    let api = Api::<Lease>::namespaced(c.client.clone(), NAMESPACE);
    let mut lease = leases(&c.client).await.remove(0);
    lease.metadata.annotations = None;
    lease.metadata.managed_fields = None;
    let name = lease.metadata.name.clone().unwrap();
    api.replace(&name, &PostParams::default(), &lease)
        .await
        .unwrap();
    drop(guard);
    tokio::time::sleep(Duration::from_secs(4)).await;
    let Err(Error::Locked { holder, .. }) = lock.acquire("staging").await else {
        panic!("a foreign lease must refuse the lock");
    };
    assert!(holder.contains("kyb-deploy unlock -e staging"), "{holder}");
}

/// Writes the API server applied but whose answers were lost, refused ones, and throttling:
/// every state is one Secret, none lost, none written twice.
#[tokio::test]
async fn lost_answers_neither_lose_nor_duplicate_a_record() {
    let c = cluster(true).await;
    let proxy = c.proxy.as_ref().unwrap();
    let (store, _) = state(&c.client, Duration::from_secs(60));
    let create = || RequestMatch::method("POST").and_path_prefix(SECRETS);
    let status = |code: u16, reason: &str| {
        serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
            "message": "injected", "reason": reason, "code": code})
        .to_string()
    };
    proxy.add(
        create(),
        Fault::ApplyThenAnswer {
            status: 500,
            body: status(500, "InternalError"),
        },
        1,
    );
    store.append(&started("r1", "v1")).await.unwrap();
    proxy.add(create(), Fault::ApplyThenDrop, 1);
    store
        .append(&finished(started("r1", "v1"), RecordStatus::Succeeded))
        .await
        .unwrap();
    // Refused before the write (a 500, throttling): read back, found absent, tried again.
    proxy.add(
        create(),
        Fault::Refuse {
            status: 500,
            body: status(500, "InternalError"),
        },
        1,
    );
    proxy.add(
        create(),
        Fault::Refuse {
            status: 429,
            body: status(429, "TooManyRequests"),
        },
        1,
    );
    store.append(&started("r2", "v2")).await.unwrap();
    // The pointer's update answered, after it was applied, with a dropped connection.
    proxy.add(
        RequestMatch::method("PUT").and_path_prefix(SECRETS),
        Fault::ApplyThenDrop,
        1,
    );
    store
        .append(&finished(started("r2", "v2"), RecordStatus::Succeeded))
        .await
        .unwrap();

    assert_eq!(
        secrets(&c.client, "record").await.len(),
        4,
        "one Secret per state"
    );
    let recent = store.recent(Some("staging"), 10).await.unwrap();
    assert_eq!(
        states(&recent.records),
        [("r1", "succeeded"), ("r2", "succeeded")]
    );
    let known_good = store
        .find_latest_verified("staging", &|_: &DeploymentRecord| true)
        .await
        .unwrap();
    assert_eq!(known_good.map(|r| r.id), Some("r2".into()));
    // A write refused for good fails the append and says where.
    proxy.add(
        create(),
        Fault::Refuse {
            status: 403,
            body: status(403, "Forbidden"),
        },
        1,
    );
    let error = store
        .append(&started("r3", "v3"))
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("Secret kyb-state/"), "{error}");
    assert!(error.contains("permission"), "{error}");
    assert_eq!(secrets(&c.client, "record").await.len(), 4);
    // A lease renewal refused after the fact does not matter here; a lock write works.
    assert!(
        proxy.requests().iter().all(|r| !r.path.starts_with(LEASES)),
        "no lease was touched"
    );
}

/// The state needs its namespace: a missing one is an error, never an empty history.
#[tokio::test]
async fn a_missing_namespace_is_an_error() {
    let c = Cluster::start().await;
    let (store, lock) = state(&c.client, Duration::from_secs(60));
    let error = store
        .append(&started("r1", "v1"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("the namespace kyb-state does not exist; create it"),
        "{error}"
    );
    let Err(error) = lock.acquire("staging").await else {
        panic!("a lock in a missing namespace");
    };
    assert!(error.to_string().contains("does not exist"), "{error}");
}
