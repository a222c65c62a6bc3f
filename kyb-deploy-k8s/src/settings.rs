//! The Kubernetes target's settings: `[environments.<name>.kubernetes]`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kyb_deploy_core::Result;
use kyb_deploy_core::config::{Environment, Problems, duration};
use serde::{Deserialize, Serialize};

/// Settings of the Kubernetes target (`[environments.<name>.kubernetes]`). Everything but
/// the namespace has a default that matches the service's documented deployment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesSettings {
    /// The namespace the service runs in; kyb-deploy creates it when missing.
    pub namespace: String,
    /// The name of the Deployment, its Service and every other object of the service.
    #[serde(default = "default_app")]
    pub app: String,
    /// Apply the Namespace too (a cluster-scoped write); `false` when the namespace exists
    /// and the deploying identity may only act inside it.
    #[serde(default = "default_true")]
    pub create_namespace: bool,
    /// The kubeconfig context; the file's current context when unset.
    #[serde(default)]
    pub context: Option<String>,
    /// The kubeconfig file, relative to the configuration file; `KUBECONFIG`, then
    /// `~/.kube/config`, then the in-cluster service account when unset.
    #[serde(default)]
    pub kubeconfig: Option<PathBuf>,
    /// Your own manifests, relative to the configuration file: a YAML or JSON file, or a
    /// directory of them, applied in place of the built-in ones with the release filled in
    /// (the built-in objects' settings, such as `ingress` or `probes`, are then not used).
    #[serde(default)]
    pub manifests: Option<PathBuf>,
    /// Pods to run (ignored while `autoscaling` decides).
    #[serde(default = "default_replicas")]
    pub replicas: u32,
    /// The port the container listens on.
    #[serde(default = "default_port")]
    pub port: u16,
    /// The port of the Service.
    #[serde(default = "default_service_port")]
    pub service_port: u16,
    /// Take over fields another field manager owns instead of failing on the conflict.
    #[serde(default)]
    pub force_conflicts: bool,
    /// How pods are replaced.
    #[serde(default)]
    pub rollout: RolloutSettings,
    /// The container's resource requests and limits.
    #[serde(default)]
    pub resources: Resources,
    /// The liveness and readiness probes.
    #[serde(default)]
    pub probes: Probes,
    /// Secrets the container reads as environment variables, by variable name.
    #[serde(default)]
    pub secrets: BTreeMap<String, SecretSource>,
    /// An Ingress in front of the Service, when set.
    #[serde(default)]
    pub ingress: Option<IngressSettings>,
    /// A HorizontalPodAutoscaler, when set; the applied Deployment then leaves
    /// `spec.replicas` to it.
    #[serde(default)]
    pub autoscaling: Option<Autoscaling>,
    /// The PodDisruptionBudget.
    #[serde(default)]
    pub disruption_budget: DisruptionBudget,
    /// The NetworkPolicy.
    #[serde(default)]
    pub network_policy: NetworkPolicySettings,
}

fn default_app() -> String {
    "kyb-platform-api".to_owned()
}

fn default_true() -> bool {
    true
}

fn default_replicas() -> u32 {
    2
}

fn default_port() -> u16 {
    8080
}

fn default_service_port() -> u16 {
    80
}

/// How the Deployment replaces pods (`RollingUpdate`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RolloutSettings {
    /// Pods above the desired count during a rollout: a count (`"1"`) or a percentage
    /// (`"25%"`).
    pub max_surge: String,
    /// Pods below the desired count during a rollout, likewise.
    pub max_unavailable: String,
    /// How long a rollout may make no progress before Kubernetes marks it failed.
    #[serde(with = "duration")]
    pub progress_deadline: Duration,
}

impl Default for RolloutSettings {
    fn default() -> Self {
        Self {
            max_surge: "25%".to_owned(),
            max_unavailable: "0".to_owned(),
            progress_deadline: Duration::from_secs(600),
        }
    }
}

/// The container's resources, as Kubernetes quantities.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Resources {
    /// CPU requested (`"250m"`).
    pub cpu_request: String,
    /// Memory requested (`"256Mi"`).
    pub memory_request: String,
    /// CPU limit.
    pub cpu_limit: String,
    /// Memory limit.
    pub memory_limit: String,
}

impl Default for Resources {
    fn default() -> Self {
        Self {
            cpu_request: "250m".to_owned(),
            memory_request: "256Mi".to_owned(),
            cpu_limit: "1".to_owned(),
            memory_limit: "512Mi".to_owned(),
        }
    }
}

/// The container's probes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Probes {
    /// Restarts a container that stops answering (`/health`).
    pub liveness: Probe,
    /// Keeps a container out of the Service until it answers (`/ready`).
    pub readiness: Probe,
}

