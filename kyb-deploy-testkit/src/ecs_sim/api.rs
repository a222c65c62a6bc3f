//! Operation dispatch of the ECS JSON 1.1 API: parameter reading, errors, pagination, and
//! the cluster and tagging operations. Task definitions, services and tasks have their own
//! files.

mod clusters;
mod service_deployments;
mod services;
mod task_definitions;
mod tasks;

use rand::rngs::StdRng;
use serde_json::{Value, json};

use super::faults::FaultSet;
use super::model::{Cluster, KnownNetwork, Region, State, Tag};

/// The operations the simulator serves.
pub(crate) const OPERATIONS: [&str; 24] = [
    "CreateCluster",
    "DescribeClusters",
    "ListClusters",
    "DeleteCluster",
    "RegisterTaskDefinition",
    "DescribeTaskDefinition",
    "ListTaskDefinitions",
    "DeregisterTaskDefinition",
    "ListTaskDefinitionFamilies",
    "CreateService",
    "UpdateService",
    "DescribeServices",
    "ListServices",
    "DeleteService",
    "ListServiceDeployments",
    "DescribeServiceDeployments",
    "DescribeServiceRevisions",
    "RunTask",
    "StopTask",
    "ListTasks",
    "DescribeTasks",
    "TagResource",
    "UntagResource",
    "ListTagsForResource",
];

/// Whether `operation` changes state.
pub(crate) fn is_mutating(operation: &str) -> bool {
    [
        "Create",
        "Register",
        "Deregister",
        "Update",
        "Delete",
        "Run",
        "Stop",
        "Tag",
        "Untag",
    ]
    .iter()
    .any(|prefix| operation.starts_with(prefix))
}

/// An ECS error: its `__type` code and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

impl ApiError {
    pub(crate) fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn client(message: impl Into<String>) -> Self {
        Self::new("ClientException", message)
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new("InvalidParameterException", message)
    }

    pub(crate) fn cluster_not_found() -> Self {
        Self::new("ClusterNotFoundException", "Cluster not found.")
    }

    pub(crate) fn service_not_found() -> Self {
        Self::new("ServiceNotFoundException", "Service not found.")
    }

    /// The HTTP status ECS answers with: 500 for server errors, 400 for everything else.
    pub(crate) fn status(&self) -> u16 {
        if self.code == "ServerException" {
            500
        } else {
            400
        }
    }

    pub(crate) fn body(&self) -> Value {
        json!({"__type": self.code, "message": self.message})
    }
}

/// One API call being served.
pub(crate) struct Call<'a> {
    pub(crate) region: &'a mut Region,
    pub(crate) body: &'a Value,
    pub(crate) now: f64,
    pub(crate) rng: &'a mut StdRng,
    /// The task faults RunTask's tasks start with.
    pub(crate) faults: &'a FaultSet,
    /// Whether tasks run as containers.
    pub(crate) docker: bool,
    /// The subnets and security groups that exist.
    pub(crate) network: &'a KnownNetwork,
}

/// What a call is served with besides the state: the time, the id generator, the faults
/// and the runtime.
pub(crate) struct Context<'a> {
    pub(crate) now: f64,
    pub(crate) rng: &'a mut StdRng,
    pub(crate) faults: &'a FaultSet,
    pub(crate) docker: bool,
}

