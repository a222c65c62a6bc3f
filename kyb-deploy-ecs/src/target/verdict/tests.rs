//! Table tests of the rollout verdict: each row a DescribeServices answer and what it means.

use aws_sdk_ecs::types::{Deployment, DeploymentRolloutState, Service};

use super::*;

const BREAKER: &str = "ECS deployment circuit breaker: rolling back to deploymentId ecs-svc/old";

/// A deployment `id` with `status`, `state`, and `running` of `desired` tasks.
fn deployment(
    id: &str,
    status: &str,
    state: DeploymentRolloutState,
    running: i32,
    desired: i32,
) -> Deployment {
    Deployment::builder()
        .id(id)
        .status(status)
        .rollout_state(state)
        .running_count(running)
        .desired_count(desired)
        .task_definition(format!(
            "arn:aws:ecs:us-east-1:1:task-definition/kyb-api:{id}"
        ))
        .build()
}

fn with_reason(mut d: Deployment, reason: &str) -> Deployment {
    d.rollout_state_reason = Some(reason.into());
    d
}

fn service(desired: i32, deployments: Vec<Deployment>) -> Service {
    Service::builder()
        .desired_count(desired)
        .set_deployments(Some(deployments))
        .build()
}

/// A verdict in words, to compare rows.
fn words(v: &Verdict<'_>) -> String {
    match v {
        Verdict::InProgress => "in progress".into(),
        Verdict::Completed => "completed".into(),
        Verdict::Failed { why } => format!("failed: {why}"),
        Verdict::PlatformRollback { to, why } => format!(
            "platform rollback to {}: {}",
            to.id.as_deref().unwrap_or("?"),
            why.as_deref().unwrap_or("(ours gone)")
        ),
        Verdict::Replaced { gone } => format!("replaced (gone: {gone})"),
    }
}

use DeploymentRolloutState::{Completed, Failed, InProgress};

#[test]
fn every_rule_of_the_rollout_verdict() {
    let rows: Vec<(&str, Service, &str)> = vec![
        (
            "primary, completed, every task running",
            service(2, vec![deployment("ours", "PRIMARY", Completed, 2, 2)]),
            "completed",
        ),
        (
            "completed but a task is not running (yet)",
            service(2, vec![deployment("ours", "PRIMARY", Completed, 1, 2)]),
            "in progress",
        ),
        (
            "completed at 2 tasks while the service now wants 3",
            service(3, vec![deployment("ours", "PRIMARY", Completed, 2, 2)]),
            "in progress",
        ),
        (
            "completed, but another deployment became primary since",
            service(
                2,
                vec![
                    deployment("other", "PRIMARY", InProgress, 0, 2),
                    deployment("ours", "ACTIVE", Completed, 2, 2),
                ],
            ),
            "replaced (gone: false)",
        ),
        (
            "primary, still rolling out",
            service(
                2,
                vec![
                    deployment("ours", "PRIMARY", InProgress, 1, 2),
                    deployment("old", "ACTIVE", Completed, 2, 2),
                ],
            ),
            "in progress",
        ),
        (
            "rolling out, but no longer primary",
            service(
                2,
                vec![
                    deployment("other", "PRIMARY", InProgress, 0, 2),
                    deployment("ours", "ACTIVE", InProgress, 1, 2),
                ],
            ),
            "replaced (gone: false)",
        ),
        (
            "failed while a healthy deployment took over: ECS rolls back",
            service(
                2,
                vec![
                    with_reason(deployment("old", "PRIMARY", InProgress, 1, 2), BREAKER),
                    with_reason(
                        deployment("ours", "ACTIVE", Failed, 0, 2),
                        "tasks failed to start",
                    ),
                ],
            ),
            "platform rollback to old: tasks failed to start",
        ),
        (
            "failed and still primary: nothing rolls back",
            service(
                2,
                vec![with_reason(
                    deployment("ours", "PRIMARY", Failed, 0, 2),
                    "tasks failed to start",
                )],
            ),
            "failed: tasks failed to start",
        ),
        (
            "failed, and the primary failed too",
            service(
                2,
                vec![
                    deployment("other", "PRIMARY", Failed, 0, 2),
                    deployment("ours", "ACTIVE", Failed, 0, 2),
                ],
            ),
            "failed: ECS marked the deployment FAILED",
        ),
        (
            "gone, and the primary is a circuit-breaker rollback",
            service(
                2,
                vec![with_reason(
                    deployment("old", "PRIMARY", InProgress, 1, 2),
                    BREAKER,
                )],
            ),
            "platform rollback to old: (ours gone)",
        ),
        (
            "gone, and the primary only mentions the circuit breaker",
            service(
                2,
                vec![with_reason(
                    deployment("other", "PRIMARY", InProgress, 1, 2),
                    "ECS deployment circuit breaker: enabled",
                )],
            ),
            "replaced (gone: true)",
        ),
        (
            "gone, and the primary is rolling back for another reason",
            service(
                2,
                vec![with_reason(
                    deployment("other", "PRIMARY", InProgress, 1, 2),
                    "rolling back by request",
                )],
            ),
            "replaced (gone: true)",
        ),
        (
            "gone, and no deployment at all",
            service(2, vec![]),
            "replaced (gone: true)",
        ),
    ];
    for (case, service, expected) in rows {
        assert_eq!(words(&judge(&service, "ours")), expected, "{case}");
    }
}

#[test]
fn every_rule_of_the_platform_rollback_verdict() {
    let rows: Vec<(&str, Service, RollbackVerdict)> = vec![
        (
            "completed with every task running",
            service(2, vec![deployment("rb", "PRIMARY", Completed, 2, 2)]),
            RollbackVerdict::Completed,
        ),
        (
            "completed with a task missing",
            service(2, vec![deployment("rb", "PRIMARY", Completed, 1, 2)]),
            RollbackVerdict::InProgress,
        ),
        (
            "still rolling back",
            service(2, vec![deployment("rb", "PRIMARY", InProgress, 1, 2)]),
            RollbackVerdict::InProgress,
        ),
        (
            "failed with a reason",
            service(
                2,
                vec![with_reason(
                    deployment("rb", "PRIMARY", Failed, 0, 2),
                    "old image gone",
                )],
            ),
            RollbackVerdict::Failed("old image gone".into()),
        ),
        (
            "failed without a reason",
            service(2, vec![deployment("rb", "PRIMARY", Failed, 0, 2)]),
            RollbackVerdict::Failed("no reason given".into()),
        ),
        (
            "gone",
            service(2, vec![deployment("other", "PRIMARY", InProgress, 0, 2)]),
            RollbackVerdict::Replaced,
        ),
    ];
    for (case, service, expected) in rows {
        assert_eq!(judge_rollback(&service, "rb"), expected, "{case}");
    }
}
