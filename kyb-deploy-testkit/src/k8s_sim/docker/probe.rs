//! Readiness probes run against a real container: `httpGet` and `tcpSocket` on the
//! container port's published 127.0.0.1 port, `exec` through `docker exec`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::sim_runtime::docker_cli::{docker, http_status};

/// What a probe checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// `GET path` on the container port answers 200-399.
    Http { port: u16, path: String },
    /// A TCP connection to the container port opens.
    Tcp { port: u16 },
    /// The command exits 0 inside the container.
    Exec { command: Vec<String> },
    /// A probe whose port names no container port, or of a kind not run here (gRPC): it
    /// never passes, as on a real node.
    Failing,
}

/// A readiness probe, its times already in real time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Probe {
    pub(crate) action: Action,
    pub(crate) initial_delay: Duration,
    pub(crate) period: Duration,
    pub(crate) timeout: Duration,
    pub(crate) success_threshold: u32,
    pub(crate) failure_threshold: u32,
}

impl Probe {
    /// The probe of a container spec's `readinessProbe`, if it has one. `real` turns
    /// simulated durations into real ones; `min_period` bounds how often it runs.
    pub(crate) fn of(
        container: &Value,
        real: impl Fn(Duration) -> Duration,
        min_period: Duration,
    ) -> Option<Self> {
        let spec = container.get("readinessProbe").filter(|p| p.is_object())?;
        let seconds = |key: &str, default: u64| {
            Duration::from_secs(spec[key].as_u64().filter(|s| *s > 0).unwrap_or(default))
        };
        let count = |key: &str, default: u32| {
            spec[key]
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| *n > 0)
                .unwrap_or(default)
        };
        let port = |handler: &Value| container_port(container, &handler["port"]);
        let action = if let Some(get) = spec.get("httpGet") {
            let path = get["path"].as_str().filter(|p| p.starts_with('/'));
            match port(get) {
                Some(port) => Action::Http {
                    port,
                    path: path.unwrap_or("/").to_owned(),
                },
                None => Action::Failing,
            }
        } else if let Some(tcp) = spec.get("tcpSocket") {
            port(tcp).map_or(Action::Failing, |port| Action::Tcp { port })
        } else if let Some(exec) = spec["exec"]["command"].as_array() {
            let command = exec
                .iter()
                .filter_map(|word| word.as_str().map(str::to_owned))
                .collect();
            Action::Exec { command }
        } else {
            Action::Failing
        };
        Some(Self {
            action,
            initial_delay: real(Duration::from_secs(
                spec["initialDelaySeconds"].as_u64().unwrap_or(0),
            )),
            period: real(seconds("periodSeconds", 10)).max(min_period),
            // Not scaled: a container answers in real time, however fast the clock runs.
            timeout: seconds("timeoutSeconds", 1),
            success_threshold: count("successThreshold", 1),
            failure_threshold: count("failureThreshold", 3),
        })
    }

    /// The container port the probe connects to, if it connects to one.
    pub(crate) fn port(&self) -> Option<u16> {
        match self.action {
            Action::Http { port, .. } | Action::Tcp { port } => Some(port),
            Action::Exec { .. } | Action::Failing => None,
        }
    }
}

/// A port of a probe or a Service's `targetPort`: a number, or the name of one of the
/// container's `ports`.
pub(crate) fn container_port(container: &Value, port: &Value) -> Option<u16> {
    if let Some(number) = port.as_u64() {
        return u16::try_from(number).ok();
    }
    let name = port.as_str()?;
    if let Ok(number) = name.parse() {
        return Some(number);
    }
    container["ports"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == name)
        .and_then(|p| p["containerPort"].as_u64())
        .and_then(|n| u16::try_from(n).ok())
}

/// Runs the probe on the running container `name` and tells `verdict` each time readiness
/// changes (first `false` never: a container starts unready). Without a probe the
/// container is ready at once. Never returns.
pub(crate) async fn watch(
    program: &Path,
    name: &str,
    probe: Option<&Probe>,
    ports: &BTreeMap<u16, u16>,
    mut verdict: impl FnMut(bool),
) {
    let Some(probe) = probe else {
        verdict(true);
        return std::future::pending().await;
    };
    tokio::time::sleep(probe.initial_delay).await;
    let (mut successes, mut failures, mut ready) = (0_u32, 0_u32, false);
    loop {
        if check(program, name, probe, ports).await {
            successes += 1;
            failures = 0;
        } else {
            failures += 1;
            successes = 0;
        }
        if !ready && successes >= probe.success_threshold {
            ready = true;
            verdict(true);
        } else if ready && failures >= probe.failure_threshold {
            ready = false;
            verdict(false);
        }
        tokio::time::sleep(probe.period).await;
    }
}

async fn check(program: &Path, name: &str, probe: &Probe, ports: &BTreeMap<u16, u16>) -> bool {
    let host_port = probe.port().and_then(|port| ports.get(&port).copied());
    match (&probe.action, host_port) {
        (Action::Http { path, .. }, Some(port)) => http_status(port, path, probe.timeout)
            .await
            .is_some_and(|status| (200..400).contains(&status)),
        (Action::Tcp { .. }, Some(port)) => {
            let connect = tokio::net::TcpStream::connect(("127.0.0.1", port));
            matches!(
                tokio::time::timeout(probe.timeout, connect).await,
                Ok(Ok(_))
            )
        }
        (Action::Exec { command }, _) => {
            let args = ["exec", name].into_iter().map(str::to_owned);
            let run = docker(program, args.chain(command.iter().cloned()));
            matches!(tokio::time::timeout(probe.timeout, run).await, Ok(Ok(_)))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn probes_resolve_named_ports_scale_their_times_and_fill_defaults() {
        let container = json!({
            "ports": [{"name": "http", "containerPort": 8080}],
            "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"},
                               "initialDelaySeconds": 4, "periodSeconds": 2},
        });
        let probe = Probe::of(&container, |d| d / 2, Duration::from_millis(100)).unwrap();
        assert_eq!(
            probe,
            Probe {
                action: Action::Http {
                    port: 8080,
                    path: "/ready".into()
                },
                initial_delay: Duration::from_secs(2),
                period: Duration::from_secs(1),
                timeout: Duration::from_secs(1),
                success_threshold: 1,
                failure_threshold: 3,
            }
        );
        let unknown = json!({"readinessProbe": {"tcpSocket": {"port": "grpc"}}});
        let probe = Probe::of(&unknown, |d| d, Duration::ZERO).unwrap();
        assert_eq!(probe.action, Action::Failing);
        assert_eq!(probe.period, Duration::from_secs(10));
        assert_eq!(Probe::of(&json!({}), |d| d, Duration::ZERO), None);
    }
}
