//! The README's main job: a whole deployment of the `kyb-sample-api` service to a local
//! development environment, embedded in a program.
//!
//! A [`FakeTarget`] stands in for the platform: "deploying" a release starts the real
//! `kyb-sample-api` binary for that version on a local port ([`SampleApiProcess`]). Everything else is real: the
//! pipeline engine, the JSON-lines ledger, the file lock, and verification over HTTP
//! (readiness, liveness, `/status` version, `/metrics` exposition, the `classify` smoke test).
//!
//! It deploys `v1.0.0`, then `v1.1.0-broken` (started with the sample's 500 fault), which
//! fails its smoke test and is rolled back to `v1.0.0`, verified again.
//!
//! Run: `cargo build --release -p kyb-deploy-testkit --bins --examples` then
//! `target/release/examples/deploy_sample` (or `scripts/main-job.sh`).

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use kyb_deploy_core::config::Config;
use kyb_deploy_core::verify::HttpHealthProbe;
use kyb_deploy_core::{
    CancellationToken, DeployRequest, Event, EventSink, FileDeployLock, JsonlRecordStore, Outcome,
    Pipeline, RecordStore, RunControl, Stage, StageResult, Version,
};
use kyb_deploy_testkit::{FakeTarget, SampleApiProcess, sample_api_beside_current_exe};

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            say(&format!("error: {e}"));
            ExitCode::FAILURE
        }
    }
}

#[expect(
    clippy::print_stdout,
    reason = "an example program reports to its user"
)]
fn say(line: &str) {
    println!("{line}");
}

async fn run() -> Result<bool, Box<dyn std::error::Error>> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let sample = SampleApiProcess::new(sample_api_beside_current_exe()?, free_port()?)
        .with_faults_for("-broken", &[("KYB_SAMPLE_FAULT_CLASSIFY_500", "1")]);
    let base_url = sample.endpoint();

    // The repository's example configuration, development environment, pointed at our port.
    let config = Config::load(Some(&repo.join("kyb-deploy.toml")))?;
    let mut env = config.environment("development")?;
    env.settings.verify.base_url = Some(base_url.clone());

    let state = tempfile::tempdir()?;
    let store = Arc::new(JsonlRecordStore::new(state.path().join("ledger.jsonl")));
    let target = Arc::new(
        FakeTarget::new()
            .with_endpoint(base_url.clone())
            .on_activate(sample.activate_hook()),
    );
    let events = EventSink::new().subscribe(render);
    let pipeline = Pipeline::new(
        target.clone(),
        Arc::new(HttpHealthProbe::new(env.settings.verify.clone())?),
        store.clone(),
        Arc::new(FileDeployLock::new(state.path().join("locks"))),
    )
    .with_events(events);

    let control = RunControl::new(CancellationToken::new());
    let mut as_expected = true;
    for (version, expect_success) in [("v1.0.0", true), ("v1.1.0-broken", false)] {
        say(&format!("\n=== deploying {version} to {} ===", env.name));
        let mut request = DeployRequest::new(env.clone());
        request.version = Some(Version::parse(version)?);
        request.project = config.project.clone();
        request.image = config.image.clone();
        request.project_dir = repo.clone();
        let report = pipeline.deploy(&request, &control).await;
        say(&format!("outcome: {}", report.outcome.summary()));
        if let Some(v) = report
            .verification
            .as_ref()
            .or(report.rollback_verification.as_ref())
        {
            say(&format!(
                "latency over {} requests: p50 {:.1} ms, p95 {:.1} ms",
                v.latency.samples,
                v.latency.p50_ms.unwrap_or_default(),
                v.latency.p95_ms.unwrap_or_default()
            ));
        }
        let ok = match (&report.outcome, expect_success) {
            (Outcome::Succeeded { .. }, true) => true,
            (Outcome::RolledBack { to, .. }, false) => to.version.as_str() == "v1.0.0",
            _ => false,
        };
        as_expected &= ok;
    }

    let status: serde_json::Value = reqwest::get(base_url.join("/status")?)
        .await?
        .json()
        .await?;
    say(&format!("\nserving now: {status}"));
    say("ledger:");
    for record in store.load().await?.records {
        say(&format!(
            "  {}  {:<14} {:<20} rollback to: {}",
            record.id,
            record.version,
            record.status.as_str(),
            record
                .rollback
                .and_then(|r| r.to)
                .map_or("-".to_owned(), |r| r.version.to_string())
        ));
    }
    sample.stop().await;
    say(if as_expected {
        "\nmain job finished: v1.0.0 deployed and verified; the broken v1.1.0 was rolled back to it"
    } else {
        "\nmain job FAILED: an outcome was not the expected one"
    });
    Ok(as_expected)
}

/// Renders pipeline events as plain lines.
fn render(event: &Event) {
    match event {
        Event::StageFinished {
            stage,
            elapsed,
            result,
        } => {
            let ms = elapsed.as_millis();
            match result {
                StageResult::Succeeded => say(&format!("  ✓ {stage} ({ms} ms)")),
                StageResult::Failed { message } => {
                    say(&format!("  ✗ {stage} ({ms} ms): {message}"))
                }
                StageResult::Skipped { reason } => say(&format!("  - {stage} skipped: {reason}")),
            }
        }
        Event::Warning { message, .. } => say(&format!("  warning: {message}")),
        Event::Progress {
            stage: Stage::Rollback,
            message,
        } => say(&format!("    {message}")),
        _ => {}
    }
}

/// A port that is free now on 127.0.0.1.
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
