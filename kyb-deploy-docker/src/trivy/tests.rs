use std::path::Path;
use std::time::Instant;

use super::*;
use kyb_deploy_core::PlatformImage;
use kyb_deploy_core::{Event, EventSink, Stage};

fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/trivy")
        .join(name)
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture_path(name)).unwrap()
}

fn findings(name: &str) -> Vec<Finding> {
    parse_report(&fixture(name)).unwrap()
}

fn config(fail_on: &str, binary: &Path) -> TrivyConfig {
    TrivyConfig {
        fail_on: fail_on.into(),
        binary: binary.to_path_buf(),
        ignore_unfixed: false,
    }
}

fn image() -> BuiltImage {
    BuiltImage {
        id: "sha256:3cc203321400".into(),
        repository: "kyb-platform-api".into(),
        tags: vec!["v1.2.0".into(), "staging-latest".into()],
        platforms: Vec::new(),
    }
}

#[test]
fn a_clean_report_has_no_findings() {
    assert_eq!(findings("clean.json"), []);
    assert!(passes(&[], Severity::Low));
}

#[test]
fn vulnerabilities_become_findings() {
    let found = findings("alpine-vulns.json");
    let summary: Vec<_> = found
        .iter()
        .map(|f| (f.severity.as_str(), f.id.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            ("CRITICAL", "CVE-2024-5535"),
            ("HIGH", "CVE-2023-5363"),
            ("MEDIUM", "CVE-2023-5678"),
            ("MEDIUM", "CVE-2023-42363"),
            ("LOW", "CVE-2024-2511"),
            ("UNKNOWN", "CVE-2024-58251"),
            ("HIGH", "CVE-2023-45288"),
        ]
    );
    assert_eq!(
        found[0].title,
        "libcrypto3 3.1.3-r0 (kyb-platform-api:v1.2.0 (alpine 3.18.4)): openssl: \
         SSL_select_next_proto buffer overread; fixed in 3.1.6-r0"
    );
    assert!(
        found[5].title.ends_with("no fixed version yet"),
        "{:?}",
        found[5]
    );
    assert!(
        found[6]
            .title
            .starts_with("golang.org/x/net v0.17.0 (usr/local/bin/kyb-worker)"),
        "{:?}",
        found[6]
    );
}

#[test]
fn the_failing_severity_is_a_threshold() {
    let found = findings("alpine-vulns.json");
    for fail_on in [
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ] {
        assert!(!passes(&found, fail_on), "{fail_on:?}");
    }
    let below_critical: Vec<_> = found
        .into_iter()
        .filter(|f| f.severity != "CRITICAL")
        .collect();
    assert!(passes(&below_critical, Severity::Critical));
    assert!(!passes(&below_critical, Severity::High));
    // UNKNOWN ranks below LOW: it never fails a scan on its own.
    let unknown: Vec<_> = below_critical
        .into_iter()
        .filter(|f| f.severity == "UNKNOWN")
        .collect();
    assert_eq!(unknown.len(), 1);
    assert!(passes(&unknown, Severity::Low));
}

#[test]
fn secrets_and_failed_misconfigurations_become_findings() {
    let found = findings("secrets-and-misconfig.json");
    let summary: Vec<_> = found
        .iter()
        .map(|f| (f.severity.as_str(), f.id.as_str(), f.title.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            (
                "HIGH",
                "DS002",
                "Dockerfile: Image user should not be 'root': Specify at least 1 USER command \
                 in Dockerfile with non-root user as argument"
            ),
            (
                "LOW",
                "DS026",
                "Dockerfile: No HEALTHCHECK defined: Add HEALTHCHECK instruction in your Dockerfile"
            ),
            (
                "CRITICAL",
                "aws-access-key-id",
                "AWS Access Key ID in /app/config/.env line 3"
            ),
            (
                "HIGH",
                "private-key",
                "Asymmetric Private Key in /app/keys/deploy.pem line 1"
            ),
        ]
    );
}

