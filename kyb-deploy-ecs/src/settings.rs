//! The ECS target's settings: `[environments.<name>.ecs]`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kyb_deploy_core::Result;
use kyb_deploy_core::config::{Environment, Problems};
use serde::{Deserialize, Serialize};

/// ECS's sustained DescribeServices budget per account: polling faster is only throttled.
pub const MAX_CALLS_PER_SECOND: u32 = 20;

/// Settings of the ECS target (`[environments.<name>.ecs]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EcsSettings {
    /// Cluster name or ARN.
    pub cluster: String,
    /// Service name.
    pub service: String,
    /// AWS region; the standard chain decides when unset.
    #[serde(default)]
    pub region: Option<String>,
    /// Endpoint override (a simulator or a VPC endpoint).
    #[serde(default)]
    pub endpoint_url: Option<String>,
    /// Task definition template (`register-task-definition --cli-input-json` format),
    /// relative to the configuration file. When unset, deployments reuse the service's
    /// current task definition with only the image replaced.
    #[serde(default)]
    pub task_definition: Option<PathBuf>,
    /// The container that runs the service's image. May be omitted when the task definition
    /// has a single container.
    #[serde(default)]
    pub container: Option<String>,
    /// How ECS replaces tasks (`[environments.<name>.ecs.deployment]`).
    #[serde(default)]
    pub deployment: EcsDeployment,
    /// How often kyb-deploy asks ECS about a rollout (`[environments.<name>.ecs.poll]`).
    #[serde(default)]
    pub poll: EcsPoll,
}

/// The service's deployment configuration, applied with every deployment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EcsDeployment {
    /// Healthy tasks kept during a rollout, in percent of the desired count.
    pub minimum_healthy_percent: u32,
    /// Tasks allowed during a rollout, in percent of the desired count.
    pub maximum_percent: u32,
    /// Time ECS ignores failing load-balancer health checks of a new task.
    #[serde(with = "kyb_deploy_core::config::duration")]
    pub health_check_grace_period: Duration,
    /// Stop a rollout whose tasks keep failing to start (the deployment circuit breaker).
    pub circuit_breaker: bool,
    /// Let the circuit breaker roll back to the last completed deployment (only with
    /// `circuit_breaker`).
    pub circuit_breaker_rollback: bool,
}

impl Default for EcsDeployment {
    fn default() -> Self {
        Self {
            minimum_healthy_percent: 100,
            maximum_percent: 200,
            health_check_grace_period: Duration::from_secs(60),
            circuit_breaker: true,
            circuit_breaker_rollback: true,
        }
    }
}

/// How a rollout is followed: DescribeServices is called quickly at first, then less often
/// while nothing changes, and quickly again after every change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EcsPoll {
    /// The shortest interval between two polls, used after each change.
    #[serde(with = "kyb_deploy_core::config::duration")]
    pub interval: Duration,
    /// The longest interval, reached while nothing changes.
    #[serde(with = "kyb_deploy_core::config::duration")]
    pub max_interval: Duration,
    /// DescribeServices calls per second kyb-deploy allows itself at most (a burst of as
    /// many, then that rate), over every service it follows and the reads of deployments
    /// starting (ECS's sustained read budget is 20 per second per account).
    pub max_calls_per_second: u32,
}

impl Default for EcsPoll {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(1),
            max_interval: Duration::from_secs(3),
            max_calls_per_second: 5,
        }
    }
}

impl EcsSettings {
    /// The settings of `environment`'s `[ecs]` section: a configuration error, naming the
    /// key and the line, when it is missing or does not parse.
    pub fn of(environment: &Environment) -> Result<Self> {
        environment.target_settings()
    }

    /// What serde cannot check, for environment `name`: percentages ECS accepts, polling
    /// within ECS's read budget, names, the region, the endpoint URL, and the template file
    /// (relative to `base`, the configuration file's directory; not read without one). Each
    /// problem names its key and its fix.
    pub fn problems(&self, name: &str, base: Option<&Path>) -> Problems {
        let key = format!("environments.{name}.ecs");
        let mut problems = Problems::default();
        let d = &self.deployment;
        if d.minimum_healthy_percent > 100 {
            problems.push(format!(
                "{key}.deployment.minimum_healthy_percent: {} is above 100; use 0-100",
                d.minimum_healthy_percent
            ));
        }
        if !(100..=200).contains(&d.maximum_percent) {
            problems.push(format!(
                "{key}.deployment.maximum_percent: {} is outside 100-200 (Fargate replica services)",
                d.maximum_percent
            ));
        }
        if d.maximum_percent <= d.minimum_healthy_percent && d.maximum_percent == 100 {
            problems.push(format!(
                "{key}.deployment: maximum_percent = 100 with minimum_healthy_percent = 100 leaves ECS no room to start a new task; lower minimum_healthy_percent or raise maximum_percent"
            ));
        }
        let p = &self.poll;
        if p.interval.is_zero() || p.max_interval < p.interval {
            problems.push(format!(
                "{key}.poll: interval must be longer than 0s and max_interval at least interval"
            ));
        }
        if p.max_calls_per_second == 0 {
            problems.push(format!(
                "{key}.poll.max_calls_per_second: must be at least 1"
            ));
        }
        if p.max_calls_per_second > MAX_CALLS_PER_SECOND {
            problems.push(format!(
                "{key}.poll.max_calls_per_second: {} is above ECS's read budget of {MAX_CALLS_PER_SECOND} calls per second per account; use 1-{MAX_CALLS_PER_SECOND}",
                p.max_calls_per_second
            ));
        }
        if self.cluster.is_empty() || self.service.is_empty() {
            problems.push(format!("{key}: cluster and service must not be empty"));
        }
        if let Some(region) = &self.region
            && !valid_region(region)
        {
            problems.push(format!(
                "{key}.region: {region:?} is not an AWS region; write one like \"us-east-1\" or \"eu-central-1\""
            ));
        }
        if let Some(endpoint) = &self.endpoint_url {
            problems.url(&format!("{key}.endpoint_url"), endpoint);
        }
        if let Some(template) = &self.task_definition {
            let tkey = format!("{key}.task_definition");
            if template.as_os_str().is_empty() {
                problems.push(format!(
                    "{tkey}: must not be empty; name the template file, or remove the key to reuse the service's task definition"
                ));
            } else if let Some(base) = base {
                problems.text_file(&tkey, template, base, "template", "create it (docs/ecs.md)");
            }
        }
        problems
    }
}

/// An AWS region: lowercase words and a number joined by '-', like `us-east-1` or
/// `us-gov-west-1`.
fn valid_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
        && parts[parts.len() - 1].chars().all(|c| c.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions() {
        for good in [
            "us-east-1",
            "us-gov-west-1",
            "ap-southeast-3",
            "eu-central-2",
        ] {
            assert!(valid_region(good), "{good}");
        }
        for bad in [
            "US-EAST-1",
            "us-east",
            "useast1",
            "us_east_1",
            "us-east-1a",
            "",
            "u-east-1",
        ] {
            assert!(!valid_region(bad), "{bad}");
        }
    }
}
