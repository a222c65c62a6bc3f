//! [`ObjectStore`]: the few operations a shared state backend needs of the place it keeps
//! its objects (an S3 bucket, a Kubernetes namespace), and the conditional write built on
//! them that never repeats a write blindly and never reports an applied write as failed.

use std::time::Duration;

use async_trait::async_trait;

use crate::error::{Error, Result};

/// Attempts of a conditional write while the store answers "busy" (S3's "409
/// ConditionalRequestConflict", a Kubernetes "429 Too Many Requests").
const BUSY_ATTEMPTS: u32 = 5;
/// Attempts of a conditional write whose answers were lost while reading back shows it was
/// not applied (the object is as the condition found it).
const UNANSWERED_ATTEMPTS: u32 = 3;

/// An object's content and its version tag (an S3 ETag, a Kubernetes `resourceVersion`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Object {
    /// What was written.
    pub body: Vec<u8>,
    /// Changes with every write of the object.
    pub etag: String,
}

/// What a conditional write requires of the object before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition<'a> {
    /// It does not exist (S3 `If-None-Match: *`; a Kubernetes create).
    Absent,
    /// It has this version tag (S3 `If-Match`; a Kubernetes update on `resourceVersion`).
    Matches(&'a str),
}

/// How a conditional write ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Written {
    /// The object holds what was written; its new version tag.
    Done(String),
    /// The condition did not hold and the object holds something else: another writer's.
    Refused,
}

/// The store's answer to one attempt of a conditional write.
#[derive(Debug)]
pub enum PutAnswer {
    /// Applied; the object's new version tag.
    Done(String),
    /// The condition did not hold: another writer's object, or this write itself, applied
    /// before its answer was lost.
    ConditionFailed,
    /// The store asks to try again later (the error says why); nothing was applied.
    Busy(Error),
    /// Refused for a reason that will not change (a bad request, no permission); nothing
    /// was applied.
    Rejected(Error),
    /// No answer, or a server error: it may have been applied.
    Unanswered(Error),
}

/// One page of a listing.
#[derive(Debug, Default)]
pub struct Page {
    /// The keys, in ascending order, each with its object when the listing carries it (a
    /// Kubernetes list does; an S3 listing does not).
    pub objects: Vec<Listed>,
    /// The token of the next page; `None` on the last.
    pub next: Option<String>,
}

/// A listed key, with its object when the listing carried it.
#[derive(Debug)]
pub struct Listed {
    /// The key.
    pub key: String,
    /// The object, when the listing carried it.
    pub object: Option<Object>,
}

/// Where a shared state backend keeps its objects: keys like paths
/// (`kyb-deploy/staging/records/…`), each object with a version tag, written only under a
/// condition. Implemented for S3 (kyb-deploy-ecs) and Kubernetes Secrets and Leases
/// (kyb-deploy-k8s); [`ObjectRecordStore`](super::ObjectRecordStore) and
/// [`ObjectDeployLock`](super::ObjectDeployLock) are written against it once.
#[async_trait]
pub trait ObjectStore: Send + Sync + std::fmt::Debug {
    /// The seam's name in errors: "S3 state".
    fn seam(&self) -> &'static str;

    /// Where `key` is, for messages a person acts on: `s3://bucket/key`.
    fn url(&self, key: &str) -> String;

    /// The object at `key`, `None` when there is none.
    ///
    /// # Errors
    ///
    /// When the store cannot be read (then nothing is known of the object).
    async fn get(&self, key: &str) -> Result<Option<Object>>;

    /// One attempt to write `body` at `key` if `condition` holds. Callers use [`put`].
    async fn try_put(&self, key: &str, body: &[u8], condition: Condition<'_>) -> PutAnswer;

    /// Deletes `key` if its version tag is `etag`; `false` when it is another's (or gone).
    ///
    /// # Errors
    ///
    /// When the store did not answer or refused.
    async fn delete_if(&self, key: &str, etag: &str) -> Result<bool>;

    /// One page of at most `max` keys under `prefix` (a "directory" ending in `/`), in
    /// ascending order, from `continuation` on.
    ///
    /// # Errors
    ///
    /// When the store cannot be listed.
    async fn list(&self, prefix: &str, continuation: Option<String>, max: usize) -> Result<Page>;

    /// The "directories" right under `prefix`, each ending in `/`.
    ///
    /// # Errors
    ///
    /// When the store cannot be listed.
    async fn directories(&self, prefix: &str) -> Result<Vec<String>>;
}

/// Writes `body` at `key` if `condition` holds. A write whose answer was lost, or whose
/// retry met the write itself (the condition then fails), is settled by reading the object
/// back: done exactly when it holds `body`; tried again (a few times) when the object is
/// still as the condition requires, so not applied: an attempt still in flight then meets
/// the retry's condition and loses. So a write is never repeated blindly and never reported
/// as failed when it was applied.
///
/// # Errors
///
/// When the store refused the write, or it may have been applied and reading back could not
/// tell.
pub async fn put(
    objects: &dyn ObjectStore,
    key: &str,
    body: &[u8],
    condition: Condition<'_>,
) -> Result<Written> {
    let mut attempt = 1;
    let mut unanswered = 1;
    loop {
        match objects.try_put(key, body, condition).await {
            PutAnswer::Done(etag) => return Ok(Written::Done(etag)),
            PutAnswer::Busy(_) if attempt < BUSY_ATTEMPTS => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
            }
            // Still busy after every attempt: nothing was written.
            PutAnswer::Busy(error) | PutAnswer::Rejected(error) => return Err(error),
            PutAnswer::ConditionFailed => return settle(objects, key, body).await,
            PutAnswer::Unanswered(error) => match objects.get(key).await {
                Ok(Some(object)) if object.body == body => return Ok(Written::Done(object.etag)),
                Ok(found)
                    if unanswered < UNANSWERED_ATTEMPTS && unchanged(found.as_ref(), condition) =>
                {
                    unanswered += 1;
                }
                // Another writer's object, or the store cannot be read: it may be applied.
                Ok(_) | Err(_) => return Err(error),
            },
        }
    }
}

