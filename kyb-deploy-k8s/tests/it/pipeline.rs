//! Whole deployments through the pipeline against the simulator: the outcome, the ledger,
//! and the cluster's state agree.

use std::sync::Arc;

use kyb_deploy_core::DeploymentRecord;
use kyb_deploy_core::config::{Config, Environment};
use kyb_deploy_core::{
    CancellationToken, DeployRequest, Outcome, Pipeline, RecordStatus, RunControl, RunReport,
    Stage, Target as _, Version,
};
use kyb_deploy_k8s::{KubernetesTarget, KubernetesTargetSpec, MANIFESTS_ANNOTATION};
use kyb_deploy_testkit::k8s_sim::Fault;
use kyb_deploy_testkit::{FixedVersion, InMemoryLock, InMemoryRecordStore, ScriptedProbe};

use super::Cluster;

pub(crate) const REPO: &str = "registry.test/web";

/// The staging environment on Kubernetes, with fast probes and a short deadline, and
/// `extra` lines in its `kubernetes` table.
fn environment(extra: &str) -> Environment {
    let text = format!(
        "[environments.staging]\ntarget = \"kubernetes\"\n\
        [environments.staging.kubernetes]\nnamespace = \"kyb\"\napp = \"web\"\n{extra}\n\
        [environments.staging.kubernetes.rollout]\nprogress_deadline = \"60s\"\n\
        [environments.staging.kubernetes.probes.readiness]\npath = \"/ready\"\ninitial_delay = \"1s\"\nperiod = \"1s\"\ntimeout = \"1s\"\nfailure_threshold = 3\n\
        [environments.staging.env]\nENVIRONMENT = \"staging\"\n\
        [environments.staging.verify]\nbase_url = \"http://127.0.0.1:9\"\n"
    );
    Config::from_toml(&text)
        .unwrap()
        .environment("staging")
        .unwrap()
}

pub(crate) struct Harness {
    pub(crate) cluster: Cluster,
    target: Arc<KubernetesTarget>,
    probe: Arc<ScriptedProbe>,
    pub(crate) store: Arc<InMemoryRecordStore>,
    env: Environment,
}

impl Harness {
    async fn new(probe: ScriptedProbe) -> Self {
        Self::on(Cluster::start().await, probe)
    }

    /// A pipeline deploying to `cluster` through its client.
    pub(crate) fn on(cluster: Cluster, probe: ScriptedProbe) -> Self {
        Self::configured(cluster, probe, "")
    }

    /// With `extra` lines in the environment's `kubernetes` table.
    fn configured(cluster: Cluster, probe: ScriptedProbe, extra: &str) -> Self {
        let env = environment(extra);
        let spec = KubernetesTargetSpec::from_environment(&env, std::path::Path::new(".")).unwrap();
        let target = Arc::new(KubernetesTarget::new(cluster.client.clone(), spec));
        Self {
            cluster,
            target,
            probe: Arc::new(probe),
            store: Arc::new(InMemoryRecordStore::new()),
            env,
        }
    }

    pub(crate) async fn deploy(&self, v: &str) -> RunReport {
        let mut request = DeployRequest::new(self.env.clone());
        request.image.repository = REPO.into();
        Pipeline::new(
            self.target.clone(),
            self.probe.clone(),
            self.store.clone(),
            Arc::new(InMemoryLock::new()),
        )
        .with_version_source(Arc::new(FixedVersion::new(v)))
        .deploy(&request, &RunControl::new(CancellationToken::new()))
        .await
    }

    /// The same cluster and ledger, with the environment's variable `name` set to `value`
    /// (a configuration change, as a later run on another machine would bring).
    fn with_variable(self, name: &str, value: &str) -> Self {
        let mut env = self.env.clone();
        env.settings.env.insert(name.to_owned(), value.to_owned());
        let spec = KubernetesTargetSpec::from_environment(&env, std::path::Path::new(".")).unwrap();
        Self {
            target: Arc::new(KubernetesTarget::new(self.cluster.client.clone(), spec)),
            env,
            ..self
        }
    }

