//! Discovery as kubectl and kube-rs use it: `/version`, `/api`, `/apis`, the resource list
//! of each group version, and the OpenAPI v3 documents kubectl reads to learn that the
//! server validates fields itself (`fieldValidation`) and to explain each kind's fields.

use k8s_openapi::schemars::JsonSchema;
use k8s_openapi::schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{Value, json};

use super::resources::{RESOURCES, ResourceType, categories, groups, verbs};
use super::typed::{WithType, with_type};

/// The Kubernetes version the simulator reports.
pub(crate) const GIT_VERSION: &str = "v1.32.0";

/// `/version`.
pub(crate) fn version() -> Value {
    json!({
        "major": "1",
        "minor": "32",
        "gitVersion": GIT_VERSION,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.23.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

/// `/api`.
pub(crate) fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

/// Groups that serve reviews only (nothing stored): `kubectl auth can-i` and `kubectl auth
/// whoami` find them through discovery. Group, version, plural, kind.
const REVIEWS: &[(&str, &str, &str, &str)] = &[
    (
        "authorization.k8s.io",
        "v1",
        "selfsubjectaccessreviews",
        "SelfSubjectAccessReview",
    ),
    (
        "authentication.k8s.io",
        "v1",
        "selfsubjectreviews",
        "SelfSubjectReview",
    ),
];

/// Every group version: those of the stored resources, then the review groups.
fn all_groups() -> Vec<(&'static str, &'static str)> {
    let mut all = groups();
    all.extend(REVIEWS.iter().map(|(g, v, _, _)| (*g, *v)));
    all
}

/// `/apis`.
pub(crate) fn group_list() -> Value {
    let groups: Vec<Value> = all_groups()
        .into_iter()
        .map(|(group, version)| {
            let gv = json!({"groupVersion": format!("{group}/{version}"), "version": version});
            json!({"name": group, "versions": [gv.clone()], "preferredVersion": gv})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/<group>`.
pub(crate) fn group(name: &str) -> Option<Value> {
    let (group, version) = all_groups().into_iter().find(|(g, _)| *g == name)?;
    let gv = json!({"groupVersion": format!("{group}/{version}"), "version": version});
    Some(
        json!({"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": [gv.clone()], "preferredVersion": gv}),
    )
}

/// The resource list of a group version (`/api/v1`, `/apis/apps/v1`).
pub(crate) fn resource_list(group: &str, version: &str) -> Option<Value> {
    if let Some((g, v, plural, kind)) = REVIEWS
        .iter()
        .find(|(g, v, _, _)| *g == group && *v == version)
    {
        return Some(json!({
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": format!("{g}/{v}"),
            "resources": [{"name": plural, "singularName": "", "namespaced": false, "kind": kind, "verbs": ["create"]}],
        }));
    }
    let types: Vec<&ResourceType> = RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .collect();
    if types.is_empty() {
        return None;
    }
    let mut resources = Vec::new();
    for r in types {
        resources.push(json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": verbs(),
            "shortNames": r.short_names,
            "categories": categories(r.kind),
            "storageVersionHash": "",
        }));
        if r.status {
            resources.push(json!({
                "name": format!("{}/status", r.plural),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
        if r.scale {
            resources.push(json!({
                "name": format!("{}/scale", r.plural),
                "singularName": "",
                "namespaced": r.namespaced,
                "group": "autoscaling",
                "version": "v1",
                "kind": "Scale",
                "verbs": ["get", "patch", "update"],
            }));
        }
    }
    let group_version = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }))
}

/// `/openapi/v3`: the document of each group version.
pub(crate) fn openapi_root() -> Value {
    let mut paths = serde_json::Map::new();
    paths.insert(
        "api/v1".into(),
        json!({"serverRelativeURL": "/openapi/v3/api/v1?hash=kyb-sim"}),
    );
    for (group, version) in groups() {
        paths.insert(
            format!("apis/{group}/{version}"),
            json!({"serverRelativeURL": format!("/openapi/v3/apis/{group}/{version}?hash=kyb-sim")}),
        );
    }
    json!({"paths": paths})
}

/// The OpenAPI v3 document of a group version: a PATCH operation per kind that takes the
/// `fieldValidation` query parameter, which is what kubectl looks for before it leaves
/// validation to the server, and the schema of each kind with every schema it refers to,
/// marked with its group, version and kind as `kubectl explain` looks them up.
pub(crate) fn openapi_group_version(group: &str, version: &str) -> Option<Value> {
    let mut paths = serde_json::Map::new();
    let mut schemas = SchemaSettings::openapi3().into_generator();
    let mut kinds = Vec::new();
    for r in RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        if let Some(name) = with_type(r.kind, Register(&mut schemas)) {
            kinds.push((name, r));
        }
        let collection = if r.namespaced {
            format!(
                "{}/namespaces/{{namespace}}/{}",
                r.group_version_path(),
                r.plural
            )
        } else {
            format!("{}/{}", r.group_version_path(), r.plural)
        };
        let gvk = json!({"group": r.group, "version": r.version, "kind": r.kind});
        let params = json!([
            {"name": "dryRun", "in": "query", "schema": {"type": "string"}},
            {"name": "fieldManager", "in": "query", "schema": {"type": "string"}},
            {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}},
            {"name": "force", "in": "query", "schema": {"type": "boolean"}},
        ]);
        let op = |name: &str| {
            json!({
                "operationId": format!("{name}{}", r.kind),
                "parameters": params,
                "responses": {"200": {"description": "OK"}},
                "x-kubernetes-action": name,
                "x-kubernetes-group-version-kind": gvk,
            })
        };
        paths.insert(
            format!("/{}/{{name}}", collection.trim_start_matches('/')),
            json!({
                "get": op("read"),
                "put": op("replace"),
                "patch": op("patch"),
                "delete": op("delete"),
            }),
        );
        paths.insert(
            format!("/{}", collection.trim_start_matches('/')),
            json!({
                "get": op("list"),
                "post": op("create"),
            }),
        );
    }
    if paths.is_empty() {
        return None;
    }
    let mut definitions = schemas.take_definitions(true);
    for (name, r) in kinds {
        if let Some(Value::Object(schema)) = definitions.get_mut(&name) {
            schema.insert(
                "x-kubernetes-group-version-kind".into(),
                json!([{"group": r.group, "version": r.version, "kind": r.kind}]),
            );
        }
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": GIT_VERSION},
        "paths": paths,
        "components": {"schemas": definitions},
    }))
}

/// Adds a type's schema, and those it refers to, to the generator's definitions; its name
/// there (`io.k8s.api.apps.v1.Deployment`).
struct Register<'a>(&'a mut SchemaGenerator);

impl WithType for Register<'_> {
    type Output = String;

    fn with<T: JsonSchema>(self) -> String {
        self.0.subschema_for::<T>();
        T::schema_name().into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_lists_groups_resources_and_subresources() {
        let apps = resource_list("apps", "v1").unwrap();
        let names: Vec<&str> = apps["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"deployments/scale"), "{names:?}");
        assert!(names.contains(&"replicasets/status"), "{names:?}");
        assert!(resource_list("apps", "v2").is_none());
        assert_eq!(group_list()["groups"].as_array().unwrap().len(), 10);
        assert_eq!(
            resource_list("authorization.k8s.io", "v1").unwrap()["resources"][0]["kind"],
            "SelfSubjectAccessReview"
        );
        let doc = openapi_group_version("apps", "v1").unwrap();
        let patch =
            &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"]["kind"],
            "Deployment"
        );
        assert!(openapi_root()["paths"]["apis/apps/v1"].is_object());
    }

    #[test]
    fn each_kind_has_its_schema_marked_with_its_group_version_kind() {
        let doc = openapi_group_version("apps", "v1").unwrap();
        let schemas = &doc["components"]["schemas"];
        let deployment = &schemas["io.k8s.api.apps.v1.Deployment"];
        assert_eq!(
            deployment["x-kubernetes-group-version-kind"],
            json!([{"group": "apps", "version": "v1", "kind": "Deployment"}])
        );
        // Whatever a kind refers to is in the same document, as an OpenAPI 3 reference.
        let spec = &deployment["properties"]["spec"]["allOf"][0]["$ref"];
        assert_eq!(
            spec,
            "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"
        );
        assert!(schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"].is_object());
        // Types that are not kinds carry no group-version-kind.
        assert!(
            schemas["io.k8s.api.core.v1.PodSpec"]
                .get("x-kubernetes-group-version-kind")
                .is_none()
        );
    }
}
