//! [`FaultProxy`]: an HTTP/1.1 proxy between a client and a platform's API that injects the
//! faults a deployment tool must survive: a write applied by the platform whose answer is
//! lost (the connection drops, or a 5xx replaces the real answer), a refused request, or a
//! request that never reaches the platform.
//!
//! It speaks plain HTTP to both sides, so it sits in front of any API a test serves on
//! 127.0.0.1 (the ECS simulator, moto, a Kubernetes API served without TLS). Each client
//! request travels on a fresh upstream connection marked `Connection: close`, so every
//! request is seen and judged on its own; answers that are passed through are streamed,
//! which keeps watches working.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// The largest request head the proxy reads.
const MAX_HEAD: usize = 64 * 1024;

/// Which requests a rule applies to: every condition given must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestMatch {
    method: Option<String>,
    path_prefix: Option<String>,
    header: Option<(String, String)>,
}

impl RequestMatch {
    /// Every request.
    pub fn any() -> Self {
        Self::default()
    }

    /// Requests whose header `name` (any case) contains `value`: for AWS JSON APIs,
    /// `header("x-amz-target", "UpdateService")` picks one operation.
    pub fn header(name: &str, value: &str) -> Self {
        Self::any().and_header(name, value)
    }

    /// Requests with this method (`PATCH`, `POST`...).
    pub fn method(method: &str) -> Self {
        Self::any().and_method(method)
    }

    /// And the header `name` contains `value`.
    pub fn and_header(mut self, name: &str, value: &str) -> Self {
        self.header = Some((name.to_ascii_lowercase(), value.to_owned()));
        self
    }

    /// And the method is `method`.
    pub fn and_method(mut self, method: &str) -> Self {
        self.method = Some(method.to_ascii_uppercase());
        self
    }

    /// And the path starts with `prefix`.
    pub fn and_path_prefix(mut self, prefix: &str) -> Self {
        self.path_prefix = Some(prefix.to_owned());
        self
    }

    fn matches(&self, request: &RequestHead) -> bool {
        self.method.as_ref().is_none_or(|m| *m == request.method)
            && self
                .path_prefix
                .as_ref()
                .is_none_or(|p| request.path.starts_with(p.as_str()))
            && self.header.as_ref().is_none_or(|(name, value)| {
                request
                    .headers
                    .iter()
                    .any(|(n, v)| n == name && v.contains(value.as_str()))
            })
    }
}

/// What happens to a matching request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The platform gets the request and applies it; once its answer begins, the client's
    /// connection is closed without a byte of it.
    ApplyThenDrop,
    /// The platform gets the request and applies it; the client gets this status and body
    /// instead of the real answer.
    ApplyThenAnswer {
        /// The status the client sees.
        status: u16,
        /// The body the client sees (JSON for the AWS and Kubernetes APIs).
        body: String,
    },
    /// The platform never sees the request; the client gets this status and body.
    Refuse {
        /// The status the client sees.
        status: u16,
        /// The body the client sees.
        body: String,
    },
    /// The platform never sees the request; the client's connection is closed.
    DropUnsent,
}

impl Fault {
    /// [`Fault::ApplyThenAnswer`] with an ECS-style server error.
    pub fn apply_then_server_error() -> Self {
        Self::ApplyThenAnswer {
            status: 500,
            body: ecs_server_error(),
        }
    }

    /// [`Fault::Refuse`] with an ECS-style server error.
    pub fn refuse_with_server_error() -> Self {
        Self::Refuse {
            status: 500,
            body: ecs_server_error(),
        }
    }

    /// Whether the platform gets the request.
    fn forwards(&self) -> bool {
        matches!(self, Self::ApplyThenDrop | Self::ApplyThenAnswer { .. })
    }
}

fn ecs_server_error() -> String {
    r#"{"__type":"ServerException","message":"injected by the fault proxy"}"#.to_owned()
}

