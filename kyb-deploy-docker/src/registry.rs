//! Pushing images: every tag through the engine, and for a multi-platform build an OCI image
//! index put over the registry API.

mod http;

use std::fmt;

use async_trait::async_trait;
use bollard::auth::DockerCredentials;
use bollard::query_parameters::PushImageOptions;
use futures::StreamExt;
use reqwest::Method;
use serde_json::json;
use sha2::Digest as _;
use tokio_util::sync::CancellationToken;

use self::http::{Answer, MANIFEST_TYPES, RegistryApi, error_text};
use super::DockerEngine;
use super::builder::Platform;
use super::credentials::CredentialSource;
use super::split_reference;
use kyb_deploy_core::Check;
use kyb_deploy_core::Credentials;
use kyb_deploy_core::StageProgress;
use kyb_deploy_core::redact_text;
use kyb_deploy_core::{BuiltImage, PushedImage, Registry};
use kyb_deploy_core::{Error, Result};

/// The media type of the index this registry client writes.
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// Pushes images with the Docker engine, with credentials from a [`CredentialSource`].
///
/// A single-platform image is pushed tag by tag; its manifest digest comes from the push.
/// A multi-platform image pushes each platform's image, then an OCI image index referencing
/// them under every tag; the digest is the index's. No credential ever appears in an error,
/// an event or debug output.
///
/// ```no_run
/// use kyb_deploy_core::config::Config;
/// use kyb_deploy_docker::{CredentialSource, DockerEngine, DockerImageBuilder, DockerRegistry};
///
/// # async fn wire(config: &Config) -> kyb_deploy_core::Result<()> {
/// let engine = DockerEngine::connect().await?;
/// let builder = DockerImageBuilder::new(engine.clone());
/// let registry = DockerRegistry::new(
///     engine,
///     CredentialSource::from_config(&config.image.registry),
/// );
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct DockerRegistry {
    engine: DockerEngine,
    credentials: CredentialSource,
}

impl DockerRegistry {
    /// A registry client pushing through `engine` with credentials from `credentials`.
    pub fn new(engine: DockerEngine, credentials: CredentialSource) -> Self {
        Self {
            engine,
            credentials,
        }
    }

    async fn push_all(&self, image: &BuiltImage, progress: &StageProgress) -> Result<PushedImage> {
        let name = ImageName::parse(&image.repository);
        let credentials = self.credentials.resolve(&name.registry).await?;
        let session = Session {
            engine: &self.engine,
            repository: &image.repository,
            name: &name,
            credentials: credentials.as_ref(),
            progress,
        };
        match &credentials {
            Some(c) => progress.progress(format!("pushing to {} as {c}", name.registry)),
            None => progress.progress(format!("pushing to {} anonymously", name.registry)),
        }
        if image.tags.is_empty() {
            return Err(Error::seam(
                "registry",
                format!("the image of {} has no tag to push", image.repository),
            ));
        }
        let digest = if image.platforms.is_empty() {
            let mut digest: Option<String> = None;
            for tag in &image.tags {
                let (pushed, _) = session.push_tag(tag).await?;
                match &digest {
                    Some(first) if *first != pushed => {
                        return Err(session.error(format!(
                            "tag {tag} was pushed as {pushed}, but the first tag as {first}"
                        )));
                    }
                    _ => digest = Some(pushed),
                }
            }
            let digest = digest.unwrap_or_default();
            // Tags are pushed by name: make sure they still named the image this run built
            // and scanned (another build may have retagged them meanwhile).
            let pushed_ref = format!("{}@{digest}", image.repository);
            let built = self
                .engine
                .client()
                .inspect_image(&image.id)
                .await
                .map_err(|e| {
                    session.error(format!("cannot inspect the built image {}: {e}", image.id))
                })?;
            if !built.repo_digests.unwrap_or_default().contains(&pushed_ref) {
                return Err(session.error(format!(
                    "the pushed {pushed_ref} is not the image this run built ({}); another build retagged {} meanwhile; deploy again",
                    image.id, image.repository
                )));
            }
            digest
        } else {
            session.push_index(image).await?
        };
        progress.progress(format!("pushed {}@{digest}", image.repository));
        Ok(PushedImage {
            reference: format!("{}@{digest}", image.repository),
            digest,
            tags: image.tags.clone(),
        })
    }
}

#[async_trait]
impl Registry for DockerRegistry {
    async fn preflight(&self) -> Vec<Check> {
        vec![self.engine.check().await]
    }

    async fn push(
        &self,
        image: &BuiltImage,
        progress: &StageProgress,
        cancel: &CancellationToken,
    ) -> Result<PushedImage> {
        tokio::select! {
            biased;
            () = cancel.cancelled() => Err(Error::Cancelled),
            pushed = self.push_all(image, progress) => pushed,
        }
    }

