//! Task definitions: what kyb-deploy registers, built from a template or from the service's
//! current task definition, compared without the noise of server-filled defaults.

mod diff;
mod template;

use std::collections::HashMap;

use aws_sdk_ecs::operation::register_task_definition::builders::RegisterTaskDefinitionFluentBuilder;
use aws_sdk_ecs::types::{
    Compatibility, ContainerDefinition, EphemeralStorage, InferenceAccelerator, IpcMode,
    KeyValuePair, NetworkMode, PidMode, ProxyConfiguration, RuntimePlatform, Tag, TaskDefinition,
    TaskDefinitionPlacementConstraint, TransportProtocol, Volume,
};
use kyb_deploy_core::Version;

pub(crate) use self::diff::diff;
pub(crate) use self::template::parse_template;
use crate::error::TaskDefinitionError;
use crate::fargate;

/// The Docker label that carries the release's version on the service's container. It is
/// part of the task definition, so a new version is always a new revision.
pub const VERSION_LABEL: &str = "com.kyb-deploy.version";

/// The fields of a task definition that RegisterTaskDefinition takes, as SDK types.
///
/// Built from a template ([`TaskDefinitionSpec::from_template`]) or from a registered
/// revision ([`TaskDefinitionSpec::from_registered`]); compared with
/// [`TaskDefinitionSpec::same_as`], which ignores defaults ECS fills in.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskDefinitionSpec {
    /// The family.
    pub family: String,
    /// The task role.
    pub task_role_arn: Option<String>,
    /// The task execution role (image pulls, secrets, logs).
    pub execution_role_arn: Option<String>,
    /// The network mode (`awsvpc` on Fargate).
    pub network_mode: Option<NetworkMode>,
    /// The containers.
    pub containers: Vec<ContainerDefinition>,
    /// Volumes.
    pub volumes: Vec<Volume>,
    /// Placement constraints.
    pub placement_constraints: Vec<TaskDefinitionPlacementConstraint>,
    /// Launch types the task must be compatible with.
    pub requires_compatibilities: Vec<Compatibility>,
    /// Task cpu, as written.
    pub cpu: Option<String>,
    /// Task memory, as written.
    pub memory: Option<String>,
    /// The process namespace mode.
    pub pid_mode: Option<PidMode>,
    /// The IPC namespace mode.
    pub ipc_mode: Option<IpcMode>,
    /// An App Mesh proxy.
    pub proxy_configuration: Option<ProxyConfiguration>,
    /// Elastic inference accelerators.
    pub inference_accelerators: Vec<InferenceAccelerator>,
    /// Ephemeral storage of a Fargate task.
    pub ephemeral_storage: Option<EphemeralStorage>,
    /// CPU architecture and OS.
    pub runtime_platform: Option<RuntimePlatform>,
    /// Whether fault injection is enabled.
    pub enable_fault_injection: Option<bool>,
    /// Tags of the task definition (not part of the comparison).
    pub tags: Vec<Tag>,
}

impl TaskDefinitionSpec {
    /// The registrable part of a registered task definition, as DescribeTaskDefinition
    /// returns it (with its tags when asked for).
    pub fn from_registered(definition: &TaskDefinition, tags: &[Tag]) -> Self {
        let d = definition.clone();
        Self {
            family: d.family.unwrap_or_default(),
            task_role_arn: d.task_role_arn,
            execution_role_arn: d.execution_role_arn,
            network_mode: d.network_mode,
            containers: d.container_definitions.unwrap_or_default(),
            volumes: d.volumes.unwrap_or_default(),
            placement_constraints: d.placement_constraints.unwrap_or_default(),
            requires_compatibilities: d.requires_compatibilities.unwrap_or_default(),
            cpu: d.cpu,
            memory: d.memory,
            pid_mode: d.pid_mode,
            ipc_mode: d.ipc_mode,
            proxy_configuration: d.proxy_configuration,
            inference_accelerators: d.inference_accelerators.unwrap_or_default(),
            ephemeral_storage: d.ephemeral_storage,
            runtime_platform: d.runtime_platform,
            enable_fault_injection: d.enable_fault_injection,
            tags: tags.to_vec(),
        }
    }

    /// Parses a template in the `aws ecs register-task-definition --cli-input-json` format.
    /// `origin` names the file in errors.
    ///
    /// # Errors
    ///
    /// A message naming the file, the position and the field when the JSON is not a
    /// template kyb-deploy can register.
    pub fn from_template(text: &str, origin: &str) -> Result<Self, TaskDefinitionError> {
        parse_template(text, origin).map_err(TaskDefinitionError::Template)
    }

