//! The scheduler and the kubelet of the one simulated node: pods are bound to
//! [`NODE`], their containers run in the virtual runtime (`runtime`), and their status and
//! events are written as the real kubelet writes them.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use super::super::cluster::timestamp;
use super::super::docker::DockerPods;
use super::super::resources::kind;
use super::ctx::Ctx;
use super::defaults;
use super::env;
use super::events::{NODE, Note, Source};
use super::json::{int, name, namespace, object, set, text, time, uid};
use super::real::{self, Real};
use super::runtime::{Container, Exit, ImageFaults, Step, go_duration};

/// The node's address.
const HOST_IP: &str = "172.18.0.2";

/// What the kubelet remembers about one pod.
#[derive(Debug)]
struct PodRuntime {
    /// When the kubelet took the pod on (its `startTime`).
    started: SystemTime,
    /// When it last looked at the pod.
    checked: SystemTime,
    containers: Vec<Container>,
    /// The agent of the first container, with the Docker-backed runtime.
    real: Real,
}

/// A container of a pod's spec: name, image and the readiness probe's initial delay.
type ContainerSpec = (String, String, Duration);

fn container_specs(pod: &Value) -> Vec<ContainerSpec> {
    pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let delay = int(&c["readinessProbe"]["initialDelaySeconds"]).unwrap_or(0);
            (
                text(&c["name"]).to_owned(),
                text(&c["image"]).to_owned(),
                Duration::from_secs(delay.max(0) as u64),
            )
        })
        .collect()
}

impl PodRuntime {
    /// A pod the kubelet takes on at `now`; one it finds running already (the controllers
    /// were restarted) resumes from its status.
    fn new(pod: &Value, specs: &[ContainerSpec], now: SystemTime, out: &mut Vec<Note>) -> Self {
        let pod_uid = uid(pod);
        let containers = specs
            .iter()
            .map(|(name, image, _)| {
                let status = pod["status"]["containerStatuses"]
                    .as_array()
                    .and_then(|all| all.iter().find(|s| s["name"] == name.as_str()));
                let running = status.and_then(|s| time(&s["state"]["running"]["startedAt"]));
                match (status, running) {
                    (Some(s), Some(started)) => Container::resumed(
                        pod_uid,
                        name,
                        image,
                        started,
                        int(&s["restartCount"]).unwrap_or(0).max(0) as u32,
                        s["ready"] == true,
                    ),
                    _ => Container::new(pod_uid, name, image, now, out),
                }
            })
            .collect();
        Self {
            started: time(&pod["status"]["startTime"]).unwrap_or(now),
            checked: now,
            containers,
            real: Real::default(),
        }
    }

    /// Follows changes of the spec: a changed image restarts its container.
    fn match_spec(
        &mut self,
        pod_uid: &str,
        specs: &[ContainerSpec],
        now: SystemTime,
        out: &mut Vec<Note>,
    ) {
        let same_names = self.containers.len() == specs.len()
            && self
                .containers
                .iter()
                .zip(specs)
                .all(|(c, s)| c.name == s.0);
        if !same_names {
            self.containers = specs
                .iter()
                .map(|(name, image, _)| Container::new(pod_uid, name, image, now, out))
                .collect();
            return;
        }
        for (c, (_, image, _)) in self.containers.iter_mut().zip(specs) {
            if c.image != *image {
                c.replace_image(image, now, out);
            }
        }
    }
}

/// The kubelet of [`NODE`], with its memory of the pods it runs.
#[derive(Debug, Default)]
pub(super) struct Kubelet {
    pods: HashMap<String, PodRuntime>,
    /// Runs the first container of every pod for real, when set.
    docker: Option<Arc<DockerPods>>,
}

impl Kubelet {
    /// A kubelet whose pods' first containers run in `docker`, or are virtual.
    pub(super) fn new(docker: Option<Arc<DockerPods>>) -> Self {
        Self {
            pods: HashMap::new(),
            docker,
        }
    }

    /// Schedules pending pods, then brings the status of every pod on the node up to date.
    pub(super) fn sync(&mut self, ctx: &mut Ctx<'_>) {
        let pods = ctx.all(kind("Pod"));
        let mut ips: HashSet<String> = pods
            .iter()
            .filter_map(|p| p["status"]["podIP"].as_str().map(str::to_owned))
            .collect();
        let mut seen = HashSet::new();
        for pod in pods {
            let pod = if text(&pod["spec"]["nodeName"]).is_empty() {
                match schedule(ctx, pod) {
                    Some(pod) => pod,
                    None => continue,
                }
            } else {
                pod
            };
            if text(&pod["spec"]["nodeName"]) != NODE || !pod["spec"]["containers"].is_array() {
                continue;
            }
            seen.insert(uid(&pod).to_owned());
            self.sync_pod(ctx, pod, &mut ips);
        }
        self.pods.retain(|pod_uid, _| seen.contains(pod_uid));
        if let Some(docker) = &self.docker {
            // A deleted pod's container goes with it; Services follow their objects.
            docker.release_all_but(&seen);
            let services = ctx.all(kind("Service"));
            docker.sync_services(&services);
            for service in services {
                publish_url(ctx, docker, service);
            }
        }
    }

