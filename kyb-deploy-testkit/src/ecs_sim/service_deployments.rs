//! The history of a service's deployments, as ListServiceDeployments,
//! DescribeServiceDeployments and DescribeServiceRevisions report it. The controller's own
//! [`Deployment`]s are dropped once they complete; their service deployments and revisions
//! stay here. A circuit-breaker rollback is not a service deployment of its own: the failed
//! one goes `ROLLBACK_IN_PROGRESS`, then `ROLLBACK_SUCCESSFUL` or `ROLLBACK_FAILED`.

use rand::rngs::StdRng;
use serde_json::{Value, json};

use super::model::{
    Ids, Phase, Service, ServiceDeploymentRecord, ServiceDeploymentStatus, ServiceRevision, Task,
};
use super::rollout::breaker_threshold;

/// Records the deployment just put first in `service.deployments`: a new service revision
/// with `settings`, and a service deployment from the revisions that run now. An unfinished
/// earlier service deployment is STOPPED: the new one replaces it.
pub(crate) fn started(
    service: &mut Service,
    tasks: &[Task],
    settings: Value,
    at: f64,
    rng: &mut StdRng,
) {
    let record_id = Ids::service_deployment(rng);
    let revision = service.deployments[0]
        .id
        .trim_start_matches("ecs-svc/")
        .to_owned();
    service.deployments[0].revision = revision.clone();
    service.deployments[0].record = record_id.clone();
    let mut sources: Vec<(String, u32)> = Vec::new();
    for deployment in &service.deployments[1..] {
        let running = tasks
            .iter()
            .filter(|t| t.deployment == deployment.id && t.is_active())
            .count();
        let running = u32::try_from(running).unwrap_or(u32::MAX);
        match sources
            .iter_mut()
            .find(|(id, _)| *id == deployment.revision)
        {
            Some((_, count)) => *count += running,
            None => sources.push((deployment.revision.clone(), running)),
        }
    }
    for record in service
        .history
        .iter_mut()
        .filter(|r| !r.status.is_finished())
    {
        record.status = ServiceDeploymentStatus::Stopped;
        record.status_reason = "Service deployment stopped: a newer deployment replaced it.".into();
        record.stopped_at = Some(at);
        record.updated_at = at;
    }
    service.revisions.push(ServiceRevision {
        id: revision.clone(),
        task_definition: service.deployments[0].task_definition.clone(),
        created_at: at,
        settings,
    });
    service.history.push(ServiceDeploymentRecord {
        id: record_id,
        deployment: service.deployments[0].id.clone(),
        created_at: at,
        updated_at: at,
        finished_at: None,
        stopped_at: None,
        status: ServiceDeploymentStatus::InProgress,
        status_reason: String::new(),
        sources,
        target: revision,
        desired: service.desired_count,
        config: service.config,
        rollback: None,
        failed_tasks: 0,
    });
}

/// The circuit breaker failed the service deployment `record`; `rollback_to` is the revision
/// of the rollback it started, if any.
pub(crate) fn tripped(
    service: &mut Service,
    record: &str,
    failed_tasks: u32,
    rollback_to: Option<String>,
    at: f64,
) {
    let Some(entry) = service.history.iter_mut().find(|r| r.id == record) else {
        return;
    };
    entry.updated_at = at;
    entry.failed_tasks = failed_tasks;
    if entry.status == ServiceDeploymentStatus::RollbackInProgress {
        entry.status = ServiceDeploymentStatus::RollbackFailed;
        entry.status_reason = "ECS deployment circuit breaker: the rollback failed.".into();
        entry.finished_at = Some(at);
        return;
    }
    match rollback_to {
        Some(revision) => {
            entry.status = ServiceDeploymentStatus::RollbackInProgress;
            entry.status_reason = "ECS deployment circuit breaker: rolling back.".into();
            entry.rollback = Some((at, revision));
        }
        None => {
            entry.status = ServiceDeploymentStatus::Stopped;
            entry.status_reason = "ECS deployment circuit breaker: tasks failed to start.".into();
            entry.stopped_at = Some(at);
        }
    }
}

/// The deployment of service deployment `record` completed: the rollout or its rollback.
pub(crate) fn completed(service: &mut Service, record: &str, at: f64) {
    let Some(entry) = service.history.iter_mut().find(|r| r.id == record) else {
        return;
    };
    entry.updated_at = at;
    entry.finished_at = Some(at);
    entry.status = if entry.status == ServiceDeploymentStatus::RollbackInProgress {
        ServiceDeploymentStatus::RollbackSuccessful
    } else {
        ServiceDeploymentStatus::Successful
    };
    entry.status_reason = match entry.status {
        ServiceDeploymentStatus::Successful => "Service deployment completed.".into(),
        _ => "Service deployment rolled back.".into(),
    };
}

/// The service was deleted: an unfinished service deployment stops.
pub(crate) fn deleted(service: &mut Service, at: f64) {
    for record in service
        .history
        .iter_mut()
        .filter(|r| !r.status.is_finished())
    {
        record.status = ServiceDeploymentStatus::Stopped;
        record.status_reason = "Service deployment stopped: the service was deleted.".into();
        record.stopped_at = Some(at);
        record.updated_at = at;
    }
}

