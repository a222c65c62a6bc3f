use super::*;

fn settings(toml_text: &str) -> KubernetesSettings {
    toml::from_str(&format!("namespace = \"kyb\"\n{toml_text}")).unwrap()
}

fn problems(toml_text: &str) -> Vec<String> {
    settings(toml_text).problems("k8s", None).into_vec()
}

#[test]
fn the_defaults_are_the_documented_deployment_and_valid() {
    let s = settings("");
    assert_eq!(s.app, "kyb-platform-api");
    assert_eq!((s.replicas, s.port, s.service_port), (2, 8080, 80));
    assert_eq!(s.rollout.max_surge, "25%");
    assert_eq!(s.rollout.max_unavailable, "0");
    assert_eq!(s.probes.liveness.initial_delay, Duration::from_secs(60));
    assert_eq!(s.probes.readiness.period, Duration::from_secs(10));
    assert!(s.disruption_budget.enabled && s.network_policy.enabled);
    assert_eq!(problems(""), Vec::<String>::new());
}

#[test]
fn each_bad_value_is_named_with_its_key_and_fix() {
    let cases = [
        (
            "app = \"Kyb_API\"",
            "environments.k8s.kubernetes.app: \"Kyb_API\" is not a valid Kubernetes name",
        ),
        (
            "context = \"\"",
            "environments.k8s.kubernetes.context: must not be empty",
        ),
        (
            "[rollout]\nmax_surge = \"lots\"",
            "environments.k8s.kubernetes.rollout.max_surge: \"lots\" is neither a count nor a percentage",
        ),
        (
            "[rollout]\nmax_surge = \"150%\"",
            "rollout.max_surge: \"150%\" is neither",
        ),
        (
            "[rollout]\nmax_surge = \"0\"\nmax_unavailable = \"0%\"",
            "max_surge and max_unavailable are both 0",
        ),
        (
            "[resources]\ncpu_request = \"half\"",
            "environments.k8s.kubernetes.resources.cpu_request: \"half\" is not a Kubernetes quantity",
        ),
        (
            "[probes.liveness]\npath = \"health\"\ninitial_delay = \"1s\"\nperiod = \"1s\"\ntimeout = \"1s\"\nfailure_threshold = 0",
            "probes.liveness.path: \"health\" must start with '/'",
        ),
        (
            "[probes.liveness]\npath = \"/health\"\ninitial_delay = \"1s\"\nperiod = \"1s\"\ntimeout = \"1s\"\nfailure_threshold = 0",
            "probes.liveness.failure_threshold: must be at least 1",
        ),
        (
            "[secrets.DB]\nenv = \"A\"\nfile = \"b\"",
            "environments.k8s.kubernetes.secrets.DB: give exactly one source",
        ),
        (
            "[secrets.DB]\nsecret = \"db\"",
            "an existing Secret needs both secret (its name) and key",
        ),
        (
            "[secrets.DB]\nsecret = \"Db!\"\nkey = \"url\"",
            "secrets.DB.secret: \"Db!\" is not a valid Kubernetes object name",
        ),
        (
            "[secrets.\"A-B\"]\nenv = \"X\"",
            "secrets.A-B: \"A-B\" is not an environment variable name",
        ),
        (
            "[ingress]\nhost = \"not a host\"",
            "ingress.host: \"not a host\" is not a host name",
        ),
        (
            "[ingress]\nhost = \"api.example.com\"\nrate_limit_rps = 0",
            "ingress.rate_limit_rps: 0 would refuse every request",
        ),
        (
            "[autoscaling]\nmin_replicas = 3\nmax_replicas = 2",
            "autoscaling: min_replicas must be at least 1 and max_replicas at least min_replicas (got 3 and 2)",
        ),
        (
            "[autoscaling]\nmin_replicas = 1\nmax_replicas = 2\ncpu_percent = 0",
            "autoscaling.cpu_percent: must be at least 1",
        ),
        (
            "[disruption_budget]\nmin_available = \"-1\"",
            "disruption_budget.min_available: \"-1\" is neither",
        ),
        (
            "[network_policy]\nallow_from_namespaces = [\"Ingress\"]",
            "network_policy.allow_from_namespaces: \"Ingress\" is not a valid Kubernetes name",
        ),
        (
            "[network_policy]\nallow_from_namespaces = []",
            "network_policy.allow_from_namespaces: an empty list would let every pod in the cluster connect",
        ),
    ];
    for (toml_text, expected) in cases {
        let found = problems(toml_text);
        assert!(
            found.iter().any(|p| p.contains(expected)),
            "{toml_text:?}: expected {expected:?} in {found:#?}"
        );
    }
}

#[test]
fn quantities_kubernetes_accepts_pass() {
    for good in [
        "250m", "0.5", "1", "512Mi", "1Gi", "1e3", "1.5G", ".5", "100k", "2E",
    ] {
        let found = problems(&format!("[resources]\ncpu_request = \"{good}\""));
        assert_eq!(found, Vec::<String>::new(), "{good}");
    }
    for bad in ["", "m", "1.2.3", "1x", "Gi1", "1e"] {
        let found = problems(&format!("[resources]\ncpu_request = \"{bad}\""));
        assert_eq!(found.len(), 1, "{bad}: {found:?}");
    }
}

#[test]
fn unknown_keys_are_refused_by_the_parser() {
    let error = toml::from_str::<KubernetesSettings>("namespace = \"kyb\"\nreplica = 3")
        .unwrap_err()
        .to_string();
    assert!(error.contains("unknown field `replica`"), "{error}");
}

#[test]
fn own_manifests_are_checked_offline_with_their_place() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("app.yaml"),
        "apiVersion: v1\nkind: Service\nmetadata: {name: kyb-platform-api}\n---\napiVersion: batch/v1\nkind: Job\nmetadata: {name: once}\n",
    )
    .unwrap();
    let s = settings("manifests = \"app.yaml\"\n[ingress]\nhost = \"api.example.com\"\n");
    let problems = s.problems("k8s", Some(dir.path())).into_vec();
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(
        problems[0].starts_with("environments.k8s.kubernetes.ingress: not used with environments.k8s.kubernetes.manifests"),
        "{problems:#?}"
    );
    let expected = format!(
        "environments.k8s.kubernetes.manifests: {}:5:1: Job of apiVersion batch/v1 is not a kind kyb-deploy applies",
        dir.path().join("app.yaml").display()
    );
    assert!(problems[1].starts_with(&expected), "{problems:#?}");

    // Without the configuration file's directory, nothing is read.
    assert_eq!(s.problems("k8s", None).into_vec().len(), 1);
}
