//! A pod's `log` subresource (`kubectl logs`): the output of the Docker-backed runtime's
//! container, or a line saying what a virtual container runs.

use super::{Query, namespace, no_subresource};
use crate::k8s_sim::cluster::Cluster;
use crate::k8s_sim::error::ApiError;
use crate::k8s_sim::route::Target;

/// The log of the pod's container (`container`, or its only one), its last `tailLines`
/// lines when asked.
pub(crate) async fn pod_log(
    cluster: &Cluster,
    t: &Target,
    query: &Query,
) -> Result<String, ApiError> {
    if t.resource.kind != "Pod" {
        return Err(no_subresource(t.resource, "log"));
    }
    let name = t.name.as_deref().unwrap_or_default();
    let pod = cluster.lock().store.get(t.resource, namespace(t), name)?;
    let containers: Vec<&str> = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str())
        .collect();
    let container = match query.get("container").filter(|c| !c.is_empty()) {
        Some(asked) if containers.contains(&asked.as_str()) => asked.clone(),
        Some(asked) => {
            return Err(ApiError::bad_request(format!(
                "container {asked} is not valid for pod {name}"
            )));
        }
        None if containers.len() == 1 => containers[0].to_owned(),
        None => {
            return Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                containers.join(" ")
            )));
        }
    };
    let status = pod["status"]["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["name"] == container.as_str());
    let waiting = match status {
        None => Some("ContainerCreating".to_owned()),
        Some(s) if s["state"]["waiting"].is_object() && s["restartCount"] == 0 => Some(
            s["state"]["waiting"]["reason"]
                .as_str()
                .unwrap_or("ContainerCreating")
                .to_owned(),
        ),
        Some(_) => None,
    };
    if let Some(reason) = waiting {
        return Err(ApiError::bad_request(format!(
            "container \"{container}\" in pod \"{name}\" is waiting to start: {reason}"
        )));
    }
    let tail = query.get("tailLines").and_then(|n| n.parse::<usize>().ok());
    let first = containers.first().is_some_and(|c| *c == container);
    let uid = pod["metadata"]["uid"].as_str().unwrap_or_default();
    let text = match &cluster.docker {
        // Only a pod's first container runs for real.
        Some(docker) if first => docker
            .logs(uid)
            .await
            .map_err(|e| ApiError::internal(format!("reading the container's log failed: {e}")))?,
        _ => {
            let image = pod["spec"]["containers"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["name"] == container.as_str())
                .and_then(|c| c["image"].as_str())
                .unwrap_or_default();
            format!(
                "kyb-sim: container {container} of pod {}/{name} runs {image} virtually and writes no output\n",
                namespace(t)
            )
        }
    };
    Ok(match tail {
        Some(n) => {
            let lines: Vec<&str> = text.lines().collect();
            let kept = &lines[lines.len().saturating_sub(n)..];
            kept.iter().map(|l| format!("{l}\n")).collect()
        }
        None => text,
    })
}
