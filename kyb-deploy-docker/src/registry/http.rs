//! A small client of the registry HTTP API (distribution v2 / OCI), for what the engine
//! cannot do: reading manifest descriptors and putting an image index.
//!
//! Authentication follows the registry's `WWW-Authenticate` challenge: none, Basic with the
//! credentials, or a Bearer token from the token service (with Basic credentials, or an
//! identity token as a refresh token).

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use tokio::sync::Mutex;

use super::ImageName;
use kyb_deploy_core::Credentials;
use kyb_deploy_core::{Error, Result};

/// Manifest media types a registry may answer with.
pub(super) const MANIFEST_TYPES: &str = "application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json";

/// A response: status, headers and body.
#[derive(Debug)]
pub(super) struct Answer {
    pub(super) status: StatusCode,
    pub(super) headers: HeaderMap,
    pub(super) body: Vec<u8>,
}

impl Answer {
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

#[derive(Clone)]
enum Auth {
    Basic,
    Bearer(String),
}

/// The registry API of one repository.
pub(super) struct RegistryApi<'a> {
    client: reqwest::Client,
    name: &'a ImageName,
    credentials: Option<&'a Credentials>,
    auth: Mutex<Option<Auth>>,
}

impl<'a> RegistryApi<'a> {
    pub(super) fn new(name: &'a ImageName, credentials: Option<&'a Credentials>) -> Self {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap_or_default();
        Self {
            client,
            name,
            credentials,
            auth: Mutex::new(None),
        }
    }

    /// Sends a request to `/v2/<repository>/<path>` (or `/v2/` for an empty path),
    /// authenticating when challenged.
    pub(super) async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Answer> {
        let url = if path.is_empty() {
            format!("{}/v2/", self.name.base_url())
        } else {
            format!("{}/v2/{}/{path}", self.name.base_url(), self.name.path)
        };
        let mut answer = self.attempt(&method, &url, headers, body).await?;
        if answer.status == StatusCode::UNAUTHORIZED {
            let challenge = answer.header(WWW_AUTHENTICATE.as_str()).map(str::to_owned);
            if let Some(challenge) = challenge
                && self.authenticate(&challenge).await?
            {
                answer = self.attempt(&method, &url, headers, body).await?;
            }
        }
        Ok(answer)
    }

    async fn attempt(
        &self,
        method: &Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Answer> {
        let mut request = self.client.request(method.clone(), url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.body(body.to_vec());
        }
        request = match (self.auth.lock().await.clone(), self.credentials) {
            (Some(Auth::Bearer(token)), _) => request.bearer_auth(token),
            (Some(Auth::Basic), Some(c)) => request.basic_auth(c.username(), Some(c.password())),
            _ => request,
        };
        let what = format!("{method} {url}");
        let response = request.send().await.map_err(|source| Error::Http {
            what: what.clone(),
            source: source.into(),
        })?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(|source| Error::Http {
                what,
                source: source.into(),
            })?
            .to_vec();
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    /// Answers a challenge; `false` when there is nothing to answer it with.
    async fn authenticate(&self, challenge: &str) -> Result<bool> {
        let (scheme, params) = parse_challenge(challenge);
        if scheme.eq_ignore_ascii_case("basic") {
            if self.credentials.is_none() {
                return Ok(false);
            }
            *self.auth.lock().await = Some(Auth::Basic);
            return Ok(true);
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Ok(false);
        }
        let Some(realm) = params.get("realm") else {
            return Ok(false);
        };
        let scope = format!("repository:{}:pull,push", self.name.path);
        let service = params.get("service").map_or("", String::as_str);
        let request = match self.credentials {
            Some(c) if c.is_identity_token() => {
                let form = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("grant_type", "refresh_token")
                    .append_pair("refresh_token", c.password())
                    .append_pair("service", service)
                    .append_pair("scope", &scope)
                    .append_pair("client_id", "kyb-deploy")
                    .finish();
                self.client
                    .post(realm)
                    .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(form)
            }
            credentials => {
                let request = self
                    .client
                    .get(realm)
                    .query(&[("service", service), ("scope", scope.as_str())]);
                match credentials {
                    Some(c) => request.basic_auth(c.username(), Some(c.password())),
                    None => request,
                }
            }
        };
        let what = format!("token request to {realm} for {}", self.name);
        let response = request
            .header(ACCEPT, "application/json")
            .send()
            .await
            .map_err(|source| Error::Http {
                what: what.clone(),
                source: source.into(),
            })?;
        let status = response.status();
        if !status.is_success() {
            return Err(Error::seam(
                "registry",
                format!(
                    "the token service {realm} of registry {} answered HTTP {status} for \
                     repository {}{}",
                    self.name.registry,
                    self.name.path,
                    self.credentials
                        .map(|c| format!(" with {c}"))
                        .unwrap_or_else(|| " without credentials".into()),
                ),
            ));
        }
        let token: TokenReply = response.json().await.map_err(|source| Error::Http {
            what,
            source: source.into(),
        })?;
        let Some(token) = token.token.or(token.access_token).filter(|t| !t.is_empty()) else {
            return Ok(false);
        };
        *self.auth.lock().await = Some(Auth::Bearer(token));
        Ok(true)
    }
}

#[derive(Deserialize)]
struct TokenReply {
    token: Option<String>,
    access_token: Option<String>,
}

/// Splits `Bearer realm="https://auth",service="registry",scope="a,b"` into the scheme and
/// its parameters (quoted values may hold commas).
pub(super) fn parse_challenge(header: &str) -> (String, BTreeMap<String, String>) {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let mut params = BTreeMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.next_if(|c| *c == ',' || c.is_whitespace()).is_some() {}
        let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=')).collect();
        if key.is_empty() || chars.next() != Some('=') {
            break;
        }
        let value: String = if chars.next_if_eq(&'"').is_some() {
            let mut value = String::new();
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => value.extend(chars.next()),
                    other => value.push(other),
                }
            }
            value
        } else {
            std::iter::from_fn(|| chars.next_if(|c| *c != ',')).collect()
        };
        params.insert(key.trim().to_ascii_lowercase(), value.trim().to_owned());
    }
    (scheme.to_owned(), params)
}

/// The `code: message` pairs of a registry error body, or the start of the body.
pub(super) fn error_text(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Errors {
        errors: Vec<ErrorEntry>,
    }
    #[derive(Deserialize)]
    struct ErrorEntry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    match serde_json::from_slice::<Errors>(body) {
        Ok(e) if !e.errors.is_empty() => e
            .errors
            .iter()
            .map(|e| format!("{}: {}", e.code, e.message))
            .collect::<Vec<_>>()
            .join("; "),
        _ => {
            let text = String::from_utf8_lossy(body);
            text.trim().chars().take(200).collect()
        }
    }
}