    /// Fills in a release: the service's container runs `image`, carries `version` as the
    /// [`VERSION_LABEL`] label, and gets `env` as environment variables (replacing variables
    /// of the same name). `container` names the service's container; it may be omitted
    /// when the task has a single container.
    ///
    /// # Errors
    ///
    /// A message when the container cannot be found.
    pub fn with_release(
        mut self,
        container: Option<&str>,
        image: &str,
        version: &Version,
        env: &[(String, String)],
    ) -> Result<Self, TaskDefinitionError> {
        let index = self.service_container(container)?;
        let c = &mut self.containers[index];
        c.image = Some(image.to_owned());
        c.docker_labels
            .get_or_insert_with(HashMap::new)
            .insert(VERSION_LABEL.to_owned(), version.as_str().to_owned());
        let vars = c.environment.get_or_insert_with(Vec::new);
        for (name, value) in env {
            vars.retain(|v| v.name.as_deref() != Some(name));
            vars.push(KeyValuePair::builder().name(name).value(value).build());
        }
        Ok(self)
    }

    /// The index of the service's container: the one named `name`, or the only one.
    ///
    /// # Errors
    ///
    /// A message naming the containers there are.
    pub fn service_container(&self, name: Option<&str>) -> Result<usize, TaskDefinitionError> {
        let names: Vec<&str> = self
            .containers
            .iter()
            .map(|c| c.name.as_deref().unwrap_or(""))
            .collect();
        match name {
            Some(name) => names.iter().position(|n| *n == name).ok_or_else(|| {
                TaskDefinitionError::Container(format!(
                    "task definition {} has no container named {name:?} (it has {}); fix ecs.container",
                    self.family,
                    quoted(&names)
                ))
            }),
            None if names.len() == 1 => Ok(0),
            None => Err(TaskDefinitionError::Container(format!(
                "task definition {} has {} containers ({}); set ecs.container to the one that runs the service's image",
                self.family,
                names.len(),
                quoted(&names)
            ))),
        }
    }

    /// The image of the service's container.
    pub fn image(&self, container: Option<&str>) -> Option<&str> {
        let index = self.service_container(container).ok()?;
        self.containers[index].image.as_deref()
    }

    /// The version label of the service's container.
    pub fn version_label(&self, container: Option<&str>) -> Option<&str> {
        let index = self.service_container(container).ok()?;
        self.containers[index]
            .docker_labels
            .as_ref()?
            .get(VERSION_LABEL)
            .map(String::as_str)
    }

    /// Checks what ECS would refuse, before any API call: a missing family, no containers,
    /// and for a Fargate task its network mode and size (task cpu/memory pair, containers
    /// within the task). Returns every problem.
    pub fn check(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.family.is_empty() {
            problems.push("\"family\" is missing".to_owned());
        }
        if self.containers.is_empty() {
            problems.push("\"containerDefinitions\" is empty".to_owned());
        }
        if self
            .requires_compatibilities
            .contains(&Compatibility::Fargate)
        {
            if self.network_mode != Some(NetworkMode::Awsvpc) {
                problems.push("Fargate tasks need \"networkMode\": \"awsvpc\"".to_owned());
            }
            let containers: Vec<(String, u32, Option<u32>)> = self
                .containers
                .iter()
                .map(|c| {
                    (
                        c.name.clone().unwrap_or_default(),
                        u32::try_from(c.cpu).unwrap_or(0),
                        c.memory.and_then(|m| u32::try_from(m).ok()),
                    )
                })
                .collect();
            problems.extend(fargate::check_size(
                self.cpu.as_deref(),
                self.memory.as_deref(),
                &containers,
            ));
        }
        problems
    }

    /// Whether registering `self` would give the same task definition as `other`, ignoring
    /// the order of variables and the defaults ECS fills in (and tags).
    pub fn same_as(&self, other: &Self) -> bool {
        self.normalised() == other.normalised()
    }

