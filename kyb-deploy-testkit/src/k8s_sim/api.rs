//! The HTTP API: authentication, routing, reads, and the responses in Kubernetes' shapes.

mod access;
mod logs;
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
use super::table;

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
    // The health endpoints answer anyone, as `system:public-info-viewer` lets them.
    if route::parse(uri.path()) == Some(Route::Health) {
        return health(&method);
    }
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
        Route::Health => health(&method),
        Route::AccessReview | Route::WhoAmI if method != Method::POST => {
            error(&ApiError::method_not_allowed(
                "the server does not allow this method on the requested resource",
            ))
        }
        Route::AccessReview => {
            match access::review_body(&body).and_then(|r| access::access_review(&cluster, &r)) {
                Ok(answer) => respond(201, &answer),
                Err(e) => error(&e),
            }
        }
        Route::WhoAmI => respond(201, &access::who_am_i()),
        Route::Object(target) => {
            if let Err(e) = access::check(&cluster, &method, &target, &query) {
                return error(&e);
            }
            if target.subresource.as_deref() == Some("log") && method == Method::GET {
                return match logs::pod_log(&cluster, &target, &query).await {
                    Ok(text) => plain(200, text),
                    Err(e) => error(&e),
                };
            }
            // What a write accepted but warns about (`Warning` headers).
            let mut warnings = Vec::new();
            let result = match (&method, &target.name) {
                (&Method::GET, Some(_)) => get(&cluster, &target, &query, &headers),
                (&Method::GET, None) if is_true(query.get("watch")) => {
                    let as_table = table::wanted(accept(&headers));
                    return match watch::stream(&cluster, &target, &query, as_table) {
                        Ok(body) => streaming(body),
                        Err(e) => error(&e),
                    };
                }
                (&Method::GET, None) => list(&cluster, &target, &query, &headers),
                (&Method::POST, None) => {
                    writes::create(&cluster, &target, &query, &headers, &body, &mut warnings)
                }
                (&Method::PUT, Some(_)) => {
                    writes::replace(&cluster, &target, &query, &headers, &body, &mut warnings)
                }
                (&Method::PATCH, Some(_)) => {
                    writes::patch(&cluster, &target, &query, &headers, &body, &mut warnings)
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
                Ok((code, value)) => with_warnings(respond(code, &value), &warnings),
                Err(e) => error(&e),
            }
        }
    }
}

/// GET of an object or its subresource; a Table when the client asks for one.
fn get(
    cluster: &Cluster,
    t: &Target,
    query: &Query,
    headers: &HeaderMap,
) -> Result<(u16, Value), ApiError> {
    let state = cluster.lock();
    let name = t.name.as_deref().unwrap_or_default();
    let object = state.store.get(t.resource, namespace(t), name)?;
    drop(state);
    match t.subresource.as_deref() {
        None if table::wanted(accept(headers)) => {
            let metadata = json!({"resourceVersion": object["metadata"]["resourceVersion"]});
            let include = query.get("includeObject").map(String::as_str);
            let now = cluster.clock.now();
            Ok((
                200,
                table::of(t.resource, &[object], &metadata, now, include),
            ))
        }
        None => Ok((200, object)),
        Some("status") if t.resource.status => Ok((200, object)),
        Some("scale") if t.resource.scale => Ok((200, scale::of(&object)?)),
        Some(other) => Err(no_subresource(t.resource, other)),
    }
}

