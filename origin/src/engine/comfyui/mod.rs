//! The ComfyUI engine: runs FLUX.2-dev and LTX-2.3 on ComfyUI 0.26.0 servers, one per
//! GPU, one job at a time each. `infra/comfyui/README.md` is the operator's side of it,
//! `docs/architecture.md` ("The comfyui engine") the summary.
//!
//! - [`settings`] — model files and sampler settings, with the official defaults;
//! - [`template`] — the workflow templates (`origin/comfyui/templates/*.json`) and how a
//!   job's parameters fill them, by setting node inputs;
//! - [`schema`] — checks a graph against a server's `/object_info`;
//! - [`client`] — the HTTP calls, each with a timeout and a bounded answer;
//! - [`ws`] — the websocket's events;
//! - [`health`] — each server's readiness: reachable, the pinned version, every template
//!   fits its `/object_info`, every model file present; read at startup and every
//!   `KILN_COMFYUI_POLL_MS`;
//! - [`run`] — one job on one server: inputs uploaded, prompt queued, progress mapped,
//!   outputs fetched, and a cancel sent when the job is stopped.
//!
//! A job whose server cannot take it never reaches ComfyUI: the origin answers the
//! dispatch 503 (the job stays queued at the edge) unless a ready server is free, and
//! heartbeats say the origin is unhealthy while no server is ready, so the edge stops
//! dispatching to it.

pub mod client;
pub mod health;
mod run;
pub mod schema;
pub mod settings;
pub mod template;
pub mod ws;

use std::sync::{Mutex, MutexGuard};

use kiln_shared::origin::{ComfyServerHealth, DispatchJob};
use tokio::sync::mpsc;

use self::client::ComfyClient;
use self::health::ServerState;
use self::settings::{ModelFiles, SamplerSettings};
use self::template::{Pipeline, Templates};
use super::{EngineError, InputImage, Output, Progress};
use crate::config::ComfyConfig;
use crate::flag::Flag;

/// The ComfyUI release the templates are built for (node inputs drift between
/// releases); a server that reports another version is not used.
pub const PINNED_VERSION: &str = "0.26.0";

/// One ComfyUI server: its client and what the last health check found.
#[derive(Debug)]
pub struct Server {
    pub client: ComfyClient,
    state: Mutex<ServerState>,
}

impl Server {
    fn state(&self) -> MutexGuard<'_, ServerState> {
        // Every update replaces whole fields, so a poisoned lock is still consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Debug)]
pub struct ComfyEngine {
    servers: Vec<Server>,
    /// Which servers run a job now (by index).
    busy: Mutex<Vec<bool>>,
    templates: Result<Templates, String>,
    /// The URLs, the models served, model files, sampler settings and timeouts.
    config: ComfyConfig,
}

impl ComfyEngine {
    pub fn new(config: &ComfyConfig) -> Self {
        let servers = config
            .urls
            .iter()
            .map(|url| Server {
                client: ComfyClient::new(url, config.request_timeout, config.transfer_timeout),
                state: Mutex::new(ServerState::unchecked()),
            })
            .collect::<Vec<_>>();
        Self {
            busy: Mutex::new(vec![false; servers.len()]),
            servers,
            templates: Templates::builtin().map_err(|e| e.to_string()),
            config: config.clone(),
        }
    }

    /// The Kiln model ids served.
    pub fn models(&self) -> Vec<String> {
        self.config.serve.clone()
    }

    /// Models every ready server has had loaded, sorted. ComfyUI does not say what it
    /// keeps in VRAM, so none is claimed resident.
    pub fn resident_models(&self) -> Vec<String> {
        Vec::new()
    }

    /// Servers that are ready, busy or not.
    pub fn ready_servers(&self) -> u32 {
        self.servers.iter().filter(|s| s.state().ready).count() as u32
    }

    /// Servers that are ready and free now: a dispatch beyond these gets 503.
    pub fn ready_free(&self) -> u32 {
        let busy = self.lock_busy();
        self.servers
            .iter()
            .zip(busy.iter())
            .filter(|(s, busy)| !**busy && s.state().ready)
            .count() as u32
    }

    /// Why no job can run, if none can: `None` while some server is ready.
    pub fn problem(&self) -> Option<String> {
        if let Err(e) = &self.templates {
            return Some(format!("the built-in workflow templates are broken: {e}"));
        }
        if self.ready_servers() > 0 {
            return None;
        }
        let problems: Vec<String> = self
            .servers
            .iter()
            .map(|s| {
                s.state()
                    .problem
                    .clone()
                    .unwrap_or_else(|| format!("{} is not ready", s.client.base()))
            })
            .collect();
        Some(problems.join("; "))
    }

