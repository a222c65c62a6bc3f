//! The shared state backends with a long history: 10,000 runs of staging in moto's S3, and
//! 10,000 runs in the Kubernetes simulator's namespace, each behind a proxy that counts the
//! requests, with the file backend's ledger of the same 10,000 runs as the baseline measured
//! in the same run:
//!
//! - requests of a known-good lookup, of one record written, of the lock taken and released,
//!   and of the look for unfinished runs: each bounded, however long the history;
//! - `kyb-deploy history -e ENV` (the release binary) over the 10,000 runs in each shared
//!   backend, beside the same command over the ledger file.
//!
//! ```text
//! cargo bench -p kyb-deploy-cli --bench state_store
//! ```
//!
//! It needs moto (`scripts/test.sh` installs it into `.kyb-deploy/venv`). It takes about two
//! minutes, prints a table of value, target and ratio (value / target) per figure, and fails
//! only on errors: a missed target is printed as MISSED. See docs/performance.md.

#![expect(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a benchmark reports on the terminal: progress on stderr, the table on stdout"
)]

#[path = "support/mod.rs"]
mod support;

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use kyb_deploy_core::config::{StateBackendKind, StateConfig};
use kyb_deploy_core::shared_state::{Condition, ObjectDeployLock, ObjectRecordStore, put};
use kyb_deploy_core::{
    DeployLock as _, DeploymentRecord, Operation, RecordStatus, RecordStore as _, Release, Version,
};
use kyb_deploy_testkit::FaultProxy;
use kyb_deploy_testkit::k8s_sim::K8sSimulator;
use kyb_deploy_testkit::moto::{AwsCli, MotoServer};

use crate::support::{BenchResult, Row, print_table, secs};

/// Runs in the history.
const RUNS: usize = 10_000;
const BUCKET: &str = "kyb-bench-state";
/// Writes in flight while the history is seeded.
const SEEDING_AT_ONCE: usize = 64;
/// Times each `history` is run; the median counts.
const HISTORY_RUNS: usize = 5;
const HISTORY_TARGET: Duration = Duration::from_secs(1);

fn main() -> ExitCode {
    support::main_of("state_store", run)
}

/// Run `i` of `environment`: deployed and verified, except every tenth, rolled back.
fn record(environment: &str, i: usize, started: time::OffsetDateTime) -> DeploymentRecord {
    let version = Version::parse(&format!("v{i}")).expect("a version");
    let mut record = DeploymentRecord::start(
        format!("run{i:05}"),
        Operation::Deploy,
        environment,
        "ecs",
        version.clone(),
    );
    record.started_at = started + Duration::from_secs(i as u64);
    record.finished_at = Some(record.started_at + Duration::from_secs(60));
    record.release = Some(Release::new(
        version,
        format!("registry.test/kyb-api@sha256:{i:064}"),
    ));
    record.status = if i % 10 == 9 {
        RecordStatus::RolledBack
    } else {
        RecordStatus::Succeeded
    };
    record
}

/// The key the S3 store gives a record written at `micros` (docs/state.md).
fn key(record: &DeploymentRecord, micros: u64) -> String {
    format!(
        "kyb-deploy/{}/records/{:020}_{}_deploy_{}.json",
        record.environment,
        u64::MAX - micros,
        record.id,
        record.status.as_str().replace('_', "%5F")
    )
}

fn s3_client(url: &str) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                "test", "test", None, None, "static",
            ))
            .endpoint_url(url)
            .force_path_style(true)
            .http_client(kyb_deploy_ecs::https_client())
            .build(),
    )
}

/// Writes the records straight into the bucket, `SEEDING_AT_ONCE` at a time.
async fn seed(
    client: &aws_sdk_s3::Client,
    records: &[DeploymentRecord],
    first: u64,
) -> BenchResult<()> {
    let mut writes = tokio::task::JoinSet::new();
    for (i, record) in records.iter().enumerate() {
        if writes.len() >= SEEDING_AT_ONCE {
            writes.join_next().await.ok_or("no write")???;
        }
        let (client, key, body) = (
            client.clone(),
            key(record, first + i as u64),
            serde_json::to_vec(record)?,
        );
        writes.spawn(async move {
            client
                .put_object()
                .bucket(BUCKET)
                .key(key)
                .body(body.into())
                .send()
                .await
                .map(|_| ())
                .map_err(|e| {
                    format!(
                        "seeding failed: {}",
                        aws_sdk_s3::error::DisplayErrorContext(e)
                    )
                })
        });
    }
    while let Some(done) = writes.join_next().await {
        done??;
    }
    Ok(())
}

