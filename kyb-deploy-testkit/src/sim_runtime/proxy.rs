//! The stand-in for a service's load balancer: a TCP proxy on a stable 127.0.0.1 port that
//! spreads connections round-robin over the addresses its backend source names at the time
//! each connection arrives, and closes connections when there is none.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

/// Names the addresses to spread connections over; asked once per connection.
pub(crate) type Backends = Arc<dyn Fn() -> Vec<SocketAddr> + Send + Sync>;

/// A running proxy; stops (accepting, and the connections in flight) when it is dropped.
#[derive(Debug)]
pub(crate) struct Proxy {
    addr: SocketAddr,
    stop: CancellationToken,
}

impl Proxy {
    /// Binds an ephemeral port on 127.0.0.1 and serves it on `runtime`.
    pub(crate) fn start(runtime: &Handle, backends: Backends) -> std::io::Result<Self> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        // `from_std` needs the runtime's reactor, which the spawned task has.
        runtime.spawn(async move {
            let Ok(listener) = TcpListener::from_std(listener) else {
                return;
            };
            tokio::select! {
                () = stopped.cancelled() => {}
                () = accept_loop(listener, backends, stopped.clone()) => {}
            }
        });
        Ok(Self { addr, stop })
    }

    /// The address clients connect to.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn accept_loop(listener: TcpListener, backends: Backends, stop: CancellationToken) {
    let next = Arc::new(AtomicUsize::new(0));
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        let (backends, next, stop) = (Arc::clone(&backends), Arc::clone(&next), stop.clone());
        tokio::spawn(async move {
            tokio::select! {
                () = stop.cancelled() => {}
                () = forward(client, &backends, &next) => {}
            }
        });
    }
}

/// Connects `client` to the next backend that accepts, trying each at most once; drops the
/// client when none does.
async fn forward(mut client: TcpStream, backends: &Backends, next: &AtomicUsize) {
    // The source may take a lock; ask it off the runtime's worker threads' hot path.
    let source = Arc::clone(backends);
    let Ok(addresses) = tokio::task::spawn_blocking(move || source()).await else {
        return;
    };
    if addresses.is_empty() {
        return;
    }
    let first = next.fetch_add(1, Ordering::Relaxed);
    for offset in 0..addresses.len() {
        let addr = addresses[(first + offset) % addresses.len()];
        if let Ok(mut upstream) = TcpStream::connect(addr).await {
            let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    /// A server that answers every connection with `name` and closes it.
    async fn named_server(name: &'static str) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let _ = stream.write_all(name.as_bytes()).await;
            }
        });
        addr
    }

    async fn read_through(proxy: SocketAddr) -> String {
        let mut stream = TcpStream::connect(proxy).await.unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer).await;
        answer
    }

    #[tokio::test]
    async fn connections_round_robin_over_the_current_backends_and_close_without_any() {
        let a = named_server("a").await;
        let b = named_server("b").await;
        let current = Arc::new(Mutex::new(vec![a, b]));
        let source = Arc::clone(&current);
        let backends: Backends = Arc::new(move || source.lock().unwrap().clone());
        let proxy = Proxy::start(&Handle::current(), backends).unwrap();

        let mut answers = Vec::new();
        for _ in 0..4 {
            answers.push(read_through(proxy.addr()).await);
        }
        answers.sort();
        assert_eq!(answers, ["a", "a", "b", "b"]);

        current.lock().unwrap().clear();
        assert_eq!(read_through(proxy.addr()).await, "");
        // Dropped, it stops accepting: its port refuses connections soon after, although a
        // backend is there again.
        *current.lock().unwrap() = vec![a];
        let addr = proxy.addr();
        assert_eq!(read_through(addr).await, "a");
        drop(proxy);
        let mut refused = false;
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(addr).await.is_err() {
                refused = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(
            refused,
            "{addr} still accepts connections after the proxy was dropped"
        );
    }
}
