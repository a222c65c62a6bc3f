//! Fakes of the remaining seams: version source, test runner, image builder, scanner,
//! registry and notifier.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kyb_deploy_core::{
    BuildRequest, BuiltImage, CancellationToken, Error, Finding, ImageBuilder, Notification,
    Notifier, PushedImage, Registry, ResolvedVersion, Result, ScanReport, Scanner, StageProgress,
    TestReport, TestRunner, TestSuite, Version, VersionOrigin, VersionSource, async_trait,
};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A [`VersionSource`] that always resolves to the same version.
#[derive(Clone, Debug)]
pub struct FixedVersion(pub ResolvedVersion);

impl FixedVersion {
    /// An explicit version from a clean tree on `main`.
    pub fn new(version: &str) -> Self {
        Self(ResolvedVersion {
            version: Version::parse(version).expect("a valid version in a test"),
            origin: VersionOrigin::Explicit,
            commit: Some(format!("{version:0<40}").chars().take(40).collect()),
            dirty: false,
            branch: Some("main".into()),
        })
    }

    /// The same, with a dirty working tree.
    pub fn dirty(mut self) -> Self {
        self.0.dirty = true;
        self
    }
}

#[async_trait]
impl VersionSource for FixedVersion {
    async fn resolve(&self) -> Result<ResolvedVersion> {
        Ok(self.0.clone())
    }
}

/// A [`TestRunner`] whose suites pass unless told to fail; records the suites it ran.
#[derive(Clone, Debug, Default)]
pub struct FakeTestRunner {
    failing: Arc<Mutex<HashMap<String, i32>>>,
    ran: Arc<Mutex<Vec<String>>>,
}

impl FakeTestRunner {
    /// Every suite passes.
    pub fn new() -> Self {
        Self::default()
    }

    /// The suite named `suite` exits with `code`.
    pub fn fail(self, suite: &str, code: i32) -> Self {
        lock(&self.failing).insert(suite.to_owned(), code);
        self
    }

    /// Names of the suites run so far.
    pub fn ran(&self) -> Vec<String> {
        lock(&self.ran).clone()
    }
}

#[async_trait]
impl TestRunner for FakeTestRunner {
    async fn run(
        &self,
        suite: &TestSuite,
        progress: &StageProgress,
        _cancel: &CancellationToken,
    ) -> Result<TestReport> {
        lock(&self.ran).push(suite.name.clone());
        let code = lock(&self.failing).get(&suite.name).copied().unwrap_or(0);
        progress.log(format!("{}: {} (exit {code})", suite.name, suite.command));
        Ok(TestReport {
            suite: suite.name.clone(),
            passed: code == 0,
            exit_code: Some(code),
            elapsed_ms: 0,
        })
    }
}

/// An [`ImageBuilder`] that "builds" instantly, or fails when told to; records requests.
#[derive(Clone, Debug, Default)]
pub struct FakeImageBuilder {
    failure: Option<String>,
    requests: Arc<Mutex<Vec<BuildRequest>>>,
    tags: Arc<Mutex<BTreeMap<String, String>>>,
}

impl FakeImageBuilder {
    /// A builder that succeeds.
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder whose every build fails with `message`.
    pub fn failing(message: &str) -> Self {
        Self {
            failure: Some(message.to_owned()),
            ..Self::default()
        }
    }

    /// Build requests so far.
    pub fn requests(&self) -> Vec<BuildRequest> {
        lock(&self.requests).clone()
    }

    /// The image id each local tag (`repo:tag`) names after [`ImageBuilder::tag`] moved it.
    pub fn local_tags(&self) -> BTreeMap<String, String> {
        lock(&self.tags).clone()
    }
}

#[async_trait]
impl ImageBuilder for FakeImageBuilder {
    async fn build(
        &self,
        request: &BuildRequest,
        progress: &StageProgress,
        _cancel: &CancellationToken,
    ) -> Result<BuiltImage> {
        lock(&self.requests).push(request.clone());
        if let Some(message) = &self.failure {
            return Err(Error::seam("image builder", message.clone()));
        }
        progress.log(format!("Step 1/1 : fake build of {}", request.version));
        Ok(BuiltImage {
            id: format!(
                "sha256:{}",
                fake_digest(&format!("image-{}", request.version))
            ),
            repository: request.repository.clone(),
            tags: request.tags.clone(),
            platforms: Vec::new(),
        })
    }