/// Whether `found` is what `condition` requires: the write was not applied.
fn unchanged(found: Option<&Object>, condition: Condition<'_>) -> bool {
    match (found, condition) {
        (None, Condition::Absent) => true,
        (Some(object), Condition::Matches(etag)) => object.etag == etag,
        _ => false,
    }
}

/// After a failed condition: `Done` when the object holds `body` (this write, applied before
/// its answer was lost), else `Refused`.
async fn settle(objects: &dyn ObjectStore, key: &str, body: &[u8]) -> Result<Written> {
    match objects.get(key).await? {
        Some(object) if object.body == body => Ok(Written::Done(object.etag)),
        _ => Ok(Written::Refused),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, VecDeque};
    use std::sync::Mutex;

    use super::*;

    /// What one write attempt meets: applied or not, then answered as the store would, or
    /// with `Lost` (no answer).
    #[derive(Clone, Copy, Debug)]
    enum Attempt {
        Answered,
        AppliedThenLost,
        RefusedBusy,
        RefusedForGood,
        NotAppliedLost,
    }

    /// Objects in memory, each write attempt scripted; reads may fail.
    #[derive(Debug, Default)]
    struct Scripted {
        objects: Mutex<HashMap<String, Object>>,
        script: Mutex<VecDeque<Attempt>>,
        attempts: Mutex<u32>,
        reads_fail: bool,
        version: Mutex<u32>,
    }

    impl Scripted {
        fn with(script: &[Attempt]) -> Self {
            Self {
                script: Mutex::new(script.iter().copied().collect()),
                ..Self::default()
            }
        }

        fn insert(&self, key: &str, body: &[u8]) -> String {
            let mut version = self.version.lock().unwrap();
            *version += 1;
            let etag = format!("e{version}");
            self.objects.lock().unwrap().insert(
                key.to_owned(),
                Object {
                    body: body.to_vec(),
                    etag: etag.clone(),
                },
            );
            etag
        }

        fn attempts(&self) -> u32 {
            *self.attempts.lock().unwrap()
        }
    }

    fn error(text: &str) -> Error {
        Error::Seam {
            seam: "test state",
            message: text.to_owned(),
        }
    }

    #[async_trait]
    impl ObjectStore for Scripted {
        fn seam(&self) -> &'static str {
            "test state"
        }

        fn url(&self, key: &str) -> String {
            format!("mem://{key}")
        }

        async fn get(&self, key: &str) -> Result<Option<Object>> {
            if self.reads_fail {
                return Err(error("read failed"));
            }
            Ok(self.objects.lock().unwrap().get(key).cloned())
        }

        async fn try_put(&self, key: &str, body: &[u8], condition: Condition<'_>) -> PutAnswer {
            *self.attempts.lock().unwrap() += 1;
            let attempt = self
                .script
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or(Attempt::Answered);
            let applies = matches!(attempt, Attempt::Answered | Attempt::AppliedThenLost);
            let current = self.objects.lock().unwrap().get(key).cloned();
            let holds = match (condition, &current) {
                (Condition::Absent, None) => true,
                (Condition::Matches(etag), Some(object)) => object.etag == etag,
                _ => false,
            };
            match attempt {
                Attempt::RefusedBusy => return PutAnswer::Busy(error("busy")),
                Attempt::RefusedForGood => return PutAnswer::Rejected(error("forbidden")),
                Attempt::NotAppliedLost => return PutAnswer::Unanswered(error("no answer")),
                _ => {}
            }
            if !holds {
                return PutAnswer::ConditionFailed;
            }
            let etag = applies.then(|| self.insert(key, body));
            match (attempt, etag) {
                (Attempt::Answered, Some(etag)) => PutAnswer::Done(etag),
                _ => PutAnswer::Unanswered(error("answer lost")),
            }
        }

        async fn delete_if(&self, _: &str, _: &str) -> Result<bool> {
            unreachable!("put never deletes")
        }

        async fn list(&self, _: &str, _: Option<String>, _: usize) -> Result<Page> {
            unreachable!("put never lists")
        }

        async fn directories(&self, _: &str) -> Result<Vec<String>> {
            unreachable!("put never lists")
        }
    }

    async fn put_new(store: &Scripted) -> Result<Written> {
        put(store, "k", b"mine", Condition::Absent).await
    }

    #[tokio::test]
    async fn an_applied_write_whose_answer_was_lost_is_done_once() {
        let store = Scripted::with(&[Attempt::AppliedThenLost]);
        assert!(matches!(put_new(&store).await, Ok(Written::Done(_))));
        assert_eq!(
            store.attempts(),
            1,
            "settled by reading, not by writing again"
        );
    }

    #[tokio::test]
    async fn a_write_not_applied_is_tried_again_a_bounded_number_of_times() {
        let store = Scripted::with(&[Attempt::NotAppliedLost, Attempt::NotAppliedLost]);
        assert!(matches!(put_new(&store).await, Ok(Written::Done(_))));
        assert_eq!(store.attempts(), 3);
        let store = Scripted::with(&[Attempt::NotAppliedLost; 3]);
        let error = put_new(&store).await.unwrap_err().to_string();
        assert!(error.contains("no answer"), "{error}");
        assert_eq!(store.attempts(), UNANSWERED_ATTEMPTS);
    }

    #[tokio::test]
    async fn an_update_not_applied_is_tried_again_while_the_version_is_unchanged() {
        let store = Scripted::with(&[Attempt::NotAppliedLost]);
        let first = store.insert("k", b"old");
        let written = put(&store, "k", b"mine", Condition::Matches(&first)).await;
        assert!(matches!(written, Ok(Written::Done(_))), "{written:?}");
        assert_eq!(store.attempts(), 2);
        // Moved on meanwhile (another writer): no second attempt, an error.
        let store = Scripted::with(&[Attempt::NotAppliedLost]);
        let first = store.insert("k", b"old");
        store.insert("k", b"theirs");
        let written = put(&store, "k", b"mine", Condition::Matches(&first)).await;
        assert!(written.is_err(), "{written:?}");
        assert_eq!(store.attempts(), 1);
    }

    #[tokio::test]
    async fn a_lost_answer_over_another_writers_object_is_an_error_not_a_refusal() {
        // Not applied, and meanwhile someone else's object is there: it may be that ours
        // was applied and replaced, so nothing is claimed either way.
        let store = Scripted::with(&[Attempt::NotAppliedLost]);
        store.insert("k", b"theirs");
        let answer = put(&store, "k", b"mine", Condition::Absent).await;
        assert!(answer.is_err(), "{answer:?}");
        assert_eq!(store.attempts(), 1);
        // And a lost answer that cannot be read back is an error too.
        let store = Scripted {
            reads_fail: true,
            ..Scripted::with(&[Attempt::NotAppliedLost])
        };
        assert!(put_new(&store).await.is_err());
        assert_eq!(store.attempts(), 1);
    }

    #[tokio::test]
    async fn a_failed_condition_is_done_when_the_object_is_this_write_else_refused() {
        let store = Scripted::default();
        store.insert("k", b"mine");
        assert!(matches!(put_new(&store).await, Ok(Written::Done(_))));
        let store = Scripted::default();
        let theirs = store.insert("k", b"theirs");
        assert_eq!(put_new(&store).await.unwrap(), Written::Refused);
        // On a version: written when it is current, refused once another write moved it.
        let mine = put(&store, "k", b"mine", Condition::Matches(&theirs))
            .await
            .unwrap();
        assert!(matches!(mine, Written::Done(ref etag) if etag != &theirs));
        let stale = put(&store, "k", b"later", Condition::Matches(&theirs)).await;
        assert_eq!(stale.unwrap(), Written::Refused);
    }

    #[tokio::test]
    async fn busy_is_tried_five_times_and_a_refusal_never_again() {
        let store = Scripted::with(&[Attempt::RefusedBusy; 4]);
        assert!(matches!(put_new(&store).await, Ok(Written::Done(_))));
        assert_eq!(store.attempts(), 5);
        let store = Scripted::with(&[Attempt::RefusedBusy; 5]);
        assert!(
            put_new(&store)
                .await
                .unwrap_err()
                .to_string()
                .contains("busy")
        );
        assert_eq!(store.attempts(), BUSY_ATTEMPTS);
        let store = Scripted::with(&[Attempt::RefusedForGood]);
        assert!(
            put_new(&store)
                .await
                .unwrap_err()
                .to_string()
                .contains("forbidden")
        );
        assert_eq!(store.attempts(), 1);
    }
}
