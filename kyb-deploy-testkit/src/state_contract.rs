//! What every shared state backend must do, as checks a backend's own tests run against its
//! record store and lock (S3 in kyb-deploy-ecs, Kubernetes in kyb-deploy-k8s, a program's
//! own `ObjectStore`): the same behaviour whatever keeps the objects. Each check panics with
//! what went wrong; the backend's test then looks at what its store wrote.
//!
//! ```no_run
//! # async fn example(store: &dyn kyb_deploy_core::RecordStore) {
//! kyb_deploy_testkit::state_contract::lookups_read_the_latest_state(store, "ecs").await;
//! # }
//! ```

use std::time::Duration;

use kyb_deploy_core::{
    DeployLock, DeploymentRecord, Error, LockGuard, Operation, RecordStatus, RecordStore, Release,
    RollbackDetails, Version,
};

/// The release of `version`, pinned by a digest made of it.
#[must_use]
pub fn release(version: &str) -> Release {
    Release::new(
        Version::parse(version).expect("a valid version"),
        format!("registry.test/kyb-api:{version}@sha256:{version:0>64}"),
    )
}

/// A deploy run `id` of `version` in staging on `target`, in progress, its release known.
#[must_use]
pub fn started(id: &str, version: &str, target: &str) -> DeploymentRecord {
    let mut record = DeploymentRecord::start(
        id,
        Operation::Deploy,
        "staging",
        target,
        Version::parse(version).expect("a valid version"),
    );
    record.release = Some(release(version));
    record
}

/// `record` ended with `status`, now.
#[must_use]
pub fn finished(mut record: DeploymentRecord, status: RecordStatus) -> DeploymentRecord {
    record.status = status;
    record.finished_at = Some(time::OffsetDateTime::now_utc());
    record
}

fn states(records: &[DeploymentRecord]) -> Vec<(&str, &str)> {
    records
        .iter()
        .map(|r| (r.id.as_str(), r.status.as_str()))
        .collect()
}

/// Into an empty store: r1 in progress then succeeded, r2 in progress, r3 refused the lock
/// (failed before deploy). Every lookup reads the latest state of each run: `recent`, the
/// unfinished runs (past r3, which resolved nothing), the known-good (r1), `load`.
///
/// # Panics
///
/// When a lookup answers otherwise.
pub async fn lookups_read_the_latest_state(store: &dyn RecordStore, target: &str) {
    let r1 = started("r1", "v1", target);
    store.append(&r1).await.expect("r1 started");
    store
        .append(&finished(r1, RecordStatus::Succeeded))
        .await
        .expect("r1 succeeded");
    store
        .append(&started("r2", "v2", target))
        .await
        .expect("r2 started");
    let recent = store.recent(Some("staging"), 10).await.expect("recent");
    assert_eq!(
        states(&recent.records),
        [("r1", "succeeded"), ("r2", "in_progress")]
    );
    let newest = store.recent(None, 1).await.expect("recent of all");
    assert_eq!(states(&newest.records), [("r2", "in_progress")]);
    let unfinished = store.in_progress("staging").await.expect("in progress");
    assert_eq!(states(&unfinished), [("r2", "in_progress")]);
    let good = store
        .find_latest_verified("staging", &|_: &DeploymentRecord| true)
        .await
        .expect("known good")
        .expect("r1 is known good");
    assert_eq!((good.id.as_str(), good.version.as_str()), ("r1", "v1"));
    // A deploy refused the lock meanwhile is recorded, and resolved nothing: the lookup of
    // unfinished runs reads past it.
    store
        .append(&finished(
            started("r3", "v3", target),
            RecordStatus::FailedBeforeDeploy,
        ))
        .await
        .expect("r3 refused");
    let unfinished = store.in_progress("staging").await.expect("in progress");
    assert_eq!(states(&unfinished), [("r2", "in_progress")]);
    let loaded = store.load().await.expect("load");
    assert_eq!(loaded.records.len(), 3, "{:#?}", loaded.records);
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
}

/// Into an empty store: r1 succeeded with v1; r2 with v2 failed and was rolled back to v1,
/// verified. r2 vouches for v1: it is the newest known-good, found by a lookup for v2's run.
///
/// # Panics
///
/// When the lookup answers otherwise.
pub async fn a_verified_rollback_is_known_good(store: &dyn RecordStore, target: &str) {
    store
        .append(&finished(
            started("r1", "v1", target),
            RecordStatus::Succeeded,
        ))
        .await
        .expect("r1");
    let mut failed = finished(started("r2", "v2", target), RecordStatus::RolledBack);
    failed.rollback = Some(RollbackDetails {
        to: Some(release("v1")),
        to_record: Some("r1".into()),
        by_platform: false,
        succeeded: true,
        error: None,
    });
    store.append(&failed).await.expect("r2");
    let found = store
        .find_latest_verified("staging", &|r: &DeploymentRecord| {
            r.version.as_str() == "v2"
        })
        .await
        .expect("known good")
        .expect("r2 vouches for v1");
    assert_eq!(found.id, "r2", "the rollback run vouches for v1");
    assert_eq!(found.verified_release(), Some(&release("v1")));
}

/// Two locks of the same store (two runners) acquire staging at the same moment, `rounds`
/// times: exactly one holds it each time.
///
/// # Panics
///
/// When both or neither get it, or a release fails.
pub async fn racing_acquirers_get_one_lock(a: &dyn DeployLock, b: &dyn DeployLock, rounds: u32) {
    for round in 0..rounds {
        let (first, second) = tokio::join!(a.acquire("staging"), b.acquire("staging"));
        let won: Vec<LockGuard> = [first, second].into_iter().filter_map(Result::ok).collect();
        assert_eq!(
            won.len(),
            1,
            "round {round}: exactly one of two racing runs holds the lock"
        );
        for guard in won {
            guard.release().await.expect("released");
        }
    }
}

/// Tries to take staging's lock until it is taken over, for up to three times `ttl`: a lock
/// whose holder stopped renewing is free once `ttl` passed. Returns the new guard, which
/// names the holder it took over from.
///
/// # Panics
///
/// When the lock is not taken over in time, or an acquire fails otherwise.
pub async fn take_over_once_expired(lock: &dyn DeployLock, ttl: Duration) -> LockGuard {
    let deadline = tokio::time::Instant::now() + ttl * 3;
    let guard = loop {
        match lock.acquire("staging").await {
            Ok(guard) => break guard,
            Err(Error::Locked { .. }) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => panic!("the expired lock was not taken over: {e}"),
        }
    };
    let previous = guard.took_over().expect("a takeover, not a free lock");
    assert!(
        previous.contains(&format!("pid {}", std::process::id())),
        "{previous}"
    );
    guard
}

/// Waits until `guard` knows its lock was lost, for up to twice `ttl` (its next renewal).
///
/// # Panics
///
/// When it never notices.
pub async fn lost_within(guard: &LockGuard, ttl: Duration) {
    let deadline = tokio::time::Instant::now() + ttl * 2;
    while !guard.is_lost() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the renewal never noticed the lock was lost"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
