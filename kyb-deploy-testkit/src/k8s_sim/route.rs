//! Request paths of the Kubernetes API, parsed.

use super::resources::{self, ResourceType};

/// What a path names.
#[derive(Debug, PartialEq)]
pub(crate) enum Route {
    /// `/version`.
    Version,
    /// `/api`.
    CoreVersions,
    /// `/apis`.
    Groups,
    /// `/apis/<group>`.
    Group(String),
    /// `/api/v1`, `/apis/<group>/<version>`.
    Resources(String, String),
    /// `/openapi/v3`.
    OpenApiRoot,
    /// `/openapi/v3/api/v1`, `/openapi/v3/apis/<group>/<version>`.
    OpenApi(String, String),
    /// A collection, an object, or an object's subresource.
    Object(Target),
    /// `/readyz`, `/livez`, `/healthz` (and their checks below them).
    Health,
    /// `/apis/authorization.k8s.io/v1/selfsubjectaccessreviews`.
    AccessReview,
    /// `/apis/authentication.k8s.io/v1/selfsubjectreviews`.
    WhoAmI,
}

/// A resource path: `/apis/apps/v1/namespaces/default/deployments/web/scale`.
#[derive(Debug, PartialEq)]
pub(crate) struct Target {
    /// The resource type.
    pub(crate) resource: &'static ResourceType,
    /// The namespace; `None` for cluster-scoped types and for lists across namespaces.
    pub(crate) namespace: Option<String>,
    /// The object's name; `None` for the collection.
    pub(crate) name: Option<String>,
    /// `status` or `scale`.
    pub(crate) subresource: Option<String>,
}

/// Parses `path`; `None` for anything not served.
pub(crate) fn parse(path: &str) -> Option<Route> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    Some(match parts.as_slice() {
        ["version"] => Route::Version,
        ["readyz" | "livez" | "healthz", ..] => Route::Health,
        [
            "apis",
            "authorization.k8s.io",
            "v1",
            "selfsubjectaccessreviews",
        ] => Route::AccessReview,
        ["apis", "authentication.k8s.io", "v1", "selfsubjectreviews"] => Route::WhoAmI,
        ["api"] => Route::CoreVersions,
        ["apis"] => Route::Groups,
        ["apis", group] => Route::Group((*group).to_owned()),
        ["api", version] => Route::Resources(String::new(), (*version).to_owned()),
        ["apis", group, version] => Route::Resources((*group).to_owned(), (*version).to_owned()),
        ["openapi", "v3"] => Route::OpenApiRoot,
        ["openapi", "v3", "api", version] => Route::OpenApi(String::new(), (*version).to_owned()),
        ["openapi", "v3", "apis", group, version] => {
            Route::OpenApi((*group).to_owned(), (*version).to_owned())
        }
        ["api", version, rest @ ..] => Route::Object(target("", version, rest)?),
        ["apis", group, version, rest @ ..] => Route::Object(target(group, version, rest)?),
        _ => return None,
    })
}

fn target(group: &str, version: &str, rest: &[&str]) -> Option<Target> {
    let find = |plural: &str| resources::find(group, version, plural);
    let owned = |s: &&str| (*s).to_owned();
    let t = match rest {
        // A namespaced collection, object or subresource.
        ["namespaces", namespace, plural, tail @ ..]
            if find(plural).is_some_and(|r| r.namespaced) =>
        {
            let (name, subresource) = match tail {
                [] => (None, None),
                [name] => (Some(owned(name)), None),
                [name, sub] => (Some(owned(name)), Some(owned(sub))),
                _ => return None,
            };
            Target {
                resource: find(plural)?,
                namespace: Some(owned(namespace)),
                name,
                subresource,
            }
        }
        // A collection across namespaces, or a cluster-scoped collection.
        [plural] => Target {
            resource: find(plural)?,
            namespace: None,
            name: None,
            subresource: None,
        },
        // A cluster-scoped object (a namespace among them) or its subresource.
        [plural, name, tail @ ..] if find(plural).is_some_and(|r| !r.namespaced) => Target {
            resource: find(plural)?,
            namespace: None,
            name: Some(owned(name)),
            subresource: match tail {
                [] => None,
                [sub] => Some(owned(sub)),
                _ => return None,
            },
        },
        _ => return None,
    };
    Some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(path: &str) -> Target {
        match parse(path) {
            Some(Route::Object(t)) => t,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn paths_name_collections_objects_and_subresources() {
        let t = object("/apis/apps/v1/namespaces/default/deployments/web/scale");
        assert_eq!(t.resource.kind, "Deployment");
        assert_eq!(t.namespace.as_deref(), Some("default"));
        assert_eq!(t.name.as_deref(), Some("web"));
        assert_eq!(t.subresource.as_deref(), Some("scale"));
        let t = object("/api/v1/pods");
        assert_eq!((t.resource.kind, t.namespace, t.name), ("Pod", None, None));
        let t = object("/api/v1/namespaces/kyb");
        assert_eq!(
            (t.resource.kind, t.name.as_deref()),
            ("Namespace", Some("kyb"))
        );
        let t = object("/api/v1/namespaces/kyb/status");
        assert_eq!(t.subresource.as_deref(), Some("status"));
        let t = object("/api/v1/namespaces/kyb/pods");
        assert_eq!(
            (t.resource.kind, t.namespace.as_deref()),
            ("Pod", Some("kyb"))
        );
        assert_eq!(parse("/apis/apps"), Some(Route::Group("apps".into())));
        assert_eq!(
            parse("/api/v1"),
            Some(Route::Resources(String::new(), "v1".into()))
        );
        assert_eq!(parse("/apis/apps/v1/widgets"), None);
        assert_eq!(parse("/healthz/x/y"), Some(Route::Health));
        assert_eq!(parse("/metrics"), None);
    }
}
