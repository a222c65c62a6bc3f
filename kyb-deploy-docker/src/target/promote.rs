//! Promotion: a verified candidate takes over the environment's stable port.

use std::net::SocketAddr;
use std::time::Duration;

use bollard::models::ContainerInspectResponse;
use bollard::query_parameters::{
    CreateContainerOptions, StartContainerOptions, StopContainerOptions,
};
use time::OffsetDateTime;

use super::engine::{
    self, Managed, container_name, docker_error, exit_description, is_running, role_of, short_id,
};
use super::spec::{self, Role};
use super::{DockerTarget, LOG_LINES, POLL};
use kyb_deploy_core::DeployHandle;
use kyb_deploy_core::StageProgress;
use kyb_deploy_core::{Error, Result};

/// How long a new serving container may take to accept connections.
const SERVING_START_LIMIT: Duration = Duration::from_secs(60);

/// When a container that has not started serving is given up on: [`SERVING_START_LIMIT`]
/// from now, computed without the overflow `Instant + Duration` can panic with.
fn serving_deadline() -> tokio::time::Instant {
    let now = tokio::time::Instant::now();
    now.checked_add(SERVING_START_LIMIT).unwrap_or(now)
}
/// How long a new serving container must keep running before the old one is removed.
const SERVING_SETTLE: Duration = Duration::from_secs(1);
/// How long a container gets to stop before the engine kills it.
const STOP_GRACE_SECONDS: i32 = 10;

impl DockerTarget {
    /// Moves the verified candidate of `handle` to the stable port: creates the serving
    /// container, stops (and keeps) the old one, starts the new one and waits until it
    /// serves, then removes the old one and the candidate. If the new one fails, the old
    /// one is started again and the error says so.
    pub(super) async fn promote_candidate(
        &self,
        handle: &DeployHandle,
        progress: &StageProgress,
    ) -> Result<()> {
        let client = self.client();
        let version = &handle.release.version;
        let id = handle.rollout_id.as_str();
        let candidate = engine::inspect(client, id).await?.ok_or_else(|| {
            Error::target(
                "docker",
                format!(
                    "candidate container {id} of {version} no longer exists; nothing was changed"
                ),
            )
        })?;
        let candidate_name = container_name(&candidate);
        if role_of(&candidate) == Some(Role::Serving) {
            progress.progress(format!("{candidate_name} of {version} serves already"));
            return Ok(());
        }
        if !is_running(&candidate) {
            return Err(Error::target(
                "docker",
                format!(
                    "candidate container {candidate_name} of {version} {}; nothing was changed",
                    exit_description(&candidate)
                ),
            ));
        }
        // The image id, not the reference: a tag moved since verification cannot change
        // what serves. The environment (secrets included) is the one that was verified.
        let image = candidate
            .image
            .clone()
            .unwrap_or_else(|| handle.release.image.clone());
        let env = candidate
            .config
            .as_ref()
            .and_then(|c| c.env.clone())
            .unwrap_or_default();
        let old: Vec<Managed> = engine::list_managed(client, &self.spec, true)
            .await?
            .into_iter()
            .filter(|m| m.role == Some(Role::Serving))
            .collect();
        let name = self.spec.container_name(&handle.release);
        let port = self.spec.docker.host_port;
        let body = self.spec.create_body(
            &image,
            env,
            self.spec
                .labels(&handle.release, Role::Serving, OffsetDateTime::now_utc()),
            self.spec.host_config(Role::Serving, Some(port)),
        );
        let options = CreateContainerOptions {
            name: Some(name.clone()),
            ..CreateContainerOptions::default()
        };
        let created = client
            .create_container(Some(options), body)
            .await
            .map_err(|e| {
                docker_error(
                    format!("failed to create serving container {name} of {version}; nothing was changed"),
                    e,
                )
            })?;
        let new_id = created.id;

        // Stop, but keep, the old serving containers until the new one is up.
        let mut stopped = Vec::new();
        for container in old.iter().filter(|m| m.running) {
            progress.progress(format!("stopping {}", container.describe()));
            let options = StopContainerOptions {
                t: Some(STOP_GRACE_SECONDS),
                ..StopContainerOptions::default()
            };
            if let Err(e) = client.stop_container(&container.id, Some(options)).await {
                let restored = self.restore(&new_id, &stopped).await;
                return Err(docker_error(
                    format!(
                        "failed to stop the serving container {}; {restored}",
                        container.describe()
                    ),
                    e,
                ));
            }
            stopped.push(container.clone());
        }

        progress.progress(format!("starting {name} of {version} on 127.0.0.1:{port}"));
        if let Err(e) = client
            .start_container(&new_id, None::<StartContainerOptions>)
            .await
        {
            let restored = self.restore(&new_id, &stopped).await;
            return Err(docker_error(
                format!(
                    "failed to start serving container {name} of {version} on 127.0.0.1:{port}; {restored}"
                ),
                e,
            ));
        }
        if let Err(why) = self.wait_serving(&new_id).await {
            let secret_values = self.secret_values(&candidate);
            let lines: Vec<String> = engine::log_tail(client, &new_id, LOG_LINES)
                .await
                .iter()
                .map(|l| spec::redact(l, &secret_values))
                .collect();
            let output = if lines.is_empty() {
                String::new()
            } else {
                format!("; last output: {}", lines.join(" | "))
            };
            let restored = self.restore(&new_id, &stopped).await;
            return Err(Error::target(
                "docker",
                format!(
                    "serving container {name} of {version} failed on 127.0.0.1:{port}: {why}{output}; {restored}"
                ),
            ));
        }

        for container in &old {
            if let Err(e) = engine::remove(client, &container.id).await {
                progress.warn(format!(
                    "removing the previous serving container {} failed: {e}",
                    container.describe()
                ));
            }
        }
        if let Err(e) = engine::remove(client, id).await {
            progress.warn(format!(
                "removing candidate container {candidate_name} failed: {e}"
            ));
        }
        progress.progress(format!("{name} of {version} serves {}", self.endpoint()));
        Ok(())
    }

