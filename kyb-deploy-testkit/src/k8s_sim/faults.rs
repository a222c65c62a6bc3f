//! Faults the simulated cluster injects: per image (what happens to pods) and per API verb.

use std::time::Duration;

use crate::sim_runtime::glob_matches;

/// A fault; build one with the constructors.
///
/// ```
/// use std::time::Duration;
/// use kyb_deploy_testkit::k8s_sim::Fault;
///
/// let faults = [
///     Fault::image_pull_backoff("*:missing"),
///     Fault::crash_loop("example/api:v3", 1),
///     Fault::never_ready("*:broken"),
///     Fault::slow_start("*", Duration::from_secs(20)),
///     Fault::conflicts("PATCH", 3),
///     Fault::server_errors("*", 2),
///     Fault::latency("GET", Duration::from_millis(50)),
///     Fault::watch_disconnect_after(Duration::from_secs(5)),
///     Fault::forbidden("list", "secrets", "*"),
///     Fault::cpu_load("*", 300),
/// ];
/// assert_eq!(faults.len(), 10);
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Fault {
    /// Pods of matching images cannot pull them: `ErrImagePull`, then `ImagePullBackOff`.
    ImagePullBackOff {
        /// Image pattern: `*` matches any run of characters; the whole reference must match.
        image: String,
    },
    /// Containers of matching images exit with `exit_code` right after starting, and are
    /// restarted with back-off: `CrashLoopBackOff`.
    CrashLoop {
        /// Image pattern.
        image: String,
        /// The exit code.
        exit_code: i32,
    },
    /// Containers of matching images run but never become ready.
    NeverReady {
        /// Image pattern.
        image: String,
    },
    /// Pods of matching images share this CPU load, in percent of one pod's request: each
    /// reports `percent / replicas` to the HorizontalPodAutoscaler controller (standing in
    /// for the metrics server), so more replicas bring the figure down as real load would.
    CpuLoad {
        /// Image pattern.
        image: String,
        /// The load, in percent of one pod's CPU request (`300`: three pods' worth).
        percent: u32,
    },
    /// Containers of matching images take this much longer (simulated time) to start.
    SlowStart {
        /// Image pattern.
        image: String,
        /// The extra time.
        extra: Duration,
    },
    /// The next `count` requests with this HTTP method (`"*"` for any) fail with 409
    /// Conflict, as when other writers race.
    Conflicts {
        /// The HTTP method, or `"*"`.
        verb: String,
        /// How many.
        count: u32,
    },
    /// The next `count` requests with this HTTP method fail with 500.
    ServerErrors {
        /// The HTTP method, or `"*"`.
        verb: String,
        /// How many.
        count: u32,
    },
    /// Requests with this HTTP method are answered this much later (real time).
    Latency {
        /// The HTTP method, or `"*"`.
        verb: String,
        /// The delay.
        delay: Duration,
    },
    /// Watches end this long (real time) after they start, as when a connection drops.
    WatchDisconnect {
        /// How long a watch lasts.
        after: Duration,
    },
    /// The user's RBAC does not allow `verb` on `resource` in `namespace`: such requests
    /// get 403 Forbidden, and `kubectl auth can-i` (a SelfSubjectAccessReview) answers no.
    Forbidden {
        /// A Kubernetes verb (`get`, `list`, `watch`, `create`, `update`, `patch`,
        /// `delete`, `deletecollection`), or `"*"`.
        verb: String,
        /// A resource's plural (`deployments`), or `"*"`.
        resource: String,
        /// A namespace, `""` for cluster-scoped resources, or `"*"`.
        namespace: String,
    },
}

impl Fault {
    /// Pods of images matching `image` stay in `ImagePullBackOff`.
    pub fn image_pull_backoff(image: impl Into<String>) -> Self {
        Self::ImagePullBackOff {
            image: image.into(),
        }
    }

    /// Containers of images matching `image` crash with `exit_code`: `CrashLoopBackOff`.
    pub fn crash_loop(image: impl Into<String>, exit_code: i32) -> Self {
        Self::CrashLoop {
            image: image.into(),
            exit_code,
        }
    }

    /// Containers of images matching `image` never become ready.
    pub fn never_ready(image: impl Into<String>) -> Self {
        Self::NeverReady {
            image: image.into(),
        }
    }

    /// Pods of images matching `image` share a CPU load of `percent` of one pod's request.
    pub fn cpu_load(image: impl Into<String>, percent: u32) -> Self {
        Self::CpuLoad {
            image: image.into(),
            percent,
        }
    }

    /// Containers of images matching `image` start `extra` later.
    pub fn slow_start(image: impl Into<String>, extra: Duration) -> Self {
        Self::SlowStart {
            image: image.into(),
            extra,
        }
    }

    /// The next `count` requests of HTTP method `verb` (or `"*"`) get 409 Conflict.
    pub fn conflicts(verb: impl Into<String>, count: u32) -> Self {
        Self::Conflicts {
            verb: verb.into(),
            count,
        }
    }

