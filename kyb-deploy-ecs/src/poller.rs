//! [`ServicePoller`]: one DescribeServices loop for every service being followed.
//!
//! Services of the same cluster are described together, ten per call (ECS's limit). The
//! loop polls quickly after every change it sees and backs off while nothing changes, and
//! never spends more than its budget of calls per second however many services it follows.
//! The targets' own DescribeServices reads (when a deployment starts) draw on the same
//! budget through [`ServicePoller::pace`], so many deployments started together cannot burst
//! past it either.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::settings::EcsPoll;
use aws_sdk_ecs::Client;
use aws_sdk_ecs::types::Service;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use crate::client::{ThrottleRetry, describe_error};

/// What one poll saw of a service.
#[derive(Clone, Debug)]
pub enum Observation {
    /// The service as DescribeServices returned it.
    Service(Arc<Service>),
    /// ECS reported the service missing (`reason` from the call's failures).
    Missing(String),
    /// The call failed, after the retries for throttling.
    Error(String),
}

type Key = (String, String);

/// Follows services by polling DescribeServices; cheap to clone, shared by every
/// [`crate::EcsTarget`] that should batch its calls with the others.
#[derive(Clone, Debug)]
pub struct ServicePoller {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: Client,
    poll: EcsPoll,
    retry: ThrottleRetry,
    budget: Mutex<CallBudget>,
    services: Mutex<Followed>,
    wake: Notify,
    calls: AtomicU64,
}

#[derive(Debug, Default)]
struct Followed {
    senders: BTreeMap<Key, watch::Sender<Option<Observation>>>,
    running: bool,
}

/// A followed service's stream of observations; dropping it stops following.
#[derive(Debug)]
pub struct Subscription {
    rx: watch::Receiver<Option<Observation>>,
}

impl Subscription {
    /// The next observation newer than the last one returned.
    pub async fn next(&mut self) -> Observation {
        loop {
            if self.rx.changed().await.is_err() {
                return Observation::Error("the service poller stopped".into());
            }
            if let Some(o) = self.rx.borrow_and_update().clone() {
                return o;
            }
        }
    }
}

impl ServicePoller {
    /// A poller calling ECS through `client`, at the pace of `poll`.
    pub fn new(client: Client, poll: EcsPoll, retry: ThrottleRetry) -> Self {
        Self {
            inner: Arc::new(Inner {
                client,
                budget: Mutex::new(CallBudget::new(poll.max_calls_per_second)),
                poll,
                retry,
                services: Mutex::new(Followed::default()),
                wake: Notify::new(),
                calls: AtomicU64::new(0),
            }),
        }
    }

    /// Starts following `service` of `cluster`; the first observation comes from the next
    /// poll, which starts at once unless the call budget says wait.
    pub fn subscribe(&self, cluster: &str, service: &str) -> Subscription {
        let key = (cluster.to_owned(), service.to_owned());
        let mut followed = self.inner.services.lock().expect("poller lock");
        let rx = match followed.senders.get(&key) {
            Some(tx) => tx.subscribe(),
            None => {
                let (tx, rx) = watch::channel(None);
                followed.senders.insert(key, tx);
                rx
            }
        };
        if !followed.running {
            followed.running = true;
            tokio::spawn(run(Arc::clone(&self.inner)));
        }
        drop(followed);
        self.inner.wake.notify_one();
        Subscription { rx }
    }