/// A fault for the next `times` requests that match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultRule {
    /// Which requests.
    pub matches: RequestMatch,
    /// What happens to them.
    pub fault: Fault,
    /// How many more requests it applies to.
    pub times: u32,
    /// When set, the rule waits until a request matching this one has arrived, and applies
    /// only to requests after it.
    pub after: Option<RequestMatch>,
}

/// A request the proxy saw, and what it did with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxiedRequest {
    /// The method.
    pub method: String,
    /// The path and query.
    pub path: String,
    /// The fault injected, if any.
    pub fault: Option<Fault>,
    /// Whether the platform got the request.
    pub forwarded: bool,
}

#[derive(Debug, Default)]
struct State {
    rules: Vec<FaultRule>,
    seen: Vec<ProxiedRequest>,
}

/// A running fault-injecting proxy on an ephemeral 127.0.0.1 port; stops when dropped.
///
/// Rules are tried in the order they were added; the first that matches a request and has
/// uses left decides it, and requests no rule takes pass through untouched.
///
/// ```no_run
/// # async fn example(ecs_url: std::net::SocketAddr) -> std::io::Result<()> {
/// use kyb_deploy_testkit::{Fault, FaultProxy, RequestMatch};
///
/// let proxy = FaultProxy::start(ecs_url).await?;
/// // UpdateService is applied by the platform, but its answer is replaced by a 500.
/// proxy.add(RequestMatch::header("x-amz-target", "UpdateService"), Fault::apply_then_server_error(), 1);
/// let endpoint = proxy.url(); // point the client here
/// # let _ = endpoint; Ok(()) }
/// ```
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: CancellationToken,
}

