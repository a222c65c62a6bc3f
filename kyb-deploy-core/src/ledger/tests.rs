use std::io::Cursor;

use proptest::prelude::*;

use super::*;
use crate::outcome::Outcome;
use crate::record::{Operation, RecordStatus};
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
        .map(|r| (r.id.as_str(), r.status.clone()))
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
        stage: crate::stage::Stage::Verify,
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

fn line(record: &DeploymentRecord) -> String {
    serde_json::to_string(record).unwrap()
}

fn write_ledger(lines: &[u8]) -> (tempfile::TempDir, JsonlRecordStore) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.jsonl");
    std::fs::write(&path, lines).unwrap();
    (dir, JsonlRecordStore::new(path))
}

/// The issue: one byte that is not UTF-8 made the whole ledger unreadable (history and status
/// failed, deploy went on without a last known-good).
#[tokio::test]
async fn a_byte_that_is_not_utf8_spoils_only_its_line() {
    let mut text = Vec::new();
    for (id, version) in [("a", "v1"), ("b", "v2"), ("c", "v3")] {
        text.extend_from_slice(
            line(&record(id, "staging", version, RecordStatus::Succeeded)).as_bytes(),
        );
        text.push(b'\n');
    }
    let second = text.iter().position(|&b| b == b'\n').unwrap() + 1;
    // Inside the second record's id: a lone continuation byte.
    text[second + 7] = 0x80;
    let (_dir, store) = write_ledger(&text);

    let snap = store.load().await.unwrap();
    let ids: Vec<_> = snap.records.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["a", "c"]);
    assert_eq!(snap.problems.len(), 1, "{:?}", snap.problems);
    assert_eq!(snap.problems[0].line, 2);
    assert!(
        snap.problems[0].message.contains("not valid UTF-8"),
        "{:?}",
        snap.problems
    );

    let recent = store.recent(None, 10).await.unwrap();
    assert_eq!(recent, snap);
    let recent = store.recent(Some("staging"), 10).await.unwrap();
    assert_eq!(recent, snap);
    let good = store
        .find_latest("staging", &|r| r.version.as_str() != "v3")
        .await
        .unwrap();
    assert_eq!(good.unwrap().id, "a");
}

/// A record written by a newer build: an operation, status, outcome and stage this build does
/// not know. It must load (it used to be an unreadable line, so a later run could not see
/// it), count as finished, never be a known-good release, and be written back unchanged.
#[tokio::test]
async fn a_record_from_a_newer_build_loads_is_final_and_round_trips() {
    let older = record("old", "staging", "v1", RecordStatus::Succeeded);
    let mut newer: serde_json::Value =
        serde_json::to_value(record("new", "staging", "v2", RecordStatus::Succeeded)).unwrap();
    newer["operation"] = "promote".into();
    newer["status"] = "awaiting_approval".into();
    newer["outcome"] = serde_json::json!({"outcome": "quarantined", "by": "policy"});
    newer["stages"] = serde_json::json!([
        {"stage": "build", "elapsed_ms": 5, "result": {"status": "succeeded"}},
        {"stage": "canary_analysis", "elapsed_ms": 7, "result": {"status": "succeeded"}},
    ]);
    let text = format!("{}\n{newer}\n", line(&older));
    let (_dir, store) = write_ledger(text.as_bytes());

    let snap = store.load().await.unwrap();
    assert!(snap.problems.is_empty(), "{:?}", snap.problems);
    let loaded = &snap.records[1];
    assert_eq!(
        loaded.status,
        RecordStatus::Unknown("awaiting_approval".into())
    );
    assert_eq!(loaded.status.as_str(), "awaiting_approval");
    assert_eq!(loaded.operation.as_str(), "promote");
    assert!(loaded.outcome.is_none());
    assert_eq!(loaded.stages.len(), 1, "the readable stage");
    assert!(loaded.status.is_final());
    assert!(!loaded.is_known_good());
    // Written back (as a later run would), nothing changes.
    assert_eq!(serde_json::to_value(loaded).unwrap(), newer);

    // Never in progress, so never taken over and marked abandoned; never rolled back to.
    assert_eq!(snap.in_progress("staging").count(), 0);
    assert!(store.in_progress("staging").await.unwrap().is_empty());
    assert_eq!(snap.last_known_good("staging").unwrap().id, "old");
    let good = store
        .find_latest("staging", &DeploymentRecord::is_known_good)
        .await
        .unwrap();
    assert_eq!(good.unwrap().id, "old");
    let recent = store.recent(Some("staging"), 1).await.unwrap();
    assert_eq!(recent.records[0].status.as_str(), "awaiting_approval");
}

