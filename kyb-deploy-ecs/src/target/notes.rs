//! Verification notes: tags on the service naming the newest run that verified a release
//! and its task definition, so a run whose final record was lost still counts as verified.
//!
//! Tags are ECS's own mutable metadata on the service: any runner with the service's
//! permissions reads them, whatever machine it runs on, and only the newest note is kept.

use aws_sdk_ecs::types::Tag;
use kyb_deploy_core::{Error, Release, Result};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::EcsTarget;
use crate::client::call_error;

/// The id of the run that verified the release.
pub(crate) const RUN_TAG: &str = "kyb-deploy:verified-run";
/// The ARN of the verified task definition.
pub(crate) const TASK_DEFINITION_TAG: &str = "kyb-deploy:verified-task-definition";
/// When it was verified (RFC 3339), for people reading the tags.
pub(crate) const VERIFIED_AT_TAG: &str = "kyb-deploy:verified-at";

impl EcsTarget {
    /// Tags the service with run `run_id`'s note that it verified `release`, replacing the
    /// note of any earlier run.
    pub(super) async fn leave_note(&self, release: &Release, run_id: &str) -> Result<()> {
        let task_definition = release.platform_ref.as_deref().ok_or_else(|| {
            Error::target(
                "ecs",
                format!(
                    "{} has no task definition ARN, so no verification note can name it",
                    release.version
                ),
            )
        })?;
        let service_arn = self.service_arn().await?;
        let at = OffsetDateTime::now_utc()
            .format(&Rfc3339)
            .map_err(|e| Error::target("ecs", format!("formatting the time failed: {e}")))?;
        let tags: Vec<Tag> = [
            (RUN_TAG, run_id),
            (TASK_DEFINITION_TAG, task_definition),
            (VERIFIED_AT_TAG, at.as_str()),
        ]
        .into_iter()
        .map(|(key, value)| Tag::builder().key(key).value(value).build())
        .collect();
        // Tagging twice leaves the same tags: a retry after a lost answer is harmless.
        self.retry
            .run(|| {
                self.client
                    .tag_resource()
                    .resource_arn(&service_arn)
                    .set_tags(Some(tags.clone()))
                    .send()
            })
            .await
            .map_err(|e| call_error("TagResource", &e))?;
        Ok(())
    }

    /// The release run `run_id` verified, when the service's note names that run.
    pub(super) async fn read_note(&self, run_id: &str) -> Result<Option<Release>> {
        let service_arn = self.service_arn().await?;
        let out = self
            .retry
            .run(|| {
                self.client
                    .list_tags_for_resource()
                    .resource_arn(&service_arn)
                    .send()
            })
            .await
            .map_err(|e| call_error("ListTagsForResource", &e))?;
        let tag = |key: &str| {
            out.tags()
                .iter()
                .find(|t| t.key.as_deref() == Some(key))
                .and_then(|t| t.value.as_deref())
        };
        if tag(RUN_TAG) != Some(run_id) {
            return Ok(None);
        }
        let task_definition = tag(TASK_DEFINITION_TAG).ok_or_else(|| {
            Error::target(
                "ecs",
                format!(
                    "the service's tag {RUN_TAG} names run {run_id} but its tag {TASK_DEFINITION_TAG} is missing"
                ),
            )
        })?;
        let registered = self.task_definition(task_definition).await?;
        Ok(Some(Release {
            record_id: Some(run_id.to_owned()),
            ..self.release_of(&registered)
        }))
    }

    /// The service's ARN, which ECS tags are addressed by.
    async fn service_arn(&self) -> Result<String> {
        self.service().await?.service_arn.ok_or_else(|| {
            Error::target(
                "ecs",
                format!(
                    "DescribeServices returned service {} without its ARN",
                    self.spec.service
                ),
            )
        })
    }
}
