//! [`S3DeployLock`]: one lock object per environment, with an expiry renewed by a heartbeat.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use kyb_deploy_core::{
    CancellationToken, DeployLock, Error, LockGuard, Result, ci_run_url, current_actor,
    current_host,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::sync::Mutex;

use super::bucket::{Bucket, Condition, Written};
use super::keys::Layout;
use super::store::now_micros;

/// Attempts to take a lock while others create, release or take it over at the same time.
const ACQUIRE_ATTEMPTS: u32 = 5;

/// The lock of an environment in an S3 bucket: `lock.json`, created with
/// `If-None-Match: *`, renewed every third of `ttl` with `If-Match` on its ETag, deleted
/// (with `If-Match`) when the run ends. A holder that stops renewing (killed, cut off)
/// loses the lock once `ttl` passes: the next run takes it over with `If-Match` on the
/// expired object's ETag, and records the takeover in `lock-events/`.
#[derive(Clone, Debug)]
pub struct S3DeployLock {
    bucket: Bucket,
    layout: Layout,
    ttl: Duration,
}

/// What `lock.json` holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Holder {
    /// Unique to one acquisition: tells this holder's writes from another's.
    token: String,
    actor: String,
    host: String,
    pid: u32,
    ci_run_url: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    acquired_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    renewed_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
    /// The expired holder this one took over from.
    took_over_from: Option<String>,
}

impl Holder {
    fn new(ttl: Duration) -> Self {
        let now = OffsetDateTime::now_utc();
        Self {
            token: format!("{:016x}", rand::random::<u64>()),
            actor: current_actor(),
            host: current_host(),
            pid: std::process::id(),
            ci_run_url: ci_run_url(),
            acquired_at: now,
            renewed_at: now,
            expires_at: now + ttl,
            took_over_from: None,
        }
    }

    /// Who, where, since when, the CI run, and until when.
    fn describe(&self) -> String {
        format!(
            "pid {} on {} by {} since {}{}; expires {} unless renewed",
            self.pid,
            self.host,
            self.actor,
            self.acquired_at,
            self.ci_run_url
                .as_ref()
                .map_or_else(String::new, |url| format!(", CI run {url}")),
            self.expires_at
        )
    }

    fn body(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a lock holder serializes")
    }
}

/// A record of a takeover or a break, in `lock-events/`.
#[derive(Serialize)]
struct LockEvent<'a> {
    event: &'a str,
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
    by: String,
    previous: String,
}

/// What the heartbeat and the release share: the lock's current ETag, and whether it was
/// released (no renewal after that).
struct Held {
    etag: String,
    released: bool,
}

/// Stops the heartbeat when the guard is dropped.
struct Heartbeat(tokio::task::JoinHandle<()>);

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl S3DeployLock {
    pub(crate) fn new(bucket: Bucket, layout: Layout, ttl: Duration) -> Self {
        Self {
            bucket,
            layout,
            ttl,
        }
    }

    async fn record_event(
        &self,
        environment: &str,
        event: &str,
        by: String,
        previous: String,
    ) -> Result<()> {
        let key = self.layout.lock_event(environment, now_micros(), event);
        let body = serde_json::to_vec(&LockEvent {
            event,
            at: OffsetDateTime::now_utc(),
            by,
            previous,
        })
        .expect("a lock event serializes");
        self.bucket
            .put(&key, &body, Condition::Absent)
            .await
            .map(|_| ())
    }

    /// Holds the lock written as `holder` with `etag`: renews it every third of the time to
    /// live until released or dropped; `lost` fires when a renewal finds another holder, or
    /// the lock expired before a renewal got through.
    fn hold(&self, key: String, mut holder: Holder, etag: String) -> LockGuard {
        let held = Arc::new(Mutex::new(Held {
            etag,
            released: false,
        }));
        let lost = CancellationToken::new();
        let heartbeat = {
            let (bucket, held, lost, ttl, key) = (
                self.bucket.clone(),
                held.clone(),
                lost.clone(),
                self.ttl,
                key.clone(),
            );
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(ttl / 3).await;
                    let mut state = held.lock().await;
                    if state.released {
                        return;
                    }
                    let now = OffsetDateTime::now_utc();
                    let mut renewed = holder.clone();
                    renewed.renewed_at = now;
                    renewed.expires_at = now + ttl;
                    match bucket
                        .put(&key, &renewed.body(), Condition::Matches(&state.etag))
                        .await
                    {
                        Ok(Written::Done(etag)) => {
                            state.etag = etag;
                            holder = renewed;
                        }
                        Ok(Written::Refused) => {
                            lost.cancel();
                            return;
                        }
                        // Tried again at the next beat; lost once it expired meanwhile.
                        Err(_) if OffsetDateTime::now_utc() >= holder.expires_at => {
                            lost.cancel();
                            return;
                        }
                        Err(_) => {}
                    }
                }
            })
        };
        let bucket = self.bucket.clone();
        LockGuard::new(Heartbeat(heartbeat))
            .with_lost(lost)
            .with_release(move || async move {
                let mut state = held.lock().await;
                state.released = true;
                bucket.delete_if(&key, &state.etag).await.map(|_| ())
            })
    }
}