    fn sync_pod(&mut self, ctx: &mut Ctx<'_>, mut pod: Value, ips: &mut HashSet<String>) {
        let now = ctx.now;
        let mut notes = Vec::new();
        let pod_uid = uid(&pod).to_owned();
        let specs = container_specs(&pod);
        let rt = self
            .pods
            .entry(pod_uid.clone())
            .or_insert_with(|| PodRuntime::new(&pod, &specs, now, &mut notes));
        rt.match_spec(&pod_uid, &specs, now, &mut notes);
        let pod_ref = format!("{}_{}({pod_uid})", name(&pod), namespace(&pod));
        for (index, (c, (_, image, delay))) in rt.containers.iter_mut().zip(&specs).enumerate() {
            let faults = ImageFaults::of(ctx.faults, image);
            match &self.docker {
                Some(docker) if index == 0 => {
                    let real = &mut rt.real;
                    let launched = env::resolved(ctx, &pod);
                    real::advance(
                        c, real, docker, &launched, faults, now, &pod_ref, &mut notes,
                    );
                }
                _ => c.advance(faults, *delay, rt.checked, now, &pod_ref, &mut notes),
            }
        }
        rt.checked = now;
        let status = render(&pod, rt, &pod_ref, now, ips);
        if status != pod["status"] {
            pod["status"] = status;
            if let Some(updated) = ctx.update_status(kind("Pod"), pod.clone()) {
                pod = updated;
            }
        }
        notes.sort_by_key(|n| n.at);
        for note in notes {
            ctx.event(&pod, Source::Kubelet, note);
        }
    }
}

/// Writes a Service's local URL into its status, as a load balancer's ingress
/// (`127.0.0.1` and the proxy's port), so that clients in other processes find it.
fn publish_url(ctx: &mut Ctx<'_>, docker: &DockerPods, mut service: Value) {
    let Some(port) = docker
        .service_url(namespace(&service), name(&service))
        .and_then(|url| url.rsplit_once(':')?.1.parse::<u16>().ok())
    else {
        return;
    };
    let ingress = json!([{"ip": "127.0.0.1", "ports": [{"port": port, "protocol": "TCP"}]}]);
    if service["status"]["loadBalancer"]["ingress"] != ingress {
        set(
            &mut service,
            &["status", "loadBalancer", "ingress"],
            ingress,
        );
        ctx.update_status(kind("Service"), service);
    }
}

/// Binds a pod to [`NODE`] (filling the defaults the API server would have), with the
/// `PodScheduled` condition and a `Scheduled` event.
fn schedule(ctx: &mut Ctx<'_>, mut pod: Value) -> Option<Value> {
    defaults::pod(&mut pod);
    set(&mut pod, &["spec", "nodeName"], json!(NODE));
    let mut pod = ctx.update(kind("Pod"), pod)?;
    let status = object(&mut pod["status"]);
    status.entry("phase").or_insert_with(|| json!("Pending"));
    status.insert(
        "conditions".into(),
        json!([condition("PodScheduled", true, &ctx.stamp())]),
    );
    let pod = ctx.update_status(kind("Pod"), pod)?;
    let message = format!(
        "Successfully assigned {}/{} to {NODE}",
        namespace(&pod),
        name(&pod)
    );
    ctx.event(
        &pod,
        Source::Scheduler,
        Note::normal(ctx.now, "Scheduled", message),
    );
    Some(pod)
}

fn condition(t: &str, status: bool, at: &str) -> Value {
    json!({
        "type": t,
        "status": if status { "True" } else { "False" },
        "lastProbeTime": null,
        "lastTransitionTime": at,
    })
}