/// Requests the proxy saw while `work` ran, and how long it took.
async fn counted<T>(proxy: &FaultProxy, work: impl Future<Output = T>) -> (T, usize, Duration) {
    let before = proxy.requests().len();
    let started = Instant::now();
    let value = work.await;
    (value, proxy.requests().len() - before, started.elapsed())
}

/// The median wall time of `kyb-deploy history -e <environment>` in `dir` (the Kubernetes
/// client configured by `dir/kubeconfig`, when there is one).
fn history_time(binary: &Path, dir: &Path, environment: &str) -> BenchResult<Duration> {
    let mut times = Vec::new();
    for _ in 0..HISTORY_RUNS {
        let started = Instant::now();
        let out = Command::new(binary)
            .args(["history", "-e", environment])
            .current_dir(dir)
            .env("KUBECONFIG", dir.join("kubeconfig"))
            .env("HOME", dir)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", dir.join("none"))
            .env("AWS_SHARED_CREDENTIALS_FILE", dir.join("none"))
            .output()?;
        times.push(started.elapsed());
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() || !stdout.contains(&format!("run{:05}", RUNS - 1)) {
            return Err(format!(
                "history -e {environment} failed ({}):\n{stdout}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
    }
    times.sort();
    Ok(times[times.len() / 2])
}

fn row(figure: &str, value: String, target: Option<(String, f64, bool)>, baseline: String) -> Row {
    Row {
        figure: figure.into(),
        value,
        target,
        baseline,
    }
}

fn requests_row(figure: &str, requests: usize, target: usize, took: Duration) -> Row {
    row(
        figure,
        requests.to_string(),
        Some((
            format!("<= {target} requests"),
            requests as f64 / target as f64,
            requests <= target,
        )),
        format!("took {} ms", took.as_millis()),
    )
}

/// The requests (and time) of the pointer built over the seeded runs (once), of a
/// known-good lookup (newest, and one past the pointer), of a record written, of the lock
/// taken and released, and of the look for unfinished runs, in `store` and `lock` over
/// `environment`'s 10,000 runs, counted by `proxy`.
async fn bounded_costs(
    proxy: &FaultProxy,
    store: &ObjectRecordStore,
    lock: &ObjectDeployLock,
    environment: &str,
    started: time::OffsetDateTime,
) -> BenchResult<Vec<Row>> {
    // The first record after seeding folds all 10,000 into the pointer (the pointer is
    // built once; every later record folds in only what was written since).
    eprintln!("building the known-good pointer over {RUNS} runs ...");
    let newest = record(environment, RUNS, started);
    let (built, pointer_requests, pointer_took) = counted(proxy, store.append(&newest)).await;
    built?;
    let mut rows = Vec::new();
    let (found, lookup, took_past) = counted(
        proxy,
        store.find_latest_verified(environment, &|r: &DeploymentRecord| {
            r.version.as_str() == "v5000"
        }),
    )
    .await;
    if found?.is_none() {
        return Err("the lookup found no verified run of v5000".into());
    }
    let (_, lookup_newest, took) = counted(
        proxy,
        store.find_latest_verified(environment, &|_: &DeploymentRecord| true),
    )
    .await;
    rows.push(requests_row(
        "known-good lookup (newest verified)",
        lookup_newest,
        3,
        took,
    ));
    rows.push(row(
        "known-good lookup (v5000, past the pointer's 50)",
        lookup.to_string(),
        None,
        format!(
            "took {} ms; reads the history when the pointer has dropped it",
            took_past.as_millis()
        ),
    ));
    let next = record(environment, RUNS + 1, started);
    let (written, append, took) = counted(proxy, store.append(&next)).await;
    written?;
    rows.push(requests_row(
        "one record written (and the pointer)",
        append,
        6,
        took,
    ));
    let (guard, acquire, took_acquire) = counted(proxy, lock.acquire(environment)).await;
    let (released, release, took_release) = counted(proxy, guard?.release()).await;
    released?;
    rows.push(requests_row(
        "lock taken and released",
        acquire + release,
        3,
        took_acquire + took_release,
    ));
    let (unfinished, look, took) = counted(proxy, store.in_progress(environment)).await;
    unfinished?;
    rows.push(requests_row("look for unfinished runs", look, 2, took));
    rows.push(row(
        "pointer built over 10,000 runs (once)",
        pointer_requests.to_string(),
        None,
        format!("took {}", secs(pointer_took)),
    ));
    Ok(rows)
}

async fn run() -> BenchResult<()> {
    let binaries = support::build_binaries()?;
    let moto = MotoServer::start().await;
    AwsCli::new(moto.url())
        .json(&["s3api", "create-bucket", "--bucket", BUCKET])
        .await;
    let proxy = FaultProxy::start(moto.addr()).await?;

    let started = time::OffsetDateTime::now_utc() - Duration::from_secs(86_400 * 30);
    let first_micros = u64::try_from(started.unix_timestamp())? * 1_000_000;
    let staging: Vec<DeploymentRecord> = (0..RUNS).map(|i| record("staging", i, started)).collect();
    eprintln!("seeding {RUNS} runs into moto's S3 ...");
    let seeding = Instant::now();
    seed(&s3_client(&moto.url()), &staging, first_micros).await?;
    eprintln!("seeded in {}", secs(seeding.elapsed()));

    // The project: staging on S3 (through the proxy), local on the ledger file, both with
    // the same 10,000 runs; ECS is moto's, where no cluster exists (history notes it).
    let project = tempfile::tempdir()?;
    let dir = project.path();
    std::fs::write(dir.join("task-definition.json"), TASK_DEFINITION)?;
    std::fs::write(
        dir.join("kyb-deploy.toml"),
        format!(
            "{env}\n[environments.staging.state]\nbackend = \"s3\"\nbucket = \"{BUCKET}\"\nregion = \"us-east-1\"\nendpoint_url = \"{proxy}\"\n{local}",
            env = ENVIRONMENT
                .replace("NAME", "staging")
                .replace("URL", &moto.url()),
            local = ENVIRONMENT
                .replace("NAME", "local")
                .replace("URL", &moto.url()),
            proxy = proxy.url(),
        ),
    )?;
    std::fs::create_dir_all(dir.join(".kyb-deploy"))?;
    let mut ledger =
        std::io::BufWriter::new(std::fs::File::create(dir.join(".kyb-deploy/ledger.jsonl"))?);
    for i in 0..RUNS {
        serde_json::to_writer(&mut ledger, &record("local", i, started))?;
        ledger.write_all(b"\n")?;
    }
    ledger.flush()?;
    drop(ledger);

    let state = StateConfig {
        backend: StateBackendKind::S3,
        bucket: Some(BUCKET.into()),
        ..StateConfig::default()
    };
    let (store, lock) =
        kyb_deploy_ecs::s3_state_with_client(s3_client(&proxy.url()), &state, "staging")?;
    let mut rows = bounded_costs(&proxy, &store, &lock, "staging", started).await?;

    eprintln!("timing `kyb-deploy history` ...");
    let file = history_time(&binaries.kyb_deploy, dir, "local")?;
    let s3 = history_time(&binaries.kyb_deploy, dir, "staging")?;
    rows.push(row(
        "history -e staging over 10,000 runs in S3 (median of 5)",
        secs(s3),
        Some((
            format!("< {}", secs(HISTORY_TARGET)),
            s3.as_secs_f64() / HISTORY_TARGET.as_secs_f64(),
            s3 < HISTORY_TARGET,
        )),
        format!("ledger file of 10,000 runs: {}", secs(file)),
    ));

    println!();
    println!(
        "S3 state backend with {RUNS} runs (moto_server on 127.0.0.1; requests counted by a proxy)"
    );
    print_table(&rows);

    let rows = kubernetes(&binaries.kyb_deploy, dir, file, started, first_micros).await?;
    println!();
    println!(
        "Kubernetes state backend with {RUNS} runs (the simulator on 127.0.0.1; requests counted by a proxy)"
    );
    print_table(&rows);
    Ok(())
}

/// The Kubernetes backend: 10,000 runs of `k8s` written as the store's Secrets into the
/// simulator, then the bounded costs (the first record builds the pointer) and
/// `history -e k8s` through a counting proxy. `file` is the ledger's `history` time,
/// measured above.
async fn kubernetes(
    binary: &Path,
    dir: &Path,
    file: Duration,
    started: time::OffsetDateTime,
    first_micros: u64,
) -> BenchResult<Vec<Row>> {
    let sim = K8sSimulator::builder()
        .build()
        .serve(tokio::net::TcpListener::bind("127.0.0.1:0").await?)?;
    let proxy = FaultProxy::start(sim.addr()).await?;
    let client = |url: &str| -> BenchResult<kube::Client> {
        Ok(kube::Client::try_from(kube::Config::new(url.parse()?))?)
    };
    let namespace: k8s_openapi::api::core::v1::Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "kyb-bench"}}))?;
    kube::Api::<k8s_openapi::api::core::v1::Namespace>::all(client(&sim.url())?)
        .create(&kube::api::PostParams::default(), &namespace)
        .await?;
    let state = StateConfig {
        backend: StateBackendKind::Kubernetes,
        ..StateConfig::default()
    };
    // Written straight as the store's objects (one Secret each, the keys the S3 part uses),
    // SEEDING_AT_ONCE at a time; the pointer is then built once, as for S3.
    let objects = kyb_deploy_k8s::kubernetes_objects(client(&sim.url())?, "kyb-bench");
    eprintln!("seeding {RUNS} runs into the Kubernetes simulator ...");
    let seeding = Instant::now();
    let mut writes = tokio::task::JoinSet::new();
    for i in 0..RUNS {
        if writes.len() >= SEEDING_AT_ONCE {
            writes.join_next().await.ok_or("no write")???;
        }
        let mut record = record("k8s", i, started);
        record.target = "kubernetes".into();
        let (objects, key, body) = (
            objects.clone(),
            key(&record, first_micros + i as u64),
            serde_json::to_vec(&record)?,
        );
        writes.spawn(async move {
            put(objects.as_ref(), &key, &body, Condition::Absent)
                .await
                .map(|_| ())
                .map_err(|e| format!("seeding failed: {e}"))
        });
    }
    while let Some(done) = writes.join_next().await {
        done??;
    }
    let seeded = seeding.elapsed();
    eprintln!("seeded in {}", secs(seeded));
    let (store, lock) =
        kyb_deploy_k8s::kubernetes_state_with_client(client(&proxy.url())?, "kyb-bench", &state);
    let mut rows = bounded_costs(&proxy, &store, &lock, "k8s", started).await?;

    // The binary, through the proxy, with a kubeconfig of its own.
    std::fs::write(
        dir.join("kubeconfig"),
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: sim\n  cluster: {{server: \"{}\"}}\nusers:\n- name: bench\n  user: {{}}\ncontexts:\n- name: sim\n  context: {{cluster: sim, user: bench}}\ncurrent-context: sim\n",
            proxy.url()
        ),
    )?;
    let config = std::fs::read_to_string(dir.join("kyb-deploy.toml"))?;
    std::fs::write(
        dir.join("kyb-deploy.toml"),
        format!(
            "{config}\n[environments.k8s]\ntarget = \"kubernetes\"\n[environments.k8s.kubernetes]\nnamespace = \"kyb-bench\"\n[environments.k8s.state]\nbackend = \"kubernetes\"\n"
        ),
    )?;
    eprintln!("timing `kyb-deploy history -e k8s` ...");
    let k8s = history_time(binary, dir, "k8s")?;
    rows.push(row(
        "history -e k8s over 10,000 runs in Kubernetes (median of 5)",
        secs(k8s),
        Some((
            format!("< {}", secs(HISTORY_TARGET)),
            k8s.as_secs_f64() / HISTORY_TARGET.as_secs_f64(),
            k8s < HISTORY_TARGET,
        )),
        format!("ledger file of 10,000 runs: {}", secs(file)),
    ));
    rows.push(row(
        "10,000 runs seeded as Secrets (64 at a time)",
        secs(seeded),
        None,
        "the simulator's, not a figure of kyb-deploy".into(),
    ));
    sim.shutdown().await?;
    Ok(rows)
}

/// An environment on moto's ECS (no cluster: `history` notes the target's error).
const ENVIRONMENT: &str = r#"
[environments.NAME]
target = "ecs"
[environments.NAME.ecs]
cluster = "none"
service = "none"
region = "us-east-1"
endpoint_url = "URL"
task_definition = "task-definition.json"
"#;

const TASK_DEFINITION: &str = r#"{
  "family": "kyb-bench",
  "containerDefinitions": [{"name": "api", "image": "{image}", "essential": true}]
}"#;