/// `arn:aws:ecs:REGION:ACCOUNT:service-deployment/CLUSTER/SERVICE/ID`.
pub(crate) fn deployment_arn(service: &Service, id: &str) -> String {
    sibling_arn(service, "service-deployment", id)
}

/// `arn:aws:ecs:REGION:ACCOUNT:service-revision/CLUSTER/SERVICE/ID`.
pub(crate) fn revision_arn(service: &Service, id: &str) -> String {
    sibling_arn(service, "service-revision", id)
}

fn sibling_arn(service: &Service, kind: &str, id: &str) -> String {
    format!(
        "{}/{id}",
        service.arn.replacen(":service/", &format!(":{kind}/"), 1)
    )
}

/// A ListServiceDeployments entry.
pub(crate) fn brief(service: &Service, record: &ServiceDeploymentRecord) -> Value {
    let mut value = json!({
        "serviceDeploymentArn": deployment_arn(service, &record.id),
        "serviceArn": service.arn,
        "clusterArn": service.cluster_arn,
        "createdAt": record.created_at,
        "startedAt": record.created_at,
        "targetServiceRevisionArn": revision_arn(service, &record.target),
        "status": record.status.as_str(),
    });
    if let Some(at) = record.finished_at {
        value["finishedAt"] = json!(at);
    }
    if !record.status_reason.is_empty() {
        value["statusReason"] = json!(record.status_reason);
    }
    value
}

/// A DescribeServiceDeployments entry.
pub(crate) fn full(service: &Service, record: &ServiceDeploymentRecord, tasks: &[Task]) -> Value {
    let (mut running, mut pending) = (0, 0);
    for task in tasks
        .iter()
        .filter(|t| t.deployment == record.deployment && t.is_active())
    {
        running += u32::from(task.phase == Phase::Running);
        pending += u32::from(task.phase.is_pending());
    }
    // The failures of the deployment itself, not of its rollback; kept once it left the
    // controller.
    let failed = service
        .deployments
        .iter()
        .find(|d| d.id == record.deployment)
        .map_or(0, |d| d.failed_tasks)
        .max(record.failed_tasks);
    let breaker_status = match (record.config.circuit_breaker, record.status) {
        (false, _) => "DISABLED",
        (
            true,
            ServiceDeploymentStatus::RollbackInProgress
            | ServiceDeploymentStatus::RollbackSuccessful
            | ServiceDeploymentStatus::RollbackFailed,
        ) => "TRIGGERED",
        (true, ServiceDeploymentStatus::Stopped) if record.failed_tasks > 0 => "TRIGGERED",
        (true, status) if status.is_finished() => "MONITORING_COMPLETE",
        (true, _) => "MONITORING",
    };
    let mut value = brief(service, record);
    let fields = value
        .as_object_mut()
        .expect("a service deployment is an object");
    fields.remove("targetServiceRevisionArn");
    fields.insert("updatedAt".into(), json!(record.updated_at));
    fields.insert(
        "sourceServiceRevisions".into(),
        record
            .sources
            .iter()
            .map(|(id, count)| {
                json!({"arn": revision_arn(service, id), "requestedTaskCount": count,
                       "runningTaskCount": 0, "pendingTaskCount": 0})
            })
            .collect(),
    );
    fields.insert(
        "targetServiceRevision".into(),
        json!({"arn": revision_arn(service, &record.target), "requestedTaskCount": record.desired,
               "runningTaskCount": running, "pendingTaskCount": pending}),
    );
    fields.insert(
        "deploymentConfiguration".into(),
        json!({
            "deploymentCircuitBreaker": {"enable": record.config.circuit_breaker,
                                         "rollback": record.config.rollback},
            "maximumPercent": record.config.maximum_percent,
            "minimumHealthyPercent": record.config.minimum_healthy_percent,
        }),
    );
    fields.insert(
        "deploymentCircuitBreaker".into(),
        json!({"status": breaker_status, "failureCount": failed,
               "threshold": breaker_threshold(record.desired)}),
    );
    if let Some(at) = record.stopped_at {
        fields.insert("stoppedAt".into(), json!(at));
    }
    if !record.status.is_finished() {
        let scaled = running + pending >= record.desired;
        let stage = if scaled { "CLEAN_UP" } else { "SCALE_UP" };
        fields.insert("lifecycleStage".into(), json!(stage));
    }
    if let Some((started, revision)) = &record.rollback {
        fields.insert(
            "rollback".into(),
            json!({"reason": "ECS deployment circuit breaker: tasks failed to start.",
                   "startedAt": started, "serviceRevisionArn": revision_arn(service, revision)}),
        );
    }
    value
}

/// A DescribeServiceRevisions entry.
pub(crate) fn revision(service: &Service, revision: &ServiceRevision) -> Value {
    let mut value = revision.settings.clone();
    let fields = value
        .as_object_mut()
        .expect("revision settings are an object");
    fields.insert(
        "serviceRevisionArn".into(),
        json!(revision_arn(service, &revision.id)),
    );
    fields.insert("serviceArn".into(), json!(service.arn));
    fields.insert("clusterArn".into(), json!(service.cluster_arn));
    fields.insert("taskDefinition".into(), json!(revision.task_definition));
    fields.insert("createdAt".into(), json!(revision.created_at));
    fields.insert("guardDutyEnabled".into(), json!(false));
    value
}