    pub(crate) fn image(&self) -> String {
        let d = self
            .cluster
            .running
            .handle()
            .get("Deployment", "kyb", "web")
            .unwrap();
        d["spec"]["template"]["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

pub(crate) fn succeeded(h: &Harness, report: &RunReport, v: &str) {
    assert!(
        matches!(&report.outcome, Outcome::Succeeded { release, .. } if release.version == Version::parse(v).unwrap()),
        "{:?}",
        report.outcome
    );
    let record = h
        .store
        .records()
        .into_iter()
        .find(|r| r.id == report.run_id)
        .unwrap();
    assert_eq!(record.status, RecordStatus::Succeeded);
    assert!(record.rollout_id.unwrap().parse::<i64>().is_ok());
}

#[tokio::test]
async fn a_deployment_rolls_out_and_the_cluster_runs_it() {
    let h = Harness::new(ScriptedProbe::new()).await;
    succeeded(&h, &h.deploy("v1").await, "v1");
    succeeded(&h, &h.deploy("v2").await, "v2");
    assert_eq!(h.image(), format!("{REPO}:v2"));
    let current = h.target.current_release().await.unwrap().unwrap();
    assert_eq!(current.version, Version::parse("v2").unwrap());
    let history = h.target.history().await.unwrap();
    let versions: Vec<String> = history
        .iter()
        .map(|r| r.release.version.to_string())
        .collect();
    assert_eq!(versions, ["v2", "v1"]);
    assert!(history[0].active && !history[1].active, "{history:?}");
}

#[tokio::test]
async fn an_image_that_cannot_be_pulled_fails_fast_and_is_rolled_back_to_the_last_known_good() {
    let h = Harness::new(ScriptedProbe::new()).await;
    succeeded(&h, &h.deploy("v1").await, "v1");
    h.cluster
        .running
        .handle()
        .add_fault(Fault::image_pull_backoff(format!("{REPO}:v2")));
    let report = h.deploy("v2").await;
    let Outcome::RolledBack {
        stage,
        reason,
        to,
        by_platform,
    } = &report.outcome
    else {
        panic!("{:?}", report.outcome);
    };
    assert_eq!(*stage, Stage::Wait);
    assert!(!by_platform);
    assert_eq!(to.version, Version::parse("v1").unwrap());
    assert!(
        reason.contains("can start") && reason.contains("Image"),
        "{reason}"
    );
    // The kubelet's events about the stuck pod come along.
    assert!(
        reason.contains("; recent events: ") && reason.contains("Failed to pull image"),
        "{reason}"
    );
    assert_eq!(h.image(), format!("{REPO}:v1"));
}

#[tokio::test]
async fn a_release_failing_verification_is_rolled_back() {
    let probe = ScriptedProbe::new().fail_version("v2", "readiness", "GET /ready answered 503");
    let h = Harness::new(probe).await;
    succeeded(&h, &h.deploy("v1").await, "v1");
    let report = h.deploy("v2").await;
    let Outcome::RolledBack { stage, to, .. } = &report.outcome else {
        panic!("{:?}", report.outcome);
    };
    assert_eq!(*stage, Stage::Verify);
    assert_eq!(to.version, Version::parse("v1").unwrap());
    assert_eq!(h.image(), format!("{REPO}:v1"));
}

#[tokio::test]
async fn a_rollback_applies_the_manifests_recorded_for_the_release_it_goes_back_to() {
    let probe = ScriptedProbe::new().fail_version("v2", "readiness", "GET /ready answered 503");
    let h = Harness::new(probe).await;
    let v1 = h.deploy("v1").await;
    succeeded(&h, &v1, "v1");
    let sim = h.cluster.running.handle();
    let template = |sim: &kyb_deploy_testkit::k8s_sim::K8sHandle| {
        sim.get("Deployment", "kyb", "web").unwrap()["spec"]["template"]["metadata"]["annotations"]
            .clone()
    };
    let v1_template = template(&sim);
    let v1_record = v1_template[MANIFESTS_ANNOTATION]
        .as_str()
        .unwrap()
        .to_owned();
    // The ledger names the record, and so does the platform's history: they join.
    let recorded = h.store.records()[0].release.clone().unwrap();
    assert_eq!(recorded.platform_ref.as_deref(), Some(v1_record.as_str()));
    let history = h.target.history().await.unwrap();
    assert!(
        DeploymentRecord::latest_deployment_of(&h.store.records(), &history[0].release)
            .is_some_and(|r| r.id == v1.run_id),
        "{history:?}"
    );

    // v2 comes with a changed variable and fails verification.
    let h = h.with_variable("ENVIRONMENT", "broken");
    let report = h.deploy("v2").await;
    let Outcome::RolledBack { to, .. } = &report.outcome else {
        panic!("{:?}", report.outcome);
    };
    assert_eq!(to.version, Version::parse("v1").unwrap());
    // Back on v1's manifests: its variables, its pod template, not today's settings.
    let config = sim.get("ConfigMap", "kyb", "web-config").unwrap();
    assert_eq!(config["data"]["ENVIRONMENT"], "staging");
    assert_eq!(template(&sim), v1_template);
    assert_eq!(h.image(), format!("{REPO}:v1"));
    // Both releases' records stay while their ReplicaSets do.
    let records: Vec<String> = sim
        .list("ConfigMap", "kyb")
        .iter()
        .filter_map(|c| c["metadata"]["name"].as_str())
        .filter(|n| n.starts_with("web-manifests-"))
        .map(str::to_owned)
        .collect();
    assert_eq!(records.len(), 2, "{records:?}");
    assert!(records.contains(&v1_record), "{records:?}");
}

#[tokio::test]
async fn records_of_releases_whose_replica_sets_are_gone_are_deleted() {
    let h = Harness::new(ScriptedProbe::new()).await;
    succeeded(&h, &h.deploy("v1").await, "v1");
    let sim = h.cluster.running.handle();
    let records = |sim: &kyb_deploy_testkit::k8s_sim::K8sHandle| -> Vec<String> {
        sim.list("ConfigMap", "kyb")
            .iter()
            .filter_map(|c| c["metadata"]["name"].as_str())
            .filter(|n| n.starts_with("web-manifests-"))
            .map(str::to_owned)
            .collect()
    };
    let v1_record = records(&sim);
    assert_eq!(v1_record.len(), 1);
    succeeded(&h, &h.deploy("v2").await, "v2");
    assert_eq!(records(&sim).len(), 2);
    // v1's ReplicaSet goes (as beyond the Deployment's history limit).
    let sets: kube::Api<k8s_openapi::api::apps::v1::ReplicaSet> =
        kube::Api::namespaced(h.cluster.client.clone(), "kyb");
    for set in sim.list("ReplicaSet", "kyb") {
        if set["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1" {
            let name = set["metadata"]["name"].as_str().unwrap();
            sets.delete(name, &Default::default()).await.unwrap();
        }
    }
    succeeded(&h, &h.deploy("v3").await, "v3");
    let kept = records(&sim);
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert!(!kept.contains(&v1_record[0]), "{kept:?}");
}

#[tokio::test]
async fn ones_own_manifests_are_deployed_rolled_back_and_pruned() {
    let dir = tempfile::tempdir().unwrap();
    let deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: 2\n  selector: {matchLabels: {tier: web}}\n  template:\n    metadata: {labels: {tier: web}}\n    spec:\n      containers: [{name: web, image: to-be-filled}]\n";
    let service = "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {selector: {tier: web}, ports: [{port: 80}]}\n";
    std::fs::write(dir.path().join("deployment.yaml"), deployment).unwrap();
    std::fs::write(dir.path().join("service.yaml"), service).unwrap();
    let probe = ScriptedProbe::new().fail_version("v3", "readiness", "GET /ready answered 503");
    let h = Harness::configured(
        Cluster::start().await,
        probe,
        &format!("manifests = {:?}", dir.path().display().to_string()),
    );
    succeeded(&h, &h.deploy("v1").await, "v1");
    let sim = h.cluster.running.handle();
    assert!(sim.get("Service", "kyb", "web").is_some());
    // No more Service in the files: v2 prunes it, once rolled out.
    std::fs::remove_file(dir.path().join("service.yaml")).unwrap();
    succeeded(&h, &h.deploy("v2").await, "v2");
    assert_eq!(h.image(), format!("{REPO}:v2"));
    assert!(sim.get("Service", "kyb", "web").is_none());
    let d = sim.get("Deployment", "kyb", "web").unwrap();
    assert_eq!(d["spec"]["template"]["metadata"]["labels"]["tier"], "web");
    assert_eq!(d["spec"]["replicas"], 2);

    // v3 comes with more replicas in the files and fails verification: back to v2's own
    // manifests, as recorded.
    std::fs::write(
        dir.path().join("deployment.yaml"),
        deployment.replace("replicas: 2", "replicas: 3"),
    )
    .unwrap();
    let report = h.deploy("v3").await;
    let Outcome::RolledBack { to, .. } = &report.outcome else {
        panic!("{:?}", report.outcome);
    };
    assert_eq!(to.version, Version::parse("v2").unwrap());
    let d = sim.get("Deployment", "kyb", "web").unwrap();
    assert_eq!(d["spec"]["replicas"], 2);
    assert_eq!(h.image(), format!("{REPO}:v2"));

    // A file that breaks is a configuration error naming its place, before any write.
    std::fs::write(dir.path().join("deployment.yaml"), "kind: [\n").unwrap();
    let version = super::settled_revision(&sim).await;
    let report = h.deploy("v4").await;
    let Outcome::FailedBeforeDeploy { reason, .. } = &report.outcome else {
        panic!("{:?}", report.outcome);
    };
    assert!(
        reason.contains("deployment.yaml:") && reason.contains("not valid YAML"),
        "{reason}"
    );
    assert_eq!(sim.resource_version(), version, "nothing was written");
}

#[tokio::test]
async fn a_namespace_that_does_not_exist_is_named_with_the_fix() {
    let h = Harness::configured(
        Cluster::start().await,
        ScriptedProbe::new(),
        "create_namespace = false",
    );
    let report = h.deploy("v1").await;
    let Outcome::FailedBeforeDeploy { reason, .. } = &report.outcome else {
        panic!("{:?}", report.outcome);
    };
    assert!(
        reason.contains(
            "the namespace does not exist: create it, or set kubernetes.create_namespace = true"
        ),
        "{reason}"
    );
}

#[tokio::test]
async fn a_plan_lists_the_changes_and_writes_nothing() {
    let h = Harness::new(ScriptedProbe::new()).await;
    // Before the first deploy: everything would be created.
    let v1 = kyb_deploy_core::Release::new(Version::parse("v1").unwrap(), format!("{REPO}:v1"));
    // The simulator's controllers first create each namespace's default ServiceAccount.
    let stored = super::settled_revision(&h.cluster.running.handle()).await;
    let plan = h.target.plan(&v1).await.unwrap();
    // Every stored write moves the cluster's resource version: none was made.
    assert_eq!(h.cluster.running.handle().resource_version(), stored);
    assert!(plan.current.is_none());
    assert!(
        plan.changes
            .iter()
            .any(|c| c.resource == "Deployment kyb/web" && c.to.as_deref() == Some("created")),
        "{plan:#?}"
    );
    // Nothing was created, not even the namespace.
    let handle = h.cluster.running.handle();
    assert!(handle.get("Namespace", "", "kyb").is_none());
    for kind in ["Deployment", "ConfigMap", "Service", "ServiceAccount"] {
        assert_eq!(
            handle.list(kind, "kyb"),
            Vec::<serde_json::Value>::new(),
            "{kind}"
        );
    }

    succeeded(&h, &h.deploy("v1").await, "v1");
    let v2 = kyb_deploy_core::Release::new(Version::parse("v2").unwrap(), format!("{REPO}:v2"));
    let plan = h.target.plan(&v2).await.unwrap();
    assert_eq!(
        plan.current.as_ref().unwrap().version,
        Version::parse("v1").unwrap()
    );
    let image = plan
        .changes
        .iter()
        .find(|c| c.field == "spec.template.spec.containers[0].image")
        .unwrap_or_else(|| panic!("{plan:#?}"));
    assert_eq!(image.from.as_deref(), Some("registry.test/web:v1"));
    assert_eq!(image.to.as_deref(), Some("registry.test/web:v2"));
    assert!(
        plan.changes
            .iter()
            .all(|c| c.resource.starts_with("Deployment")),
        "{plan:#?}"
    );
    // Controllers may write status meanwhile; the objects themselves are as they were.
    let d = h
        .cluster
        .running
        .handle()
        .get("Deployment", "kyb", "web")
        .unwrap();
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.test/web:v1"
    );
}

#[tokio::test]
async fn preflight_asks_the_api_server_what_this_identity_may_do() {
    let h = Harness::new(ScriptedProbe::new()).await;
    let checks = h.target.preflight().await;
    assert!(checks.iter().all(|c| c.ok), "{checks:#?}");
    assert_eq!(checks[0].name, "kubernetes api");
    assert!(checks[0].detail.contains("v1.32.0"), "{checks:#?}");

    h.cluster
        .running
        .handle()
        .add_fault(Fault::forbidden("patch", "deployments", "kyb"));
    let checks = h.target.preflight().await;
    let refused: Vec<_> = checks.iter().filter(|c| !c.ok).collect();
    assert_eq!(refused.len(), 1, "{checks:#?}");
    assert_eq!(
        refused[0].detail,
        "this identity may not patch deployments in namespace kyb"
    );
    assert!(
        refused[0]
            .fix
            .as_deref()
            .unwrap()
            .contains("docs/kubernetes.md")
    );

    // A deploy stops at preflight, before anything is written, naming what is missing.
    let report = h.deploy("v1").await;
    let Outcome::FailedBeforeDeploy { reason, .. } = &report.outcome else {
        panic!("{:?}", report.outcome);
    };
    assert!(
        reason.contains("may not patch deployments in namespace kyb")
            && reason.contains("docs/kubernetes.md"),
        "{reason}"
    );
    assert!(
        h.cluster
            .running
            .handle()
            .get("Deployment", "kyb", "web")
            .is_none()
    );
    // The target itself, asked anyway, quotes the API server and gives the fix.
    let v1 = kyb_deploy_core::Release::new(Version::parse("v1").unwrap(), format!("{REPO}:v1"));
    let error = h.target.deploy(&v1).await.unwrap_err().chain();
    assert!(
        error.contains("failed to apply Deployment kyb/web")
            && error.contains("the identity lacks this permission")
            && error.contains("forbidden"),
        "{error}"
    );
    // Each part once, and the API server's answer rather than the client's debug form.
    assert_eq!(
        error.matches("failed to apply Deployment kyb/web").count(),
        1,
        "{error}"
    );
    assert!(
        !error.contains("Status {") && !error.contains("ApiError"),
        "{error}"
    );
}

#[tokio::test]
async fn a_verified_release_leaves_a_note_that_later_deploys_keep_and_that_starts_no_rollout() {
    let h = Harness::new(ScriptedProbe::new()).await;
    let report = h.deploy("v1").await;
    succeeded(&h, &report, "v1");
    // The pipeline left the note once v1 was verified.
    let noted = h.target.verified_by(&report.run_id).await.unwrap().unwrap();
    assert_eq!(noted.version, Version::parse("v1").unwrap());
    assert_eq!(noted.image, format!("{REPO}:v1"));
    assert_eq!(h.target.verified_by("another-run").await.unwrap(), None);
    let generation = |h: &Harness| {
        h.cluster
            .running
            .handle()
            .get("Deployment", "kyb", "web")
            .unwrap()["metadata"]["generation"]
            .clone()
    };
    let before = generation(&h);
    let v1 = kyb_deploy_core::Release::new(Version::parse("v1").unwrap(), format!("{REPO}:v1"));
    assert!(h.target.mark_verified(&v1, "run-2").await.unwrap());
    assert_eq!(generation(&h), before, "a note is no spec change");
    // Applying the manifests again (they do not carry the note) keeps it.
    h.target.deploy(&v1).await.unwrap();
    assert_eq!(
        h.target
            .verified_by("run-2")
            .await
            .unwrap()
            .unwrap()
            .version,
        v1.version
    );
}
