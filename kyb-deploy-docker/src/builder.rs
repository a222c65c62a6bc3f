//! The image builder over the engine's build API (the classic builder; no BuildKit needed).

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};

use async_trait::async_trait;
use bollard::query_parameters::{BuildImageOptions, TagImageOptions};
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::context::{ContextSummary, write_context};
use super::{DockerEngine, split_reference};
use kyb_deploy_core::Check;
use kyb_deploy_core::StageProgress;
use kyb_deploy_core::redact_text;
use kyb_deploy_core::{BuildRequest, BuiltImage, ImageBuilder, PlatformImage};
use kyb_deploy_core::{Error, Result};

mod output;
mod platform;

use self::output::BuildOutput;
pub(crate) use self::platform::Platform;

/// How the classic builder fails when an image is removed while it searches its build cache
/// (it lists the images, then loads each): a race with another client, not a build error.
const CACHE_RACE: &str = "unable to find image";

/// How many times a build that lost that race is run.
const BUILD_ATTEMPTS: u32 = 3;

/// Builds images with the Docker engine.
///
/// Several platforms are built one after the other, each with the engine's `platform`
/// parameter and its own local tag (`<repository>:<version>-linux-arm64`); the registry
/// then pushes them as one image index. Every image is inspected after its build: one whose
/// platform is not the requested one is never returned.
#[derive(Clone, Debug)]
pub struct DockerImageBuilder {
    engine: DockerEngine,
}

impl DockerImageBuilder {
    /// A builder using `engine`.
    pub fn new(engine: DockerEngine) -> Self {
        Self { engine }
    }

    async fn build_all(
        &self,
        request: &BuildRequest,
        progress: &StageProgress,
    ) -> Result<BuiltImage> {
        let dockerfile = checked_dockerfile(request)?;
        let mut platforms: Vec<Platform> = Vec::new();
        for text in &request.platforms {
            let platform = Platform::parse(text).map_err(|message| Error::Config { message })?;
            if platforms.contains(&platform) {
                return Err(Error::Config {
                    message: format!("image.platforms lists {platform} twice"),
                });
            }
            platforms.push(platform);
        }
        let tags = if request.tags.is_empty() {
            vec![request.version.to_string()]
        } else {
            request.tags.clone()
        };
        let repository = &request.repository;
        if platforms.len() <= 1 {
            let references: Vec<String> =
                tags.iter().map(|t| format!("{repository}:{t}")).collect();
            let id = self
                .build_checked(
                    request,
                    &dockerfile,
                    &references,
                    platforms.first(),
                    progress,
                )
                .await?;
            return Ok(BuiltImage {
                id,
                repository: repository.clone(),
                tags,
                platforms: Vec::new(),
            });
        }
        let mut images = Vec::new();
        for platform in &platforms {
            let local_tag = format!("{repository}:{}-{}", request.version, platform.tag_suffix());
            progress.progress(format!("building {platform} as {local_tag}"));
            let id = self
                .build_checked(
                    request,
                    &dockerfile,
                    std::slice::from_ref(&local_tag),
                    Some(platform),
                    progress,
                )
                .await?;
            images.push(PlatformImage {
                platform: platform.to_string(),
                id,
                local_tag,
            });
        }
        Ok(BuiltImage {
            id: images[0].id.clone(),
            repository: repository.clone(),
            tags,
            platforms: images,
        })
    }

    /// Builds and checks that the image has the requested platform (the engine's own when
    /// none is requested). The classic builder's cache ignores the platform, so a mismatch
    /// is first retried without the cache.
    async fn build_checked(
        &self,
        request: &BuildRequest,
        dockerfile: &Path,
        references: &[String],
        platform: Option<&Platform>,
        progress: &StageProgress,
    ) -> Result<String> {
        let expected = match platform {
            Some(p) => Some(p.clone()),
            None => self.engine_platform().await,
        };
        let build = |no_cache| {
            self.build_retrying(
                request, dockerfile, references, platform, no_cache, progress,
            )
        };
        let id = build(false).await?;
        let Some(expected) = expected else {
            return Ok(id);
        };
        let actual = self.image_platform(&id).await?;
        if expected.accepts(&actual) {
            return Ok(id);
        }
        progress.warn(format!(
            "the build of {expected} gave a {actual} image (the classic builder's cache ignores \
             the platform); building again without the cache"
        ));
        let id = build(true).await?;
        let actual = self.image_platform(&id).await?;
        if expected.accepts(&actual) {
            return Ok(id);
        }
        Err(Error::seam(
            "image build",
            format!(
                "cannot build platform {expected} here: the engine produced a {actual} image \
                 even without its build cache. The classic builder honours the platform only \
                 for `FROM scratch` and for base images published for {expected}; build this \
                 platform with BuildKit (docker buildx) or on a {expected} machine"
            ),
        ))
    }

