//! [`ObjectDeployLock`]: one lock object per environment, with an expiry renewed by a
//! heartbeat.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use super::keys::Layout;
use super::objects::{Condition, ObjectStore, Written, put};
use super::store::now_micros;
use crate::deploy_lock::{DeployLock, LockGuard};
use crate::error::{Error, Result};
use crate::record::{ci_run_url, current_actor, current_host};

/// Attempts to take a lock while others create, release or take it over at the same time.
const ACQUIRE_ATTEMPTS: u32 = 5;

/// The lock of an environment in an [`ObjectStore`]: `lock.json`, created only where there
/// is none, renewed every third of `ttl` on its version tag, deleted (on its version tag)
/// when the run ends. A holder that stops renewing (killed, cut off) loses the lock once
/// `ttl` passes: the next run takes it over, conditional on the expired object's version
/// tag, and records the takeover in `lock-events/`.
#[derive(Clone, Debug)]
pub struct ObjectDeployLock {
    objects: Arc<dyn ObjectStore>,
    layout: Layout,
    ttl: Duration,
}

/// What `lock.json` holds. A store may show parts of it its own way (a Kubernetes Lease's
/// holder identity and renew time); the JSON is what is compared and read back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    /// Unique to one acquisition: tells this holder's writes from another's.
    pub token: String,
    /// Who runs the holding deployment.
    pub actor: String,
    /// The machine it runs on.
    pub host: String,
    /// Its process.
    pub pid: u32,
    /// Its CI run, when in CI.
    pub ci_run_url: Option<String>,
    /// When this holder took the lock.
    #[serde(with = "time::serde::rfc3339")]
    pub acquired_at: OffsetDateTime,
    /// Its last renewal.
    #[serde(with = "time::serde::rfc3339")]
    pub renewed_at: OffsetDateTime,
    /// When the lock is free to take over unless renewed.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// The expired holder this one took over from.
    pub took_over_from: Option<String>,
}

impl LockHolder {
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

impl ObjectDeployLock {
    pub(crate) fn new(objects: Arc<dyn ObjectStore>, layout: Layout, ttl: Duration) -> Self {
        Self {
            objects,
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
        put(self.objects.as_ref(), &key, &body, Condition::Absent)
            .await
            .map(|_| ())
    }

    /// Holds the lock written as `holder` with `etag`: renews it every third of the time to
    /// live until released or dropped; `lost` fires when a renewal finds another holder, or
    /// the lock expired before a renewal got through.
    fn hold(&self, key: String, mut holder: LockHolder, etag: String) -> LockGuard {
        let held = Arc::new(Mutex::new(Held {
            etag,
            released: false,
        }));
        let lost = CancellationToken::new();
        let heartbeat = {
            let (objects, held, lost, ttl, key) = (
                self.objects.clone(),
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
                    match put(
                        objects.as_ref(),
                        &key,
                        &renewed.body(),
                        Condition::Matches(&state.etag),
                    )
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
        let objects = self.objects.clone();
        LockGuard::new(Heartbeat(heartbeat))
            .with_lost(lost)
            .with_release(move || async move {
                let mut state = held.lock().await;
                state.released = true;
                objects.delete_if(&key, &state.etag).await.map(|_| ())
            })
    }
}

#[async_trait]
impl DeployLock for ObjectDeployLock {
    async fn acquire(&self, environment: &str) -> Result<LockGuard> {
        let key = self.layout.lock(environment);
        for _ in 0..ACQUIRE_ATTEMPTS {
            let mut holder = LockHolder::new(self.ttl);
            if let Written::Done(etag) = put(
                self.objects.as_ref(),
                &key,
                &holder.body(),
                Condition::Absent,
            )
            .await?
            {
                return Ok(self.hold(key, holder, etag));
            }
            let Some(current) = self.objects.get(&key).await? else {
                // Released in between: try again.
                continue;
            };
            let previous = match serde_json::from_slice::<LockHolder>(&current.body) {
                Ok(previous) if previous.expires_at > OffsetDateTime::now_utc() => {
                    return Err(Error::Locked {
                        environment: environment.to_owned(),
                        holder: format!(
                            "{}; lock object {}",
                            previous.describe(),
                            self.objects.url(&key)
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
                            self.objects.url(&key)
                        ),
                    });
                }
            };
            holder.took_over_from = Some(previous.clone());
            if let Written::Done(etag) = put(
                self.objects.as_ref(),
                &key,
                &holder.body(),
                Condition::Matches(&current.etag),
            )
            .await?
            {
                // The takeover is the lock's; its record is for people reading the store.
                let _ = self
                    .record_event(environment, "takeover", holder.describe(), previous.clone())
                    .await;
                return Ok(self.hold(key, holder, etag).with_takeover(previous));
            }
        }
        Err(Error::Seam {
            seam: self.objects.seam(),
            message: format!(
                "the lock {} kept changing while this run tried to take it ({ACQUIRE_ATTEMPTS} attempts); run again",
                self.objects.url(&key)
            ),
        })
    }

    async fn break_lock(&self, environment: &str, by: &str) -> Result<Option<String>> {
        let key = self.layout.lock(environment);
        let Some(current) = self.objects.get(&key).await? else {
            return Ok(None);
        };
        let previous = serde_json::from_slice::<LockHolder>(&current.body).map_or_else(
            |_| "an object that is not a lock".to_owned(),
            |holder| holder.describe(),
        );
        self.record_event(environment, "break", by.to_owned(), previous.clone())
            .await?;
        if self.objects.delete_if(&key, &current.etag).await? {
            Ok(Some(previous))
        } else {
            Err(Error::Seam {
                seam: self.objects.seam(),
                message: format!(
                    "the lock {} changed while it was being broken (its holder renewed or released it); look again with `kyb-deploy status -e {environment}`",
                    self.objects.url(&key)
                ),
            })
        }
    }
}