    /// Copies the image's manifest (or index) under each tag over the registry API: no
    /// local image is needed, and every platform of an index moves together.
    async fn move_tags(
        &self,
        image: &PushedImage,
        tags: &[String],
        progress: &StageProgress,
    ) -> Result<()> {
        let (repository, _) = image
            .reference
            .split_once('@')
            .unwrap_or((image.reference.as_str(), ""));
        let name = ImageName::parse(repository);
        let credentials = self.credentials.resolve(&name.registry).await?;
        let session = Session {
            engine: &self.engine,
            repository,
            name: &name,
            credentials: credentials.as_ref(),
            progress,
        };
        let api = RegistryApi::new(&name, credentials.as_ref());
        let manifest = format!("manifests/{}", image.digest);
        let answer = api
            .send(Method::GET, &manifest, &[("Accept", MANIFEST_TYPES)], None)
            .await?;
        session.expect(&answer, &format!("GET {manifest}"))?;
        let media_type = answer
            .header("content-type")
            .map(|t| t.split(';').next().unwrap_or(t).trim().to_owned())
            .ok_or_else(|| session.error(format!("manifest {} has no media type", image.digest)))?;
        for tag in tags {
            let put = api
                .send(
                    Method::PUT,
                    &format!("manifests/{tag}"),
                    &[("Content-Type", media_type.as_str())],
                    Some(&answer.body),
                )
                .await?;
            session.expect(&put, &format!("PUT manifests/{tag}"))?;
            match put.header("docker-content-digest") {
                Some(theirs) if theirs != image.digest => {
                    return Err(session.error(format!(
                        "the registry stored tag {tag} as {theirs}, not {}",
                        image.digest
                    )));
                }
                _ => progress.progress(format!("{repository}:{tag} -> {}", image.digest)),
            }
        }
        Ok(())
    }
}

/// A repository reference split into registry host and repository path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ImageName {
    /// `ghcr.io`, `127.0.0.1:5000`, or `docker.io` for Docker Hub.
    pub(crate) registry: String,
    /// `acme/app` (`library/app` for an official Docker Hub image).
    pub(crate) path: String,
}

impl ImageName {
    pub(crate) fn parse(repository: &str) -> Self {
        match repository.split_once('/') {
            Some((host, path))
                if host.contains('.') || host.contains(':') || host == "localhost" =>
            {
                Self {
                    registry: host.to_owned(),
                    path: path.to_owned(),
                }
            }
            Some(_) => Self {
                registry: "docker.io".into(),
                path: repository.to_owned(),
            },
            None => Self {
                registry: "docker.io".into(),
                path: format!("library/{repository}"),
            },
        }
    }

    /// Local registries speak plain HTTP, as the engine assumes for them.
    fn base_url(&self) -> String {
        let host = self
            .registry
            .rsplit_once(':')
            .map_or(self.registry.as_str(), |(h, p)| {
                if p.chars().all(|c| c.is_ascii_digit()) {
                    h
                } else {
                    self.registry.as_str()
                }
            });
        match host {
            "docker.io" | "index.docker.io" => "https://registry-1.docker.io".into(),
            "localhost" | "127.0.0.1" | "[::1]" => format!("http://{}", self.registry),
            _ => format!("https://{}", self.registry),
        }
    }
}

impl fmt::Display for ImageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "repository {} of registry {}", self.path, self.registry)
    }
}

/// One push: the image's name, the credentials and where progress goes.
struct Session<'a> {
    engine: &'a DockerEngine,
    /// The repository as the local tags spell it.
    repository: &'a str,
    name: &'a ImageName,
    credentials: Option<&'a Credentials>,
    progress: &'a StageProgress,
}

