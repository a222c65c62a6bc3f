//! Candidates: a release started beside the serving container on an ephemeral port, and
//! followed until it is ready or has failed.

use std::net::SocketAddr;

use bollard::models::{
    ContainerInspectResponse, ContainerStateStatusEnum, HealthStatusEnum, ImageInspect,
};
use bollard::query_parameters::{CreateContainerOptions, StartContainerOptions};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use url::Url;

use super::engine::{
    self, container_name, docker_error, exit_description, health_output, is_running, role_of,
    short_id,
};
use super::spec::{self, Role};
use super::{DockerTarget, LOG_LINES, POLL, local_url};
use kyb_deploy_core::Release;
use kyb_deploy_core::StageProgress;
use kyb_deploy_core::{DeployHandle, RolloutOutcome};
use kyb_deploy_core::{Error, Result};

impl DockerTarget {
    /// Removes candidates that an earlier, interrupted or failed run left behind.
    pub(super) async fn remove_stale_candidates(&self) -> Result<()> {
        let stale = engine::list_managed(self.client(), &self.spec, true).await?;
        for candidate in stale.iter().filter(|m| m.role == Some(Role::Candidate)) {
            engine::remove(self.client(), &candidate.id).await?;
        }
        Ok(())
    }

    /// Refuses an image that would run as root while the environment requires non-root.
    pub(super) fn check_user(&self, reference: &str, image: &ImageInspect) -> Result<()> {
        let user = image.config.as_ref().and_then(|c| c.user.as_deref());
        if self.spec.docker.security.non_root && spec::runs_as_root(user) {
            let shown = user.filter(|u| !u.is_empty()).unwrap_or("root (no USER)");
            return Err(Error::target(
                "docker",
                format!(
                    "image {reference} runs as {shown}, and environments.{env}.docker.security.non_root refuses root; add a non-root USER to the image (for example USER 10001:10001), or set non_root = false",
                    env = self.spec.environment
                ),
            ));
        }
        Ok(())
    }

    /// Starts a candidate container of `release` on an ephemeral port of 127.0.0.1.
    pub(super) async fn start_candidate(&self, release: &Release) -> Result<DeployHandle> {
        let client = self.client();
        // Everything that can refuse the release comes before the first change.
        let secrets = self.spec.resolve_secrets()?;
        let image = engine::ensure_image(client, &release.image).await?;
        self.check_user(&release.image, &image)?;
        self.remove_stale_candidates().await?;
        let now = OffsetDateTime::now_utc();
        let name = self.spec.container_name(release);
        let body = self.spec.create_body(
            &release.image,
            self.spec.container_env(&secrets),
            self.spec.labels(release, Role::Candidate, now),
            self.spec.host_config(Role::Candidate, None),
        );
        drop(secrets);
        let options = CreateContainerOptions {
            name: Some(name.clone()),
            ..CreateContainerOptions::default()
        };
        let created = client
            .create_container(Some(options), body)
            .await
            .map_err(|e| {
                docker_error(
                    format!(
                        "failed to create candidate container {name} of {}",
                        release.version
                    ),
                    e,
                )
            })?;
        if let Err(e) = client
            .start_container(&created.id, None::<StartContainerOptions>)
            .await
        {
            // Best effort: a container that never started serves nothing.
            let _ = engine::remove(client, &created.id).await;
            return Err(docker_error(
                format!(
                    "failed to start candidate container {name} of {}",
                    release.version
                ),
                e,
            ));
        }
        let info = engine::inspect(client, &created.id).await?;
        let port = info
            .as_ref()
            .and_then(|i| engine::published_port(i, &self.spec.port_key()));
        // A candidate that already exited has no published port; `wait` reports its exit.
        if port.is_none() && info.as_ref().is_some_and(is_running) {
            let _ = engine::remove(client, &created.id).await;
            return Err(Error::target(
                "docker",
                format!(
                    "the engine published no port for {} of candidate container {name}",
                    self.spec.port_key()
                ),
            ));
        }
        Ok(DeployHandle {
            rollout_id: short_id(&created.id).to_owned(),
            release: release.clone(),
            started_at: now,
            candidate_endpoint: port.map(local_url),
            cursor: None,
        })
    }

