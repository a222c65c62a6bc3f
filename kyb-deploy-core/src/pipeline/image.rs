//! The image stages: build, scan and push, or the prebuilt image.

use std::collections::BTreeMap;

use time::OffsetDateTime;

use super::run::Run;
use super::stage::StageError;
use super::{DeployRequest, Pipeline};
use crate::config::Environment;
use crate::image::BuiltImage;
use crate::image_builder::BuildRequest;
use crate::outcome::Outcome;
use crate::registry::PushedImage;
use crate::stage::Stage;
use crate::test_runner::TestSuite;
use crate::version_source::ResolvedVersion;

impl Pipeline {
    /// Builds, scans and pushes the image, returning the reference to deploy (by digest once
    /// pushed); without an image builder, the prebuilt image.
    pub(super) async fn produce_image(
        &self,
        request: &DeployRequest,
        resolved: &ResolvedVersion,
        run: &mut Run<'_>,
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
                run.stages.skip(stage, reason);
            }
            return Ok(request.prebuilt_image.clone().unwrap_or(default_ref));
        };
        let timeouts = &request.environment.settings.timeouts;
        // Tags naming this build are pushed with it; the others (`{environment}-latest`)
        // move only once the release is verified.
        let (immutable, mutable) =
            image_tags(&request.image.tags, resolved, &request.environment.name);

        let build = BuildRequest {
            repository: repository.clone(),
            version: resolved.version.clone(),
            commit: resolved.commit.clone(),
            context: request.project_dir.join(&request.image.context),
            dockerfile: request.image.dockerfile.clone(),
            build_args: request
                .image
                .build_args
                .iter()
                .map(|(k, v)| (k.clone(), fill(v, resolved, &request.environment.name)))
                .collect(),
            target: request.image.target.clone(),
            tags: immutable,
            labels: oci_labels(request, resolved),
            platforms: request.image.platforms.clone(),
        };
        let started = run.stages.begin(Stage::Build);
        let progress = self.events.for_stage(Stage::Build);
        if let Some(command) = &request.image.prebuild {
            // The prebuild (say, the static binary the Dockerfile copies) runs like a test
            // suite: a shell command with streamed output, stopped as a process group.
            let prebuild = TestSuite {
                name: "prebuild".into(),
                command: command.clone(),
                workdir: request.project_dir.clone(),
            };
            let result = run
                .control
                .run(
                    timeouts.build,
                    self.tests
                        .run(&prebuild, &progress, run.control.cancel_token()),
                )
                .await;
            let failure = match result {
                Ok(r) if r.passed => None,
                Ok(r) => Some(StageError::Failed(format!(
                    "the prebuild command {command:?} failed (exit code {})",
                    r.exit_code.map_or("none".into(), |c| c.to_string())
                ))),
                Err(e) => Some(e),
            };
            if let Some(e) = failure {
                run.stages.fail(started, e.message());
                return Err(e.before_deploy(Stage::Build));
            }
        }
        let built = match run
            .control
            .run(
                timeouts.build,
                builder.build(&build, &progress, run.control.cancel_token()),
            )
            .await
        {
            Ok(b) => b,
            Err(e) => {
                run.stages.fail(started, e.message());
                return Err(e.before_deploy(Stage::Build));
            }
        };
        run.stages.succeed(started);

        match &self.scanner {
            None => run.stages.skip(Stage::Scan, "no scanner configured"),
            Some(scanner) => {
                let started = run.stages.begin(Stage::Scan);
                let progress = self.events.for_stage(Stage::Scan);
                match run
                    .control
                    .run(
                        timeouts.build,
                        scanner.scan(&built, &progress, run.control.cancel_token()),
                    )
                    .await
                {
                    Ok(scan) if scan.passed => {
                        run.report.scan = Some(scan);
                        run.stages.succeed(started);
                    }
                    Ok(scan) => {
                        let shown: Vec<String> = scan
                            .findings
                            .iter()
                            .take(5)
                            .map(|f| format!("{} {}: {}", f.severity, f.id, f.title))
                            .collect();
                        let reason = format!(
                            "the image failed its scan with {} finding(s): {}{}",
                            scan.findings.len(),
                            shown.join("; "),
                            if scan.findings.len() > shown.len() {
                                "; ..."
                            } else {
                                ""
                            }
                        );
                        run.report.scan = Some(scan);
                        self.forced_or_stop(request.force, Stage::Scan, started, &reason, run)?;
                    }
                    Err(e) => {
                        run.stages.fail(started, e.message());
                        return Err(e.before_deploy(Stage::Scan));
                    }
                }
            }
        }

        let Some(registry) = &self.registry else {
            run.stages.skip(
                Stage::Push,
                "no registry configured; deploying the local image",
            );
            run.mutable_tags = (!mutable.is_empty()).then_some(MutableTags {
                built,
                pushed: None,
                tags: mutable,
            });
            return Ok(default_ref);
        };
        let started = run.stages.begin(Stage::Push);
        let progress = self.events.for_stage(Stage::Push);
        match run
            .control
            .run(
                timeouts.push,
                registry.push(&built, &progress, run.control.cancel_token()),
            )
            .await
        {
            Ok(pushed) => {
                run.stages.succeed(started);
                let reference = pushed.reference.clone();
                run.mutable_tags = (!mutable.is_empty()).then_some(MutableTags {
                    built,
                    pushed: Some(pushed),
                    tags: mutable,
                });
                Ok(reference)
            }
            Err(e) => {
                run.stages.fail(started, e.message());
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

/// `template` with `{version}`, `{commit}` (empty when unknown) and `{environment}` filled in.
fn fill(template: &str, resolved: &ResolvedVersion, environment: &str) -> String {
    template
        .replace("{version}", resolved.version.as_str())
        .replace("{commit}", resolved.commit.as_deref().unwrap_or_default())
        .replace("{environment}", environment)
}

/// The tags of a build from the configured templates (see [`fill`]), split into those that
/// name this build (templates with `{version}` or `{commit}`: pushed with it) and the
/// mutable ones (like `{environment}-latest`: moved once the release is verified). Templates
/// using `{commit}` are skipped when the commit is unknown, and name `<commit>-dirty` when
/// the working tree had uncommitted changes (the image is not that commit's). The version
/// comes first; duplicates are dropped.
fn image_tags(
    templates: &[String],
    resolved: &ResolvedVersion,
    environment: &str,
) -> (Vec<String>, Vec<String>) {
    let mut tags = vec![resolved.version.to_string()];
    let mut mutable = Vec::new();
    for template in templates {
        if template.contains("{commit}") && resolved.commit.is_none() {
            continue;
        }
        let template = if resolved.dirty {
            template.replace("{commit}", "{commit}-dirty")
        } else {
            template.clone()
        };
        let tag = fill(&template, resolved, environment);
        let names_the_build = template.contains("{version}") || template.contains("{commit}");
        let list = if names_the_build {
            &mut tags
        } else {
            &mut mutable
        };
        if !list.contains(&tag) {
            list.push(tag);
        }
    }
    mutable.retain(|tag| !tags.contains(tag));
    (tags, mutable)
}

/// The mutable tags of a run's image, moved once the release is verified: the built image
/// and, when it was pushed, where.
pub(super) struct MutableTags {
    built: BuiltImage,
    pushed: Option<PushedImage>,
    tags: Vec<String>,
}

impl Pipeline {
    /// Points the run's mutable tags at its verified image: in the registry when it was
    /// pushed, else on the engine. A failure is a warning naming the tags: the release is
    /// verified and serving either way.
    pub(super) async fn move_mutable_tags(&self, env: &Environment, run: &mut Run<'_>) {
        let Some(MutableTags {
            built,
            pushed,
            tags,
        }) = run.mutable_tags.take()
        else {
            return;
        };
        // In the registry the image was pushed to, else on the engine that built it.
        let registry = pushed.as_ref().zip(self.registry.as_ref());
        let builder = self.builder.as_ref().filter(|_| pushed.is_none());
        if registry.is_none() && builder.is_none() {
            return;
        }
        let started = run.stages.begin(Stage::Tag);
        let progress = self.events.for_stage(Stage::Tag);
        let limit = env.settings.timeouts.push;
        let moved = match (registry, builder) {
            (Some((pushed, registry)), _) => {
                run.control
                    .run(limit, registry.move_tags(pushed, &tags, &progress))
                    .await
            }
            (None, builder) => {
                let tag = async {
                    match builder {
                        Some(builder) => builder.tag(&built, &tags).await,
                        None => Ok(()),
                    }
                };
                run.control.run(limit, tag).await
            }
        };
        let what = format!("{}:{}", built.repository, tags.join(", "));
        match moved {
            Ok(()) => {
                progress.progress(format!("{what} now names the verified image"));
                run.stages.succeed(started);
            }
            Err(e) => {
                let message = format!(
                    "moving {what} to the verified image failed: {}; they still name the image they named before",
                    e.message()
                );
                run.stages.fail(started, &message);
                run.warn(Stage::Tag, message);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::Version;
    use crate::version_source::VersionOrigin;

    #[test]
    fn tags_fill_placeholders_and_skip_an_unknown_commit() {
        let templates = ["{version}", "{commit}", "{environment}-latest"].map(String::from);
        let mut resolved = ResolvedVersion {
            version: Version::parse("v1.2.3").unwrap(),
            origin: VersionOrigin::Explicit,
            commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
            dirty: false,
            branch: None,
        };
        let templates: Vec<String> = templates.into_iter().chain(["latest".into()]).collect();
        assert_eq!(
            image_tags(&templates, &resolved, "staging"),
            (
                vec![
                    "v1.2.3".to_owned(),
                    "0123456789abcdef0123456789abcdef01234567".to_owned()
                ],
                vec!["staging-latest".to_owned(), "latest".to_owned()]
            )
        );
        // A build from a dirty tree is not that commit's image.
        resolved.dirty = true;
        assert_eq!(
            image_tags(&templates, &resolved, "staging").0,
            ["v1.2.3", "0123456789abcdef0123456789abcdef01234567-dirty"]
        );
        resolved.commit = None;
        assert_eq!(
            image_tags(&templates, &resolved, "dev"),
            (
                vec!["v1.2.3".to_owned()],
                vec!["dev-latest".to_owned(), "latest".to_owned()]
            )
        );
    }
}