impl Session<'_> {
    /// An error about this push, with any password taken out.
    fn error(&self, message: String) -> Error {
        Error::seam(
            "registry",
            redact(
                &format!(
                    "push to registry {} (repository {}) failed: {message}",
                    self.name.registry, self.name.path
                ),
                self.credentials,
            ),
        )
    }

    fn report(&self, message: String) {
        self.progress.progress(redact(&message, self.credentials));
    }

    fn docker_credentials(&self) -> Option<DockerCredentials> {
        self.credentials.map(|c| {
            let mut docker = DockerCredentials {
                serveraddress: Some(self.name.registry.clone()),
                ..Default::default()
            };
            if c.is_identity_token() {
                docker.identitytoken = Some(c.password().to_owned());
            } else {
                docker.username = Some(c.username().to_owned());
                docker.password = Some(c.password().to_owned());
            }
            docker
        })
    }

    /// Pushes `<repository>:<tag>` through the engine; returns the manifest digest and size.
    async fn push_tag(&self, tag: &str) -> Result<(String, u64)> {
        let repository = self.repository;
        self.report(format!("pushing {repository}:{tag}"));
        let options = PushImageOptions {
            tag: Some(tag.to_owned()),
            ..Default::default()
        };
        let mut stream =
            self.engine
                .client()
                .push_image(repository, Some(options), self.docker_credentials());
        let mut pushed = None;
        let mut last_status = String::new();
        while let Some(item) = stream.next().await {
            let info = match item {
                Ok(info) => info,
                Err(e) => {
                    let said = match e {
                        bollard::errors::Error::DockerStreamError { error } => error,
                        bollard::errors::Error::DockerResponseServerError {
                            status_code,
                            message,
                        } => format!("HTTP {status_code} from the engine: {message}"),
                        other => other.to_string(),
                    };
                    let diagnosis = self.diagnose().await;
                    return Err(self.error(format!("pushing tag {tag}: {said}{diagnosis}")));
                }
            };
            let Some(status) = info.status else { continue };
            if let Some(found) = parse_digest_line(&status) {
                pushed = Some(found);
            }
            // Byte counts are not worth an event; a change of layer state is.
            if status != "Pushing" && status != last_status {
                self.report(format!("{tag}: {status}"));
            }
            last_status = status;
        }
        pushed.ok_or_else(|| {
            self.error(format!(
                "the engine pushed tag {tag} but reported no manifest digest"
            ))
        })
    }

    /// Asks the registry directly how it answers these credentials, to name the HTTP status
    /// behind an engine error such as `unauthorized: authentication required`.
    async fn diagnose(&self) -> String {
        let api = RegistryApi::new(self.name, self.credentials);
        let who = self
            .credentials
            .map_or_else(|| "anonymous access".to_owned(), |c| c.to_string());
        match api.send(Method::GET, "", &[], None).await {
            Ok(answer) if answer.status.is_success() => String::new(),
            Ok(answer) => format!(" (the registry answers HTTP {} to {who})", answer.status),
            // A token service that refuses the credentials says so with its status.
            Err(e) => format!(" ({e})"),
        }
    }

    /// Pushes every platform's image, then the index under every tag; returns its digest.
    async fn push_index(&self, image: &BuiltImage) -> Result<String> {
        let api = RegistryApi::new(self.name, self.credentials);
        let mut manifests = Vec::new();
        for platform_image in &image.platforms {
            let platform =
                Platform::parse(&platform_image.platform).map_err(|message| self.error(message))?;
            let (_, tag) = split_reference(&platform_image.local_tag);
            let (digest, pushed_size) = self.push_tag(tag).await?;
            let answer = api
                .send(
                    Method::HEAD,
                    &format!("manifests/{digest}"),
                    &[("Accept", MANIFEST_TYPES)],
                    None,
                )
                .await?;
            self.expect(&answer, &format!("HEAD manifests/{digest}"))?;
            let media_type = answer
                .header("content-type")
                .map(|t| t.split(';').next().unwrap_or(t).trim().to_owned())
                .ok_or_else(|| self.error(format!("manifest {digest} has no media type")))?;
            let size = answer
                .header("content-length")
                .and_then(|l| l.parse::<u64>().ok())
                .unwrap_or(pushed_size);
            let mut platform_json = json!({
                "architecture": platform.architecture,
                "os": platform.os,
            });
            if let Some(variant) = &platform.variant {
                platform_json["variant"] = json!(variant);
            }
            manifests.push(json!({
                "mediaType": media_type,
                "digest": digest,
                "size": size,
                "platform": platform_json,
            }));
        }
        let index = json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": manifests,
        });
        let body = serde_json::to_vec_pretty(&index)
            .map_err(|e| self.error(format!("cannot write the image index: {e}")))?;
        let digest = format!("sha256:{:x}", sha2::Sha256::digest(&body));
        for tag in &image.tags {
            let answer = api
                .send(
                    Method::PUT,
                    &format!("manifests/{tag}"),
                    &[("Content-Type", OCI_INDEX)],
                    Some(&body),
                )
                .await?;
            self.expect(&answer, &format!("PUT manifests/{tag}"))?;
            match answer.header("docker-content-digest") {
                Some(theirs) if theirs != digest => {
                    return Err(self.error(format!(
                        "the registry stored the index under tag {tag} as {theirs}, but its \
                         content is {digest}"
                    )));
                }
                _ => {}
            }
            self.report(format!("{tag}: image index {digest}"));
        }
        Ok(digest)
    }

    fn expect(&self, answer: &Answer, what: &str) -> Result<()> {
        if answer.status.is_success() {
            return Ok(());
        }
        Err(self.error(format!(
            "{what} answered HTTP {}: {}",
            answer.status,
            error_text(&answer.body)
        )))
    }
}

/// The digest of a push status like `v1: digest: sha256:... size: 528`, with the size.
fn parse_digest_line(status: &str) -> Option<(String, u64)> {
    let (_, rest) = status.split_once(": digest: ")?;
    let mut words = rest.split_whitespace();
    let digest = words.next()?;
    let size = match (words.next(), words.next()) {
        (Some("size:"), Some(size)) => size.parse().ok()?,
        _ => 0,
    };
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()))
        .then(|| (digest.to_owned(), size))
}

/// `text` through [`redact_text`] (an engine or registry may echo the `Authorization` it
/// received, or a URL with userinfo), then without the password itself in whatever form the
/// peer quoted it.
fn redact(text: &str, credentials: Option<&Credentials>) -> String {
    let text = redact_text(text);
    match credentials.map(Credentials::password) {
        Some(secret) if !secret.is_empty() => text.replace(secret, "redacted"),
        _ => text,
    }
}

#[cfg(test)]
mod tests;
