//! The edge ↔ origin protocol. Every request in either direction is signed
//! ([`crate::signing`]); these are the bodies and paths.
//!
//! - edge → origin `POST` [`DISPATCH_PATH`] with a [`DispatchJob`]: 202 accepted,
//!   503 when every slot is busy, 409 for a job id (and attempt) already seen.
//! - origin → edge `PUT` [`output_path`] with the file's bytes, before `completed`.
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
    pub size_bytes: u64,
}

/// `GET /health` of an origin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OriginHealth {
    pub status: String,
    pub origin_id: String,
    pub engine: String,
    pub simulated: bool,
    pub slots: u32,
    pub busy: u32,
    pub models: Vec<String>,
    #[serde(default)]
    pub vram_free_gb: Option<f64>,
}
