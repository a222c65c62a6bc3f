//! Following a rollout: watches of the Deployment, its ReplicaSets and their pods keep a
//! view of each, and every change of the view is handed to [`judge_rollout`] until it says
//! complete or failed. The watches (kube-runtime's watcher) resume after a disconnect and
//! list again after `410 Gone`; the verdict is only asked once every view is listed, so a
//! half-built view can never pass for a finished rollout. Nothing here decides anything.

use futures::StreamExt as _;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Api, Client};
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::verdict::{AppliedRelease, RolloutFailure, RolloutVerdict, Waiting, judge_rollout};

/// Where to look: the Deployment, and the label selector of its ReplicaSets and pods.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RolloutScope {
    /// The namespace.
    pub namespace: String,
    /// The Deployment's name.
    pub name: String,
    /// Selects its ReplicaSets and pods (`app.kubernetes.io/name=web`).
    pub selector: String,
}

/// How a followed rollout ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RolloutEnd {
    /// Rolled out.
    Complete,
    /// Cannot succeed.
    Failed(RolloutFailure),
}

/// Follows the rollout of `release` in `scope` until it completes or fails, calling
/// `progress` each time the reason to wait changes. Returns at once with
/// [`Error::Cancelled`] when `cancel` fires.
///
/// # Errors
///
/// A watch the API server refuses for good (401, 403, 404); [`Error::Cancelled`].
pub async fn follow_rollout(
    client: &Client,
    scope: &RolloutScope,
    release: &AppliedRelease,
    mut progress: impl FnMut(&Waiting) + Send,
    cancel: &CancellationToken,
) -> Result<RolloutEnd, Error> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &scope.namespace);
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), &scope.namespace);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &scope.namespace);
    let by_name = watcher::Config::default().fields(&format!("metadata.name={}", scope.name));
    let by_label = watcher::Config::default().labels(&scope.selector);

    let (deployment_view, deployment_writer) = reflector::store();
    let (set_view, set_writer) = reflector::store();
    let (pod_view, pod_writer) = reflector::store();
    let changes = futures::stream::select_all([
        reflector::reflector(deployment_writer, watcher(deployments, by_name))
            .default_backoff()
            .map(|event| Change::of("Deployment", event.err()))
            .boxed(),
        reflector::reflector(set_writer, watcher(sets, by_label.clone()))
            .default_backoff()
            .map(|event| Change::of("ReplicaSets", event.err()))
            .boxed(),
        reflector::reflector(pod_writer, watcher(pods, by_label))
            .default_backoff()
            .map(|event| Change::of("pods", event.err()))
            .boxed(),
    ]);
    futures::pin_mut!(changes);
    let mut last: Option<Waiting> = None;
    loop {
        let change = tokio::select! {
            () = cancel.cancelled() => return Err(Error::Cancelled),
            change = changes.next() => change,
        };
        match change {
            // A watch ends only with its client: nothing more will be seen.
            None => return Err(Error::WatchEnded),
            Some(Change::Fatal(error)) => return Err(error),
            Some(Change::Seen | Change::Retried) => {}
        }
        let Some(view) = View::read(&deployment_view, &set_view, &pod_view, &scope.name) else {
            continue;
        };
        match judge_rollout(release, &view.deployment, &view.sets, &view.pods) {
            RolloutVerdict::Complete => return Ok(RolloutEnd::Complete),
            RolloutVerdict::Failed(failure) => return Ok(RolloutEnd::Failed(failure)),
            RolloutVerdict::InProgress(waiting) => {
                if last.as_ref() != Some(&waiting) {
                    progress(&waiting);
                    last = Some(waiting);
                }
            }
        }
    }
}

/// One consistent read of the three views, once all are listed and the Deployment exists.
struct View {
    deployment: Deployment,
    sets: Vec<ReplicaSet>,
    pods: Vec<Pod>,
}

impl View {
    fn read(
        deployments: &Store<Deployment>,
        sets: &Store<ReplicaSet>,
        pods: &Store<Pod>,
        name: &str,
    ) -> Option<Self> {
        // `wait_until_ready` would block; a store not listed yet reads as not ready.
        if !(is_listed(deployments) && is_listed(sets) && is_listed(pods)) {
            return None;
        }
        let deployment = deployments
            .state()
            .into_iter()
            .find(|d| d.metadata.name.as_deref() == Some(name))?;
        Some(Self {
            deployment: (*deployment).clone(),
            sets: sets.state().iter().map(|s| (**s).clone()).collect(),
            pods: pods.state().iter().map(|p| (**p).clone()).collect(),
        })
    }
}

fn is_listed<K>(store: &Store<K>) -> bool
where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    futures::FutureExt::now_or_never(store.wait_until_ready()).is_some_and(|ready| ready.is_ok())
}

/// What one item of a watch stream means for the follow.
enum Change {
    /// The view changed (or was listed).
    Seen,
    /// The watch failed in a way the watcher retries after a backoff: a dropped
    /// connection, a server error, `410 Gone`.
    Retried,
    /// The API server refuses the watch, and will again (401, 403, 404).
    Fatal(Error),
}

impl Change {
    /// The change of an item of the watch of `what`, from its error if it has one.
    fn of(what: &'static str, error: Option<watcher::Error>) -> Self {
        let Some(error) = error else {
            return Self::Seen;
        };
        let refused = |code: u16| [401, 403, 404].contains(&code);
        match error {
            watcher::Error::InitialListFailed(source)
            | watcher::Error::WatchStartFailed(source)
            | watcher::Error::WatchFailed(source)
                if matches!(&source, kube::Error::Api(status) if refused(status.code)) =>
            {
                Self::Fatal(Error::api(format!("watch {what}"), source))
            }
            // A refusal can also arrive as an ERROR event inside the watch stream.
            watcher::Error::WatchError(status) if refused(status.code) => Self::Fatal(Error::api(
                format!("watch {what}"),
                kube::Error::Api(status),
            )),
            _ => Self::Retried,
        }
    }
}