    /// A copy with ECS's defaults filled in and lists in a canonical order: what ECS
    /// returns after registering `self`.
    pub fn normalised(&self) -> Self {
        let mut n = self.clone();
        n.tags.clear();
        if let Some(units) = n.cpu.as_deref().and_then(fargate::parse_cpu) {
            n.cpu = Some(units.to_string());
        }
        if let Some(mib) = n.memory.as_deref().and_then(fargate::parse_memory) {
            n.memory = Some(mib.to_string());
        }
        // ECS fills in the host port under awsvpc and host networking, where it must
        // equal the container port.
        let same_port = matches!(
            n.network_mode,
            Some(NetworkMode::Awsvpc | NetworkMode::Host)
        );
        for c in &mut n.containers {
            normalise_container(c, same_port);
        }
        n
    }

    /// The RegisterTaskDefinition call for `self`.
    pub fn register_request(
        &self,
        call: RegisterTaskDefinitionFluentBuilder,
    ) -> RegisterTaskDefinitionFluentBuilder {
        let s = self.clone();
        call.family(s.family)
            .set_task_role_arn(s.task_role_arn)
            .set_execution_role_arn(s.execution_role_arn)
            .set_network_mode(s.network_mode)
            .set_container_definitions(Some(s.containers))
            .set_volumes(non_empty(s.volumes))
            .set_placement_constraints(non_empty(s.placement_constraints))
            .set_requires_compatibilities(non_empty(s.requires_compatibilities))
            .set_cpu(s.cpu)
            .set_memory(s.memory)
            .set_pid_mode(s.pid_mode)
            .set_ipc_mode(s.ipc_mode)
            .set_proxy_configuration(s.proxy_configuration)
            .set_inference_accelerators(non_empty(s.inference_accelerators))
            .set_ephemeral_storage(s.ephemeral_storage)
            .set_runtime_platform(s.runtime_platform)
            .set_enable_fault_injection(s.enable_fault_injection)
            .set_tags(non_empty(s.tags))
    }
}

fn non_empty<T>(v: Vec<T>) -> Option<Vec<T>> {
    (!v.is_empty()).then_some(v)
}

fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Fills in what ECS fills in, and orders what ECS does not keep in order.
fn normalise_container(c: &mut ContainerDefinition, same_port: bool) {
    fn empty_is_none<T>(v: &mut Option<Vec<T>>) {
        if v.as_ref().is_some_and(Vec::is_empty) {
            *v = None;
        }
    }
    if c.essential.is_none() {
        c.essential = Some(true);
    }
    if let Some(ports) = c.port_mappings.as_mut() {
        for p in ports.iter_mut() {
            if p.protocol.is_none() {
                p.protocol = Some(TransportProtocol::Tcp);
            }
            if same_port && p.host_port.is_none() {
                p.host_port = p.container_port;
            }
        }
    }
    if let Some(env) = c.environment.as_mut() {
        env.sort_by(|a, b| a.name.cmp(&b.name));
    }
    if let Some(secrets) = c.secrets.as_mut() {
        secrets.sort_by(|a, b| a.name.cmp(&b.name));
    }
    if let Some(check) = c.health_check.as_mut() {
        check.interval.get_or_insert(30);
        check.timeout.get_or_insert(5);
        check.retries.get_or_insert(3);
        check.start_period.get_or_insert(0);
    }
    if c.docker_labels.as_ref().is_some_and(HashMap::is_empty) {
        c.docker_labels = None;
    }
    // DescribeTaskDefinition returns `"secretOptions": []` for a log configuration
    // registered without any.
    if let Some(logs) = c.log_configuration.as_mut() {
        if logs.options.as_ref().is_some_and(HashMap::is_empty) {
            logs.options = None;
        }
        empty_is_none(&mut logs.secret_options);
    }
    empty_is_none(&mut c.links);
    empty_is_none(&mut c.port_mappings);
    empty_is_none(&mut c.entry_point);
    empty_is_none(&mut c.command);
    empty_is_none(&mut c.environment);
    empty_is_none(&mut c.environment_files);
    empty_is_none(&mut c.mount_points);
    empty_is_none(&mut c.volumes_from);
    empty_is_none(&mut c.secrets);
    empty_is_none(&mut c.depends_on);
    empty_is_none(&mut c.dns_servers);
    empty_is_none(&mut c.dns_search_domains);
    empty_is_none(&mut c.extra_hosts);
    empty_is_none(&mut c.docker_security_options);
    empty_is_none(&mut c.ulimits);
    empty_is_none(&mut c.system_controls);
    empty_is_none(&mut c.resource_requirements);
    empty_is_none(&mut c.credential_specs);
}

#[cfg(test)]
mod tests;
