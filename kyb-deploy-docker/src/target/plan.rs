//! Plans: what deploying a release would change, compared to what serves now. Read-only;
//! names environment variables and secrets, never their values.

use std::collections::{BTreeMap, BTreeSet};

use super::DockerTarget;
use super::engine::{self, Managed};
use super::spec::{self, TargetSpec};
use crate::settings::ContainerSecurity;
use kyb_deploy_core::PlannedChange;
use kyb_deploy_core::Release;
use kyb_deploy_core::Result;

/// What the serving container runs with now, as far as a plan needs it.
#[derive(Clone, Debug, Default)]
pub(super) struct ServingFacts {
    pub(super) name: String,
    pub(super) image: Option<String>,
    /// The container's environment; only the values of plain keys are compared, never shown.
    pub(super) env: BTreeMap<String, String>,
    pub(super) env_keys: BTreeSet<String>,
    pub(super) secret_keys: BTreeSet<String>,
    pub(super) security: ContainerSecurity,
    pub(super) host_port: Option<u16>,
    pub(super) port: Option<u16>,
}

/// The changes deploying `desired` makes, compared to what serves now. Names environment
/// variables and secrets, never their values.
pub(super) fn plan_changes(
    spec: &TargetSpec,
    current: Option<&ServingFacts>,
    desired: &Release,
) -> Vec<PlannedChange> {
    let resource = format!("container {}", spec.docker.container);
    let change = |field: String, from: Option<String>, to: Option<String>| PlannedChange {
        resource: resource.clone(),
        field,
        from,
        to,
    };
    let mut changes = Vec::new();
    let current_image = current.and_then(|c| c.image.clone());
    if current_image.as_deref() != Some(desired.image.as_str()) {
        changes.push(change(
            "image".into(),
            current_image,
            Some(desired.image.clone()),
        ));
    }
    changes.push(change(
        "name".into(),
        current.map(|c| c.name.clone()),
        Some(format!("{}-<random>", spec.container_name_stem(desired))),
    ));
    let published = |host: Option<u16>, port: Option<u16>| match (host, port) {
        (Some(h), Some(p)) => Some(format!("127.0.0.1:{h}->{p}/tcp")),
        _ => None,
    };
    let from_port = current.and_then(|c| published(c.host_port, c.port));
    let to_port = published(Some(spec.docker.host_port), Some(spec.docker.port));
    if from_port != to_port {
        changes.push(change("published port".into(), from_port, to_port));
    }

    let desired_env = spec.plain_env();
    let empty = BTreeSet::new();
    let current_keys = current.map_or(&empty, |c| &c.env_keys);
    for (key, value) in &desired_env {
        if !current_keys.contains(key) {
            changes.push(change(format!("env {key}"), None, Some("set".into())));
        } else if current.and_then(|c| c.env.get(key)) != Some(value) {
            changes.push(change(
                format!("env {key}"),
                Some("set".into()),
                Some("changed".into()),
            ));
        }
    }
    for key in current_keys
        .iter()
        .filter(|k| !desired_env.contains_key(*k))
    {
        changes.push(change(format!("env {key}"), Some("set".into()), None));
    }
    let current_secrets = current.map_or(&empty, |c| &c.secret_keys);
    for (key, source) in &spec.docker.secrets {
        if !current_secrets.contains(key) {
            changes.push(change(
                format!("secret {key}"),
                None,
                Some(format!("from {}", TargetSpec::secret_source(source))),
            ));
        }
    }
    for key in current_secrets
        .iter()
        .filter(|k| !spec.docker.secrets.contains_key(*k))
    {
        changes.push(change(format!("secret {key}"), Some("set".into()), None));
    }

    let wanted = &spec.docker.security;
    let on_off = |b: bool| Some(if b { "on" } else { "off" }.to_owned());
    let settings = [
        (
            "non-root user",
            wanted.non_root,
            current.map(|c| c.security.non_root),
        ),
        (
            "read-only root filesystem",
            wanted.read_only_root_filesystem,
            current.map(|c| c.security.read_only_root_filesystem),
        ),
        (
            "drop all capabilities",
            wanted.drop_all_capabilities,
            current.map(|c| c.security.drop_all_capabilities),
        ),
        (
            "no-new-privileges",
            wanted.no_new_privileges,
            current.map(|c| c.security.no_new_privileges),
        ),
    ];
    for (name, wanted, now) in settings {
        // Relaxing the non-root rule does not make a non-root image run as root.
        let relaxed_only = name == "non-root user" && !wanted && now == Some(true);
        if now != Some(wanted) && !relaxed_only {
            changes.push(change(
                format!("security {name}"),
                now.and_then(on_off),
                on_off(wanted),
            ));
        }
    }
    changes
}