/// Lines longer than the block read from the end of the file.
#[tokio::test]
async fn lines_longer_than_a_block_are_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    let store = JsonlRecordStore::new(dir.path().join("ledger.jsonl"));
    let big = "y".repeat(3 * reverse::BLOCK + 17);
    for i in 0..5 {
        let status = if i == 4 {
            RecordStatus::InProgress
        } else {
            RecordStatus::Succeeded
        };
        let mut r = record(&format!("r{i}"), "staging", "v1", status);
        r.warnings.push(big.clone());
        store.append(&r).await.unwrap();
        let mut other = record(
            &format!("p{i}"),
            "production",
            "v1",
            RecordStatus::RolledBack,
        );
        other.warnings.push(big.clone());
        store.append(&other).await.unwrap();
    }
    let snap = store.load().await.unwrap();
    assert!(snap.problems.is_empty());
    assert_eq!(store.recent(None, 100).await.unwrap(), snap);
    let recent = store.recent(Some("staging"), 2).await.unwrap();
    let ids: Vec<_> = recent.records.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["r3", "r4"]);
    assert_eq!(recent.records[0].warnings[0].len(), big.len());
    let good = store
        .find_latest("staging", &|r| r.id != "r4" && r.is_known_good())
        .await
        .unwrap();
    assert_eq!(good.unwrap().id, "r3");
    let running = store.in_progress("staging").await.unwrap();
    assert_eq!(running.len(), 1);
    assert_eq!(running[0].id, "r4");
}

/// `find_latest` reads in steps; an answer many steps back is still found.
#[tokio::test]
async fn find_latest_reaches_the_start_of_a_long_ledger() {
    let mut text = String::new();
    for i in 0..(STEP_RECORDS * 3) {
        let status = if i == 0 {
            RecordStatus::Succeeded
        } else {
            RecordStatus::RolledBack
        };
        text.push_str(&line(&record(&format!("r{i}"), "staging", "v1", status)));
        text.push('\n');
    }
    let (_dir, store) = write_ledger(text.as_bytes());
    let good = store
        .find_latest("staging", &DeploymentRecord::is_known_good)
        .await
        .unwrap();
    assert_eq!(good.unwrap().id, "r0");
    assert!(
        store
            .find_latest("production", &|_| true)
            .await
            .unwrap()
            .is_none()
    );
    let missing = JsonlRecordStore::new(text.len().to_string());
    assert!(
        missing
            .find_latest("staging", &|_| true)
            .await
            .unwrap()
            .is_none()
    );
    assert!(missing.recent(None, 3).await.unwrap().records.is_empty());
    assert!(missing.in_progress("staging").await.unwrap().is_empty());
}

/// One step of a random ledger's history.
#[derive(Clone, Debug)]
enum Step {
    /// Appends a state of run `id`.
    Append {
        id: u8,
        environment: u8,
        status: u8,
        released: bool,
        /// Write the environment with a `\u` escape, as no build of kyb-deploy does.
        escaped: bool,
    },
    /// Writes the first `cut` bytes of a record and no newline, like a crash mid-write; the
    /// next append starts on a fresh line.
    Torn { id: u8, cut: usize },
    /// A line that is not a record.
    Garbage(u8),
}

const ENVIRONMENTS: [&str; 3] = ["staging", "production", "eu/west"];
const VERSIONS: [&str; 3] = ["v1", "v2", "v3"];

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (0u8..12, 0u8..3, 0u8..5, any::<bool>(), proptest::bool::weighted(0.05)).prop_map(
            |(id, environment, status, released, escaped)| Step::Append {
                id,
                environment,
                status,
                released,
                escaped,
            }
        ),
        1 => (0u8..12, 0usize..400).prop_map(|(id, cut)| Step::Torn { id, cut }),
        1 => (0u8..4).prop_map(Step::Garbage),
    ]
}