#[test]
fn a_secrets_matched_text_never_reaches_a_finding() {
    let report = br#"{"SchemaVersion": 2, "ArtifactName": "x", "ArtifactType": "container_image",
        "Results": [{"Target": "/app/.env", "Class": "secret", "Secrets": [{
            "RuleID": "github-pat", "Category": "GitHub", "Severity": "CRITICAL",
            "Title": "GitHub Personal Access Token", "StartLine": 1, "EndLine": 1,
            "Code": {"Lines": [{"Number": 1, "Content": "GH=ghp_unmaskedvalue0123456789", "IsCause": true}]},
            "Match": "GH=ghp_unmaskedvalue0123456789"}]}]}"#;
    let found = parse_report(report).unwrap();
    assert_eq!(found.len(), 1);
    assert!(!format!("{found:?}").contains("unmaskedvalue"), "{found:?}");
}

#[test]
fn other_schema_versions_are_refused_clearly() {
    let legacy = parse_report(&fixture("schema-v1.json")).unwrap_err();
    assert!(
        legacy.contains("SchemaVersion 2") && legacy.contains("upgrade trivy"),
        "{legacy}"
    );
    let future = parse_report(br#"{"SchemaVersion": 3, "Results": []}"#).unwrap_err();
    assert!(future.contains("SchemaVersion is 3"), "{future}");
    let missing = parse_report(br#"{"Results": []}"#).unwrap_err();
    assert!(missing.contains("no SchemaVersion"), "{missing}");
    let garbage = parse_report(b"FATAL image scan error").unwrap_err();
    assert!(garbage.contains("not JSON"), "{garbage}");
}

#[test]
fn fail_on_must_be_a_severity() {
    for ok in ["LOW", "medium", "HIGH", "CRITICAL"] {
        assert!(
            TrivyScanner::new(&config(ok, Path::new("trivy"))).is_ok(),
            "{ok}"
        );
    }
    for bad in ["UNKNOWN", "SEVERE", ""] {
        let err = TrivyScanner::new(&config(bad, Path::new("trivy"))).unwrap_err();
        assert!(err.is_usage(), "{bad}");
        assert!(err.to_string().contains("image.trivy.fail_on"), "{err}");
    }
}

#[test]
fn images_are_named_by_local_tag_or_per_platform() {
    assert_eq!(
        image_refs(&image()),
        [(None, "kyb-platform-api:v1.2.0".to_owned())]
    );
    let untagged = BuiltImage {
        tags: Vec::new(),
        ..image()
    };
    assert_eq!(
        image_refs(&untagged),
        [(None, "sha256:3cc203321400".to_owned())]
    );
    let multi = BuiltImage {
        platforms: ["linux/amd64", "linux/arm64"]
            .map(|p| PlatformImage {
                platform: p.into(),
                id: format!("sha256:{p}"),
                local_tag: format!("kyb-platform-api:v1.2.0-{}", p.replace('/', "-")),
            })
            .to_vec(),
        ..image()
    };
    assert_eq!(
        image_refs(&multi),
        [
            (
                Some("linux/amd64"),
                "kyb-platform-api:v1.2.0-linux-amd64".to_owned()
            ),
            (
                Some("linux/arm64"),
                "kyb-platform-api:v1.2.0-linux-arm64".to_owned()
            ),
        ]
    );
}

/// A fake `trivy` executable: a shell script in a temporary directory.
struct FakeTrivy {
    dir: tempfile::TempDir,
}

impl FakeTrivy {
    fn new(body: &str) -> Self {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trivy");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        Self { dir }
    }

    /// Records its arguments, then prints `fixture`.
    fn printing(fixture: &str) -> Self {
        let fixture = fixture_path(fixture);
        Self::new(&format!(
            "if [ \"$1\" = --version ]; then echo 'Version: 0.61.0'; exit 0; fi\n\
             echo \"$@\" > \"$(dirname \"$0\")/args\"\n\
             echo 'some warning on stderr' >&2\n\
             cat '{}'",
            fixture.display()
        ))
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("trivy")
    }

    fn args(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("args")).unwrap()
    }
}

async fn scan(scanner: &TrivyScanner, image: &BuiltImage) -> (Result<ScanReport>, Vec<Event>) {
    let (sink, mut rx) = EventSink::new().channel();
    let result = scanner
        .scan(
            image,
            &sink.for_stage(Stage::Scan),
            &CancellationToken::new(),
        )
        .await;
    let mut events = Vec::new();
    while let Ok(event) = rx.try_recv() {
        events.push(event);
    }
    (result, events)
}

#[tokio::test]
async fn runs_trivy_and_applies_the_failing_severity() {
    let fake = FakeTrivy::printing("alpine-vulns.json");
    let mut cfg = config("HIGH", &fake.path());
    cfg.ignore_unfixed = true;
    let scanner = TrivyScanner::new(&cfg).unwrap();
    let (report, events) = scan(&scanner, &image()).await;
    let report = report.unwrap();
    assert!(!report.passed);
    assert_eq!(report.findings.len(), 7);
    assert_eq!(
        fake.args().trim(),
        "image --format json --quiet --ignore-unfixed kyb-platform-api:v1.2.0"
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Log { line, .. } if line == "some warning on stderr")),
        "{events:?}"
    );

    let clean = FakeTrivy::printing("clean.json");
    let scanner = TrivyScanner::new(&config("LOW", &clean.path())).unwrap();
    let report = scan(&scanner, &image()).await.0.unwrap();
    assert!(report.passed);
    assert_eq!(
        clean.args().trim(),
        "image --format json --quiet kyb-platform-api:v1.2.0"
    );
}

