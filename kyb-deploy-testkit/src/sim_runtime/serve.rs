//! Serving a simulator's API in a spawned task until it is told to stop: the part of
//! `serve` and `shutdown` both simulators share.

use std::io;

use axum::Router;
use axum::serve::Listener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// An API served in a spawned task; [`stop`](Self::stop) ends it gracefully.
#[derive(Debug)]
pub(crate) struct Served {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl Served {
    /// Serves `router` on `listener` until [`stop`](Self::stop) (or until this value is
    /// dropped); `on_stop` runs when the stop arrives, before the requests in flight end
    /// (to end long-running ones such as watches).
    pub(crate) fn spawn<L>(
        listener: L,
        router: Router,
        on_stop: impl FnOnce() + Send + 'static,
    ) -> Self
    where
        L: Listener,
        L::Addr: std::fmt::Debug,
    {
        let (stop, stopped) = oneshot::channel::<()>();
        let stopping = async move {
            let _ = stopped.await;
            on_stop();
        };
        let task = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(stopping)
                .await
        });
        Self {
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Tells the server to stop accepting connections; `true` the first time, `false` once
    /// it was already told.
    pub(crate) fn stop(&mut self) -> bool {
        match self.stop.take() {
            Some(stop) => {
                let _ = stop.send(());
                true
            }
            None => false,
        }
    }

    /// Stops the server and waits until the requests in flight are done.
    ///
    /// # Errors
    ///
    /// When serving failed.
    pub(crate) async fn finish(&mut self) -> io::Result<()> {
        self.stop();
        match self.task.take() {
            Some(task) => task.await.map_err(io::Error::other)?,
            None => Ok(()),
        }
    }
}
