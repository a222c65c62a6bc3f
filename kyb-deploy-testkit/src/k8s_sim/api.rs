//! The HTTP API: authentication, routing, reads, and the responses in Kubernetes' shapes.

mod scale;
mod watch;
mod writes;

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::cluster::Cluster;
use super::discovery;
use super::error::ApiError;
use super::resources::ResourceType;
use super::route::{self, Route, Target};
use super::selector::{FieldSelector, LabelSelector};

/// The query parameters of a request.
pub(crate) type Query = HashMap<String, String>;

/// Serves one request.
pub(crate) async fn handle(
    State(cluster): State<Arc<Cluster>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(token) = &cluster.token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if given != Some(token.as_str()) {
            return error(&ApiError::unauthorized());
        }
    }
    let query = parse_query(uri.query().unwrap_or(""));
    let Some(route) = route::parse(uri.path()) else {
        return error(&ApiError::no_route());
    };
    let faults = cluster.faults().on_request(method.as_str());
    if !faults.delay.is_zero() {
        tokio::time::sleep(faults.delay).await;
    }
    match (faults.fail, &route) {
        (Some(409), Route::Object(t)) => {
            return error(&ApiError::conflict(
                t.resource,
                t.name.as_deref().unwrap_or_default(),
            ));
        }
        (Some(code), _) => {
            return error(&ApiError::internal(format!(
                "injected fault: HTTP {code} for {method} {}",
                uri.path()
            )));
        }
        (None, _) => {}
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1");
    let read_only = |value: Option<Value>| match (method.clone(), value) {
        (Method::GET, Some(v)) => ok(&v),
        (Method::GET, None) => error(&ApiError::no_route()),
        _ => error(&ApiError::method_not_allowed(
            "the server does not allow this method on the requested resource",
        )),
    };
    match route {
        Route::Version => read_only(Some(discovery::version())),
        Route::CoreVersions => read_only(Some(discovery::core_versions(host))),
        Route::Groups => read_only(Some(discovery::group_list())),
        Route::Group(group) => read_only(discovery::group(&group)),
        Route::Resources(group, version) => read_only(discovery::resource_list(&group, &version)),
        Route::OpenApiRoot => read_only(Some(discovery::openapi_root())),
        Route::OpenApi(group, version) => {
            read_only(discovery::openapi_group_version(&group, &version))
        }
        Route::Object(target) => {
            let result = match (&method, &target.name) {
                (&Method::GET, Some(_)) => get(&cluster, &target),
                (&Method::GET, None) if is_true(query.get("watch")) => {
                    return match watch::stream(&cluster, &target, &query) {
                        Ok(body) => streaming(body),
                        Err(e) => error(&e),
                    };
                }
                (&Method::GET, None) => list(&cluster, &target, &query),
                (&Method::POST, None) => writes::create(&cluster, &target, &query, &headers, &body),
                (&Method::PUT, Some(_)) => {
                    writes::replace(&cluster, &target, &query, &headers, &body)
                }
                (&Method::PATCH, Some(_)) => {
                    writes::patch(&cluster, &target, &query, &headers, &body)
                }
                (&Method::DELETE, Some(_)) => writes::delete(&cluster, &target, &query, &body),
                (&Method::DELETE, None) => {
                    writes::delete_collection(&cluster, &target, &query, &body)
                }
                _ => Err(ApiError::method_not_allowed(format!(
                    "the server does not allow this method on the requested resource ({method} {})",
                    uri.path()
                ))),
            };
            match result {
                Ok((code, value)) => respond(code, &value),
                Err(e) => error(&e),
            }
        }
    }
}

/// GET of an object or its subresource.
fn get(cluster: &Cluster, t: &Target) -> Result<(u16, Value), ApiError> {
    let state = cluster.lock();
    let name = t.name.as_deref().unwrap_or_default();
    let object = state.store.get(t.resource, namespace(t), name)?;
    match t.subresource.as_deref() {
        None => Ok((200, object)),
        Some("status") if t.resource.status => Ok((200, object)),
        Some("scale") if t.resource.scale => Ok((200, scale::of(&object)?)),
        Some(other) => Err(no_subresource(t.resource, other)),
    }
}

/// GET of a collection.
fn list(cluster: &Cluster, t: &Target, query: &Query) -> Result<(u16, Value), ApiError> {
    let (labels, fields) = selectors(query)?;
    let state = cluster.lock();
    let (items, revision) = state
        .store
        .list(t.resource, t.namespace.as_deref(), &labels, &fields);
    Ok((200, list_document(t.resource, items, revision)))
}

/// A list response.
pub(crate) fn list_document(r: &ResourceType, items: Vec<Value>, revision: u64) -> Value {
    json!({
        "kind": format!("{}List", r.kind),
        "apiVersion": r.api_version(),
        "metadata": {"resourceVersion": revision.to_string()},
        "items": items,
    })
}

/// The label and field selectors of a request.
pub(crate) fn selectors(query: &Query) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let labels = LabelSelector::parse(query.get("labelSelector").map_or("", String::as_str))
        .map_err(ApiError::bad_request)?;
    let fields = FieldSelector::parse(query.get("fieldSelector").map_or("", String::as_str))
        .map_err(ApiError::bad_request)?;
    Ok((labels, fields))
}

/// The namespace of a target, empty for cluster-scoped types.
pub(crate) fn namespace(t: &Target) -> &str {
    t.namespace.as_deref().unwrap_or("")
}

pub(crate) fn no_subresource(r: &ResourceType, sub: &str) -> ApiError {
    let _ = r;
    ApiError::bad_request(format!(
        "the server does not serve the subresource {sub:?} here"
    ))
}

fn is_true(value: Option<&String>) -> bool {
    matches!(value.map(String::as_str), Some("true" | "1"))
}

fn parse_query(query: &str) -> Query {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// Percent-decoding of a query component (`+` is a space).
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match u8::from_str_radix(&text[i + 1..i + 3], 16) {
                Ok(b) => {
                    out.push(b);
                    i += 2;
                }
                Err(_) => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn respond(code: u16, value: &Value) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
    let mut response = (status, value.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn ok(value: &Value) -> Response {
    respond(200, value)
}

/// A failed request's Status.
pub(crate) fn error(e: &ApiError) -> Response {
    respond(e.code, &e.status())
}

fn streaming(body: Body) -> Response {
    let mut response = Response::new(body);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_are_decoded() {
        let q = parse_query("labelSelector=app%3Dweb%2Ctier+in+%28a%29&watch=1&x");
        assert_eq!(q["labelSelector"], "app=web,tier in (a)");
        assert_eq!(q["watch"], "1");
        assert_eq!(q["x"], "");
        assert_eq!(decode("100%"), "100%");
    }
}