impl Default for Probes {
    fn default() -> Self {
        Self {
            liveness: Probe {
                path: "/health".to_owned(),
                initial_delay: Duration::from_secs(60),
                period: Duration::from_secs(30),
                timeout: Duration::from_secs(5),
                failure_threshold: 3,
            },
            readiness: Probe {
                path: "/ready".to_owned(),
                initial_delay: Duration::from_secs(30),
                period: Duration::from_secs(10),
                timeout: Duration::from_secs(5),
                failure_threshold: 3,
            },
        }
    }
}

/// An HTTP GET probe on the container's port.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Probe {
    /// The path requested.
    pub path: String,
    /// Time before the first probe.
    #[serde(with = "duration")]
    pub initial_delay: Duration,
    /// Time between probes.
    #[serde(with = "duration")]
    pub period: Duration,
    /// Time a probe may take.
    #[serde(with = "duration")]
    pub timeout: Duration,
    /// Failed probes in a row that count as a failure.
    pub failure_threshold: u32,
}

/// Where a secret variable's value comes from: exactly one of an existing Kubernetes
/// Secret (`secret` and `key`), a variable of the deploying machine (`env`), or a file
/// (`file`, relative to the configuration file). Values from `env` and `file` go into a
/// Secret kyb-deploy writes; they never appear in output, plans or records.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretSource {
    /// An existing Secret in the namespace.
    #[serde(default)]
    pub secret: Option<String>,
    /// The key in that Secret.
    #[serde(default)]
    pub key: Option<String>,
    /// A variable of the deploying machine.
    #[serde(default)]
    pub env: Option<String>,
    /// A file on the deploying machine.
    #[serde(default)]
    pub file: Option<PathBuf>,
}

/// The Ingress (ingress-nginx).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngressSettings {
    /// The host routed to the Service.
    pub host: String,
    /// The TLS Secret for the host; plain HTTP when unset.
    #[serde(default)]
    pub tls_secret: Option<String>,
    /// The IngressClass.
    #[serde(default = "default_ingress_class")]
    pub class: String,
    /// Requests per second per client address ingress-nginx lets through.
    #[serde(default)]
    pub rate_limit_rps: Option<u32>,
}

fn default_ingress_class() -> String {
    "nginx".to_owned()
}

/// The HorizontalPodAutoscaler.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Autoscaling {
    /// Fewest pods.
    pub min_replicas: u32,
    /// Most pods.
    pub max_replicas: u32,
    /// Average CPU use, in percent of the request, to keep pods at.
    #[serde(default = "default_cpu_percent")]
    pub cpu_percent: u32,
    /// Average memory use, in percent of the request, to keep pods at.
    #[serde(default)]
    pub memory_percent: Option<u32>,
    /// How long the autoscaler waits before scaling down after load drops.
    #[serde(default = "default_scale_down_window", with = "duration")]
    pub scale_down_window: Duration,
}

fn default_cpu_percent() -> u32 {
    70
}

fn default_scale_down_window() -> Duration {
    Duration::from_secs(300)
}

/// The PodDisruptionBudget.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DisruptionBudget {
    /// Write one.
    pub enabled: bool,
    /// Pods that must stay available during voluntary disruptions: a count or a
    /// percentage.
    pub min_available: String,
}

impl Default for DisruptionBudget {
    fn default() -> Self {
        Self {
            enabled: true,
            min_available: "1".to_owned(),
        }
    }
}

/// The NetworkPolicy: which namespaces may reach the pods.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkPolicySettings {
    /// Write one.
    pub enabled: bool,
    /// Namespaces whose pods may connect (the ingress controller's).
    pub allow_from_namespaces: Vec<String>,
}

impl Default for NetworkPolicySettings {
    fn default() -> Self {
        Self {
            enabled: true,
            allow_from_namespaces: vec!["ingress-nginx".to_owned()],
        }
    }
}

impl KubernetesSettings {
    /// The settings of `environment`'s `[kubernetes]` section: a configuration error,
    /// naming the key and the line, when it is missing or does not parse.
    pub fn of(environment: &Environment) -> Result<Self> {
        environment.target_settings()
    }

