//! Preflight checks of the local Docker target: the stable port and the secrets.

use super::DockerTarget;
use super::engine;
use kyb_deploy_core::Check;

impl DockerTarget {
    /// Checks that the stable port is free, or held by this environment's serving container.
    pub(super) async fn port_check(&self) -> Check {
        let port = self.spec.docker.host_port;
        let name = "docker host port";
        let env = &self.spec.environment;
        let fix = format!(
            "stop what holds 127.0.0.1:{port}, or set environments.{env}.docker.host_port to a free port"
        );
        match self.serving().await {
            Ok(Some(serving)) if serving.publishes(port) => {
                return Check::pass(
                    name,
                    format!("127.0.0.1:{port} is served by {}", serving.describe()),
                );
            }
            Ok(_) => {}
            Err(e) => return Check::fail(name, format!("listing containers failed: {e}"), fix),
        }
        let holders = engine::list_filtered(self.client(), Vec::new(), false)
            .await
            .unwrap_or_default();
        if let Some(holder) = holders.iter().find(|c| c.publishes(port)) {
            return Check::fail(
                name,
                format!(
                    "127.0.0.1:{port} is held by container {} ({}), which is not the serving container of {env}",
                    holder.name,
                    holder.short_id()
                ),
                fix,
            );
        }
        match std::net::TcpListener::bind(("127.0.0.1", port)) {
            Ok(_) => Check::pass(name, format!("127.0.0.1:{port} is free")),
            Err(e) => Check::fail(
                name,
                format!("127.0.0.1:{port} is in use by another process ({e})"),
                fix,
            ),
        }
    }

    /// Checks that every secret's source is readable, without keeping a value.
    pub(super) fn secrets_check(&self) -> Check {
        let keys: Vec<&str> = self
            .spec
            .docker
            .secrets
            .keys()
            .map(String::as_str)
            .collect();
        match self.spec.resolve_secrets() {
            Ok(_) => Check::pass(
                "docker secrets",
                format!("{} available: {}", keys.len(), keys.join(", ")),
            ),
            Err(e) => Check::fail(
                "docker secrets",
                e.to_string(),
                "set the variable or create the file the secret names",
            ),
        }
    }
}
