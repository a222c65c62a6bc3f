//! What both Docker-backed runtimes (this simulator's tasks and the Kubernetes simulator's
//! pods) need from the engine: the `docker` CLI run without blocking, its error messages
//! made readable, published ports, and plain HTTP checks of a container over loopback.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::process::Command;

/// Runs `program` (the `docker` CLI) with `args`; its stdout, or the engine's message on
/// failure. The child is killed when the future is dropped.
pub(crate) async fn docker<I, S>(program: &Path, args: I) -> Result<String, String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let output = succeeded(program, args).await?;
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[cfg(feature = "k8s-sim")]
/// `docker logs` of the container `name`: what it wrote to stdout, then to stderr.
pub(crate) async fn logs(program: &Path, name: &str) -> Result<String, String> {
    let output = succeeded(program, ["logs", name]).await?;
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    Ok(text)
}

/// Runs `program` with `args` (the child is killed when the future is dropped); its output
/// when it succeeded, else the engine's message.
async fn succeeded<I, S>(program: &Path, args: I) -> Result<std::process::Output, String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|error| format!("cannot run {}: {error}", program.display()))?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(engine_message(&String::from_utf8_lossy(&output.stderr)))
    }
}

/// The engine's message without the CLI's prefix, on one line.
pub(crate) fn engine_message(stderr: &str) -> String {
    let message = stderr.trim();
    let message = message
        .strip_prefix("Error response from daemon: ")
        .unwrap_or(message);
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The host port of `docker port` output like `127.0.0.1:32768`.
pub(crate) fn parse_host_port(output: &str) -> Option<u16> {
    let line = output.lines().next()?;
    line.trim().rsplit_once(':')?.1.parse().ok()
}

/// Removes every container labelled `io.kyb-sim.simulator=<id>`, blocking on the CLI (for
/// `Drop`, where nothing can be awaited).
pub(crate) fn remove_labelled_blocking(program: &Path, id: &str) {
    let label = format!("label=io.kyb-sim.simulator={id}");
    let listed = std::process::Command::new(program)
        .args(["ps", "-aq", "--filter", &label])
        .stderr(Stdio::null())
        .output();
    let Ok(listed) = listed else {
        return;
    };
    let ids = String::from_utf8_lossy(&listed.stdout).into_owned();
    if ids.split_whitespace().next().is_some() {
        let _ = std::process::Command::new(program)
            .args(["rm", "-f"])
            .args(ids.split_whitespace())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Removes every container labelled `io.kyb-sim.simulator=<id>`.
pub(crate) async fn remove_labelled(program: &Path, id: &str) {
    let label = format!("label=io.kyb-sim.simulator={id}");
    let listed = docker(program, ["ps", "-aq", "--filter", &label]).await;
    let ids: Vec<String> = listed
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    if !ids.is_empty() {
        let args = ["rm", "-f"].into_iter().map(str::to_owned).chain(ids);
        let _ = docker(program, args).await;
    }
}

/// The status code of `GET path` on 127.0.0.1:`port`, if an HTTP answer's status line
/// arrives within `timeout`.
pub(crate) async fn http_status(port: u16, path: &str, timeout: Duration) -> Option<u16> {
    let attempt = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut head = [0_u8; 12];
        stream.read_exact(&mut head).await?;
        std::io::Result::Ok(head)
    };
    let head = tokio::time::timeout(timeout, attempt).await.ok()?.ok()?;
    if !head.starts_with(b"HTTP/1.") {
        return None;
    }
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_ports_and_engine_messages_are_parsed() {
        assert_eq!(parse_host_port("127.0.0.1:32768\n"), Some(32768));
        assert_eq!(parse_host_port(""), None);
        assert_eq!(
            engine_message(
                "Error response from daemon: manifest for r/x:nope not found: manifest unknown\n"
            ),
            "manifest for r/x:nope not found: manifest unknown"
        );
    }

    #[tokio::test]
    async fn http_status_reads_the_status_line() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut buf = [0_u8; 256];
                let _ = stream.read(&mut buf).await;
                let answer: &[u8] = if buf.starts_with(b"GET /ready ") {
                    b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n"
                } else {
                    b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
                };
                let _ = stream.write_all(answer).await;
            }
        });
        let timeout = Duration::from_secs(5);
        assert_eq!(http_status(port, "/ready", timeout).await, Some(503));
        assert_eq!(http_status(port, "/health", timeout).await, Some(200));
    }
}