#[async_trait]
impl DeployLock for S3DeployLock {
    async fn acquire(&self, environment: &str) -> Result<LockGuard> {
        let key = self.layout.lock(environment);
        for _ in 0..ACQUIRE_ATTEMPTS {
            let mut holder = Holder::new(self.ttl);
            if let Written::Done(etag) = self
                .bucket
                .put(&key, &holder.body(), Condition::Absent)
                .await?
            {
                return Ok(self.hold(key, holder, etag));
            }
            let Some(current) = self.bucket.get(&key).await? else {
                // Released in between: try again.
                continue;
            };
            let previous = match serde_json::from_slice::<Holder>(&current.body) {
                Ok(previous) if previous.expires_at > OffsetDateTime::now_utc() => {
                    return Err(Error::Locked {
                        environment: environment.to_owned(),
                        holder: format!(
                            "{}; lock object {}",
                            previous.describe(),
                            self.bucket.url(&key)
                        ),
                    });
                }
                Ok(previous) => previous.describe(),
                // Not a lock kyb-deploy wrote: never taken over silently.
                Err(e) => {
                    return Err(Error::Locked {
                        environment: environment.to_owned(),
                        holder: format!(
                            "{} holds something that is not a lock ({e}); if no deployment is running, break it with `kyb-deploy unlock -e {environment}`",
                            self.bucket.url(&key)
                        ),
                    });
                }
            };
            holder.took_over_from = Some(previous.clone());
            if let Written::Done(etag) = self
                .bucket
                .put(&key, &holder.body(), Condition::Matches(&current.etag))
                .await?
            {
                // The takeover is the lock's; its record is for people reading the bucket.
                let _ = self
                    .record_event(environment, "takeover", holder.describe(), previous.clone())
                    .await;
                return Ok(self.hold(key, holder, etag).with_takeover(previous));
            }
        }
        Err(Error::Seam {
            seam: "S3 state",
            message: format!(
                "the lock {} kept changing while this run tried to take it ({ACQUIRE_ATTEMPTS} attempts); run again",
                self.bucket.url(&key)
            ),
        })
    }

    async fn break_lock(&self, environment: &str, by: &str) -> Result<Option<String>> {
        let key = self.layout.lock(environment);
        let Some(current) = self.bucket.get(&key).await? else {
            return Ok(None);
        };
        let previous = serde_json::from_slice::<Holder>(&current.body).map_or_else(
            |_| "an object that is not a lock".to_owned(),
            |holder| holder.describe(),
        );
        self.record_event(environment, "break", by.to_owned(), previous.clone())
            .await?;
        if self.bucket.delete_if(&key, &current.etag).await? {
            Ok(Some(previous))
        } else {
            Err(Error::Seam {
                seam: "S3 state",
                message: format!(
                    "the lock {} changed while it was being broken (its holder renewed or released it); look again with `kyb-deploy status -e {environment}`",
                    self.bucket.url(&key)
                ),
            })
        }
    }
}