    /// Waits until the serving container `id` accepts connections on the stable port and
    /// keeps running; `Err` carries why it did not.
    pub(super) async fn wait_serving(&self, id: &str) -> std::result::Result<(), String> {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.spec.docker.host_port));
        let deadline = serving_deadline();
        loop {
            let info = self.inspect_running(id).await?;
            if engine::port_accepts(addr).await {
                drop(info);
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!(
                    "it did not accept connections on {addr} within {}s",
                    SERVING_START_LIMIT.as_secs()
                ));
            }
            tokio::time::sleep(POLL).await;
        }
        tokio::time::sleep(SERVING_SETTLE).await;
        let info = self.inspect_running(id).await?;
        if info.restart_count.unwrap_or(0) > 0 {
            return Err("it restarted after it started".into());
        }
        if !engine::port_accepts(addr).await {
            return Err(format!("it stopped accepting connections on {addr}"));
        }
        Ok(())
    }

    /// Inspects a container that must be running; `Err` says how it is not.
    pub(super) async fn inspect_running(
        &self,
        id: &str,
    ) -> std::result::Result<ContainerInspectResponse, String> {
        match engine::inspect(self.client(), id).await {
            Ok(Some(info)) if is_running(&info) => Ok(info),
            Ok(Some(info)) => Err(exit_description(&info)),
            Ok(None) => Err("it disappeared".into()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Undoes a failed promotion: removes the new serving container and restarts the ones
    /// it replaced. Returns what it did, for the error message.
    pub(super) async fn restore(&self, new_id: &str, stopped: &[Managed]) -> String {
        let client = self.client();
        let mut done = Vec::new();
        if let Err(e) = engine::remove(client, new_id).await {
            done.push(format!(
                "removing the new container {} failed ({e})",
                short_id(new_id)
            ));
        }
        for old in stopped {
            match client
                .start_container(&old.id, None::<StartContainerOptions>)
                .await
            {
                Ok(()) if self.port_comes_back().await => done.push(format!(
                    "restarted the previous serving container {}, which serves again",
                    old.describe()
                )),
                Ok(()) => done.push(format!(
                    "restarted the previous serving container {}, but it does not accept connections on 127.0.0.1:{}",
                    old.describe(),
                    self.spec.docker.host_port
                )),
                Err(e) => done.push(format!(
                    "restarting the previous serving container {} failed ({e})",
                    old.describe()
                )),
            }
        }
        if stopped.is_empty() {
            done.push("no release served the environment before".into());
        }
        done.join("; ")
    }

    /// Waits until something accepts connections on the stable port again.
    async fn port_comes_back(&self) -> bool {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.spec.docker.host_port));
        let deadline = serving_deadline();
        while tokio::time::Instant::now() < deadline {
            if engine::port_accepts(addr).await {
                return true;
            }
            tokio::time::sleep(POLL).await;
        }
        false
    }
}