    /// The engine's own platform, when it says.
    async fn engine_platform(&self) -> Option<Platform> {
        let version = self.engine.client().version().await.ok()?;
        Some(Platform::new(&version.os?, &version.arch?, None))
    }

    async fn image_platform(&self, id: &str) -> Result<Platform> {
        let image = self
            .engine
            .client()
            .inspect_image(id)
            .await
            .map_err(|e| build_error(format!("failed to inspect the built image {id}: {e}")))?;
        Ok(Platform::new(
            image.os.as_deref().unwrap_or("unknown"),
            image.architecture.as_deref().unwrap_or("unknown"),
            image.variant.as_deref(),
        ))
    }

    /// Builds, running the build again when it lost a race with an image removal.
    async fn build_retrying(
        &self,
        request: &BuildRequest,
        dockerfile: &Path,
        references: &[String],
        platform: Option<&Platform>,
        no_cache: bool,
        progress: &StageProgress,
    ) -> Result<String> {
        let mut attempt = 1;
        loop {
            let last = attempt == BUILD_ATTEMPTS;
            let options = (platform, no_cache, last);
            match self
                .build_once(request, dockerfile, references, options, progress)
                .await?
            {
                Some(id) => return Ok(id),
                None => {
                    progress.warn(
                        "an image was removed while the engine searched its build cache; \
                         building again",
                    );
                    attempt += 1;
                }
            }
        }
    }

    /// One build; `None` when it lost the cache race and may be run again (never on the
    /// `last` attempt).
    async fn build_once(
        &self,
        request: &BuildRequest,
        dockerfile: &Path,
        references: &[String],
        (platform, no_cache, last): (Option<&Platform>, bool, bool),
        progress: &StageProgress,
    ) -> Result<Option<String>> {
        let (tx, rx) = mpsc::channel::<io::Result<Vec<u8>>>(8);
        let root = request.context.clone();
        let file = dockerfile.to_owned();
        let writer = tokio::task::spawn_blocking(move || {
            let abort = tx.clone();
            let written =
                write_context(&root, &file, ChannelWriter::new(tx)).and_then(|(w, summary)| {
                    w.finish().map(|()| summary).map_err(|e| Error::Io {
                        what: "send the build context".into(),
                        path: root.clone(),
                        source: e,
                    })
                });
            if written.is_err() {
                // An error item aborts the upload, so the engine never builds from a
                // truncated context.
                let _ =
                    abort.blocking_send(Err(io::Error::other("the build context is incomplete")));
            }
            written
        });
        let body = bollard::body_try_stream(futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|chunk| (chunk.map(Into::into), rx))
        }));

        let options = BuildImageOptions {
            dockerfile: dockerfile.to_string_lossy().replace('\\', "/"),
            t: references.first().cloned(),
            buildargs: Some(
                request
                    .build_args
                    .clone()
                    .into_iter()
                    .collect::<HashMap<_, _>>(),
            ),
            labels: Some(
                request
                    .labels
                    .clone()
                    .into_iter()
                    .collect::<HashMap<_, _>>(),
            ),
            target: request.target.clone().unwrap_or_default(),
            platform: platform.map(Platform::to_string).unwrap_or_default(),
            rm: true,
            forcerm: true,
            nocache: no_cache,
            ..Default::default()
        };
        let mut output = BuildOutput::default();
        let mut id = None;
        let mut failure = None;
        {
            let mut stream = self.engine.client().build_image(options, None, Some(body));
            while let Some(item) = stream.next().await {
                match item {
                    Ok(info) => {
                        for text in [info.stream, info.status].into_iter().flatten() {
                            output.push(&text, progress);
                        }
                        if let Some(image) = info.aux.and_then(|aux| aux.id) {
                            id = Some(image);
                        }
                    }
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
        }
        output.finish(progress);
        let context = writer.await.map_err(|e| {
            Error::seam(
                "image build",
                format!("the build context writer failed: {e}"),
            )
        })?;
        let reference = references.first().map_or("the image", String::as_str);
        match context {
            Ok(summary) => log_context(&summary, progress),
            // The engine stopped reading: the build's own error says why.
            Err(Error::Io { ref source, .. }) if source.kind() == io::ErrorKind::BrokenPipe => {}
            Err(e) => return Err(e),
        }
        if let Some(e) = failure {
            if !last
                && matches!(&e, bollard::errors::Error::DockerStreamError { error } if error.contains(CACHE_RACE))
            {
                return Ok(None);
            }
            return Err(build_error(output.failure(reference, platform, &e)));
        }
        let id = match id {
            Some(id) => id,
            None => self
                .engine
                .client()
                .inspect_image(reference)
                .await
                .ok()
                .and_then(|image| image.id)
                .ok_or_else(|| {
                    Error::seam(
                        "image build",
                        format!("the engine built {reference} but reported no image id"),
                    )
                })?,
        };
        for extra in references.iter().skip(1) {
            let (repo, tag) = split_reference(extra);
            let options = TagImageOptions {
                repo: Some(repo.to_owned()),
                tag: Some(tag.to_owned()),
            };
            self.engine
                .client()
                .tag_image(&id, Some(options))
                .await
                .map_err(|e| build_error(format!("failed to tag {id} as {extra}: {e}")))?;
        }
        Ok(Some(id))
    }
}

