//! One simulated task's or pod's container as the engine runs it: `docker run` with its
//! environment, labels and ports published on loopback, the published ports read back,
//! `docker wait` for its exit, and the state an agent shares with its controller.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use super::docker_cli::{docker, parse_host_port};

/// What `docker run` starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ContainerSpec {
    /// The container name, unique per simulator and task or pod.
    pub(crate) name: String,
    pub(crate) image: String,
    pub(crate) env: Vec<(String, String)>,
    /// Replaces the image's entrypoint when set.
    pub(crate) entrypoint: Option<String>,
    /// What follows the image on `docker run`.
    pub(crate) args: Vec<String>,
    /// Container ports published on ephemeral 127.0.0.1 ports.
    pub(crate) ports: Vec<u16>,
    pub(crate) labels: Vec<(String, String)>,
}

/// What an agent and its controller share: the agent writes, the controller reads.
pub(crate) type Shared<T> = Arc<Mutex<T>>;

/// Changes what `shared` holds (a poisoned lock is taken over: the data is plain state).
pub(crate) fn update<T>(shared: &Shared<T>, change: impl FnOnce(&mut T)) {
    change(&mut shared.lock().unwrap_or_else(PoisonError::into_inner));
}

/// `docker run`, then the published ports: the container ID and container port -> host
/// port, or the engine's message.
pub(crate) async fn start(
    program: &Path,
    spec: &ContainerSpec,
) -> Result<(String, BTreeMap<u16, u16>), String> {
    let id = docker(program, run_args(spec)).await?.trim().to_owned();
    let mut ports = BTreeMap::new();
    for port in &spec.ports {
        let published = docker(program, ["port", &spec.name, &format!("{port}/tcp")]).await?;
        let host = parse_host_port(&published)
            .ok_or_else(|| format!("container port {port} is not published"))?;
        ports.insert(*port, host);
    }
    Ok((id, ports))
}

/// Waits for the container to exit; its exit code. A wait that fails means the container
/// is gone, which both platforms report like a kill (137).
pub(crate) async fn wait_exit(program: &Path, name: &str) -> i32 {
    let exited = docker(program, ["wait", name]).await;
    exited
        .ok()
        .and_then(|out| out.trim().parse().ok())
        .unwrap_or(137)
}

#[cfg(feature = "k8s-sim")]
/// Stops the container as an orchestrator ends a workload: SIGTERM, then SIGKILL once
/// `grace` has passed (whole seconds, rounded up, as `docker stop` counts them).
pub(crate) async fn stop(program: &Path, name: &str, grace: std::time::Duration) {
    let seconds = grace.as_secs() + u64::from(grace.subsec_nanos() > 0);
    let _ = docker(program, ["stop", "--time", &seconds.to_string(), name]).await;
}

/// Removes the container by name, whatever state it is in (a `docker run` cut short may
/// still have created it); a container already gone is no error.
pub(crate) async fn remove(program: &Path, name: &str) {
    let _ = docker(program, ["rm", "-f", name]).await;
}

fn run_args(spec: &ContainerSpec) -> Vec<String> {
    let mut args = vec!["run".to_owned(), "-d".to_owned(), "--name".to_owned()];
    args.push(spec.name.clone());
    for (key, value) in &spec.labels {
        args.push("--label".into());
        args.push(format!("{key}={value}"));
    }
    for (key, value) in &spec.env {
        args.push("-e".into());
        args.push(format!("{key}={value}"));
    }
    for port in &spec.ports {
        args.push("-p".into());
        args.push(format!("127.0.0.1::{port}"));
    }
    if let Some(entrypoint) = &spec.entrypoint {
        args.push("--entrypoint".into());
        args.push(entrypoint.clone());
    }
    args.push(spec.image.clone());
    args.extend(spec.args.iter().cloned());
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_arguments_publish_ports_on_loopback_and_override_the_entrypoint() {
        let spec = ContainerSpec {
            name: "n".into(),
            image: "r/x:v1".into(),
            env: vec![("A".into(), "1".into())],
            entrypoint: Some("/bin/app".into()),
            args: vec!["serve".into(), "--fast".into()],
            ports: vec![8080, 9090],
            labels: vec![("io.kyb-sim.pod".into(), "p".into())],
        };
        assert_eq!(
            run_args(&spec).join(" "),
            "run -d --name n --label io.kyb-sim.pod=p -e A=1 -p 127.0.0.1::8080 \
             -p 127.0.0.1::9090 --entrypoint /bin/app r/x:v1 serve --fast"
        );
    }

    #[test]
    fn without_an_entrypoint_the_arguments_follow_the_image() {
        let spec = ContainerSpec {
            name: "n".into(),
            image: "r/x:v1".into(),
            env: Vec::new(),
            entrypoint: None,
            args: vec!["serve".into()],
            ports: vec![8080],
            labels: Vec::new(),
        };
        assert_eq!(
            run_args(&spec).join(" "),
            "run -d --name n -p 127.0.0.1::8080 r/x:v1 serve"
        );
    }
}