/// The pod's status as the kubelet reports it.
fn render(
    pod: &Value,
    rt: &PodRuntime,
    pod_ref: &str,
    now: SystemTime,
    ips: &mut HashSet<String>,
) -> Value {
    let old = &pod["status"];
    let old_condition = |t: &str| {
        old["conditions"]
            .as_array()
            .and_then(|all| all.iter().find(|c| c["type"] == t))
    };
    let start = old["startTime"]
        .as_str()
        .map_or_else(|| timestamp(rt.started), str::to_owned);
    let scheduled = old_condition("PodScheduled")
        .and_then(|c| c["lastTransitionTime"].as_str())
        .map_or_else(|| start.clone(), str::to_owned);
    let ip = match old["podIP"].as_str() {
        Some(ip) => ip.to_owned(),
        None => allocate_ip(ips),
    };
    let all_ready =
        !rt.containers.is_empty() && rt.containers.iter().all(|c| c.ready_since.is_some());
    let ready_condition = |t: &str| {
        if all_ready {
            let since = rt
                .containers
                .iter()
                .filter_map(|c| c.ready_since)
                .max()
                .unwrap_or(now);
            return condition(t, true, &timestamp(since));
        }
        let at = match old_condition(t) {
            Some(c) if c["status"] == "False" => text(&c["lastTransitionTime"]).to_owned(),
            Some(_) => timestamp(now),
            None => start.clone(),
        };
        let unready: Vec<&str> = rt
            .containers
            .iter()
            .filter(|c| c.ready_since.is_none())
            .map(|c| c.name.as_str())
            .collect();
        let mut c = condition(t, false, &at);
        c["reason"] = json!("ContainersNotReady");
        c["message"] = json!(format!(
            "containers with unready status: [{}]",
            unready.join(" ")
        ));
        c
    };
    let phase = if rt.containers.iter().any(Container::ran) {
        "Running"
    } else {
        "Pending"
    };
    json!({
        "phase": phase,
        "conditions": [
            condition("PodReadyToStartContainers", true, &start),
            condition("Initialized", true, &start),
            ready_condition("Ready"),
            ready_condition("ContainersReady"),
            condition("PodScheduled", true, &scheduled),
        ],
        "hostIP": HOST_IP,
        "hostIPs": [{"ip": HOST_IP}],
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "startTime": start,
        "containerStatuses": rt.containers.iter().map(|c| container_status(c, pod_ref)).collect::<Vec<_>>(),
        "qosClass": qos_class(&pod["spec"]),
    })
}

fn container_status(c: &Container, pod_ref: &str) -> Value {
    let waiting = |reason: &str, message: Option<String>| {
        let mut w = json!({"reason": reason});
        if let Some(m) = message {
            w["message"] = json!(m);
        }
        json!({"waiting": w})
    };
    let state = match &c.step {
        Step::Running { started } => json!({"running": {"startedAt": timestamp(*started)}}),
        Step::CrashBackOff { delay, .. } => {
            let message = format!(
                "back-off {} restarting failed container={} pod={pod_ref}",
                go_duration(*delay),
                c.name
            );
            waiting("CrashLoopBackOff", Some(message))
        }
        Step::PullFailed { .. } => waiting("ErrImagePull", Some(c.pull_error())),
        Step::Pulling { .. } | Step::PullBackOff { .. } if c.pull_failures > 0 => waiting(
            "ImagePullBackOff",
            Some(format!("Back-off pulling image \"{}\"", c.image)),
        ),
        _ => waiting("ContainerCreating", None),
    };
    let terminated = |exit: &Exit| {
        json!({"terminated": {
            "exitCode": exit.code,
            "reason": if exit.code == 0 { "Completed" } else { "Error" },
            "startedAt": timestamp(exit.started),
            "finishedAt": timestamp(exit.finished),
            "containerID": format!("containerd://{}", exit.id),
        }})
    };
    let (state, last) = match (&c.step, &c.last_exit) {
        (Step::Exited { .. }, Some(exit)) => (terminated(exit), c.earlier_exit.as_ref()),
        _ => (state, c.last_exit.as_ref()),
    };
    let last_state = last.map_or_else(|| json!({}), terminated);
    let ran = c.ran();
    let mut status = json!({
        "name": c.name,
        "image": c.image,
        "imageID": if ran { format!("docker-pullable://{}@sha256:{}", c.image, c.image_digest()) } else { String::new() },
        "ready": c.ready_since.is_some(),
        "started": matches!(c.step, Step::Running { .. }),
        "restartCount": c.restarts,
        "state": state,
        "lastState": last_state,
    });
    if ran {
        status["containerID"] = json!(format!("containerd://{}", c.id()));
    }
    status
}

/// The lowest free address of the pod network `10.244.0.0/16`.
fn allocate_ip(used: &mut HashSet<String>) -> String {
    (0u32..65_000)
        .map(|n| format!("10.244.{}.{}", n / 253, 2 + n % 253))
        .find(|ip| used.insert(ip.clone()))
        .unwrap_or_else(|| "10.244.255.254".to_owned())
}

/// The QoS class of a pod spec: BestEffort without requests or limits, Guaranteed when
/// every container limits CPU and memory and requests the same, Burstable otherwise.
pub(super) fn qos_class(spec: &Value) -> &'static str {
    let containers: Vec<&Value> = ["initContainers", "containers"]
        .iter()
        .flat_map(|list| spec[*list].as_array().into_iter().flatten())
        .collect();
    let mut any = false;
    let mut guaranteed = true;
    for c in containers {
        let (requests, limits) = (&c["resources"]["requests"], &c["resources"]["limits"]);
        let non_empty = |v: &Value| v.as_object().is_some_and(|m| !m.is_empty());
        any |= non_empty(requests) || non_empty(limits);
        for r in ["cpu", "memory"] {
            if limits[r].is_null() || (!requests[r].is_null() && requests[r] != limits[r]) {
                guaranteed = false;
            }
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}