    /// Ends a failed candidate: quotes its last output, removes it, and says what still
    /// serves. A serving container (a rollback to the release that already serves) is
    /// never removed here.
    pub(super) async fn fail_candidate(
        &self,
        info: &ContainerInspectResponse,
        head: String,
        progress: &StageProgress,
    ) -> RolloutOutcome {
        let client = self.client();
        let id = info.id.clone().unwrap_or_default();
        let name = container_name(info);
        let secret_values = self.secret_values(info);
        let lines: Vec<String> = engine::log_tail(client, &id, LOG_LINES)
            .await
            .iter()
            .map(|l| spec::redact(l, &secret_values))
            .collect();
        for line in &lines {
            progress.log(line.clone());
        }
        // The head may quote a health check's output, which is the container's own words.
        let mut reason = spec::redact(&head, &secret_values);
        if lines.is_empty() {
            reason.push_str("; it wrote no output");
        } else {
            reason.push_str(&format!("; last output: {}", lines.join(" | ")));
        }
        if role_of(info) == Some(Role::Candidate) {
            match engine::remove(client, &id).await {
                Ok(()) => reason.push_str(&format!("; removed the failed candidate {name}")),
                Err(e) => reason.push_str(&format!(
                    "; removing the failed candidate {name} failed ({e}); the next deployment removes it"
                )),
            }
            match self.serving().await {
                Ok(Some(serving)) => reason.push_str(&format!(
                    "; {} still serves 127.0.0.1:{}",
                    serving.describe(),
                    self.spec.docker.host_port
                )),
                Ok(None) => reason.push_str("; no release served the environment before"),
                Err(_) => {}
            }
        }
        RolloutOutcome::Failed {
            reason,
            platform_rolled_back_to: None,
        }
    }

    /// The values of the environment's secrets in a container's environment, to redact
    /// them from its output.
    pub(super) fn secret_values(&self, info: &ContainerInspectResponse) -> Vec<String> {
        let env = info
            .config
            .as_ref()
            .and_then(|c| c.env.clone())
            .unwrap_or_default();
        let env = spec::parse_env(&env);
        self.spec
            .docker
            .secrets
            .keys()
            .filter_map(|k| env.get(k).cloned())
            .collect()
    }

    /// Follows a candidate until it runs and is healthy (with a health check) or accepts
    /// connections (without one); a candidate that exits or turns unhealthy fails.
    pub(super) async fn wait_candidate(
        &self,
        handle: &DeployHandle,
        progress: &StageProgress,
        cancel: &CancellationToken,
    ) -> Result<RolloutOutcome> {
        let id = handle.rollout_id.as_str();
        let version = &handle.release.version;
        let addr = handle
            .candidate_endpoint
            .as_ref()
            .and_then(Url::port)
            .map(|p| SocketAddr::from(([127, 0, 0, 1], p)));
        let mut phase = String::new();
        loop {
            if cancel.is_cancelled() {
                return Err(Error::Cancelled);
            }
            let Some(info) = engine::inspect(self.client(), id).await? else {
                let reason = format!(
                    "container {id} of {version} disappeared before it was ready (removed outside kyb-deploy?)"
                );
                return Ok(RolloutOutcome::Failed {
                    reason,
                    platform_rolled_back_to: None,
                });
            };
            let name = container_name(&info);
            let state = info.state.clone().unwrap_or_default();
            let health = state
                .health
                .as_ref()
                .and_then(|h| h.status)
                .filter(|s| !matches!(s, HealthStatusEnum::NONE | HealthStatusEnum::EMPTY));
            let now = match state.status.unwrap_or(ContainerStateStatusEnum::EMPTY) {
                ContainerStateStatusEnum::RUNNING => match (health, addr) {
                    (Some(HealthStatusEnum::HEALTHY), _) => {
                        progress.progress(format!("{name} of {version} is healthy"));
                        return Ok(RolloutOutcome::Completed);
                    }
                    (Some(HealthStatusEnum::UNHEALTHY), _) => {
                        let head = format!(
                            "container {name} of {version} became unhealthy{}",
                            health_output(&info)
                        );
                        return Ok(self.fail_candidate(&info, head, progress).await);
                    }
                    (Some(_), _) => "running; waiting for its health check".to_owned(),
                    (None, Some(addr)) => {
                        // Re-inspected after the probe: a container that crashes right after
                        // it opened its port must not count as ready.
                        if engine::port_accepts(addr).await
                            && engine::inspect(self.client(), id)
                                .await?
                                .as_ref()
                                .is_some_and(is_running)
                        {
                            progress.progress(format!(
                                "{name} of {version} accepts connections on {addr}"
                            ));
                            return Ok(RolloutOutcome::Completed);
                        }
                        format!("running; waiting for it to accept connections on {addr}")
                    }
                    (None, None) => {
                        return Err(Error::target(
                            "docker",
                            format!("container {name} runs but publishes no port"),
                        ));
                    }
                },
                ContainerStateStatusEnum::EXITED | ContainerStateStatusEnum::DEAD => {
                    let head = format!("container {name} of {version} {}", exit_description(&info));
                    return Ok(self.fail_candidate(&info, head, progress).await);
                }
                other => format!("{other}"),
            };
            if now != phase {
                progress.progress(format!("{name} of {version}: {now}"));
                phase = now;
            }
            tokio::select! {
                () = cancel.cancelled() => return Err(Error::Cancelled),
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }
}
