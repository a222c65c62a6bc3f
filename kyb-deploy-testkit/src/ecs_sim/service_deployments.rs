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

#[cfg(test)]
mod tests {
    use rand::SeedableRng as _;

    use super::*;
    use crate::ecs_sim::model::{Deployment, DeploymentConfig, RolloutState, ServiceStatus};

    fn deployment(id: &str) -> Deployment {
        Deployment {
            id: id.to_owned(),
            task_definition: "td:1".into(),
            failed_tasks: 0,
            created_at: 0.0,
            updated_at: 0.0,
            rollout_state: RolloutState::InProgress,
            rollout_state_reason: String::new(),
            is_rollback: false,
            revision: String::new(),
            record: String::new(),
        }
    }

    fn service() -> Service {
        Service {
            name: "s".into(),
            arn: "arn:aws:ecs:us-east-1:123456789012:service/c/s".into(),
            cluster_arn: "arn:aws:ecs:us-east-1:123456789012:cluster/c".into(),
            created_at: 0.0,
            desired_count: 2,
            task_definition: "td:1".into(),
            launch_type: "FARGATE".into(),
            platform_version: None,
            network_configuration: None,
            health_check_grace_period: None,
            load_balancers: json!([]),
            capacity_provider_strategy: None,
            deployment_controller: "ECS".into(),
            enable_execute_command: false,
            propagate_tags: "NONE".into(),
            enable_ecs_managed_tags: false,
            config: DeploymentConfig::default(),
            deployments: Vec::new(),
            events: Vec::new(),
            tags: Vec::new(),
            last_completed: None,
            steady: false,
            status: ServiceStatus::Active,
            deleted_at: None,
            revisions: Vec::new(),
            history: Vec::new(),
        }
    }

    /// Starts a deployment `id`; returns its service deployment's id.
    fn start(service: &mut Service, id: &str, at: f64, rng: &mut StdRng) -> String {
        service.deployments.insert(0, deployment(id));
        started(service, &[], json!({}), at, rng);
        service.deployments[0].record.clone()
    }

    fn status(service: &Service, record: &str) -> ServiceDeploymentStatus {
        service
            .history
            .iter()
            .find(|r| r.id == record)
            .unwrap()
            .status
    }

    #[test]
    fn service_deployments_move_through_ecs_statuses() {
        use ServiceDeploymentStatus::*;
        let mut rng = StdRng::seed_from_u64(1);
        let mut service = service();
        let first = start(&mut service, "ecs-svc/1", 1.0, &mut rng);
        assert_eq!(status(&service, &first), InProgress);
        completed(&mut service, &first, 2.0);
        assert_eq!(status(&service, &first), Successful);

        // Replaced before it completes: STOPPED.
        let replaced = start(&mut service, "ecs-svc/2", 3.0, &mut rng);
        let second = start(&mut service, "ecs-svc/3", 4.0, &mut rng);
        assert_eq!(status(&service, &replaced), Stopped);
        let sources = &service.history.last().unwrap().sources;
        assert_eq!(sources.len(), 2, "{sources:?}");

        // The breaker rolls back: ROLLBACK_IN_PROGRESS, then ROLLBACK_SUCCESSFUL.
        tripped(&mut service, &second, 3, Some("1".into()), 5.0);
        assert_eq!(status(&service, &second), RollbackInProgress);
        completed(&mut service, &second, 6.0);
        assert_eq!(status(&service, &second), RollbackSuccessful);

        // A rollback that fails too: ROLLBACK_FAILED; without a rollback: STOPPED.
        let third = start(&mut service, "ecs-svc/4", 7.0, &mut rng);
        tripped(&mut service, &third, 3, Some("1".into()), 8.0);
        tripped(&mut service, &third, 3, None, 9.0);
        assert_eq!(status(&service, &third), RollbackFailed);
        let fourth = start(&mut service, "ecs-svc/5", 10.0, &mut rng);
        tripped(&mut service, &fourth, 3, None, 11.0);
        assert_eq!(status(&service, &fourth), Stopped);

        // A deleted service stops what is still in progress.
        let fifth = start(&mut service, "ecs-svc/6", 12.0, &mut rng);
        deleted(&mut service, 13.0);
        assert_eq!(status(&service, &fifth), Stopped);
        assert_eq!(service.revisions.len(), 6);
        assert_eq!(
            revision_arn(&service, "6"),
            "arn:aws:ecs:us-east-1:123456789012:service-revision/c/s/6"
        );
        assert!(
            deployment_arn(&service, &fifth)
                .starts_with("arn:aws:ecs:us-east-1:123456789012:service-deployment/c/s/")
        );
    }
}
