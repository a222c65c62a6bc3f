use super::*;
use crate::outcome::Outcome;
use crate::record::Operation;
use crate::release::Release;

fn record(id: &str, env: &str, version: &str, status: RecordStatus) -> DeploymentRecord {
    let version = Version::parse(version).unwrap();
    let mut r = DeploymentRecord::start(id, Operation::Deploy, env, "fake", version.clone());
    r.release = Some(Release::new(version, format!("repo@sha256:{id}")));
    r.status = status;
    r
}

#[tokio::test]
async fn last_line_of_an_id_wins_and_order_follows_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = JsonlRecordStore::new(dir.path().join("sub/ledger.jsonl"));
    assert!(store.load().await.unwrap().records.is_empty());
    store
        .append(&record("a", "staging", "v1", RecordStatus::InProgress))
        .await
        .unwrap();
    store
        .append(&record("b", "staging", "v2", RecordStatus::InProgress))
        .await
        .unwrap();
    store
        .append(&record("a", "staging", "v1", RecordStatus::Succeeded))
        .await
        .unwrap();
    let snap = store.load().await.unwrap();
    assert!(snap.problems.is_empty());
    let ids: Vec<_> = snap
        .records
        .iter()
        .map(|r| (r.id.as_str(), r.status))
        .collect();
    assert_eq!(
        ids,
        [
            ("b", RecordStatus::InProgress),
            ("a", RecordStatus::Succeeded)
        ]
    );
    assert_eq!(snap.in_progress("staging").count(), 1);
}

#[tokio::test]
async fn torn_last_line_is_reported_and_the_next_append_is_readable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.jsonl");
    let store = JsonlRecordStore::new(&path);
    store
        .append(&record("a", "staging", "v1", RecordStatus::Succeeded))
        .await
        .unwrap();
    let full =
        serde_json::to_string(&record("b", "staging", "v2", RecordStatus::InProgress)).unwrap();
    let mut f = OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(&full.as_bytes()[..full.len() / 2]).unwrap();
    drop(f);

    let snap = store.load().await.unwrap();
    assert_eq!(snap.records.len(), 1);
    assert_eq!(snap.problems.len(), 1);
    assert_eq!(snap.problems[0].line, 2);
    assert!(
        snap.problems[0].message.contains("incomplete last line"),
        "{:?}",
        snap.problems
    );

    store
        .append(&record("c", "staging", "v3", RecordStatus::Succeeded))
        .await
        .unwrap();
    let snap = store.load().await.unwrap();
    let ids: Vec<_> = snap.records.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["a", "c"]);
    assert_eq!(snap.problems.len(), 1);
    assert!(snap.problems[0].message.contains("unreadable record"));
}

/// Writers append large records while a reader loads: the reader must never see a partial
/// line (without the shared lock it does, as a "torn" last line), and no record is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readers_never_see_a_record_being_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.jsonl");
    let big = "x".repeat(4 << 20);
    let mut writers = Vec::new();
    for writer in 0..2 {
        // Each writer has its own store (its own file handle), like separate processes.
        let store = JsonlRecordStore::new(&path);
        let big = big.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..6 {
                let mut r = record(
                    &format!("w{writer}-{i}"),
                    "dev",
                    "v1",
                    RecordStatus::Succeeded,
                );
                r.warnings.push(big.clone());
                store.append(&r).await.unwrap();
            }
        }));
    }
    let reader = JsonlRecordStore::new(&path);
    let mut loads = 0;
    while writers.iter().any(|w| !w.is_finished()) {
        let snapshot = reader.load().await.unwrap();
        assert!(
            snapshot.problems.is_empty(),
            "after {loads} loads: {:?}",
            snapshot.problems
        );
        loads += 1;
    }
    for w in writers {
        w.await.unwrap();
    }
    let snapshot = reader.load().await.unwrap();
    assert!(snapshot.problems.is_empty(), "{:?}", snapshot.problems);
    assert_eq!(snapshot.records.len(), 12);
}

#[test]
fn last_known_good_skips_failures_and_other_environments() {
    // The example: v1 succeeded, v2 failed and was rolled back; v3 must go back to v1.
    let mut v2 = record("2", "staging", "v2", RecordStatus::RolledBack);
    v2.finish(Outcome::RolledBack {
        stage: crate::event::Stage::Verify,
        reason: "x".into(),
        to: Release::new(Version::parse("v1").unwrap(), "repo@sha256:1"),
        by_platform: false,
    });
    let snap = LedgerSnapshot::from_appended([
        record("0", "staging", "v0", RecordStatus::Succeeded),
        record("1", "staging", "v1", RecordStatus::Succeeded),
        record("p", "production", "v9", RecordStatus::Succeeded),
        v2,
        record("3", "staging", "v3", RecordStatus::InProgress),
    ]);
    assert_eq!(snap.last_known_good("staging").unwrap().id, "1");
    assert_eq!(snap.last_known_good("production").unwrap().id, "p");
    assert!(snap.last_known_good("development").is_none());
    let v0 = Version::parse("v0").unwrap();
    assert_eq!(snap.find_version("staging", &v0).unwrap().id, "0");
}
