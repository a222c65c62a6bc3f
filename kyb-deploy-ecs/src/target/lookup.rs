//! What the service runs, read back from ECS: the rollout a lost answer may have started,
//! and the releases its deployments serve.

use kyb_deploy_core::{DeployHandle, Release, Result, Serving};
use time::OffsetDateTime;

use super::EcsTarget;

impl EcsTarget {
    /// The rollout of `desired` in the service's deployment list: ours runs a task
    /// definition equal to the one the deploy registers. The PRIMARY first; an older one may
    /// be ours already replaced (a circuit-breaker rollback), which following it reports.
    pub(super) async fn rollout_of(&self, desired: &Release) -> Result<Option<DeployHandle>> {
        let (service, current) = self.current().await?;
        let desired_spec = self.desired_spec(desired, current.as_ref())?;
        let mut deployments: Vec<_> = service.deployments().iter().collect();
        deployments.sort_by_key(|d| d.status.as_deref() != Some("PRIMARY"));
        for deployment in deployments {
            let (Some(id), Some(arn)) = (&deployment.id, &deployment.task_definition) else {
                continue;
            };
            let registered = self.task_definition(arn).await?;
            if registered.spec.same_as(&desired_spec) {
                return Ok(Some(DeployHandle {
                    rollout_id: id.clone(),
                    release: Release {
                        platform_ref: Some(arn.clone()),
                        ..desired.clone()
                    },
                    started_at: OffsetDateTime::now_utc(),
                    candidate_endpoint: None,
                    cursor: None,
                }));
            }
        }
        Ok(None)
    }

    /// The release of each of the service's deployments, with its task counts.
    pub(super) async fn deployments_serving(&self) -> Result<Vec<Serving>> {
        let service = self.service().await?;
        let mut serving = Vec::new();
        for deployment in service.deployments() {
            let Some(arn) = &deployment.task_definition else {
                continue;
            };
            let registered = self.task_definition(arn).await?;
            serving.push(Serving {
                release: self.release_of(&registered),
                running: u32::try_from(deployment.running_count).ok(),
                desired: u32::try_from(deployment.desired_count).ok(),
                primary: deployment.status.as_deref() == Some("PRIMARY"),
                state: deployment
                    .rollout_state
                    .as_ref()
                    .map(|s| s.as_str().to_owned()),
            });
        }
        Ok(serving)
    }
}