    /// What serde cannot check, for environment `name`: names Kubernetes accepts,
    /// quantities, counts and percentages, probes, autoscaling bounds, secret sources and
    /// the files named (relative to `base`; not read without one). Each problem names its
    /// key and its fix.
    pub fn problems(&self, name: &str, base: Option<&Path>) -> Problems {
        let key = format!("environments.{name}.kubernetes");
        let mut problems = Problems::default();
        dns_label(&mut problems, &format!("{key}.namespace"), &self.namespace);
        dns_label(&mut problems, &format!("{key}.app"), &self.app);
        if let Some(context) = &self.context
            && context.is_empty()
        {
            problems.push(format!(
                "{key}.context: must not be empty; name a context of the kubeconfig, or remove the key to use its current context"
            ));
        }
        if let Some(kubeconfig) = &self.kubeconfig
            && let Some(base) = base
        {
            problems.text_file(
                &format!("{key}.kubeconfig"),
                kubeconfig,
                base,
                "kubeconfig",
                "write it, or remove the key to use KUBECONFIG or ~/.kube/config",
            );
        }
        if let Some(manifests) = &self.manifests {
            for (field, set) in [
                ("ingress", self.ingress.is_some()),
                ("autoscaling", self.autoscaling.is_some()),
            ] {
                if set {
                    problems.push(format!(
                        "{key}.{field}: not used with {key}.manifests (your manifests replace the built-in objects); write the object in your manifests, and remove the key"
                    ));
                }
            }
            if let Some(base) = base
                && let Err(problem) = crate::own_manifests::check(self, name, &base.join(manifests))
            {
                problems.push(format!("{key}.manifests: {problem}"));
            }
        }
        problems.port(&format!("{key}.port"), self.port);
        problems.port(&format!("{key}.service_port"), self.service_port);
        let r = &self.rollout;
        count_or_percent(
            &mut problems,
            &format!("{key}.rollout.max_surge"),
            &r.max_surge,
        );
        count_or_percent(
            &mut problems,
            &format!("{key}.rollout.max_unavailable"),
            &r.max_unavailable,
        );
        if is_zero(&r.max_surge) && is_zero(&r.max_unavailable) {
            problems.push(format!(
                "{key}.rollout: max_surge and max_unavailable are both 0, which leaves the rollout no room; raise one of them"
            ));
        }
        problems.positive(
            &format!("{key}.rollout.progress_deadline"),
            r.progress_deadline,
        );
        let q = &self.resources;
        for (field, value) in [
            ("cpu_request", &q.cpu_request),
            ("memory_request", &q.memory_request),
            ("cpu_limit", &q.cpu_limit),
            ("memory_limit", &q.memory_limit),
        ] {
            quantity(&mut problems, &format!("{key}.resources.{field}"), value);
        }
        for (which, probe) in [
            ("liveness", &self.probes.liveness),
            ("readiness", &self.probes.readiness),
        ] {
            let pkey = format!("{key}.probes.{which}");
            if !probe.path.starts_with('/') {
                problems.push(format!("{pkey}.path: {:?} must start with '/'", probe.path));
            }
            problems.positive(&format!("{pkey}.period"), probe.period);
            problems.positive(&format!("{pkey}.timeout"), probe.timeout);
            if probe.failure_threshold == 0 {
                problems.push(format!("{pkey}.failure_threshold: must be at least 1"));
            }
        }
        for (variable, source) in &self.secrets {
            secret_source(
                &mut problems,
                &format!("{key}.secrets.{variable}"),
                variable,
                source,
                base,
            );
        }
        if let Some(ingress) = &self.ingress {
            let ikey = format!("{key}.ingress");
            if !is_dns_subdomain(&ingress.host) {
                problems.push(format!(
                    "{ikey}.host: {:?} is not a host name; write one like \"api.example.com\"",
                    ingress.host
                ));
            }
            if let Some(secret) = &ingress.tls_secret {
                dns_subdomain(&mut problems, &format!("{ikey}.tls_secret"), secret);
            }
            if ingress.rate_limit_rps == Some(0) {
                problems.push(format!(
                    "{ikey}.rate_limit_rps: 0 would refuse every request; raise it, or remove the key for no limit"
                ));
            }
        }
        if let Some(a) = &self.autoscaling {
            let akey = format!("{key}.autoscaling");
            if a.min_replicas == 0 || a.max_replicas < a.min_replicas {
                problems.push(format!(
                    "{akey}: min_replicas must be at least 1 and max_replicas at least min_replicas (got {} and {})",
                    a.min_replicas, a.max_replicas
                ));
            }
            for (field, value) in [
                ("cpu_percent", Some(a.cpu_percent)),
                ("memory_percent", a.memory_percent),
            ] {
                if value == Some(0) {
                    problems.push(format!("{akey}.{field}: must be at least 1"));
                }
            }
        }
        if self.disruption_budget.enabled {
            count_or_percent(
                &mut problems,
                &format!("{key}.disruption_budget.min_available"),
                &self.disruption_budget.min_available,
            );
        }
        if self.network_policy.enabled && self.network_policy.allow_from_namespaces.is_empty() {
            // An empty `from` in a NetworkPolicy rule admits every source.
            problems.push(format!(
                "{key}.network_policy.allow_from_namespaces: an empty list would let every pod in the cluster connect; name the namespaces, or set enabled = false"
            ));
        }
        for namespace in &self.network_policy.allow_from_namespaces {
            dns_label(
                &mut problems,
                &format!("{key}.network_policy.allow_from_namespaces"),
                namespace,
            );
        }
        problems
    }
}