/// GET of a collection, a page at a time with `limit` and `continue`; a Table when the
/// client asks for one.
fn list(
    cluster: &Cluster,
    t: &Target,
    query: &Query,
    headers: &HeaderMap,
) -> Result<(u16, Value), ApiError> {
    let (labels, fields) = selectors(query)?;
    let limit = match query.get("limit").map(String::as_str) {
        None | Some("") => None,
        Some(text) => match text.parse::<usize>() {
            Ok(0) => None,
            Ok(n) => Some(n),
            Err(_) => {
                return Err(ApiError::bad_request(format!(
                    "limit: Invalid value: {text:?}: must be a non-negative integer"
                )));
            }
        },
    };
    let after = match query.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => Some(continue_key(token)?),
        None => None,
    };
    let state = cluster.lock();
    let (items, revision) = state
        .store
        .list(t.resource, t.namespace.as_deref(), &labels, &fields);
    drop(state);
    // Items come in key order (namespace, name); a page resumes after the last key served.
    let mut items: Vec<Value> = match &after {
        Some(after) => items.into_iter().filter(|o| item_key(o) > *after).collect(),
        None => items,
    };
    let mut document = list_document(t.resource, Vec::new(), revision);
    if let Some(limit) = limit
        && items.len() > limit
    {
        let rest = items.len() - limit;
        items.truncate(limit);
        let last = items.last().map(item_key).unwrap_or_default();
        document["metadata"]["continue"] = json!(continue_token(&last));
        document["metadata"]["remainingItemCount"] = json!(rest);
    }
    if table::wanted(accept(headers)) {
        let include = query.get("includeObject").map(String::as_str);
        let now = cluster.clock.now();
        let metadata = document["metadata"].clone();
        return Ok((200, table::of(t.resource, &items, &metadata, now, include)));
    }
    document["items"] = Value::Array(items.into_iter().map(without_type).collect());
    Ok((200, document))
}

/// Where an item stands in a list: its namespace, then its name (the store's order).
fn item_key(object: &Value) -> (String, String) {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    (
        text(&object["metadata"]["namespace"]),
        text(&object["metadata"]["name"]),
    )
}

fn continue_token((namespace, name): &(String, String)) -> String {
    use base64::Engine as _;
    let token = json!({"v": "meta.k8s.io/v1", "start": [namespace, name]});
    base64::engine::general_purpose::STANDARD.encode(token.to_string())
}

/// The key a `continue` token resumes after; 400 for a token this server did not give.
fn continue_key(token: &str) -> Result<(String, String), ApiError> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(token)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .and_then(|v| {
            let start = v["start"].as_array()?;
            let part = |i: usize| start.get(i)?.as_str().map(str::to_owned);
            Some((part(0)?, part(1)?))
        })
        .ok_or_else(|| ApiError::bad_request(format!("continue key is not valid: {token}")))
}

/// An item as a built-in list serializes it: without its own `apiVersion` and `kind`
/// (the list's say what it is).
fn without_type(mut object: Value) -> Value {
    if let Some(map) = object.as_object_mut() {
        map.remove("apiVersion");
        map.remove("kind");
    }
    object
}

/// A list response.
pub(crate) fn list_document(r: &ResourceType, items: Vec<Value>, revision: u64) -> Value {
    json!({
        "kind": format!("{}List", r.kind),
        "apiVersion": r.api_version(),
        "metadata": {"resourceVersion": revision.to_string()},
        "items": items.into_iter().map(without_type).collect::<Vec<_>>(),
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

/// Adds a `Warning: 299 - "TEXT"` header per warning, as the API server sends them and
/// kubectl prints them (`Warning: TEXT`).
fn with_warnings(mut response: Response, warnings: &[String]) -> Response {
    for warning in warnings {
        let quoted = warning.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(value) = HeaderValue::from_str(&format!("299 - \"{quoted}\"")) {
            response.headers_mut().append(header::WARNING, value);
        }
    }
    response
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

/// The request's `Accept` header.
fn accept(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok())
}

fn plain(code: u16, text: String) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
    let mut response = (status, text).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

/// `/readyz`, `/livez`, `/healthz`: `ok` while serving.
fn health(method: &Method) -> Response {
    if *method == Method::GET || *method == Method::HEAD {
        plain(200, "ok".to_owned())
    } else {
        error(&ApiError::method_not_allowed(
            "the server does not allow this method on the requested resource",
        ))
    }
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
    fn continue_tokens_resume_in_the_stores_order() {
        let key = ("team".to_owned(), "web".to_owned());
        assert_eq!(continue_key(&continue_token(&key)).unwrap(), key);
        // Namespace first, as the store orders: `team/z` comes before `team-a/a`.
        assert!(("team".to_owned(), "z".to_owned()) < ("team-a".to_owned(), "a".to_owned()));
        assert!(continue_key("not a token").is_err());
    }

    #[test]
    fn query_strings_are_decoded() {
        let q = parse_query("labelSelector=app%3Dweb%2Ctier+in+%28a%29&watch=1&x");
        assert_eq!(q["labelSelector"], "app=web,tier in (a)");
        assert_eq!(q["watch"], "1");
        assert_eq!(q["x"], "");
        assert_eq!(decode("100%"), "100%");
    }
}