    /// [`ComfyEngine::problem`] without server addresses, for heartbeats (the edge
    /// shows it in its public `/health`): e.g. "no ComfyUI server is ready (2 configured:
    /// 1 unreachable, 1 missing model files)".
    pub fn problem_summary(&self) -> Option<String> {
        if self.templates.is_err() {
            return Some("the origin's workflow templates are broken".to_owned());
        }
        if self.ready_servers() > 0 {
            return None;
        }
        let mut kinds: std::collections::BTreeMap<&str, usize> = Default::default();
        for s in &self.servers {
            let st = s.state();
            let problem = st.problem.as_deref().unwrap_or("");
            let kind = if !st.reachable && st.checked_at_ms.is_some() {
                "unreachable"
            } else if st.checked_at_ms.is_none() {
                "not checked yet"
            } else if problem.contains("runs version") {
                "wrong ComfyUI version"
            } else if problem.contains("missing from models/") {
                "missing model files"
            } else if problem.contains("has no GPU") {
                "no GPU"
            } else if problem.contains("does not fit") || problem.contains("has no node class") {
                "templates do not fit"
            } else {
                "not ready"
            };
            *kinds.entry(kind).or_default() += 1;
        }
        let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
        Some(format!(
            "no ComfyUI server is ready ({} configured: {})",
            self.servers.len(),
            kinds.join(", ")
        ))
    }

    /// Each server as `/health` shows it.
    pub fn health(&self) -> Vec<ComfyServerHealth> {
        let busy = self.lock_busy().clone();
        self.servers
            .iter()
            .zip(busy)
            .map(|(s, busy)| s.state().view(s.client.base(), busy))
            .collect()
    }

    /// Free VRAM summed over the ready servers, in GB, if any reported it.
    pub fn vram_free_gb(&self) -> Option<f64> {
        let free: Vec<f64> = self
            .servers
            .iter()
            .filter_map(|s| {
                let st = s.state();
                st.ready.then_some(st.vram_free).flatten()
            })
            .map(|b| b as f64 / 1e9)
            .collect();
        (!free.is_empty()).then(|| (free.iter().sum::<f64>() * 100.0).round() / 100.0)
    }

    /// Checks every server now (startup), then every `KILN_COMFYUI_POLL_MS` until
    /// `stop` is set.
    pub async fn monitor(&self, stop: Flag) {
        let mut round: u64 = 0;
        loop {
            let checks = self.servers.iter().map(|s| health::check(s, self, round));
            futures_util::future::join_all(checks).await;
            round = round.wrapping_add(1);
            tokio::select! {
                biased;
                () = stop.wait() => return,
                () = tokio::time::sleep(self.config.poll) => {}
            }
        }
    }

    /// Runs one job on a free, ready server.
    pub async fn run(
        &self,
        job: &DispatchJob,
        inputs: &[InputImage],
        progress: mpsc::Sender<Progress>,
        stop: &Flag,
    ) -> Result<Vec<Output>, EngineError> {
        let templates = self
            .templates
            .as_ref()
            .map_err(|e| EngineError::Internal(format!("templates: {e}")))?;
        let pipeline = Pipeline::for_job(job)
            .filter(|_| self.config.serve.contains(&job.model_id))
            .ok_or_else(|| {
                EngineError::Failed(format!(
                    "This GPU origin does not run `{}` ({}); it serves {}.",
                    job.model_id,
                    job.workflow,
                    self.config.serve.join(", ")
                ))
            })?;
        let lease = self.lease().ok_or_else(|| {
            EngineError::Failed(
                "No GPU server was ready to take the job; please submit it again.".to_owned(),
            )
        })?;
        let server = &self.servers[lease.index];
        run::Run {
            server,
            templates,
            pipeline,
            models: &self.config.models,
            samplers: &self.config.samplers,
            job_timeout: self.config.job_timeout,
        }
        .run(job, inputs, progress, stop)
        .await
    }

    /// Takes a ready, free server until the lease is dropped.
    fn lease(&self) -> Option<Lease<'_>> {
        let mut busy = self.lock_busy();
        let index = (0..self.servers.len()).find(|&i| !busy[i] && self.servers[i].state().ready)?;
        busy[index] = true;
        Some(Lease {
            engine: self,
            index,
        })
    }

    fn lock_busy(&self) -> MutexGuard<'_, Vec<bool>> {
        self.busy.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn templates(&self) -> Result<&Templates, &str> {
        self.templates.as_ref().map_err(String::as_str)
    }

    pub(crate) fn serves(&self, model: &str) -> bool {
        self.config.serve.iter().any(|m| m == model)
    }

    pub(crate) fn model_files(&self) -> &ModelFiles {
        &self.config.models
    }

    pub(crate) fn samplers(&self) -> &SamplerSettings {
        &self.config.samplers
    }
}

/// A server taken for one job; dropping it frees the server.
struct Lease<'a> {
    engine: &'a ComfyEngine,
    index: usize,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        self.engine.lock_busy()[self.index] = false;
    }
}
