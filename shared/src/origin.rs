//! The edge ↔ origin protocol. Every request in either direction is signed
//! ([`crate::signing`]); these are the bodies and paths.
//!
//! - edge → origin `POST` [`DISPATCH_PATH`] with a [`DispatchJob`]: 202 accepted,
//!   503 when every slot is busy, 409 for a job id (and attempt) already seen.
//! - origin → edge `PUT` [`output_path`] with the file's bytes, before `completed`.
//! - edge → origin `DELETE` [`cancel_path`]: stop a cancelled job.
//! - origin → edge `POST` [`HEARTBEAT_PATH`] with a [`Heartbeat`] every few seconds.
//! - origin → edge `POST` [`events_path`] with an [`EventEnvelope`], numbered by `seq`
//!   from 1 per attempt, so the edge applies each at most once.

use serde::{Deserialize, Serialize};

use crate::ids::{Filename, JobId};
use crate::jobs::JobParams;

pub const DISPATCH_PATH: &str = "/v1/jobs";

pub fn events_path(job: &JobId) -> String {
    format!("/internal/origin/jobs/{job}/events")
}

pub fn output_path(job: &JobId, file: &Filename) -> String {
    format!("/internal/origin/jobs/{job}/outputs/{file}")
}

/// Origin → edge `GET`, signed like the others (empty body): one of the job's
/// `input_files`, as stored (an upload or an earlier output of the same account). The
/// edge answers only for files the job names; never a public URL.
pub fn input_path(job: &JobId, file: &Filename) -> String {
    format!("/internal/origin/jobs/{job}/inputs/{file}")
}

/// A job as the edge hands it to an origin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DispatchJob {
    pub job_id: JobId,
    /// Starts at 1; a job re-dispatched after losing its origin gets the next number,
    /// and events from an earlier attempt are ignored.
    pub attempt: u32,
    pub model_id: String,
    /// `model:mode`, e.g. `flux2-dev:txt2img`.
    pub workflow: String,
    pub params: JobParams,
    pub input_files: Vec<Filename>,
    /// Test-mode keys always run on the sim engine.
    pub test_mode: bool,
}

/// One event from an origin about one attempt of one job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventEnvelope {
    pub origin_id: String,
    pub attempt: u32,
    pub seq: u32,
    pub event: OriginEvent,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OriginEvent {
    LoadingModel {
        model_id: String,
    },
    Processing {
        step: u32,
        total_steps: u32,
        stage: String,
        stage_label: String,
    },
    Completed {
        outputs: Vec<OutputMeta>,
        engine: String,
        simulated: bool,
    },
    /// `code` is `generation_failed` (or `generation_timeout`); `cancelled` when the
    /// job was interrupted on the GPU by someone other than the edge (the GPU host's
    /// operator): the job then ends `cancelled`.
    Failed {
        code: String,
        message: String,
    },
}

/// A file the origin produced and uploaded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputMeta {
    pub filename: Filename,
    pub content_type: String,
    pub width: u32,
    pub height: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<f64>,
    /// Videos: whether the MP4 has a sound track (LTX-2.3 makes sound with the picture).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_audio: Option<bool>,
    pub size_bytes: u64,
    /// When the edge stops serving it (set by the edge when the job completes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_ms: Option<i64>,
}

/// `GET /health` of an origin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OriginHealth {
    /// `ok`, or `unhealthy` when the engine cannot run jobs (`problem` says why).
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    pub origin_id: String,
    pub engine: String,
    pub simulated: bool,
    pub slots: u32,
    pub busy: u32,
    pub models: Vec<String>,
    #[serde(default)]
    pub resident_models: Vec<String>,
    #[serde(default)]
    pub vram_free_gb: Option<f64>,
    /// The `comfyui` engine: each ComfyUI server, in configuration order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comfyui: Option<Vec<ComfyServerHealth>>,
}

/// One ComfyUI server of a `comfyui` origin, as its `/health` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComfyServerHealth {
    pub url: String,
    /// `GET /system_stats` answered at the last check.
    pub reachable: bool,
    /// Reachable, the pinned version, every template fits, every model file present.
    pub ready: bool,
    /// Running a job now.
    pub busy: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comfyui_version: Option<String>,
    /// The GPU, as ComfyUI names it (`cuda:0 NVIDIA H100 80GB HBM3 : cudaMallocAsync`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vram_total_gb: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vram_free_gb: Option<f64>,
    /// Every model file the served models need, and whether the server lists it.
    #[serde(default)]
    pub model_files: Vec<ModelFileHealth>,
    /// When this was last read, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelFileHealth {
    /// The ComfyUI model folder (`diffusion_models`, `checkpoints`, …).
    pub folder: String,
    pub file: String,
    pub present: bool,
}

/// Edge → origin `DELETE`: stop this job now (it was cancelled). 200 when it was
/// running there, 404 when the origin does not have it.
pub fn cancel_path(job: &JobId) -> String {
    format!("{DISPATCH_PATH}/{job}")
}

/// Origin → edge `POST`, every few seconds: the origin is alive, this is what it has.
/// The edge's dispatcher registers the origin from it and renews the leases of the
/// jobs it lists.
pub const HEARTBEAT_PATH: &str = "/internal/origin/heartbeat";

/// The body of a heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub origin_id: String,
    /// Where the edge reaches this origin (`http(s)://host:port`, no trailing slash).
    pub url: String,
    pub engine: String,
    pub simulated: bool,
    pub slots: u32,
    pub busy: u32,
    /// Models this origin can run.
    pub models: Vec<String>,
    /// Models loaded on a GPU right now (no `loading_model` wait for these).
    #[serde(default)]
    pub resident_models: Vec<String>,
    /// Every job attempt the origin is working on.
    #[serde(default)]
    pub running: Vec<RunningJob>,
    #[serde(default)]
    pub vram_free_gb: Option<f64>,
    /// `false` when the origin cannot run jobs (its engine's servers are unreachable,
    /// the wrong version, or missing model files): the edge sends it nothing until a
    /// heartbeat says `true` again. Older origins do not send it: healthy.
    #[serde(default = "healthy")]
    pub healthy: bool,
    /// Why it is unhealthy, for operators (`GET /health` of the edge).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

fn healthy() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunningJob {
    pub job_id: JobId,
    pub attempt: u32,
}

/// The edge's answer to an event. `stop` tells the origin to abandon this attempt:
/// the job was cancelled, already ended, or moved to another attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventAck {
    pub applied: bool,
    #[serde(default)]
    pub stop: bool,
}
