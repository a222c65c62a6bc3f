//! The image stages: build, scan and push, or the prebuilt image.

use std::collections::BTreeMap;

use time::OffsetDateTime;

use super::stage::{RunControl, StageLog};
use super::{DeployRequest, Pipeline, RunReport};
use crate::event::Stage;
use crate::git::ResolvedVersion;
use crate::image::BuildRequest;
use crate::outcome::Outcome;

impl Pipeline {
    /// Builds, scans and pushes the image, returning the reference to deploy (by digest once
    /// pushed); without an image builder, the prebuilt image.
    pub(super) async fn produce_image(
        &self,
        request: &DeployRequest,
        resolved: &ResolvedVersion,
        control: &RunControl,
        stages: &mut StageLog<'_>,
        report: &mut RunReport,
    ) -> Result<String, Outcome> {
        let repository = &request.image.repository;
        let default_ref = format!("{repository}:{}", resolved.version);
        let Some(builder) = self.builder.as_ref().filter(|_| !request.dry_run) else {
            let reason = if request.dry_run {
                "dry run"
            } else {
                "no image builder; deploying a prebuilt image"
            };
            for stage in [Stage::Build, Stage::Scan, Stage::Push] {
                stages.skip(stage, reason);
            }
            return Ok(request.prebuilt_image.clone().unwrap_or(default_ref));
        };
        let timeouts = &request.environment.settings.timeouts;

        let build = BuildRequest {
            repository: repository.clone(),
            version: resolved.version.clone(),
            commit: resolved.commit.clone(),
            context: request.project_dir.join(&request.image.context),
            dockerfile: request.image.dockerfile.clone(),
            build_args: request.image.build_args.clone(),
            target: request.image.target.clone(),
            tags: vec![resolved.version.to_string()],
            labels: oci_labels(request, resolved),
        };
        let started = stages.begin(Stage::Build);
        let progress = self.events.for_stage(Stage::Build);
        let built = match control
            .run(
                timeouts.build,
                builder.build(&build, &progress, control.cancel_token()),
            )
            .await
        {
            Ok(b) => b,
            Err(e) => {
                stages.fail(started, e.message());
                return Err(e.before_deploy(Stage::Build));
            }
        };
        stages.succeed(started);

        match &self.scanner {
            None => stages.skip(Stage::Scan, "no scanner configured"),
            Some(scanner) => {
                let started = stages.begin(Stage::Scan);
                let progress = self.events.for_stage(Stage::Scan);
                match control
                    .run(
                        timeouts.build,
                        scanner.scan(&built, &progress, control.cancel_token()),
                    )
                    .await
                {
                    Ok(scan) if scan.passed => {
                        report.scan = Some(scan);
                        stages.succeed(started);
                    }
                    Ok(scan) => {
                        let reason = format!(
                            "image scan found {} finding(s) at or above the failing severity",
                            scan.findings.len()
                        );
                        report.scan = Some(scan);
                        self.forced_or_stop(
                            request.force,
                            Stage::Scan,
                            started,
                            &reason,
                            stages,
                            report,
                        )?;
                    }
                    Err(e) => {
                        stages.fail(started, e.message());
                        return Err(e.before_deploy(Stage::Scan));
                    }
                }
            }
        }

        let Some(registry) = &self.registry else {
            stages.skip(
                Stage::Push,
                "no registry configured; deploying the local image",
            );
            return Ok(default_ref);
        };
        let started = stages.begin(Stage::Push);
        let progress = self.events.for_stage(Stage::Push);
        match control
            .run(
                timeouts.push,
                registry.push(&built, &progress, control.cancel_token()),
            )
            .await
        {
            Ok(pushed) => {
                stages.succeed(started);
                Ok(pushed.reference)
            }
            Err(e) => {
                stages.fail(started, e.message());
                Err(e.before_deploy(Stage::Push))
            }
        }
    }
}

/// OCI image labels for a build.
fn oci_labels(request: &DeployRequest, resolved: &ResolvedVersion) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    labels.insert(
        "org.opencontainers.image.version".into(),
        resolved.version.to_string(),
    );
    labels.insert(
        "org.opencontainers.image.title".into(),
        request.project.name.clone(),
    );
    if let Ok(created) =
        OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339)
    {
        labels.insert("org.opencontainers.image.created".into(), created);
    }
    if let Some(commit) = &resolved.commit {
        labels.insert("org.opencontainers.image.revision".into(), commit.clone());
    }
    if let Some(source) = &request.project.source {
        labels.insert("org.opencontainers.image.source".into(), source.clone());
    }
    labels
}