#[async_trait]
impl ImageBuilder for DockerImageBuilder {
    async fn preflight(&self) -> Vec<Check> {
        vec![self.engine.check().await]
    }

    async fn build(
        &self,
        request: &BuildRequest,
        progress: &StageProgress,
        cancel: &CancellationToken,
    ) -> Result<BuiltImage> {
        // Dropping the build closes its connection, which makes the engine stop it.
        tokio::select! {
            biased;
            () = cancel.cancelled() => Err(Error::Cancelled),
            built = self.build_all(request, progress) => built,
        }
    }

    async fn tag(&self, image: &BuiltImage, tags: &[String]) -> Result<()> {
        for tag in tags {
            let options = TagImageOptions {
                repo: Some(image.repository.clone()),
                tag: Some(tag.clone()),
            };
            self.engine
                .client()
                .tag_image(&image.id, Some(options))
                .await
                .map_err(|e| {
                    build_error(format!(
                        "failed to tag {} as {}:{tag}: {e}",
                        image.id, image.repository
                    ))
                })?;
        }
        Ok(())
    }
}

/// A build error carrying what the engine said: engine messages and build output may quote
/// credentials (a registry's error body, a `RUN` line with a token), so they pass
/// [`redact_text`] before they reach the output, the ledger or a notification.
fn build_error(message: String) -> Error {
    Error::seam("image build", redact_text(&message))
}

fn log_context(summary: &ContextSummary, progress: &StageProgress) {
    progress.progress(format!(
        "sent the build context: {} files, {:.1} MB",
        summary.files,
        summary.bytes as f64 / 1e6
    ));
}

/// The Dockerfile relative to the context, checked to exist inside it.
fn checked_dockerfile(request: &BuildRequest) -> Result<PathBuf> {
    let context = &request.context;
    if !context.is_dir() {
        return Err(Error::seam(
            "image build",
            format!("the build context {} is not a directory", context.display()),
        ));
    }
    let file = match request.dockerfile.strip_prefix(context) {
        Ok(inside) => inside.to_owned(),
        Err(_) => request.dockerfile.clone(),
    };
    let escapes = file
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir));
    if escapes || !context.join(&file).is_file() {
        return Err(Error::seam(
            "image build",
            format!(
                "the Dockerfile {} is not a file inside the build context {}",
                request.dockerfile.display(),
                context.display()
            ),
        ));
    }
    Ok(file)
}

/// Sends what it is given in chunks over a channel: the build context goes to the engine
/// while it is being written, never whole in memory.
struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Vec<u8>>>,
    buffer: Vec<u8>,
}

impl ChannelWriter {
    const CHUNK: usize = 256 * 1024;

    fn new(tx: mpsc::Sender<io::Result<Vec<u8>>>) -> Self {
        Self {
            tx,
            buffer: Vec::with_capacity(Self::CHUNK),
        }
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buffer, Vec::with_capacity(Self::CHUNK));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| {
            io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the engine stopped reading the build context",
            )
        })
    }

    fn finish(mut self) -> io::Result<()> {
        self.send()
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(buf);
        if self.buffer.len() >= Self::CHUNK {
            self.send()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

#[cfg(test)]
mod tests;
