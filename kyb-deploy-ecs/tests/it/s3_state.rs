//! The S3 state backend against `moto_server`'s S3 (which honours `If-None-Match` and
//! `If-Match` on PutObject), through the testkit's fault proxy where answers get lost. What
//! the store wrote is read back with the real AWS CLI, not with the store.

use std::time::Duration;

use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use kyb_deploy_core::config::{StateBackendKind, StateConfig};
use kyb_deploy_core::shared_state::{ObjectDeployLock, ObjectRecordStore};
use kyb_deploy_core::{DeployLock as _, DeploymentRecord, Error, RecordStatus, RecordStore as _};
use kyb_deploy_ecs::{https_client, s3_state_with_client};
use kyb_deploy_testkit::moto::{AwsCli, MotoServer};
use kyb_deploy_testkit::state_contract::{self, finished};
use kyb_deploy_testkit::{Fault, FaultProxy, RequestMatch};
use serde_json::Value;

const BUCKET: &str = "kyb-state";
const RECORDS: &str = "/kyb-state/kyb-deploy/staging/records/";
const POINTER: &str = "/kyb-state/kyb-deploy/staging/known-good.json";
const LOCK: &str = "/kyb-state/kyb-deploy/staging/lock.json";

/// moto with the state bucket, a fault proxy in front of it, and the AWS CLI behind it.
struct Peer {
    _moto: MotoServer,
    proxy: FaultProxy,
    aws: AwsCli,
}

impl Peer {
    async fn start() -> Self {
        let moto = MotoServer::start().await;
        let aws = AwsCli::new(moto.url());
        aws.json(&["s3api", "create-bucket", "--bucket", BUCKET])
            .await;
        let proxy = FaultProxy::start(moto.addr()).await.unwrap();
        Self {
            _moto: moto,
            proxy,
            aws,
        }
    }