impl DockerTarget {
    /// What the serving container runs with, for plans.
    pub(super) async fn serving_facts(&self, serving: &Managed) -> Result<Option<ServingFacts>> {
        let Some(info) = engine::inspect(self.client(), &serving.id).await? else {
            return Ok(None);
        };
        let config = info.config.clone().unwrap_or_default();
        let labels = config.labels.clone().unwrap_or_default();
        let env_keys = spec::parse_keys(labels.get(spec::LABEL_ENV_KEYS));
        // Only plain variables are kept: a secret's value never leaves this function.
        let env = spec::parse_env(&config.env.clone().unwrap_or_default())
            .into_iter()
            .filter(|(k, _)| env_keys.contains(k))
            .collect();
        let host = info.host_config.clone().unwrap_or_default();
        let published = serving.ports.first();
        Ok(Some(ServingFacts {
            name: serving.name.clone(),
            image: serving.image.clone(),
            env,
            env_keys,
            secret_keys: spec::parse_keys(labels.get(spec::LABEL_SECRET_KEYS)),
            security: ContainerSecurity {
                non_root: !spec::runs_as_root(config.user.as_deref()),
                read_only_root_filesystem: host.readonly_rootfs.unwrap_or(false),
                drop_all_capabilities: host
                    .cap_drop
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.eq_ignore_ascii_case("ALL")),
                no_new_privileges: host
                    .security_opt
                    .unwrap_or_default()
                    .iter()
                    .any(|o| o.starts_with("no-new-privileges") && !o.ends_with(":false")),
            },
            host_port: published.map(|p| p.1),
            port: published.map(|p| p.2),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::spec::tests::{release, spec};

    #[test]
    fn plans_a_first_deployment_completely() {
        let changes = plan_changes(&spec(), None, &release("v1"));
        let fields: Vec<_> = changes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "image",
                "name",
                "published port",
                "env LOG_LEVEL",
                "env PORT",
                "secret API_TOKEN",
                "security non-root user",
                "security read-only root filesystem",
                "security drop all capabilities",
                "security no-new-privileges",
            ]
        );
        let secret = &changes[5];
        assert_eq!(
            secret.to.as_deref(),
            Some("from env KYB_TEST_UNSET_SECRET_VAR")
        );
    }

    #[test]
    fn plans_only_what_changes_and_never_shows_values() {
        let spec = spec();
        let current = ServingFacts {
            name: "kyb-api-development-v1-0000abcd".into(),
            image: Some("registry/kyb:v1".into()),
            env: BTreeMap::from([
                ("LOG_LEVEL".to_owned(), "info".to_owned()),
                ("PORT".to_owned(), "8080".to_owned()),
                ("OLD".to_owned(), "old-value".to_owned()),
            ]),
            env_keys: ["LOG_LEVEL", "PORT", "OLD"].map(String::from).into(),
            secret_keys: ["API_TOKEN".to_owned()].into(),
            security: ContainerSecurity::default(),
            host_port: Some(18080),
            port: Some(8080),
        };
        let changes = plan_changes(&spec, Some(&current), &release("v2"));
        let rendered: Vec<String> = changes
            .iter()
            .map(|c| format!("{} {:?} {:?}", c.field, c.from, c.to))
            .collect();
        assert_eq!(
            rendered,
            [
                r#"image Some("registry/kyb:v1") Some("registry/kyb:v2")"#,
                r#"name Some("kyb-api-development-v1-0000abcd") Some("kyb-api-development-v2-<random>")"#,
                r#"env LOG_LEVEL Some("set") Some("changed")"#,
                r#"env OLD Some("set") None"#,
            ]
        );
        assert!(!format!("{changes:?}").contains("debug"));
        assert!(!format!("{changes:?}").contains("old-value"));
    }
}