    /// Waits for a DescribeServices call of the budget this poller keeps: at most
    /// `max_calls_per_second` on average, with a burst of as many.
    pub async fn pace(&self) {
        let wait = self
            .inner
            .budget
            .lock()
            .expect("budget lock")
            .reserve(Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// DescribeServices calls made so far (each attempt counted).
    pub fn describe_calls(&self) -> u64 {
        self.inner.calls.load(Ordering::Relaxed)
    }
}

async fn run(inner: Arc<Inner>) {
    let poll = inner.poll.clone();
    let mut interval = poll.interval;
    let mut fingerprints: BTreeMap<Key, String> = BTreeMap::new();
    loop {
        let started = Instant::now();
        let batches = {
            let mut followed = inner.services.lock().expect("poller lock");
            followed.senders.retain(|_, tx| tx.receiver_count() > 0);
            if followed.senders.is_empty() {
                followed.running = false;
                return;
            }
            batches(followed.senders.keys())
        };
        fingerprints.retain(|k, _| {
            batches
                .iter()
                .any(|(c, names)| c == &k.0 && names.contains(&k.1))
        });
        let mut changed = false;
        for (cluster, names) in &batches {
            let wait = inner
                .budget
                .lock()
                .expect("budget lock")
                .reserve(Instant::now());
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            let observations = describe(&inner, cluster, names).await;
            let followed = inner.services.lock().expect("poller lock");
            for (name, observation) in observations {
                let key = (cluster.clone(), name);
                if let Observation::Service(s) = &observation {
                    let print = fingerprint(s);
                    if fingerprints.get(&key) != Some(&print) {
                        changed = true;
                        fingerprints.insert(key.clone(), print);
                    }
                }
                if let Some(tx) = followed.senders.get(&key) {
                    tx.send_replace(Some(observation));
                }
            }
        }
        interval = if changed {
            poll.interval
        } else {
            interval.mul_f64(1.5).min(poll.max_interval)
        };
        let budget = Duration::from_secs_f64(
            batches.len() as f64 / f64::from(poll.max_calls_per_second.max(1)),
        );
        let next = later(started, interval.max(budget));
        let earliest = later(started, budget);
        tokio::select! {
            () = tokio::time::sleep_until(next) => {}
            () = async {
                inner.wake.notified().await;
                tokio::time::sleep_until(earliest).await;
            } => {}
        }
    }
}

/// `at + wait`, saturating far in the future rather than overflowing (a wait comes from
/// configuration; `Instant + Duration` panics past the clock's range).
fn later(at: Instant, wait: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(30 * 365 * 24 * 60 * 60);
    at.checked_add(wait)
        .or_else(|| at.checked_add(FAR))
        .unwrap_or(at)
}

/// A token bucket of calls: `rate` per second, up to `rate` saved up. Reservations may
/// take it below zero; the reserver then waits until its token would have been there.
#[derive(Debug)]
struct CallBudget {
    rate: f64,
    tokens: f64,
    at: Option<Instant>,
}

impl CallBudget {
    fn new(per_second: u32) -> Self {
        let rate = f64::from(per_second.max(1));
        Self {
            rate,
            tokens: rate,
            at: None,
        }
    }

    /// Takes one call's token at `now`; how long to wait before making the call.
    fn reserve(&mut self, now: Instant) -> Duration {
        if let Some(at) = self.at {
            let refill = now.saturating_duration_since(at).as_secs_f64() * self.rate;
            self.tokens = (self.tokens + refill).min(self.rate);
        }
        self.at = Some(now);
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }
}

/// Groups followed services by cluster, ten per call.
fn batches<'a>(keys: impl Iterator<Item = &'a Key>) -> Vec<(String, Vec<String>)> {
    let mut by_cluster: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (cluster, service) in keys {
        by_cluster.entry(cluster).or_default().push(service.clone());
    }
    by_cluster
        .into_iter()
        .flat_map(|(cluster, services)| {
            services
                .chunks(10)
                .map(|chunk| (cluster.to_owned(), chunk.to_vec()))
                .collect::<Vec<_>>()
        })
        .collect()
}

async fn describe(inner: &Inner, cluster: &str, names: &[String]) -> Vec<(String, Observation)> {
    let result = inner
        .retry
        .run(|| {
            inner.calls.fetch_add(1, Ordering::Relaxed);
            inner
                .client
                .describe_services()
                .cluster(cluster)
                .set_services(Some(names.to_vec()))
                .send()
        })
        .await;
    match result {
        Ok(out) => {
            let mut seen = Vec::new();
            for s in out.services.unwrap_or_default() {
                let name = s.service_name.clone().unwrap_or_default();
                seen.push((name, Observation::Service(Arc::new(s))));
            }
            for f in out.failures.unwrap_or_default() {
                let arn = f.arn.unwrap_or_default();
                let name = arn.rsplit('/').next().unwrap_or(&arn).to_owned();
                let reason = f.reason.unwrap_or_else(|| "MISSING".into());
                seen.push((name, Observation::Missing(format!("{reason}: {arn}"))));
            }
            seen
        }
        Err(e) => {
            let message = describe_error("DescribeServices", &e);
            names
                .iter()
                .map(|n| (n.clone(), Observation::Error(message.clone())))
                .collect()
        }
    }
}

/// What changes while a rollout progresses: deployments, their counts and states, and
/// the newest event.
fn fingerprint(s: &Service) -> String {
    let mut print = format!(
        "{}/{}/{}/{}",
        s.status.as_deref().unwrap_or(""),
        s.desired_count,
        s.running_count,
        s.pending_count
    );
    for d in s.deployments() {
        let _ = write!(
            print,
            "|{}:{}:{:?}:{}/{}/{}/{}",
            d.id.as_deref().unwrap_or(""),
            d.status.as_deref().unwrap_or(""),
            d.rollout_state,
            d.desired_count,
            d.running_count,
            d.pending_count,
            d.failed_tasks
        );
    }
    if let Some(e) = s.events().first() {
        let _ = write!(print, "|{}", e.id.as_deref().unwrap_or(""));
    }
    print
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_call_budget_allows_a_burst_then_its_rate() {
        let mut budget = CallBudget::new(5);
        let start = Instant::now();
        let waits: Vec<Duration> = (0..7).map(|_| budget.reserve(start)).collect();
        assert!(waits[..5].iter().all(Duration::is_zero), "{waits:?}");
        assert_eq!(waits[5], Duration::from_millis(200));
        assert_eq!(waits[6], Duration::from_millis(400));
        // Two seconds later the bucket is full again, never fuller.
        let later = start + Duration::from_secs(2);
        let waits: Vec<Duration> = (0..6).map(|_| budget.reserve(later)).collect();
        assert!(waits[..5].iter().all(Duration::is_zero), "{waits:?}");
        assert_eq!(waits[5], Duration::from_millis(200));
    }

    #[test]
    fn waits_never_overflow_the_clock() {
        let now = Instant::now();
        assert_eq!(
            later(now, Duration::from_secs(3)),
            now + Duration::from_secs(3)
        );
        assert!(later(now, Duration::MAX) > now + Duration::from_secs(365 * 24 * 60 * 60));
    }

    #[test]
    fn services_are_batched_ten_per_cluster_call() {
        let keys: Vec<Key> = (0..23)
            .map(|i| ("a".to_owned(), format!("s{i:02}")))
            .chain([("b".to_owned(), "x".to_owned())])
            .collect();
        let b = batches(keys.iter());
        let sizes: Vec<(String, usize)> = b.iter().map(|(c, n)| (c.clone(), n.len())).collect();
        assert_eq!(
            sizes,
            [
                ("a".into(), 10),
                ("a".into(), 10),
                ("a".into(), 3),
                ("b".into(), 1)
            ]
        );
    }
}