fn secret_source(
    problems: &mut Problems,
    key: &str,
    variable: &str,
    source: &SecretSource,
    base: Option<&Path>,
) {
    problems.env_name(key, variable, "like DATABASE_URL");
    let existing = source.secret.is_some() || source.key.is_some();
    let given = [existing, source.env.is_some(), source.file.is_some()];
    if given.iter().filter(|g| **g).count() != 1 {
        problems.push(format!(
            "{key}: give exactly one source: secret and key (an existing Secret), env, or file"
        ));
        return;
    }
    match (&source.secret, &source.key, &source.env, &source.file) {
        (Some(secret), Some(secret_key), _, _) => {
            dns_subdomain(problems, &format!("{key}.secret"), secret);
            if secret_key.is_empty()
                || !secret_key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                problems.push(format!(
                    "{key}.key: {secret_key:?} is not a Secret key; use letters, digits, '-', '_' and '.'"
                ));
            }
        }
        (Some(_), None, _, _) | (None, Some(_), _, _) => {
            problems.push(format!(
                "{key}: an existing Secret needs both secret (its name) and key"
            ));
        }
        (_, _, Some(env), _) => problems.env_name(
            &format!("{key}.env"),
            env,
            "the variable that holds the secret",
        ),
        (_, _, _, Some(file)) => {
            if let Some(base) = base {
                problems.text_file(
                    &format!("{key}.file"),
                    file,
                    base,
                    "secret file",
                    "create it",
                );
            }
        }
        _ => {}
    }
}

/// Whether a count-or-percent is zero (`"0"`, `"0%"`).
fn is_zero(value: &str) -> bool {
    value.trim_end_matches('%') == "0"
}

fn count_or_percent(problems: &mut Problems, key: &str, value: &str) {
    let number = value.strip_suffix('%').unwrap_or(value);
    let valid = !number.is_empty()
        && number.chars().all(|c| c.is_ascii_digit())
        && number.parse::<u32>().is_ok()
        && (!value.ends_with('%') || number.parse::<u32>().is_ok_and(|n| n <= 100));
    if !valid {
        problems.push(format!(
            "{key}: {value:?} is neither a count nor a percentage; write one like \"1\" or \"25%\""
        ));
    }
}

/// A Kubernetes quantity: a decimal number with an optional suffix (`250m`, `0.5`, `1Gi`,
/// `1e3`).
fn quantity(problems: &mut Problems, key: &str, value: &str) {
    const SUFFIXES: [&str; 14] = [
        "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G", "T", "P",
    ];
    let number = SUFFIXES
        .iter()
        .find_map(|s| value.strip_suffix(s))
        .or_else(|| value.strip_suffix('E'))
        .unwrap_or(value);
    let (mantissa, exponent) = match number.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e)),
        None => (number, None),
    };
    let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some((whole, fraction)) => {
            (digits(whole) || whole.is_empty())
                && (digits(fraction) || fraction.is_empty())
                && !(whole.is_empty() && fraction.is_empty())
        }
        None => digits(mantissa),
    };
    let exponent_ok = exponent.is_none_or(|e| digits(e.strip_prefix(['+', '-']).unwrap_or(e)));
    if !(mantissa_ok && exponent_ok) {
        problems.push(format!(
            "{key}: {value:?} is not a Kubernetes quantity; write one like \"250m\", \"0.5\" or \"512Mi\""
        ));
    }
}

/// An RFC 1123 label: what Kubernetes accepts as a namespace or a Service name.
fn is_dns_label(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 63
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !value.starts_with('-')
        && !value.ends_with('-')
}

fn is_dns_subdomain(value: &str) -> bool {
    !value.is_empty() && value.len() <= 253 && value.split('.').all(is_dns_label)
}

fn dns_label(problems: &mut Problems, key: &str, value: &str) {
    if !is_dns_label(value) {
        problems.push(format!(
            "{key}: {value:?} is not a valid Kubernetes name; use at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit"
        ));
    }
}

fn dns_subdomain(problems: &mut Problems, key: &str, value: &str) {
    if !is_dns_subdomain(value) {
        problems.push(format!(
            "{key}: {value:?} is not a valid Kubernetes object name; use lowercase letters, digits, '-' and '.'"
        ));
    }
}

#[cfg(test)]
mod tests;