    async fn tag(&self, image: &BuiltImage, tags: &[String]) -> Result<()> {
        let mut local = lock(&self.tags);
        for tag in tags {
            local.insert(format!("{}:{tag}", image.repository), image.id.clone());
        }
        Ok(())
    }
}

/// A [`Scanner`] that passes, or reports findings when told to.
#[derive(Clone, Debug, Default)]
pub struct FakeScanner {
    findings: Vec<Finding>,
}

impl FakeScanner {
    /// A scanner that finds nothing.
    pub fn clean() -> Self {
        Self::default()
    }

    /// A scanner that fails every image with one HIGH finding.
    pub fn with_high_finding() -> Self {
        Self {
            findings: vec![Finding {
                severity: "HIGH".into(),
                id: "CVE-2026-0001".into(),
                title: "example vulnerability".into(),
            }],
        }
    }
}

#[async_trait]
impl Scanner for FakeScanner {
    async fn scan(
        &self,
        _image: &BuiltImage,
        _progress: &StageProgress,
        _cancel: &CancellationToken,
    ) -> Result<ScanReport> {
        Ok(ScanReport {
            passed: self.findings.is_empty(),
            findings: self.findings.clone(),
        })
    }
}

/// A [`Registry`] that "pushes" instantly and answers a digest derived from the image.
#[derive(Clone, Debug, Default)]
pub struct FakeRegistry {
    pushed: Arc<Mutex<Vec<PushedImage>>>,
    moved: Arc<Mutex<BTreeMap<String, String>>>,
}

impl FakeRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Images pushed so far.
    pub fn pushed(&self) -> Vec<PushedImage> {
        lock(&self.pushed).clone()
    }

    /// The digest each tag (`repo:tag`) names after [`Registry::move_tags`] moved it.
    pub fn moved_tags(&self) -> BTreeMap<String, String> {
        lock(&self.moved).clone()
    }
}

#[async_trait]
impl Registry for FakeRegistry {
    async fn push(
        &self,
        image: &BuiltImage,
        _progress: &StageProgress,
        _cancel: &CancellationToken,
    ) -> Result<PushedImage> {
        let digest = format!("sha256:{}", fake_digest(&image.id));
        let pushed = PushedImage {
            reference: format!("{}@{digest}", image.repository),
            digest,
            tags: image.tags.clone(),
        };
        lock(&self.pushed).push(pushed.clone());
        Ok(pushed)
    }

    async fn move_tags(
        &self,
        image: &PushedImage,
        tags: &[String],
        _progress: &StageProgress,
    ) -> Result<()> {
        let repository = image
            .reference
            .split_once('@')
            .map_or(image.reference.as_str(), |(repository, _)| repository);
        let mut moved = lock(&self.moved);
        for tag in tags {
            moved.insert(format!("{repository}:{tag}"), image.digest.clone());
        }
        Ok(())
    }
}

/// 64 hex characters derived from `seed` (FNV-1a, repeated), shaped like a sha256 digest.
pub fn fake_digest(seed: &str) -> String {
    let mut out = String::with_capacity(64);
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for round in 0..4u8 {
        for byte in seed.bytes().chain([round]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        out.push_str(&format!("{hash:016x}"));
    }
    out
}

/// A [`Notifier`] that records notifications, or fails every one when told to.
#[derive(Clone, Debug, Default)]
pub struct RecordingNotifier {
    failing: bool,
    sent: Arc<Mutex<Vec<Notification>>>,
}

impl RecordingNotifier {
    /// A notifier that records.
    pub fn new() -> Self {
        Self::default()
    }

    /// A notifier whose every delivery fails.
    pub fn failing() -> Self {
        Self {
            failing: true,
            ..Self::default()
        }
    }

    /// Notifications delivered so far.
    pub fn sent(&self) -> Vec<Notification> {
        lock(&self.sent).clone()
    }
}

#[async_trait]
impl Notifier for RecordingNotifier {
    fn name(&self) -> String {
        "recording notifier".into()
    }

    async fn notify(&self, notification: &Notification) -> Result<()> {
        if self.failing {
            return Err(Error::seam("notifier", "recording notifier set to fail"));
        }
        lock(&self.sent).push(notification.clone());
        Ok(())
    }
}
