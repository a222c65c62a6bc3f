use std::collections::BTreeMap;

use kyb_deploy_core::{Release, Version};

use super::*;
use crate::manifests::{MANIFESTS_ANNOTATION, REDACTED};
use crate::settings::KubernetesSettings;

const DEPLOYMENT: &str = "\
# The service.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  selector:
    matchLabels: {tier: api}
  template:
    metadata:
      labels: {tier: api}
    spec:
      containers:
      - name: sidecar
        image: busybox
      - name: web
        image: placeholder
        env:
        - {name: MODE, value: fast}
";

const SERVICE: &str = "\
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {tier: api}
  ports: [{port: 80, targetPort: 8080}]
";

fn settings(extra: &str) -> KubernetesSettings {
    toml::from_str(&format!("namespace = \"kyb\"\napp = \"web\"\n{extra}")).unwrap()
}

fn release() -> Release {
    Release::new(Version::parse("v7").unwrap(), "registry.test/web@sha256:77")
}

/// Writes `files` into a new directory.
fn directory(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

fn fill(
    path: &Path,
    settings: &KubernetesSettings,
    env: &BTreeMap<String, String>,
    secrets: &SecretValues,
) -> Result<Vec<Manifest>, ManifestError> {
    let release = release();
    let input = ManifestInput {
        environment: "staging",
        settings,
        release: &release,
        env,
    };
    read_manifests(path).and_then(|written| fill_in(path, written, &input, secrets))
}

fn error_of(files: &[(&str, &str)]) -> String {
    let dir = directory(files);
    let error = fill(
        dir.path(),
        &settings(""),
        &BTreeMap::new(),
        &SecretValues::Redacted,
    )
    .unwrap_err();
    // Relative to the directory, for stable messages.
    kyb_deploy_core::Error::chain_of(&error).replace(&format!("{}/", dir.path().display()), "")
}

fn by_kind<'a>(manifests: &'a [Manifest], kind: &str) -> &'a Value {
    &manifests.iter().find(|m| m.kind() == kind).unwrap().object
}

#[test]
fn documents_are_read_from_every_file_with_where_each_starts() {
    let dir = directory(&[
        ("b-app.yaml", &format!("{DEPLOYMENT}---\n{SERVICE}---\n")),
        (
            "a-service.yml",
            "---\n# empty documents are skipped\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {name: web}\n",
        ),
        ("notes.txt", "not a manifest"),
    ]);
    let written = read_manifests(dir.path()).unwrap();
    let at: Vec<String> = written
        .iter()
        .map(|w| {
            format!(
                "{} {}:{}",
                w.object["kind"].as_str().unwrap(),
                w.at.file.file_name().unwrap().to_str().unwrap(),
                w.at.line
            )
        })
        .collect();
    assert_eq!(
        at,
        [
            "ServiceAccount a-service.yml:4",
            "Deployment b-app.yaml:2",
            "Service b-app.yaml:22"
        ]
    );
}

