//! [`BackgroundServer`]: a test server on its own thread with its own tokio runtime, so
//! blocking tests and `#[tokio::test]`s alike can start one; stopped on drop. The test
//! ComfyUI server and the edge stand-in both run on it.

use std::future::Future;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use tokio::sync::oneshot;

/// A running server thread; dropping it stops the server and joins the thread (open
/// connections get half a second to end).
pub struct BackgroundServer {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl BackgroundServer {
    /// Runs `serve` on `listener` (already bound, so its port is known before this
    /// returns) on a thread named `name`, until the server is dropped or `serve` ends.
    /// Returns once the listener is registered with the runtime.
    pub fn start<F, Fut>(name: String, listener: std::net::TcpListener, serve: F) -> Result<Self>
    where
        F: FnOnce(tokio::net::TcpListener) -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
    {
        listener
            .set_nonblocking(true)
            .context("making the listener non-blocking")?;
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
        let thread = std::thread::Builder::new()
            .name(name.clone())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("tokio runtime: {e}")));
                        return;
                    }
                };
                rt.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = ready_tx.send(Err(format!("listener: {e}")));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(()));
                    tokio::select! {
                        () = serve(listener) => {}
                        _ = stop_rx => {}
                    }
                });
                // Open connections (websockets, waiting runs) end here.
                rt.shutdown_timeout(Duration::from_millis(500));
            })
            .with_context(|| format!("spawning the thread {name}"))?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(anyhow!(e)),
            Err(_) => return Err(anyhow!("the thread {name} ended before it was ready")),
        }
        Ok(Self {
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }
}

impl Drop for BackgroundServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
