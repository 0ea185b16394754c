//! Building and running the service: [`Application`] binds and serves, [`app`] is the
//! router alone so tests can drive it with `tower::ServiceExt::oneshot`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};
use axum::{BoxError, Router};
use kiln_shared::origin::{Heartbeat, OriginHealth, DISPATCH_PATH};
use kiln_shared::signing::Keyring;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceBuilder;
use tower_http::trace::TraceLayer;

use crate::config::Config;
use crate::edge_client::EdgeClient;
use crate::engine::Engine;
use crate::error::AppError;
use crate::flag::Flag;
use crate::heartbeat;
use crate::replay::SeenDispatches;
use crate::routes::{health, jobs};
use crate::runner::Runner;
use crate::running::RunningJobs;

/// Every request the origin serves is small; one that takes longer is stuck.
pub const REQUEST_SECS_MAX: u64 = 30;
/// How long shutdown waits for running jobs to deliver their results before leaving
/// them to the edge's lease; under the 90 s that systemd and containers allow by default.
pub const DRAIN_SECS_MAX: u64 = 75;

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Verifies the edge's dispatches and cancels.
    pub dispatch_keys: Arc<Keyring>,
    /// One permit per slot; a running job holds one until its engine work is over
    /// (see [`crate::running`]).
    pub slots: Arc<Semaphore>,
    pub slots_total: u32,
    pub seen: Arc<Mutex<SeenDispatches>>,
    /// The job attempts in progress, for cancels, heartbeats and shutdown.
    pub running: Arc<RunningJobs>,
    pub runner: Arc<Runner>,
}

impl AppState {
    pub fn new(config: &Config) -> Self {
        Self {
            dispatch_keys: Arc::new(config.edge_to_origin_keys.clone()),
            slots: Arc::new(Semaphore::new(config.slots as usize)),
            slots_total: config.slots,
            seen: Arc::new(Mutex::new(SeenDispatches::default())),
            running: Arc::new(RunningJobs::default()),
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

    /// What `GET /health` answers.
    pub fn health(&self) -> OriginHealth {
        let engine = &self.runner.engine;
        let problem = engine.problem();
        let (comfyui, vram_free_gb) = match engine {
            Engine::ComfyUi { comfy, .. } => (Some(comfy.health()), comfy.vram_free_gb()),
            Engine::Sim(_) => (None, None),
        };
        OriginHealth {
            status: if problem.is_some() { "unhealthy" } else { "ok" }.to_owned(),
            problem,
            origin_id: self.runner.origin_id.clone(),
            engine: engine.name().to_owned(),
            simulated: engine.simulated(),
            slots: self.slots_total,
            busy: self.busy(),
            models: engine.models(),
            resident_models: engine.resident_models(),
            vram_free_gb,
            comfyui,
        }
    }

    /// A heartbeat as of now; `url` is where the edge reaches this origin.
    pub fn heartbeat(&self, url: &str) -> Heartbeat {
        let health = self.health();
        Heartbeat {
            origin_id: health.origin_id,
            url: url.to_owned(),
            engine: health.engine,
            simulated: health.simulated,
            // The slots the edge may fill: with ComfyUI, one per ready server (a server
            // that is down or not set up takes no job).
            slots: self
                .runner
                .engine
                .ready_slots()
                .map_or(health.slots, |ready| ready.min(health.slots)),
            busy: health.busy,
            models: health.models,
            resident_models: health.resident_models,
            running: self.running.list(),
            vram_free_gb: health.vram_free_gb,
            healthy: health.problem.is_none(),
            problem: self.runner.engine.problem_summary(),
        }
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
        .route(
            &format!("{DISPATCH_PATH}/{{job_id}}"),
            delete(jobs::handle_cancel),
        )
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
    /// Where the edge reaches this origin, as heartbeats say.
    public_url: String,
    heartbeat: Option<Duration>,
    state: AppState,
}

impl Application {
    /// Binds `config.addr`; port 0 picks a free port, which [`Application::port`] reports.
    pub async fn build(config: Config) -> std::io::Result<Self> {
        let listener = TcpListener::bind(config.addr).await?;
        let addr = listener.local_addr()?;
        let defaulted = config.public_url.is_none() && config.heartbeat.is_some();
        if defaulted && addr.ip().is_unspecified() {
            tracing::warn!(
                %addr,
                "heartbeats will name an address the edge cannot reach; set KILN_PUBLIC_URL"
            );
        }
        Ok(Self {
            listener,
            addr,
            public_url: config
                .public_url
                .clone()
                .unwrap_or_else(|| format!("http://{addr}")),
            heartbeat: config.heartbeat,
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
    /// Heartbeats go out from the start until the running jobs are drained, so the edge
    /// keeps renewing those jobs' leases meanwhile.
    pub async fn run_until(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        tracing::info!(addr = %self.addr, public_url = %self.public_url, "serving");
        let heartbeats_stop = Flag::new();
        // The engine's hardware checks (ComfyUI servers) start with the origin, so the
        // first heartbeats already say whether it can run jobs.
        let monitor = tokio::spawn({
            let (runner, stop) = (self.state.runner.clone(), heartbeats_stop.clone());
            async move { runner.engine.monitor(stop).await }
        });
        let heartbeats = self.heartbeat.map(|every| {
            tokio::spawn(heartbeat::send_every(
                self.state.clone(),
                self.public_url.clone(),
                every,
                heartbeats_stop.clone(),
            ))
        });
        let served = axum::serve(self.listener, app(self.state.clone()))
            .with_graceful_shutdown(stop)
            .await;
        if served.is_ok() {
            drain(&self.state).await;
        }
        heartbeats_stop.set();
        if let Some(task) = heartbeats {
            let _ = task.await;
        }
        let _ = monitor.await;
        served?;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Waits up to [`DRAIN_SECS_MAX`] for every running job to deliver its result.
async fn drain(state: &AppState) {
    let running = state.running.list().len();
    if running == 0 {
        return;
    }
    tracing::info!(running, "waiting for running jobs before exiting");
    let drained = state.running.wait_until_empty();
    if tokio::time::timeout(Duration::from_secs(DRAIN_SECS_MAX), drained)
        .await
        .is_err()
    {
        tracing::warn!(
            running = state.running.list().len(),
            "jobs still running at exit; the edge will time them out and refund them"
        );
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