    /// The store and lock of staging, through the proxy, with a lock that lives `ttl`.
    fn state(&self, ttl: Duration) -> (ObjectRecordStore, ObjectDeployLock) {
        let client = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new("us-east-1"))
                .credentials_provider(Credentials::new("test", "test", None, None, "static"))
                .endpoint_url(self.proxy.url())
                .force_path_style(true)
                .http_client(https_client())
                .retry_config(
                    RetryConfig::standard()
                        .with_max_attempts(3)
                        .with_initial_backoff(Duration::from_millis(10)),
                )
                .build(),
        );
        let config = StateConfig {
            backend: StateBackendKind::S3,
            bucket: Some(BUCKET.into()),
            lock_ttl: ttl,
            ..StateConfig::default()
        };
        s3_state_with_client(client, &config, "staging").unwrap()
    }

    /// The keys under `prefix` (without the bucket), as the AWS CLI lists them.
    async fn keys(&self, prefix: &str) -> Vec<String> {
        let prefix = prefix.trim_start_matches(&format!("/{BUCKET}/")[..]);
        let listed = self
            .aws
            .json(&[
                "s3api",
                "list-objects-v2",
                "--bucket",
                BUCKET,
                "--prefix",
                prefix,
            ])
            .await;
        listed["Contents"]
            .as_array()
            .map(|objects| {
                objects
                    .iter()
                    .map(|o| o["Key"].as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The object at `path` (`/bucket/key`), as JSON, read with the AWS CLI.
    async fn object(&self, path: &str) -> Value {
        let key = path.trim_start_matches(&format!("/{BUCKET}/")[..]);
        let out = tempfile::NamedTempFile::new().unwrap();
        let target = out.path().to_str().unwrap();
        self.aws
            .json(&[
                "s3api",
                "get-object",
                "--bucket",
                BUCKET,
                "--key",
                key,
                target,
            ])
            .await;
        serde_json::from_slice(&std::fs::read(out.path()).unwrap()).unwrap()
    }

    /// Replaces staging's lock object, with the AWS CLI, by another holder's.
    async fn put_foreign_lock(&self) {
        let other = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(other.path(), b"{\"someone\":\"else\"}").unwrap();
        let key = LOCK.trim_start_matches("/kyb-state/");
        let body = other.path().to_str().unwrap();
        self.aws
            .json(&[
                "s3api",
                "put-object",
                "--bucket",
                BUCKET,
                "--key",
                key,
                "--body",
                body,
            ])
            .await;
    }

    /// Requests the proxy saw whose path starts with `prefix`.
    fn requests(&self, method: &str, prefix: &str) -> usize {
        self.proxy
            .requests()
            .iter()
            .filter(|r| r.method == method && r.path.starts_with(prefix))
            .count()
    }
}

/// A deploy run of `version` in staging on ECS, in progress.
fn started(id: &str, version: &str) -> DeploymentRecord {
    state_contract::started(id, version, "ecs")
}

/// An S3 error answer with `code`.
fn s3_error(status: u16, code: &str) -> Fault {
    Fault::Refuse {
        status,
        body: format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>injected by the fault proxy</Message></Error>"
        ),
    }
}

#[tokio::test]
async fn every_state_of_a_run_is_its_own_object_and_lookups_read_the_latest() {
    let peer = Peer::start().await;
    let (store, _) = peer.state(Duration::from_secs(60));
    state_contract::lookups_read_the_latest_state(&store, "ecs").await;

    // Four objects, never overwritten: the AWS CLI sees each state, newest first.
    let keys = peer.keys(RECORDS).await;
    assert_eq!(keys.len(), 4, "{keys:?}");
    assert!(
        keys[0].contains("_r3_deploy_failed%5Fbefore%5Fdeploy.json"),
        "{keys:?}"
    );
    assert!(
        keys[1].contains("_r2_deploy_in%5Fprogress.json"),
        "{keys:?}"
    );
    assert!(keys[2].contains("_r1_deploy_succeeded.json"), "{keys:?}");
    let newest = peer.object(&format!("/{BUCKET}/{}", keys[1])).await;
    assert_eq!(newest["id"], "r2", "{newest:#}");

    // The pointer names the verified run and the newest record folded in.
    let pointer = peer.object(POINTER).await;
    assert_eq!(pointer["verified"][0]["id"], "r1", "{pointer:#}");
    assert_eq!(pointer["watermark"], keys[0].as_str(), "{pointer:#}");
}

/// A rollback's run verifies the release it went back to: the pointer counts it, and a
/// newer state of a verified run (superseded) replaces it.
#[tokio::test]
async fn a_verified_rollback_is_known_good_and_the_pointer_follows_each_run() {
    let peer = Peer::start().await;
    let (store, _) = peer.state(Duration::from_secs(60));
    state_contract::a_verified_rollback_is_known_good(&store, "ecs").await;
    let pointer = peer.object(POINTER).await;
    let ids: Vec<&str> = pointer["verified"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["r2", "r1"], "{pointer:#}");
}

/// The known-good lookup reads the pointer and lists what was written since: a bounded
/// number of requests, however many records there are.
#[tokio::test]
async fn the_known_good_lookup_costs_the_same_however_long_the_history() {
    let peer = Peer::start().await;
    let (store, _) = peer.state(Duration::from_secs(60));
    store
        .append(&finished(started("r0", "v0"), RecordStatus::Succeeded))
        .await
        .unwrap();
    for i in 1..=60 {
        store
            .append(&finished(
                started(&format!("r{i}"), &format!("v{i}")),
                RecordStatus::RollbackFailed,
            ))
            .await
            .unwrap();
    }
    peer.proxy.clear();
    let before = peer.proxy.requests().len();
    let good = store
        .find_latest_verified("staging", &|_: &DeploymentRecord| true)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(good.id, "r0");
    let requests = peer.proxy.requests().len() - before;
    assert!(
        requests <= 2,
        "{requests} requests: the pointer and one listing"
    );
}

/// Writes whose answer is lost (applied, then a 500 or a dropped connection) are settled by
/// reading back: the SDK's retry meets its own write as 412, and the store counts it done.
/// No record is lost or written twice; a blind retry under a new key would leave two.
#[tokio::test]
async fn lost_answers_neither_lose_nor_duplicate_a_record() {
    let peer = Peer::start().await;
    let (store, _) = peer.state(Duration::from_secs(60));
    let put = || RequestMatch::method("PUT").and_path_prefix(RECORDS);
    peer.proxy.add(
        put(),
        Fault::ApplyThenAnswer {
            status: 500,
            body: "<Error><Code>InternalError</Code><Message>injected</Message></Error>".into(),
        },
        1,
    );
    store.append(&started("r1", "v1")).await.unwrap();
    peer.proxy.add(put(), Fault::ApplyThenDrop, 1);
    store
        .append(&finished(started("r1", "v1"), RecordStatus::Succeeded))
        .await
        .unwrap();
    // Throttling and server errors before the write: retried by the SDK.
    peer.proxy.add(put(), s3_error(503, "SlowDown"), 1);
    peer.proxy.add(put(), s3_error(500, "InternalError"), 1);
    store.append(&started("r2", "v2")).await.unwrap();
    // Conditional-write conflicts (409): tried again.
    peer.proxy
        .add(put(), s3_error(409, "ConditionalRequestConflict"), 2);
    store
        .append(&finished(started("r2", "v2"), RecordStatus::RollbackFailed))
        .await
        .unwrap();
    // The pointer's answer lost too.
    peer.proxy.add(
        RequestMatch::method("PUT").and_path_prefix(POINTER),
        Fault::ApplyThenDrop,
        1,
    );
    store
        .append(&finished(started("r3", "v3"), RecordStatus::Succeeded))
        .await
        .unwrap();

    let keys = peer.keys(RECORDS).await;
    assert_eq!(keys.len(), 5, "one object per state written: {keys:#?}");
    let recent = store.recent(Some("staging"), 10).await.unwrap();
    let states: Vec<(&str, &str)> = recent
        .records
        .iter()
        .map(|r| (r.id.as_str(), r.status.as_str()))
        .collect();
    assert_eq!(
        states,
        [
            ("r1", "succeeded"),
            ("r2", "rollback_failed"),
            ("r3", "succeeded")
        ]
    );
    let pointer = peer.object(POINTER).await;
    assert_eq!(pointer["verified"][0]["id"], "r3", "{pointer:#}");
    assert_eq!(pointer["watermark"], keys[0], "{pointer:#}");
    // Each lost answer cost a read-back, and the 412 of the retry was never taken for
    // someone else's record.
    assert!(
        peer.requests("PUT", RECORDS) >= 9,
        "{:#?}",
        peer.proxy.requests()
    );
}

/// A store that cannot write says so; nothing is reported as written.
#[tokio::test]
async fn a_refused_write_fails_the_append_with_the_object_named() {
    let peer = Peer::start().await;
    let (store, _) = peer.state(Duration::from_secs(60));
    peer.proxy.add(
        RequestMatch::method("PUT").and_path_prefix(RECORDS),
        s3_error(403, "AccessDenied"),
        1,
    );
    let error = store
        .append(&started("r1", "v1"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("PutObject s3://kyb-state/kyb-deploy/staging/records/"),
        "{error}"
    );
    assert!(error.contains("AccessDenied"), "{error}");
    assert!(peer.keys(RECORDS).await.is_empty());
    // A refusal changed nothing: no read-back of what was never written.
    assert_eq!(
        peer.requests("GET", RECORDS),
        0,
        "{:#?}",
        peer.proxy.requests()
    );
}

#[tokio::test]
async fn one_holder_at_a_time_and_the_refusal_names_it() {
    let peer = Peer::start().await;
    let (_, lock) = peer.state(Duration::from_secs(60));
    let guard = lock.acquire("staging").await.unwrap();
    assert!(guard.took_over().is_none());
    let Err(Error::Locked { holder, .. }) = lock.acquire("staging").await else {
        panic!("a second acquire must be refused");
    };
    assert!(
        holder.contains(&format!("pid {}", std::process::id())),
        "{holder}"
    );
    assert!(
        holder.contains(&kyb_deploy_core::current_host()),
        "{holder}"
    );
    assert!(holder.contains("expires"), "{holder}");
    let written = peer.object(LOCK).await;
    assert_eq!(written["pid"], std::process::id(), "{written:#}");
    // Another environment has its own lock.
    lock.acquire("production")
        .await
        .unwrap()
        .release()
        .await
        .unwrap();
    guard.release().await.unwrap();
    assert!(peer.keys(LOCK).await.is_empty(), "released means deleted");
    lock.acquire("staging")
        .await
        .unwrap()
        .release()
        .await
        .unwrap();
}

/// Two holders racing from two clients: exactly one wins each time.
#[tokio::test]
async fn racing_acquirers_get_one_lock() {
    let peer = Peer::start().await;
    let (_, a) = peer.state(Duration::from_secs(60));
    let (_, b) = peer.state(Duration::from_secs(60));
    state_contract::racing_acquirers_get_one_lock(&a, &b, 10).await;
}

/// The heartbeat keeps a lock past its time to live; a holder that stops renewing (killed:
/// its guard dropped without release, its heartbeat gone) is taken over once it expires,
/// and the takeover is recorded.
#[tokio::test]
async fn a_lock_lives_while_renewed_and_is_taken_over_once_expired() {
    let peer = Peer::start().await;
    let ttl = Duration::from_secs(3);
    let (_, lock) = peer.state(ttl);
    let guard = lock.acquire("staging").await.unwrap();
    tokio::time::sleep(ttl + Duration::from_secs(2)).await;
    assert!(
        matches!(lock.acquire("staging").await, Err(Error::Locked { .. })),
        "renewed, so still held"
    );
    assert!(!guard.is_lost());
    drop(guard);
    let taken = state_contract::take_over_once_expired(&lock, ttl).await;
    let previous = taken.took_over().expect("a takeover").to_owned();
    let events = peer
        .keys("/kyb-state/kyb-deploy/staging/lock-events/")
        .await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(events[0].ends_with("_takeover.json"), "{events:?}");
    let event = peer.object(&format!("/{BUCKET}/{}", events[0])).await;
    assert_eq!(event["previous"], previous.as_str(), "{event:#}");
    taken.release().await.unwrap();
}

/// A holder whose lock was taken from it learns so at its next renewal, and its release
/// leaves the new holder's lock alone.
#[tokio::test]
async fn a_holder_whose_lock_was_taken_knows_it_lost_it() {
    let peer = Peer::start().await;
    let ttl = Duration::from_secs(3);
    let (_, lock) = peer.state(ttl);
    let guard = lock.acquire("staging").await.unwrap();
    // Another run's lock object replaces it (as a takeover would after an expiry).
    peer.put_foreign_lock().await;
    state_contract::lost_within(&guard, ttl).await;
    guard.release().await.unwrap();
    assert_eq!(
        peer.object(LOCK).await["someone"],
        "else",
        "the other holder's lock stays"
    );
    // Something that is not a lock is never taken over silently.
    let Err(Error::Locked { holder, .. }) = lock.acquire("staging").await else {
        panic!("a foreign lock object must refuse the lock");
    };
    assert!(holder.contains("kyb-deploy unlock -e staging"), "{holder}");
}

#[tokio::test]
async fn unlock_breaks_a_live_lock_and_records_who_did() {
    let peer = Peer::start().await;
    let (_, lock) = peer.state(Duration::from_secs(60));
    assert_eq!(lock.break_lock("staging", "alice").await.unwrap(), None);
    let guard = lock.acquire("staging").await.unwrap();
    let broken = lock.break_lock("staging", "alice").await.unwrap().unwrap();
    assert!(
        broken.contains(&format!("pid {}", std::process::id())),
        "{broken}"
    );
    let events = peer
        .keys("/kyb-state/kyb-deploy/staging/lock-events/")
        .await;
    assert!(events[0].ends_with("_break.json"), "{events:?}");
    let event = peer.object(&format!("/{BUCKET}/{}", events[0])).await;
    assert_eq!(event["by"], "alice", "{event:#}");
    let again = lock.acquire("staging").await.unwrap();
    drop(guard);
    again.release().await.unwrap();
}

/// Lookups list a page at a time, the first one short: what lies past it is still found.
#[tokio::test]
async fn lookups_reach_past_the_first_page() {
    let peer = Peer::start().await;
    let (store, _) = peer.state(Duration::from_secs(60));
    for i in 0..80 {
        let status = if i == 0 {
            RecordStatus::Succeeded
        } else {
            RecordStatus::RollbackFailed
        };
        store
            .append(&finished(started(&format!("r{i:02}"), "v1"), status))
            .await
            .unwrap();
    }
    let oldest = store
        .find_latest("staging", &|r: &DeploymentRecord| r.id == "r00")
        .await
        .unwrap()
        .expect("found past the first page");
    assert_eq!(oldest.status, RecordStatus::Succeeded);
    let recent = store.recent(Some("staging"), 70).await.unwrap().records;
    assert_eq!(recent.len(), 70);
    assert_eq!(recent[0].id, "r10");
    assert_eq!(recent[69].id, "r79");
    assert_eq!(store.load().await.unwrap().records.len(), 80);
}

/// A read that fails is an error, never "no such object": a lookup that took a 500 for an
/// empty store would send a rollback to the wrong release.
#[tokio::test]
async fn a_failing_read_is_an_error_not_a_missing_object() {
    let peer = Peer::start().await;
    let (store, _) = peer.state(Duration::from_secs(60));
    store
        .append(&finished(started("r1", "v1"), RecordStatus::Succeeded))
        .await
        .unwrap();
    peer.proxy.add(
        RequestMatch::method("GET").and_path_prefix(POINTER),
        s3_error(500, "InternalError"),
        10,
    );
    let error = store
        .find_latest_verified("staging", &|_: &DeploymentRecord| true)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("GetObject s3://kyb-state/kyb-deploy/staging/known-good.json"),
        "{error}"
    );
    assert!(error.contains("InternalError"), "{error}");
}

/// A conditional write that keeps conflicting (409) is tried a bounded number of times, then
/// fails saying so; nothing is written behind the caller's back.
#[tokio::test]
async fn endless_conflicts_end_in_an_error_after_five_attempts() {
    let peer = Peer::start().await;
    let (store, _) = peer.state(Duration::from_secs(60));
    peer.proxy.add(
        RequestMatch::method("PUT").and_path_prefix(RECORDS),
        s3_error(409, "ConditionalRequestConflict"),
        5,
    );
    let error = store
        .append(&started("r1", "v1"))
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("ConditionalRequestConflict"), "{error}");
    assert_eq!(peer.requests("PUT", RECORDS), 5);
    assert!(peer.keys(RECORDS).await.is_empty());
}

/// Releasing a lock that another run holds by now leaves it alone, and says nothing failed;
/// a release that S3 refuses is an error (the lock then expires on its own).
#[tokio::test]
async fn a_release_deletes_only_its_own_lock() {
    let peer = Peer::start().await;
    let (_, lock) = peer.state(Duration::from_secs(60));
    let guard = lock.acquire("staging").await.unwrap();
    peer.put_foreign_lock().await;
    // Released before its heartbeat noticed: the conditional delete finds another ETag.
    guard.release().await.unwrap();
    assert_eq!(peer.object(LOCK).await["someone"], "else");

    lock.break_lock("staging", "test").await.unwrap();
    let guard = lock.acquire("staging").await.unwrap();
    peer.proxy.add(
        RequestMatch::method("DELETE").and_path_prefix(LOCK),
        s3_error(403, "AccessDenied"),
        1,
    );
    let error = guard.release().await.unwrap_err().to_string();
    assert!(error.contains("DeleteObject"), "{error}");
    assert!(error.contains("AccessDenied"), "{error}");
}

/// Renewals that fail for a while (S3 answering 500) keep the lock as long as it has not
/// expired; renewals that fail past its expiry lose it, since another run may take it over.
#[tokio::test]
async fn failed_renewals_lose_the_lock_only_once_it_expired() {
    let peer = Peer::start().await;
    let ttl = Duration::from_secs(3);
    let (_, lock) = peer.state(ttl);
    let renewals = || RequestMatch::method("PUT").and_path_prefix(LOCK);
    let guard = lock.acquire("staging").await.unwrap();
    // One renewal (three attempts with the SDK's retries) fails; the next gets through.
    peer.proxy
        .add(renewals(), s3_error(500, "InternalError"), 3);
    tokio::time::sleep(ttl).await;
    assert!(
        !guard.is_lost(),
        "a renewal that failed before the expiry loses nothing"
    );
    assert!(matches!(
        lock.acquire("staging").await,
        Err(Error::Locked { .. })
    ));
    // From now on every renewal fails: lost once the expiry passed.
    peer.proxy
        .add(renewals(), s3_error(500, "InternalError"), 1000);
    let deadline = tokio::time::Instant::now() + ttl * 3;
    while !guard.is_lost() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never lost though it expired"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A missing bucket is an error that names it, never an empty history.
#[tokio::test]
async fn a_missing_bucket_is_an_error_naming_it() {
    let peer = Peer::start().await;
    peer.aws
        .json(&["s3api", "delete-bucket", "--bucket", BUCKET])
        .await;
    let (store, _) = peer.state(Duration::from_secs(60));
    let error = store
        .find_latest_verified("staging", &|_: &DeploymentRecord| true)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("NoSuchBucket"), "{error}");
    assert!(error.contains("s3://kyb-state/"), "{error}");
}