fn step_record(id: u8, environment: u8, status: u8, released: bool) -> DeploymentRecord {
    let status = match status {
        0 => RecordStatus::InProgress,
        1 => RecordStatus::Succeeded,
        2 => RecordStatus::RolledBack,
        3 => RecordStatus::Abandoned,
        _ => RecordStatus::Unknown("awaiting_approval".into()),
    };
    let version = VERSIONS[usize::from(id) % VERSIONS.len()];
    let mut r = record(
        &format!("run-{id}"),
        ENVIRONMENTS[usize::from(environment)],
        version,
        status,
    );
    if !released {
        r.release = None;
    }
    // A mention of another environment, so that looking for the quoted name is not enough.
    if id.is_multiple_of(4) {
        r.warnings.push("\"staging\" was busy".into());
    }
    r
}

/// The bytes of a ledger written by `steps`, the way `append` writes it.
fn ledger_bytes(steps: &[Step]) -> Vec<u8> {
    let mut text: Vec<u8> = Vec::new();
    let start_line = |text: &mut Vec<u8>| {
        if text.last().is_some_and(|&b| b != b'\n') {
            text.push(b'\n');
        }
    };
    for step in steps {
        start_line(&mut text);
        match step {
            Step::Append {
                id,
                environment,
                status,
                released,
                escaped,
            } => {
                let mut json = line(&step_record(*id, *environment, *status, *released));
                if *escaped {
                    let name = ENVIRONMENTS[usize::from(*environment)];
                    json = json.replace(
                        &format!("\"environment\":\"{name}\""),
                        &format!(
                            "\"environment\":\"\\u{:04x}{}\"",
                            name.as_bytes()[0],
                            &name[1..]
                        ),
                    );
                }
                text.extend_from_slice(json.as_bytes());
                text.push(b'\n');
            }
            Step::Torn { id, cut } => {
                let json = line(&step_record(*id, 0, 0, true));
                text.extend_from_slice(&json.as_bytes()[..(*cut).min(json.len() - 1)]);
            }
            Step::Garbage(kind) => {
                let garbage: &[u8] = match kind {
                    0 => b"not json at all",
                    1 => b"{\"id\":\"run-1\",\"environment\":\"production\"}",
                    2 => b"{\"id\":\"run-2\",\"note\":\"\xff\xfe\"}",
                    _ => b"   ",
                };
                text.extend_from_slice(garbage);
                text.push(b'\n');
            }
        }
    }
    text
}

type Predicate = dyn Fn(&DeploymentRecord) -> bool + Send + Sync;