#[test]
fn the_release_and_the_environment_are_filled_in() {
    let dir = directory(&[("app.yaml", &format!("{SERVICE}---\n{DEPLOYMENT}"))]);
    let settings = settings("[secrets.DATABASE_URL]\nenv = \"DB\"\n");
    let env = BTreeMap::from([("LOG_LEVEL".to_owned(), "info".to_owned())]);
    let values = SecretValues::Resolved(BTreeMap::from([(
        "DATABASE_URL".to_owned(),
        "postgres://secret".to_owned(),
    )]));
    let manifests = fill(dir.path(), &settings, &env, &values).unwrap();
    let kinds: Vec<&str> = manifests.iter().map(Manifest::kind).collect();
    assert_eq!(
        kinds,
        ["Namespace", "ConfigMap", "Secret", "Service", "Deployment"]
    );
    for m in &manifests {
        if m.kind() != "Namespace" {
            assert_eq!(m.object["metadata"]["namespace"], "kyb", "{}", m.kind());
        }
        let labels = &m.object["metadata"]["labels"];
        assert_eq!(labels[NAME_LABEL], "web");
        assert_eq!(labels[MANAGED_BY_LABEL], "kyb-deploy");
        assert_eq!(labels[ENVIRONMENT_LABEL], "staging");
    }
    assert_eq!(
        by_kind(&manifests, "ConfigMap")["data"]["LOG_LEVEL"],
        "info"
    );
    let d = by_kind(&manifests, "Deployment");
    assert_eq!(d["spec"]["replicas"], 3);
    assert_eq!(d["metadata"]["annotations"][VERSION_ANNOTATION], "v7");
    let template = &d["spec"]["template"];
    assert_eq!(template["metadata"]["labels"]["tier"], "api");
    assert_eq!(template["metadata"]["labels"][VERSION_LABEL], "v7");
    assert_eq!(template["metadata"]["labels"][NAME_LABEL], "web");
    let annotations = &template["metadata"]["annotations"];
    assert_eq!(annotations[VERSION_ANNOTATION], "v7");
    assert!(annotations[CONFIG_ANNOTATION].is_string());
    assert!(
        annotations[MANIFESTS_ANNOTATION]
            .as_str()
            .unwrap()
            .starts_with("web-manifests-")
    );
    let containers = &template["spec"]["containers"];
    assert_eq!(
        containers[0]["image"], "busybox",
        "only the service's container"
    );
    let web = &containers[1];
    assert_eq!(web["image"], "registry.test/web@sha256:77");
    assert_eq!(web["envFrom"][0]["configMapRef"]["name"], "web-config");
    let env: Vec<&str> = web["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(env, ["MODE", "DATABASE_URL"]);
}

#[test]
fn an_autoscaler_of_the_deployment_takes_the_replica_count() {
    let hpa = "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: web}\nspec:\n  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}\n  minReplicas: 2\n  maxReplicas: 5\n";
    let dir = directory(&[("all.yaml", &format!("{hpa}---\n{DEPLOYMENT}"))]);
    let manifests = fill(
        dir.path(),
        &settings(""),
        &BTreeMap::new(),
        &SecretValues::Redacted,
    )
    .unwrap();
    let d = by_kind(&manifests, "Deployment");
    assert!(d["spec"].get("replicas").is_none(), "{d}");
    assert_eq!(manifests.last().unwrap().kind(), "HorizontalPodAutoscaler");
}

#[test]
fn what_render_prints_can_be_taken_as_ones_own_manifests() {
    let settings = settings(
        "[secrets.DATABASE_URL]\nenv = \"DB\"\n[ingress]\nhost = \"api.example.com\"\n[autoscaling]\nmin_replicas = 2\nmax_replicas = 4\n",
    );
    let env = BTreeMap::from([("LOG_LEVEL".to_owned(), "info".to_owned())]);
    let release = release();
    let input = ManifestInput {
        environment: "staging",
        settings: &settings,
        release: &release,
        env: &env,
    };
    let rendered = built_in(&input, &SecretValues::Redacted);
    let text: Vec<String> = rendered
        .iter()
        .map(|m| serde_json::to_string_pretty(&m.object).unwrap())
        .collect();
    let dir = directory(&[("rendered.json", &text.join("\n"))]);
    let own = fill(dir.path(), &settings, &env, &SecretValues::Redacted).unwrap();
    assert_eq!(own, rendered);
}

#[test]
fn yaml_that_does_not_parse_is_placed() {
    let error = error_of(&[(
        "app.yaml",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n   labels: [\n",
    )]);
    assert!(error.starts_with("app.yaml:5:"), "{error}");
    assert!(error.contains("not valid YAML: "), "{error}");
    assert!(!error.contains(" at line "), "said once: {error}");
}

#[test]
fn json_that_does_not_parse_is_placed() {
    let error = error_of(&[("app.json", "{\"kind\": \"Service\"}\n{\"kind\": }\n")]);
    assert!(
        error.starts_with("app.json:2:10: not valid JSON: "),
        "{error}"
    );
}

#[test]
fn every_bad_object_is_named_with_its_place_and_its_fix() {
    let cases = [
        (
            "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: nightly}\n",
            "app.yaml:1:1: CronJob of apiVersion batch/v1 is not a kind kyb-deploy applies (it applies Namespace (v1), ServiceAccount (v1)",
        ),
        (
            "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: other}\n",
            "app.yaml:1:1: Service web is in namespace other, not the environment's namespace kyb; remove metadata.namespace",
        ),
        (
            "apiVersion: v1\nkind: Secret\nmetadata: {name: creds}\nstringData: {password: hunter2}\n",
            "app.yaml:1:1: Secret creds has values written in the manifests",
        ),
        (
            "- apiVersion: v1\n  kind: Service\n",
            "app.yaml:1:1: each document must be one Kubernetes object",
        ),
        (
            "apiVersion: v1\nkind: Service\nmetadata: {labels: {a: b}}\n",
            "app.yaml:1:1: the object has no metadata.name (a string)",
        ),
        (
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  labels: {app.kubernetes.io/name: api}\n",
            "app.yaml:1:1: label app.kubernetes.io/name is \"api\", but kyb-deploy sets it to \"web\"",
        ),
        (
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: other}\n",
            "app.yaml:1:1: Namespace other is not the environment's namespace kyb",
        ),
    ];
    for (text, expected) in cases {
        let error = error_of(&[("app.yaml", &format!("{text}---\n{DEPLOYMENT}"))]);
        assert!(error.starts_with(expected), "{error}\nexpected: {expected}");
        assert!(!error.contains("hunter2"), "{error}");
    }
}

#[test]
fn an_object_written_twice_names_both_places() {
    let error = error_of(&[
        ("a.yaml", SERVICE),
        ("b.yaml", &format!("{DEPLOYMENT}---\n{SERVICE}")),
    ]);
    assert_eq!(
        error,
        "b.yaml:22:1: Service web is written twice (also at a.yaml:1:1); keep one"
    );
}

#[test]
fn the_service_has_one_deployment_named_after_it() {
    let other = DEPLOYMENT.replace("name: web\nspec", "name: worker\nspec");
    let error = error_of(&[("app.yaml", &format!("{DEPLOYMENT}---\n{other}"))]);
    assert!(
        error.starts_with("app.yaml:23:1: Deployment worker is not the service's Deployment web"),
        "{error}"
    );
    let error = error_of(&[("app.yaml", SERVICE)]);
    assert!(
        error.ends_with(": no Deployment named web; name the service's Deployment after kubernetes.app, or set kubernetes.app to its name"),
        "{error}"
    );
    let two = DEPLOYMENT.replace("- name: web\n", "- name: api\n");
    let error = error_of(&[("app.yaml", &two)]);
    assert!(
        error.contains("the Deployment has containers sidecar, api and none named web"),
        "{error}"
    );
}

#[test]
fn a_directory_without_manifests_and_a_missing_file_say_so() {
    let dir = directory(&[("README.md", "# nothing")]);
    let error = read_manifests(dir.path()).unwrap_err().to_string();
    assert!(
        error.ends_with("no .yaml, .yml or .json file in this directory; put the manifests there, or point kubernetes.manifests at a file"),
        "{error}"
    );
    let missing = dir.path().join("missing.yaml");
    let error = kyb_deploy_core::Error::chain_of(&read_manifests(&missing).unwrap_err());
    assert!(
        error.starts_with("cannot read the manifests ") && error.contains("No such file"),
        "{error}"
    );
}

#[test]
fn the_environments_objects_as_render_prints_them_are_written_by_kyb_deploy() {
    let secret = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: web-secrets}}\nstringData: {{DATABASE_URL: \"{REDACTED}\"}}\n"
    );
    let config =
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web-config}\ndata: {OLD: value}\n";
    let dir = directory(&[(
        "app.yaml",
        &format!("{secret}---\n{config}---\n{DEPLOYMENT}"),
    )]);
    let settings = settings("[secrets.DATABASE_URL]\nenv = \"DB\"\n");
    let env = BTreeMap::from([("LOG_LEVEL".to_owned(), "info".to_owned())]);
    let manifests = fill(dir.path(), &settings, &env, &SecretValues::Redacted).unwrap();
    assert_eq!(
        by_kind(&manifests, "ConfigMap")["data"],
        json!({"LOG_LEVEL": "info"})
    );
    assert_eq!(manifests.iter().filter(|m| m.kind() == "Secret").count(), 1);
}