/// Runs `operation` on `state` for a request to `region`.
pub(crate) fn dispatch(
    operation: &str,
    state: &mut State,
    region: &str,
    body: &Value,
    context: Context<'_>,
) -> Result<Value, ApiError> {
    if !body.is_object() {
        return Err(ApiError::new(
            "SerializationException",
            "the request body must be a JSON object",
        ));
    }
    let State {
        regions, network, ..
    } = state;
    let region = regions.entry(region.to_owned()).or_insert_with(|| Region {
        name: region.to_owned(),
        ..Region::default()
    });
    let mut call = Call {
        region,
        body,
        now: context.now,
        rng: context.rng,
        faults: context.faults,
        docker: context.docker,
        network,
    };
    match operation {
        "CreateCluster" => clusters::create(&mut call),
        "DescribeClusters" => clusters::describe(&mut call),
        "ListClusters" => clusters::list(&mut call),
        "DeleteCluster" => clusters::delete(&mut call),
        "RegisterTaskDefinition" => task_definitions::register(&mut call),
        "DescribeTaskDefinition" => task_definitions::describe(&mut call),
        "ListTaskDefinitions" => task_definitions::list(&mut call),
        "DeregisterTaskDefinition" => task_definitions::deregister(&mut call),
        "ListTaskDefinitionFamilies" => task_definitions::list_families(&mut call),
        "CreateService" => services::create(&mut call),
        "UpdateService" => services::update(&mut call),
        "DescribeServices" => services::describe(&mut call),
        "ListServices" => services::list(&mut call),
        "DeleteService" => services::delete(&mut call),
        "ListServiceDeployments" => service_deployments::list(&mut call),
        "DescribeServiceDeployments" => service_deployments::describe(&mut call),
        "DescribeServiceRevisions" => service_deployments::describe_revisions(&mut call),
        "RunTask" => tasks::run(&mut call),
        "StopTask" => tasks::stop(&mut call),
        "ListTasks" => tasks::list(&mut call),
        "DescribeTasks" => tasks::describe(&mut call),
        "TagResource" => clusters::tag(&mut call),
        "UntagResource" => clusters::untag(&mut call),
        "ListTagsForResource" => clusters::list_tags(&mut call),
        other => Err(ApiError::new(
            "UnknownOperationException",
            format!("unknown operation {other}"),
        )),
    }
}