    /// The next `count` requests of HTTP method `verb` (or `"*"`) get 500.
    pub fn server_errors(verb: impl Into<String>, count: u32) -> Self {
        Self::ServerErrors {
            verb: verb.into(),
            count,
        }
    }

    /// Requests of HTTP method `verb` (or `"*"`) are answered `delay` later.
    pub fn latency(verb: impl Into<String>, delay: Duration) -> Self {
        Self::Latency {
            verb: verb.into(),
            delay,
        }
    }

    /// Watches are cut `after` they start.
    pub fn watch_disconnect_after(after: Duration) -> Self {
        Self::WatchDisconnect { after }
    }

    /// The user may not `verb` `resource` in `namespace` (each may be `"*"`): 403.
    pub fn forbidden(
        verb: impl Into<String>,
        resource: impl Into<String>,
        namespace: impl Into<String>,
    ) -> Self {
        Self::Forbidden {
            verb: verb.into(),
            resource: resource.into(),
            namespace: namespace.into(),
        }
    }

    /// Whether this fault applies to pods of `image`.
    pub(crate) fn applies_to_image(&self, image: &str) -> bool {
        match self {
            Self::ImagePullBackOff { image: p }
            | Self::CrashLoop { image: p, .. }
            | Self::NeverReady { image: p }
            | Self::SlowStart { image: p, .. }
            | Self::CpuLoad { image: p, .. } => glob_matches(p, image),
            _ => false,
        }
    }
}

/// What the API faults decide for one request.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct RequestFaults {
    /// Answer this much later.
    pub(crate) delay: Duration,
    /// Fail with this HTTP code (409 or 500) instead of serving.
    pub(crate) fail: Option<u16>,
}

/// The faults in force.
#[derive(Debug, Default)]
pub(crate) struct FaultSet {
    faults: Vec<Fault>,
}

impl FaultSet {
    /// Adds a fault.
    pub(crate) fn add(&mut self, fault: Fault) {
        self.faults.push(fault);
    }

    /// Removes every fault.
    pub(crate) fn clear(&mut self) {
        self.faults.clear();
    }

    /// The image faults of `image`.
    pub(crate) fn for_image(&self, image: &str) -> Vec<Fault> {
        self.faults
            .iter()
            .filter(|f| f.applies_to_image(image))
            .cloned()
            .collect()
    }

    /// What happens to a request of `method`; counted faults are used up.
    pub(crate) fn on_request(&mut self, method: &str) -> RequestFaults {
        let mut verdict = RequestFaults::default();
        let applies = |verb: &str| verb == "*" || verb.eq_ignore_ascii_case(method);
        for fault in &mut self.faults {
            match fault {
                Fault::Latency { verb, delay } if applies(verb) => verdict.delay += *delay,
                Fault::Conflicts { verb, count } | Fault::ServerErrors { verb, count }
                    if *count > 0 && applies(verb) && verdict.fail.is_none() =>
                {
                    *count -= 1;
                    verdict.fail = Some(if matches!(fault, Fault::Conflicts { .. }) {
                        409
                    } else {
                        500
                    });
                }
                _ => {}
            }
        }
        verdict
    }

    /// Whether RBAC faults forbid `verb` on `resource` (a plural) in `namespace` (`""` at
    /// the cluster scope).
    pub(crate) fn forbids(&self, verb: &str, resource: &str, namespace: &str) -> bool {
        let matches = |pattern: &str, value: &str| pattern == "*" || pattern == value;
        self.faults.iter().any(|f| match f {
            Fault::Forbidden {
                verb: v,
                resource: r,
                namespace: n,
            } => matches(v, verb) && matches(r, resource) && matches(n, namespace),
            _ => false,
        })
    }

    /// How long watches last, when a disconnect fault is set.
    pub(crate) fn watch_lifetime(&self) -> Option<Duration> {
        self.faults.iter().find_map(|f| match f {
            Fault::WatchDisconnect { after } => Some(*after),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_faults_are_used_up_in_order() {
        let mut set = FaultSet::default();
        set.add(Fault::conflicts("PATCH", 2));
        set.add(Fault::server_errors("*", 1));
        set.add(Fault::latency("get", Duration::from_millis(5)));
        assert_eq!(set.on_request("PATCH").fail, Some(409));
        assert_eq!(set.on_request("PATCH").fail, Some(409));
        assert_eq!(set.on_request("PATCH").fail, Some(500));
        assert_eq!(set.on_request("PATCH"), RequestFaults::default());
        assert_eq!(set.on_request("GET").delay, Duration::from_millis(5));
    }

    #[test]
    fn image_faults_match_patterns() {
        let mut set = FaultSet::default();
        set.add(Fault::image_pull_backoff("*:missing"));
        assert_eq!(set.for_image("reg/app:missing").len(), 1);
        assert!(set.for_image("reg/app:v1").is_empty());
    }
}