/// Every lookup answered from the end of the file agrees with the same lookup on the whole
/// snapshot.
fn check_lookups(text: &[u8], block: usize) -> Result<(), TestCaseError> {
    let (_dir, store) = write_ledger(text);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let snap = runtime.block_on(store.load()).unwrap();
    let backward = |environment: Option<&str>| {
        let lines =
            ReverseLines::new(Cursor::new(text.to_vec()), text.len() as u64, block).unwrap();
        BackwardScan::new(lines, environment)
    };
    let predicates: [(&str, &Predicate); 4] = [
        ("known good", &DeploymentRecord::is_known_good),
        ("any", &|_| true),
        ("v2", &|r| r.version.as_str() == "v2"),
        ("in progress", &|r| r.status == RecordStatus::InProgress),
    ];
    for environment in ENVIRONMENTS.iter().copied().chain(["development"]) {
        for (name, matches) in predicates {
            let expected = snap.find_latest(environment, matches).cloned();
            let found = runtime
                .block_on(store.find_latest(environment, matches))
                .unwrap();
            prop_assert_eq!(&found, &expected, "find_latest {} {}", environment, name);
            let mut scan = backward(Some(environment));
            let mut scanned = None;
            while let Some(r) = scan.next_record().unwrap() {
                if matches(&r) {
                    scanned = Some(r);
                    break;
                }
            }
            prop_assert_eq!(
                &scanned,
                &expected,
                "scan {} {} block {}",
                environment,
                name,
                block
            );
        }
        let expected = snap.unresolved(environment);
        let running = runtime.block_on(store.in_progress(environment)).unwrap();
        prop_assert_eq!(&running, &expected, "in_progress {}", environment);
        for limit in [0, 1, 3, 100] {
            let expected = snap.recent(Some(environment), limit);
            let recent = runtime
                .block_on(store.recent(Some(environment), limit))
                .unwrap();
            prop_assert_eq!(
                &recent.records,
                &expected.records,
                "recent {} {}",
                environment,
                limit
            );
            for problem in &recent.problems {
                prop_assert!(
                    snap.problems.contains(problem),
                    "{:?} not in {:?}",
                    problem,
                    snap.problems
                );
            }
            let mut scan = backward(Some(environment));
            prop_assert_eq!(scan.newest(limit).unwrap(), expected.records);
        }
    }
    for limit in [0, 1, 3, 100] {
        let expected = snap.recent(None, limit);
        let recent = runtime.block_on(store.recent(None, limit)).unwrap();
        prop_assert_eq!(&recent.records, &expected.records, "recent all {}", limit);
        for problem in &recent.problems {
            prop_assert!(
                snap.problems.contains(problem),
                "{:?} not in {:?}",
                problem,
                snap.problems
            );
        }
        if limit > snap.records.len() {
            // Read to the start: every problem was found.
            prop_assert_eq!(&recent.problems, &snap.problems);
            let mut scan = backward(None);
            scan.newest(limit).unwrap();
            prop_assert_eq!(scan.problems().unwrap(), snap.problems.clone());
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn lookups_agree_with_the_snapshot(
        steps in proptest::collection::vec(step(), 0..40),
        block in 1usize..700,
    ) {
        check_lookups(&ledger_bytes(&steps), block)?;
    }
}

#[test]
fn lookups_agree_with_the_snapshot_on_a_torn_last_line() {
    let steps = [
        Step::Append {
            id: 1,
            environment: 0,
            status: 0,
            released: true,
            escaped: false,
        },
        Step::Append {
            id: 2,
            environment: 0,
            status: 1,
            released: true,
            escaped: false,
        },
        Step::Torn { id: 1, cut: 120 },
    ];
    let text = ledger_bytes(&steps);
    assert_ne!(text.last(), Some(&b'\n'));
    check_lookups(&text, 7).unwrap();
}

/// A run left in progress before a later deploy was resolved by that deploy (it marks every
/// such run abandoned before its first record): the lookup stops at the newest deploy, and
/// what it finds from there on are the runs still unresolved, a rollback's among them.
#[tokio::test]
async fn runs_in_progress_count_from_the_newest_deploy_on() {
    let dir = tempfile::tempdir().unwrap();
    let store = JsonlRecordStore::new(dir.path().join("ledger.jsonl"));
    let killed = record("r1", "staging", "v1", RecordStatus::InProgress);
    let deployed = record("r2", "staging", "v2", RecordStatus::Succeeded);
    let mut rollback = record("r3", "staging", "v1", RecordStatus::InProgress);
    rollback.operation = Operation::Rollback;
    let elsewhere = record("p1", "production", "v1", RecordStatus::InProgress);
    for r in [&killed, &deployed, &rollback, &elsewhere] {
        store.append(r).await.unwrap();
    }
    let ids = |records: Vec<DeploymentRecord>| -> Vec<String> {
        records.into_iter().map(|r| r.id).collect()
    };
    assert_eq!(ids(store.in_progress("staging").await.unwrap()), ["r3"]);
    assert_eq!(ids(store.in_progress("production").await.unwrap()), ["p1"]);
    let snapshot = store.load().await.unwrap();
    assert_eq!(ids(snapshot.unresolved("staging")), ["r3"]);

    // A deploy that is itself unfinished is found too, and is where the lookup stops.
    let running = record("r4", "staging", "v3", RecordStatus::InProgress);
    store.append(&running).await.unwrap();
    assert_eq!(ids(store.in_progress("staging").await.unwrap()), ["r4"]);

    // A deploy refused the lock while r4 held it is recorded after r4: it resolved nothing,
    // and the lookup reads past it.
    let refused = record("r5", "staging", "v4", RecordStatus::FailedBeforeDeploy);
    store.append(&refused).await.unwrap();
    assert_eq!(ids(store.in_progress("staging").await.unwrap()), ["r4"]);
    let snapshot = store.load().await.unwrap();
    assert_eq!(ids(snapshot.unresolved("staging")), ["r4"]);
}
