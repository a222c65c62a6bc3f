//! [`ScanChain`]: several scanners run as one.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::event::StageProgress;
use crate::image::BuiltImage;
use crate::preflight::Check;
use crate::scanner::{ScanReport, Scanner};

/// A [`Scanner`] that runs several scanners in order and merges their reports: the image
/// passes when every scanner passes it, and the findings of all of them are kept, in order.
///
/// Every scanner runs even when an earlier one fails the image, so that one report shows
/// everything to fix. An error of any scanner ends the scan with that error.
///
/// ```
/// use std::sync::Arc;
/// use kyb_deploy_core::{ScanChain, Scanner};
///
/// // For `scan = "trivy"`, the CLI chains the built-in policy check and Trivy:
/// // ScanChain::new().then(policy).then(trivy)
/// let chain = ScanChain::new();
/// assert!(chain.is_empty());
/// let _as_seam: Arc<dyn Scanner> = Arc::new(chain);
/// ```
#[derive(Clone, Default)]
pub struct ScanChain {
    scanners: Vec<Arc<dyn Scanner>>,
}

impl fmt::Debug for ScanChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScanChain")
            .field("scanners", &self.scanners.len())
            .finish()
    }
}

impl ScanChain {
    /// An empty chain; it passes every image.
    pub fn new() -> Self {
        Self::default()
    }

    /// A chain of already shared scanners, run in the order given.
    pub fn from_scanners(scanners: Vec<Arc<dyn Scanner>>) -> Self {
        Self { scanners }
    }

    /// Appends `scanner`; it runs after the ones already in the chain.
    #[must_use]
    pub fn then(mut self, scanner: impl Scanner + 'static) -> Self {
        self.scanners.push(Arc::new(scanner));
        self
    }

    /// The number of scanners in the chain.
    pub fn len(&self) -> usize {
        self.scanners.len()
    }

    /// Whether the chain has no scanner.
    pub fn is_empty(&self) -> bool {
        self.scanners.is_empty()
    }
}

#[async_trait]
impl Scanner for ScanChain {
    async fn preflight(&self) -> Vec<Check> {
        let mut checks = Vec::new();
        for scanner in &self.scanners {
            checks.extend(scanner.preflight().await);
        }
        checks
    }

    async fn scan(
        &self,
        image: &BuiltImage,
        progress: &StageProgress,
        cancel: &CancellationToken,
    ) -> Result<ScanReport> {
        let mut merged = ScanReport {
            passed: true,
            findings: Vec::new(),
        };
        for scanner in &self.scanners {
            if cancel.is_cancelled() {
                return Err(Error::Cancelled);
            }
            let report = scanner.scan(image, progress, cancel).await?;
            merged.passed &= report.passed;
            merged.findings.extend(report.findings);
        }
        Ok(merged)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::scanner::Finding;
    use crate::stage::Stage;

    /// Answers a fixed report (or error) and records that it ran.
    struct Fixed {
        name: &'static str,
        outcome: Result<ScanReport, &'static str>,
        ran: Arc<Mutex<Vec<&'static str>>>,
    }

    #[async_trait]
    impl Scanner for Fixed {
        async fn preflight(&self) -> Vec<Check> {
            vec![Check::pass(self.name, "present")]
        }

        async fn scan(
            &self,
            _image: &BuiltImage,
            _progress: &StageProgress,
            _cancel: &CancellationToken,
        ) -> Result<ScanReport> {
            self.ran.lock().unwrap().push(self.name);
            self.outcome
                .clone()
                .map_err(|message| Error::seam("scanner", message))
        }
    }

    fn finding(id: &str) -> Finding {
        Finding {
            severity: "HIGH".into(),
            id: id.into(),
            title: format!("{id} found"),
        }
    }

    fn report(passed: bool, ids: &[&str]) -> ScanReport {
        ScanReport {
            passed,
            findings: ids.iter().map(|id| finding(id)).collect(),
        }
    }

    fn image() -> BuiltImage {
        BuiltImage {
            id: "sha256:0123".into(),
            repository: "kyb-platform-api".into(),
            tags: vec!["v1".into()],
            platforms: Vec::new(),
        }
    }

    fn chain(
        outcomes: Vec<Result<ScanReport, &'static str>>,
    ) -> (ScanChain, Arc<Mutex<Vec<&'static str>>>) {
        let ran = Arc::new(Mutex::new(Vec::new()));
        let names = ["first", "second", "third"];
        let chain =
            outcomes
                .into_iter()
                .zip(names)
                .fold(ScanChain::new(), |chain, (outcome, name)| {
                    chain.then(Fixed {
                        name,
                        outcome,
                        ran: ran.clone(),
                    })
                });
        (chain, ran)
    }

    async fn scan(chain: &ScanChain) -> Result<ScanReport> {
        chain
            .scan(
                &image(),
                &StageProgress::discard(Stage::Scan),
                &CancellationToken::new(),
            )
            .await
    }

    #[tokio::test]
    async fn an_empty_chain_passes() {
        let report = scan(&ScanChain::new()).await.unwrap();
        assert!(report.passed);
        assert!(report.findings.is_empty());
    }

    #[tokio::test]
    async fn merges_findings_in_order_and_fails_when_any_scanner_fails() {
        let (chain, ran) = chain(vec![
            Ok(report(false, &["policy/root-user"])),
            Ok(report(true, &["CVE-2024-0001"])),
            Ok(report(true, &[])),
        ]);
        let merged = scan(&chain).await.unwrap();
        assert!(!merged.passed);
        let ids: Vec<_> = merged.findings.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(ids, ["policy/root-user", "CVE-2024-0001"]);
        // The failing first scanner did not stop the others.
        assert_eq!(*ran.lock().unwrap(), ["first", "second", "third"]);
    }

    #[tokio::test]
    async fn passes_when_every_scanner_passes() {
        let (chain, _) = chain(vec![
            Ok(report(true, &[])),
            Ok(report(true, &["CVE-2024-0002"])),
        ]);
        let merged = scan(&chain).await.unwrap();
        assert!(merged.passed);
        assert_eq!(merged.findings.len(), 1);
    }

    #[tokio::test]
    async fn an_error_stops_the_chain() {
        let (chain, ran) = chain(vec![
            Ok(report(true, &[])),
            Err("trivy exploded"),
            Ok(report(true, &[])),
        ]);
        let err = scan(&chain).await.unwrap_err();
        assert!(err.to_string().contains("trivy exploded"), "{err}");
        assert_eq!(*ran.lock().unwrap(), ["first", "second"]);
    }

    #[tokio::test]
    async fn a_cancelled_chain_runs_nothing() {
        let (chain, ran) = chain(vec![Ok(report(true, &[]))]);
        let cancel = CancellationToken::new();
        cancel.cancel();
        let err = chain
            .scan(&image(), &StageProgress::discard(Stage::Scan), &cancel)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Cancelled));
        assert!(ran.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn preflight_collects_every_scanners_checks() {
        let (chain, _) = chain(vec![Ok(report(true, &[])), Ok(report(true, &[]))]);
        let names: Vec<_> = chain
            .preflight()
            .await
            .into_iter()
            .map(|c| c.name)
            .collect();
        assert_eq!(names, ["first", "second"]);
        assert_eq!(chain.len(), 2);
    }
}