impl Call<'_> {
    /// A string parameter, if present.
    pub(crate) fn str(&self, name: &str) -> Result<Option<&str>, ApiError> {
        match self.body.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(_) => Err(type_error(name, "a string")),
        }
    }

    /// A string parameter that must be present and not empty.
    pub(crate) fn required_str(&self, name: &str) -> Result<&str, ApiError> {
        match self.str(name)? {
            Some(text) if !text.is_empty() => Ok(text),
            _ => Err(ApiError::invalid(format!("{name} can not be blank."))),
        }
    }

    pub(crate) fn int(&self, name: &str) -> Result<Option<i64>, ApiError> {
        match self.body.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => value
                .as_i64()
                .map(Some)
                .ok_or_else(|| type_error(name, "an integer")),
        }
    }

    pub(crate) fn bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.body.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => value
                .as_bool()
                .map(Some)
                .ok_or_else(|| type_error(name, "a boolean")),
        }
    }

    /// A list of strings, empty when absent.
    pub(crate) fn str_list(&self, name: &str) -> Result<Vec<String>, ApiError> {
        match self.body.get(name) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| {
                    item.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| type_error(name, "a list of strings"))
                })
                .collect(),
            Some(_) => Err(type_error(name, "a list of strings")),
        }
    }

    /// Whether `include` asks for `TAGS`.
    pub(crate) fn include_tags(&self) -> Result<bool, ApiError> {
        Ok(self.str_list("include")?.iter().any(|item| item == "TAGS"))
    }

    /// The `tags` parameter.
    pub(crate) fn tags(&self) -> Result<Vec<Tag>, ApiError> {
        let Some(items) = self.body.get("tags").filter(|v| !v.is_null()) else {
            return Ok(Vec::new());
        };
        let items = items
            .as_array()
            .ok_or_else(|| type_error("tags", "a list"))?;
        if items.len() > 50 {
            return Err(ApiError::invalid("A resource can have at most 50 tags."));
        }
        items
            .iter()
            .map(|item| {
                let key = item.get("key").and_then(Value::as_str).unwrap_or("");
                let value = item.get("value").and_then(Value::as_str).unwrap_or("");
                if key.is_empty() || key.len() > 128 || value.len() > 256 {
                    return Err(ApiError::invalid(
                        "Tag keys must be 1 to 128 characters and values at most 256.",
                    ));
                }
                Ok(Tag {
                    key: key.to_owned(),
                    value: value.to_owned(),
                })
            })
            .collect()
    }

    /// The cluster named by the `cluster` parameter (name or ARN; `default` when absent).
    pub(crate) fn cluster_name(&self) -> Result<String, ApiError> {
        Ok(resource_name(self.str("cluster")?.unwrap_or("default")).to_owned())
    }

    /// The ACTIVE cluster named by the `cluster` parameter.
    pub(crate) fn cluster(&mut self) -> Result<&mut Cluster, ApiError> {
        let name = self.cluster_name()?;
        let cluster = self
            .region
            .clusters
            .get_mut(&name)
            .ok_or_else(ApiError::cluster_not_found)?;
        if cluster.status != "ACTIVE" {
            return Err(ApiError::new(
                "ClusterNotFoundException",
                "The referenced cluster was inactive.",
            ));
        }
        Ok(cluster)
    }

    /// Pages `items` by `nextToken`/`maxResults`.
    pub(crate) fn page<T>(
        &self,
        items: Vec<T>,
        default_size: i64,
        max_size: i64,
    ) -> Result<(Vec<T>, Option<String>), ApiError> {
        let size = self.int("maxResults")?.unwrap_or(default_size);
        if !(1..=max_size).contains(&size) {
            return Err(ApiError::invalid(format!(
                "maxResults must be between 1 and {max_size}."
            )));
        }
        let start = match self.str("nextToken")? {
            None => 0,
            Some(token) => token
                .strip_prefix(TOKEN_PREFIX)
                .and_then(|offset| offset.parse::<usize>().ok())
                .filter(|&offset| offset <= items.len())
                .ok_or_else(|| ApiError::invalid("Invalid nextToken."))?,
        };
        let end = start.saturating_add(size as usize).min(items.len());
        let next = (end < items.len()).then(|| format!("{TOKEN_PREFIX}{end}"));
        let page = items.into_iter().skip(start).take(end - start).collect();
        Ok((page, next))
    }
}

const TOKEN_PREFIX: &str = "kyb-sim-page-";

/// Adds `nextToken` to a list response when there is a next page.
pub(crate) fn with_next(mut response: Value, next: Option<String>) -> Value {
    if let Some(next) = next {
        response["nextToken"] = json!(next);
    }
    response
}

/// The name in a resource reference: the last `/` segment of an ARN, or the reference.
pub(crate) fn resource_name(reference: &str) -> &str {
    if reference.starts_with("arn:") {
        reference.rsplit('/').next().unwrap_or(reference)
    } else {
        reference
    }
}

fn type_error(name: &str, expected: &str) -> ApiError {
    ApiError::new(
        "SerializationException",
        format!("{name} must be {expected}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutating_operations_are_the_writes() {
        let mutating: Vec<&str> = OPERATIONS
            .into_iter()
            .filter(|op| is_mutating(op))
            .collect();
        assert_eq!(
            mutating,
            [
                "CreateCluster",
                "DeleteCluster",
                "RegisterTaskDefinition",
                "DeregisterTaskDefinition",
                "CreateService",
                "UpdateService",
                "DeleteService",
                "RunTask",
                "StopTask",
                "TagResource",
                "UntagResource",
            ]
        );
    }

    #[test]
    fn errors_map_to_ecs_statuses() {
        assert_eq!(ApiError::new("ServerException", "x").status(), 500);
        assert_eq!(ApiError::cluster_not_found().status(), 400);
        assert_eq!(
            ApiError::service_not_found().body(),
            json!({"__type": "ServiceNotFoundException", "message": "Service not found."})
        );
    }
}