impl FaultProxy {
    /// Starts a proxy to the plain-HTTP API at `upstream`.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State::default()));
        let stop = CancellationToken::new();
        let (shared, stopped) = (state.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    () = stopped.cancelled() => return,
                    accepted = listener.accept() => accepted,
                };
                let Ok((client, _)) = accepted else { continue };
                let (shared, stopped) = (shared.clone(), stopped.clone());
                tokio::spawn(async move {
                    tokio::select! {
                        () = stopped.cancelled() => {}
                        _ = serve(client, upstream, shared) => {}
                    }
                });
            }
        });
        Ok(Self { addr, state, stop })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`, for a client's endpoint setting.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Injects `fault` into the next `times` requests that `matches` selects.
    pub fn add(&self, matches: RequestMatch, fault: Fault, times: u32) {
        self.lock().rules.push(FaultRule {
            matches,
            fault,
            times,
            after: None,
        });
    }

    /// Injects `fault` into the next `times` requests that `matches` selects once a request
    /// that `trigger` selects has arrived: "the reads after the write fail".
    pub fn add_after(
        &self,
        trigger: RequestMatch,
        matches: RequestMatch,
        fault: Fault,
        times: u32,
    ) {
        self.lock().rules.push(FaultRule {
            matches,
            fault,
            times,
            after: Some(trigger),
        });
    }

    /// Removes every rule that is left.
    pub fn clear(&self) {
        self.lock().rules.clear();
    }

    /// Every request seen so far, in order.
    pub fn requests(&self) -> Vec<ProxiedRequest> {
        self.lock().seen.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A parsed request head.
#[derive(Debug)]
struct RequestHead {
    method: String,
    path: String,
    /// Names lower-cased.
    headers: Vec<(String, String)>,
}

/// Serves one client connection: one request, then the connection closes.
async fn serve(
    mut client: TcpStream,
    upstream: SocketAddr,
    state: Arc<Mutex<State>>,
) -> std::io::Result<()> {
    let Some((head, raw_head, body)) = read_request(&mut client).await? else {
        return Ok(());
    };
    let fault = {
        let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
        let fault = state
            .rules
            .iter_mut()
            .find(|r| r.after.is_none() && r.times > 0 && r.matches.matches(&head))
            .map(|rule| {
                rule.times -= 1;
                rule.fault.clone()
            });
        // Rules waiting for this request apply from the next one on.
        for rule in &mut state.rules {
            if rule.after.as_ref().is_some_and(|t| t.matches(&head)) {
                rule.after = None;
            }
        }
        state.seen.push(ProxiedRequest {
            method: head.method.clone(),
            path: head.path.clone(),
            forwarded: fault.as_ref().is_none_or(Fault::forwards),
            fault: fault.clone(),
        });
        fault
    };
    match fault {
        Some(Fault::Refuse { status, body }) => answer(&mut client, status, &body).await,
        Some(Fault::DropUnsent) => Ok(()),
        Some(Fault::ApplyThenDrop) => {
            let mut upstream = forward(upstream, &raw_head, &body).await?;
            // Wait until the platform has answered (so it has applied the request), then
            // drop both sides without relaying a byte.
            let mut first = [0u8; 1];
            let _ = upstream.read(&mut first).await?;
            Ok(())
        }
        Some(Fault::ApplyThenAnswer {
            status,
            body: replacement,
        }) => {
            let mut upstream = forward(upstream, &raw_head, &body).await?;
            let mut discarded = Vec::new();
            upstream.read_to_end(&mut discarded).await?;
            answer(&mut client, status, &replacement).await
        }
        None => {
            let mut upstream = forward(upstream, &raw_head, &body).await?;
            tokio::io::copy(&mut upstream, &mut client).await?;
            client.shutdown().await
        }
    }
}

/// Reads one request: its head (parsed and raw) and its body (by `Content-Length`).
async fn read_request(
    client: &mut TcpStream,
) -> std::io::Result<Option<(RequestHead, String, Vec<u8>)>> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(end) = find(&buffer, b"\r\n\r\n") {
            break end;
        }
        if buffer.len() > MAX_HEAD {
            return Err(std::io::Error::other("request head too large"));
        }
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let raw_head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = raw_head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default().to_owned();
    let path = request_line.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buffer[head_end + 4..].to_vec();
    while body.len() < length {
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    let head = RequestHead {
        method,
        path,
        headers,
    };
    Ok(Some((head, raw_head, body)))
}

/// Sends the request upstream on a fresh connection that closes after its answer.
async fn forward(upstream: SocketAddr, raw_head: &str, body: &[u8]) -> std::io::Result<TcpStream> {
    let mut stream = TcpStream::connect(upstream).await?;
    let mut head: Vec<&str> = raw_head
        .split("\r\n")
        .filter(|l| {
            !l.split_once(':')
                .is_some_and(|(n, _)| n.trim().eq_ignore_ascii_case("connection"))
        })
        .collect();
    head.push("Connection: close");
    let mut request = head.join("\r\n").into_bytes();
    request.extend_from_slice(b"\r\n\r\n");
    request.extend_from_slice(body);
    stream.write_all(&request).await?;
    Ok(stream)
}

async fn answer(client: &mut TcpStream, status: u16, body: &str) -> std::io::Result<()> {
    let content_type = if body.trim_start().starts_with('{') {
        "application/x-amz-json-1.1"
    } else {
        "text/plain"
    };
    let response = format!(
        "HTTP/1.1 {status} Injected\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    client.write_all(response.as_bytes()).await?;
    client.shutdown().await
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(method: &str, path: &str, headers: &[(&str, &str)]) -> RequestHead {
        RequestHead {
            method: method.into(),
            path: path.into(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_ascii_lowercase(), (*v).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn matches_by_every_condition_given() {
        let update = head(
            "POST",
            "/",
            &[(
                "x-amz-target",
                "AmazonEC2ContainerServiceV20141113.UpdateService",
            )],
        );
        assert!(RequestMatch::any().matches(&update));
        assert!(RequestMatch::header("X-Amz-Target", "UpdateService").matches(&update));
        assert!(!RequestMatch::header("x-amz-target", "DescribeServices").matches(&update));
        assert!(
            RequestMatch::method("post")
                .and_path_prefix("/")
                .matches(&update)
        );
        assert!(
            !RequestMatch::method("PATCH")
                .and_header("x-amz-target", "UpdateService")
                .matches(&update)
        );
        assert!(
            !RequestMatch::any()
                .and_path_prefix("/apis/apps")
                .matches(&update)
        );
    }
}
