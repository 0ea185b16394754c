//! Building and running the service: [`Application`] binds and serves, [`app`] is the
//! router alone so tests can drive it with `tower::ServiceExt::oneshot`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::{BoxError, Router};
use kiln_shared::origin::DISPATCH_PATH;
use kiln_shared::signing::Keyring;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceBuilder;
use tower_http::trace::TraceLayer;

use crate::config::Config;
use crate::edge_client::EdgeClient;
use crate::engine::Engine;
use crate::error::AppError;
use crate::replay::SeenDispatches;
use crate::routes::{health, jobs};
use crate::runner::Runner;

/// Every request the origin serves is small; one that takes longer is stuck.
pub const REQUEST_SECS_MAX: u64 = 30;
/// How long shutdown waits for running jobs to deliver their results before leaving
/// them to the edge's lease; under the 90 s that systemd and containers allow by default.
pub const DRAIN_SECS_MAX: u64 = 75;

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Verifies dispatches.
    pub dispatch_keys: Arc<Keyring>,
    /// One permit per slot; a running job holds one until its result is delivered.
    pub slots: Arc<Semaphore>,
    pub slots_total: u32,
    pub seen: Arc<Mutex<SeenDispatches>>,
    pub runner: Arc<Runner>,
}

impl AppState {
    pub fn new(config: &Config) -> Self {
        Self {
            dispatch_keys: Arc::new(config.edge_to_origin_keys.clone()),
            slots: Arc::new(Semaphore::new(config.slots as usize)),
            slots_total: config.slots,
            seen: Arc::new(Mutex::new(SeenDispatches::default())),
            runner: Arc::new(Runner {
                origin_id: config.origin_id.clone(),
                engine: Engine::from_config(config),
                edge: EdgeClient::new(&config.edge_url, config.origin_to_edge_keys.clone()),
            }),
        }
    }

    /// Jobs running now.
    pub fn busy(&self) -> u32 {
        self.slots_total
            .saturating_sub(self.slots.available_permits() as u32)
    }

    pub(crate) fn lock_seen(&self) -> MutexGuard<'_, SeenDispatches> {
        // Every update leaves the guard consistent, so a poisoned lock is still usable.
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Every route the origin serves, with its limits.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health::handle_health))
        .route(DISPATCH_PATH, post(jobs::handle_dispatch))
        .fallback(crate::routes::handle_not_found)
        .method_not_allowed_fallback(crate::routes::handle_method_not_allowed)
        .layer(DefaultBodyLimit::max(jobs::BODY_BYTES_MAX))
        .layer(
            ServiceBuilder::new()
                .layer(TraceLayer::new_for_http())
                .layer(HandleErrorLayer::new(handle_layer_error))
                .timeout(Duration::from_secs(REQUEST_SECS_MAX)),
        )
        .with_state(state)
}

async fn handle_layer_error(error: BoxError) -> AppError {
    if error.is::<tower::timeout::error::Elapsed>() {
        AppError::Timeout
    } else {
        AppError::Internal(error.to_string())
    }
}

/// The origin, bound and ready to serve.
pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    state: AppState,
}

impl Application {
    /// Binds `config.addr`; port 0 picks a free port, which [`Application::port`] reports.
    pub async fn build(config: Config) -> std::io::Result<Self> {
        let listener = TcpListener::bind(config.addr).await?;
        let addr = listener.local_addr()?;
        Ok(Self {
            listener,
            addr,
            state: AppState::new(&config),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Serves until SIGTERM or Ctrl-C, then lets running jobs finish.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `stop` resolves: stops accepting, finishes in-flight requests, then
    /// waits up to [`DRAIN_SECS_MAX`] for running jobs to deliver their results.
    pub async fn run_until(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        tracing::info!(addr = %self.addr, "serving");
        axum::serve(self.listener, app(self.state.clone()))
            .with_graceful_shutdown(stop)
            .await?;
        let running = self.state.busy();
        if running > 0 {
            tracing::info!(running, "waiting for running jobs before exiting");
            let all = self.state.slots.acquire_many(self.state.slots_total);
            if tokio::time::timeout(Duration::from_secs(DRAIN_SECS_MAX), all)
                .await
                .is_err()
            {
                tracing::warn!(
                    running = self.state.busy(),
                    "jobs still running at exit; the edge will time them out and refund them"
                );
            }
        }
        tracing::info!("stopped");
        Ok(())
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C received; shutting down"),
        () = terminate => tracing::info!("SIGTERM received; shutting down"),
    }
}