#[tokio::test]
async fn a_failing_trivy_is_an_error_with_its_stderr() {
    let fake = FakeTrivy::new(
        "echo '2025-06-03T09:41:12Z\tINFO\tNeed to update DB' >&2\n\
         echo '2025-06-03T09:41:13Z\tFATAL\tFatal error\timage scan error: unable to find the specified image \"kyb-platform-api:v1.2.0\"' >&2\n\
         exit 1",
    );
    let scanner = TrivyScanner::new(&config("HIGH", &fake.path())).unwrap();
    let err = scan(&scanner, &image()).await.0.unwrap_err().to_string();
    assert!(
        err.contains("trivy image kyb-platform-api:v1.2.0 failed"),
        "{err}"
    );
    assert!(err.contains("exit status: 1"), "{err}");
    assert!(err.contains("unable to find the specified image"), "{err}");
}

#[tokio::test]
async fn an_old_trivy_report_is_an_error() {
    let fake = FakeTrivy::printing("schema-v1.json");
    let scanner = TrivyScanner::new(&config("HIGH", &fake.path())).unwrap();
    let err = scan(&scanner, &image()).await.0.unwrap_err().to_string();
    assert!(
        err.contains("cannot read the trivy report of image kyb-platform-api:v1.2.0")
            && err.contains("SchemaVersion 2"),
        "{err}"
    );
}

#[tokio::test]
async fn cancellation_kills_trivy() {
    let fake = FakeTrivy::new("exec sleep 30");
    let scanner = TrivyScanner::new(&config("HIGH", &fake.path())).unwrap();
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        trigger.cancel();
    });
    let started = Instant::now();
    let err = scanner
        .scan(&image(), &StageProgress::discard(Stage::Scan), &cancel)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Cancelled), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn preflight_finds_the_binary_or_says_how_to_fix_it() {
    let fake = FakeTrivy::printing("clean.json");
    let checks = TrivyScanner::new(&config("HIGH", &fake.path()))
        .unwrap()
        .preflight()
        .await;
    assert_eq!(checks.len(), 1);
    assert!(checks[0].ok, "{checks:?}");
    assert!(checks[0].detail.contains("Version: 0.61.0"), "{checks:?}");

    let missing = fake.dir.path().join("no-such-trivy");
    let check = TrivyScanner::new(&config("HIGH", &missing))
        .unwrap()
        .check()
        .await;
    assert!(!check.ok);
    assert!(check.detail.contains("no executable trivy at"), "{check:?}");
    assert!(
        check.describe().contains("install trivy")
            && check.describe().contains("image.scan = \"policy\""),
        "{check:?}"
    );

    let not_on_path = Path::new("kyb-deploy-test-no-such-trivy");
    let check = TrivyScanner::new(&config("HIGH", not_on_path))
        .unwrap()
        .check()
        .await;
    assert!(!check.ok);
    assert!(check.detail.contains("on PATH"), "{check:?}");

    let err = scan(
        &TrivyScanner::new(&config("HIGH", &missing)).unwrap(),
        &image(),
    )
    .await
    .0
    .unwrap_err()
    .to_string();
    assert!(err.contains("install trivy"), "{err}");
}
