//! Engine operations of the local Docker target: finding an environment's containers,
//! making sure an image is present, reading logs, probing ports.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use bollard::Docker;
use bollard::models::{
    ContainerInspectResponse, ContainerStateStatusEnum, ContainerSummaryStateEnum, ImageInspect,
};
use bollard::query_parameters::{
    CreateImageOptions, ListContainersOptions, LogsOptions, RemoveContainerOptions,
};
use futures::StreamExt;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use super::spec::{
    LABEL_IMAGE, LABEL_RELEASE, LABEL_ROLE, LABEL_STARTED_AT, LABEL_VERSION, Role, TargetSpec,
};
use crate::split_reference;
use kyb_deploy_core::Release;
use kyb_deploy_core::Version;
use kyb_deploy_core::{Error, Result};

/// An error of an engine call, with the engine's answer as its source.
pub(super) fn docker_error(message: impl Into<String>, source: bollard::errors::Error) -> Error {
    Error::Target {
        target: "docker".into(),
        message: message.into(),
        source: Some(Box::new(source)),
    }
}

/// Whether the engine answered 404.
pub(super) fn is_not_found(error: &bollard::errors::Error) -> bool {
    matches!(
        error,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// One of the environment's containers, as its labels and state describe it.
#[derive(Clone, Debug)]
pub(super) struct Managed {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) role: Option<Role>,
    pub(super) running: bool,
    pub(super) state: String,
    pub(super) release: Option<Release>,
    pub(super) image: Option<String>,
    pub(super) started_at: Option<OffsetDateTime>,
    /// `(host ip, host port, container port)` of each published port.
    pub(super) ports: Vec<(String, u16, u16)>,
}

impl Managed {
    /// The id as `docker ps` shows it.
    pub(super) fn short_id(&self) -> &str {
        short_id(&self.id)
    }

    /// `name (version)`, for messages.
    pub(super) fn describe(&self) -> String {
        match &self.release {
            Some(r) => format!("{} ({})", self.name, r.version),
            None => self.name.clone(),
        }
    }

    /// Whether it publishes `host_port`.
    pub(super) fn publishes(&self, host_port: u16) -> bool {
        self.ports.iter().any(|(_, host, _)| *host == host_port)
    }
}

/// The first 12 characters of a container id.
pub(super) fn short_id(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// The release a container's labels describe: the JSON label, else version and image.
pub(super) fn release_from_labels(labels: &HashMap<String, String>) -> Option<Release> {
    if let Some(release) = labels
        .get(LABEL_RELEASE)
        .and_then(|json| serde_json::from_str::<Release>(json).ok())
    {
        return Some(release);
    }
    let version = Version::parse(labels.get(LABEL_VERSION)?).ok()?;
    Some(Release::new(version, labels.get(LABEL_IMAGE)?.clone()))
}

/// The environment's containers (`all`: stopped ones too), newest first.
pub(super) async fn list_managed(
    client: &Docker,
    spec: &TargetSpec,
    all: bool,
) -> Result<Vec<Managed>> {
    list_filtered(client, spec.scope_filters(), all).await
}

/// Containers matching every label filter, newest first.
pub(super) async fn list_filtered(
    client: &Docker,
    labels: Vec<String>,
    all: bool,
) -> Result<Vec<Managed>> {
    let options = ListContainersOptions {
        all,
        filters: (!labels.is_empty()).then(|| HashMap::from([("label".to_owned(), labels)])),
        ..ListContainersOptions::default()
    };
    let summaries = client
        .list_containers(Some(options))
        .await
        .map_err(|e| docker_error("failed to list containers", e))?;
    let mut managed: Vec<Managed> = summaries
        .into_iter()
        .map(|s| {
            let labels = s.labels.unwrap_or_default();
            let role = match labels.get(LABEL_ROLE).map(String::as_str) {
                Some("candidate") => Some(Role::Candidate),
                Some("serving") => Some(Role::Serving),
                _ => None,
            };
            let started_at = labels
                .get(LABEL_STARTED_AT)
                .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
                .or_else(|| {
                    s.created
                        .and_then(|c| OffsetDateTime::from_unix_timestamp(c).ok())
                });
            let ports = s
                .ports
                .unwrap_or_default()
                .into_iter()
                .filter_map(|p| Some((p.ip.unwrap_or_default(), p.public_port?, p.private_port)))
                .collect();
            let name = s
                .names
                .unwrap_or_default()
                .first()
                .map(|n| n.trim_start_matches('/').to_owned())
                .unwrap_or_default();
            Managed {
                id: s.id.unwrap_or_default(),
                name,
                role,
                running: s.state == Some(ContainerSummaryStateEnum::RUNNING),
                state: s
                    .state
                    .map_or_else(|| "unknown".to_owned(), |st| st.to_string()),
                release: release_from_labels(&labels),
                image: labels.get(LABEL_IMAGE).cloned().or(s.image),
                started_at,
                ports,
            }
        })
        .collect();
    managed.sort_by_key(|m| std::cmp::Reverse(m.started_at));
    Ok(managed)
}

/// Inspects a container; `None` when it does not exist.
pub(super) async fn inspect(client: &Docker, id: &str) -> Result<Option<ContainerInspectResponse>> {
    match client
        .inspect_container(
            id,
            None::<bollard::query_parameters::InspectContainerOptions>,
        )
        .await
    {
        Ok(info) => Ok(Some(info)),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(docker_error(format!("failed to inspect container {id}"), e)),
    }
}

/// The host port the engine published for `port_key` (`8080/tcp`).
pub(super) fn published_port(info: &ContainerInspectResponse, port_key: &str) -> Option<u16> {
    info.network_settings
        .as_ref()?
        .ports
        .as_ref()?
        .get(port_key)?
        .as_ref()?
        .iter()
        .find_map(|b| b.host_port.as_deref()?.parse().ok())
}

/// Removes a container, stopping it first if it runs. Already gone counts as removed.
pub(super) async fn remove(client: &Docker, id: &str) -> Result<()> {
    let options = RemoveContainerOptions {
        force: true,
        v: true,
        ..RemoveContainerOptions::default()
    };
    match client.remove_container(id, Some(options)).await {
        Ok(()) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(docker_error(format!("failed to remove container {id}"), e)),
    }
}

/// The last `lines` lines of a container's output (stdout and stderr), best effort.
pub(super) async fn log_tail(client: &Docker, id: &str, lines: usize) -> Vec<String> {
    let options = LogsOptions {
        stdout: true,
        stderr: true,
        tail: lines.to_string(),
        ..LogsOptions::default()
    };
    let mut stream = client.logs(id, Some(options));
    let mut text = String::new();
    while let Some(Ok(chunk)) = stream.next().await {
        text.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
    }
    text.lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Makes sure `reference` is present in the engine, pulling it when it is not, and returns
/// its inspect data.
pub(super) async fn ensure_image(client: &Docker, reference: &str) -> Result<ImageInspect> {
    match client.inspect_image(reference).await {
        Ok(image) => return Ok(image),
        Err(e) if is_not_found(&e) => {}
        Err(e) => {
            return Err(docker_error(
                format!("failed to inspect image {reference}"),
                e,
            ));
        }
    }
    let (name, tag) = split_reference(reference);
    let options = CreateImageOptions {
        from_image: Some(name.to_owned()),
        tag: Some(tag.to_owned()),
        ..CreateImageOptions::default()
    };
    let mut pull = client.create_image(Some(options), None, None);
    while let Some(item) = pull.next().await {
        if let Err(e) = item {
            return Err(docker_error(
                format!(
                    "image {reference} is not in the local engine and pulling it failed; build and push it first, or check the reference"
                ),
                e,
            ));
        }
    }
    client.inspect_image(reference).await.map_err(|e| {
        docker_error(
            format!("image {reference} is still missing after pulling it"),
            e,
        )
    })
}

/// Whether a service listens behind `addr`. Docker's userland proxy accepts connections on
/// a published port even when nothing listens in the container, and then closes them at
/// once; so a connection only counts when it stays open for a moment (or the service
/// speaks first).
pub(super) async fn port_accepts(addr: SocketAddr) -> bool {
    let connect = tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(addr)).await;
    let Ok(Ok(mut stream)) = connect else {
        return false;
    };
    let mut buf = [0_u8; 1];
    match tokio::time::timeout(Duration::from_millis(250), stream.read(&mut buf)).await {
        // Still open and silent: something accepted the connection behind the proxy.
        Err(_) => true,
        Ok(Ok(n)) => n > 0,
        Ok(Err(_)) => false,
    }
}

pub(super) fn is_running(info: &ContainerInspectResponse) -> bool {
    info.state
        .as_ref()
        .is_some_and(|s| s.status == Some(ContainerStateStatusEnum::RUNNING))
}

pub(super) fn container_name(info: &ContainerInspectResponse) -> String {
    info.name
        .as_deref()
        .map(|n| n.trim_start_matches('/').to_owned())
        .or_else(|| info.id.as_deref().map(|id| short_id(id).to_owned()))
        .unwrap_or_default()
}

pub(super) fn role_of(info: &ContainerInspectResponse) -> Option<Role> {
    let role = info.config.as_ref()?.labels.as_ref()?.get(LABEL_ROLE)?;
    match role.as_str() {
        "candidate" => Some(Role::Candidate),
        "serving" => Some(Role::Serving),
        _ => None,
    }
}

/// `exited with code 3`, with the engine's error and an OOM kill when there are.
pub(super) fn exit_description(info: &ContainerInspectResponse) -> String {
    let state = info.state.clone().unwrap_or_default();
    let mut text = match state.status {
        Some(ContainerStateStatusEnum::EXITED | ContainerStateStatusEnum::DEAD) | None => {
            format!("exited with code {}", state.exit_code.unwrap_or(-1))
        }
        Some(other) => format!("is {other}"),
    };
    if state.oom_killed == Some(true) {
        text.push_str(" (killed: out of memory)");
    }
    if let Some(error) = state.error.filter(|e| !e.is_empty()) {
        text.push_str(&format!(" ({error})"));
    }
    text
}

/// The last health check's output, as `: <output>`.
pub(super) fn health_output(info: &ContainerInspectResponse) -> String {
    info.state
        .as_ref()
        .and_then(|s| s.health.as_ref())
        .and_then(|h| h.log.as_ref())
        .and_then(|log| log.last())
        .and_then(|r| r.output.as_deref())
        .map(|o| format!(": {}", o.trim()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_references_for_pulling() {
        assert_eq!(
            split_reference("127.0.0.1:5000/kyb/api@sha256:abc"),
            ("127.0.0.1:5000/kyb/api", "sha256:abc")
        );
        assert_eq!(
            split_reference("127.0.0.1:5000/kyb/api:v1"),
            ("127.0.0.1:5000/kyb/api", "v1")
        );
        assert_eq!(
            split_reference("127.0.0.1:5000/kyb/api"),
            ("127.0.0.1:5000/kyb/api", "latest")
        );
        assert_eq!(split_reference("kyb-api"), ("kyb-api", "latest"));
    }

    #[test]
    fn reads_the_release_from_labels() {
        let release = Release::new(Version::parse("v1").unwrap(), "kyb:v1");
        let labels = HashMap::from([(
            LABEL_RELEASE.to_owned(),
            serde_json::to_string(&release).unwrap(),
        )]);
        assert_eq!(release_from_labels(&labels), Some(release.clone()));
        let labels = HashMap::from([
            (LABEL_VERSION.to_owned(), "v1".to_owned()),
            (LABEL_IMAGE.to_owned(), "kyb:v1".to_owned()),
        ]);
        assert_eq!(release_from_labels(&labels), Some(release));
        assert_eq!(release_from_labels(&HashMap::new()), None);
    }

    #[tokio::test]
    async fn a_closed_port_does_not_accept() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // Accepted but silent: a listening service.
        assert!(port_accepts(addr).await);
        drop(listener);
        assert!(!port_accepts(addr).await);
    }
}
