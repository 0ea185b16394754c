//! Jobs as the API shows them: statuses, progress, the job object, and the one state
//! machine that applies origin events. The Job Durable Object stores a [`JobState`]
//! and changes it only through the methods here, so the rules are tested natively.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::{ApiError, ErrorCode};
use crate::ids::{AccountId, Filename, JobId};
use crate::images::ImageParams;
use crate::money::MicroUsd;
use crate::origin::{EventEnvelope, OriginEvent, OutputMeta};
use crate::time::rfc3339;
use crate::video::VideoParams;

/// A reference the client echoes back to itself; bounded so it fits in every event.
pub const REPLY_REF_LEN_MAX: usize = 1024;
/// Longer URLs than this are not webhook endpoints anyone types.
pub const REPLY_URL_LEN_MAX: usize = 2048;
/// useapi-style `pollForResult`: each poll is 3 s, at most 20 (60 s, under proxy cut-offs).
pub const POLLS_MAX: i64 = 20;
/// A job whose origin goes silent is dispatched once more elsewhere, then failed.
pub const ATTEMPTS_MAX: u32 = 2;

mod options;
pub use options::{ResponseFormat, SubmitOptions};

/// `queued` (waiting for a GPU slot) → `loading_model` → `processing` → `completed`;
/// `failed` and `cancelled` can follow any non-terminal status. `completed`, `failed`
/// and `cancelled` are terminal. A running job whose origin stopped answering goes back
/// to `queued` once (`attempt` 2).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    LoadingModel,
    Processing,
    Completed,
    Failed,
    Cancelled,
}

impl JobStatus {
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobStatus::Completed | JobStatus::Failed | JobStatus::Cancelled
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::LoadingModel => "loading_model",
            JobStatus::Processing => "processing",
            JobStatus::Completed => "completed",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
        }
    }
}

/// Why a job did not complete: the job's `error_code`, and the HTTP error a request
/// that waited for it answers with.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureCode {
    /// The engine failed (500 `generation_failed`).
    GenerationFailed,
    /// Its GPU stopped answering and no other could take over (500 `generation_failed`).
    OriginLost,
    /// It did not end within the job timeout (504).
    GenerationTimeout,
    /// No origin serving its model was up (503).
    NoCapacity,
    /// The queue was full at submission (503).
    QueueFull,
    /// The caller cancelled it (409 `job_cancelled` for a request that waited).
    Cancelled,
}

impl FailureCode {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureCode::GenerationFailed => "generation_failed",
            FailureCode::OriginLost => "origin_lost",
            FailureCode::GenerationTimeout => "generation_timeout",
            FailureCode::NoCapacity => "no_capacity",
            FailureCode::QueueFull => "queue_full",
            FailureCode::Cancelled => "cancelled",
        }
    }

    /// The code an origin reported; anything it has no business reporting (or does not
    /// know) is an engine failure.
    pub fn from_origin(code: &str) -> Self {
        match code {
            "generation_timeout" => FailureCode::GenerationTimeout,
            _ => FailureCode::GenerationFailed,
        }
    }

    /// The failure code of a refusal from the queue (a 503 `queue_full` or
    /// `no_capacity`), if it is one.
    pub fn of_refusal(e: &ApiError) -> Option<Self> {
        match (e.status(), e.code()) {
            (503, ErrorCode::QueueFull) => Some(FailureCode::QueueFull),
            (503, ErrorCode::NoCapacity) => Some(FailureCode::NoCapacity),
            _ => None,
        }
    }

    /// The status and error code a request that waited for the job answers with.
    fn http(self) -> (u16, ErrorCode) {
        match self {
            FailureCode::GenerationTimeout => (504, ErrorCode::GenerationTimeout),
            FailureCode::NoCapacity => (503, ErrorCode::NoCapacity),
            FailureCode::QueueFull => (503, ErrorCode::QueueFull),
            FailureCode::Cancelled => (409, ErrorCode::JobCancelled),
            FailureCode::GenerationFailed | FailureCode::OriginLost => {
                (500, ErrorCode::GenerationFailed)
            }
        }
    }
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobType {
    Image,
    Video,
}

impl JobType {
    pub fn as_str(self) -> &'static str {
        match self {
            JobType::Image => "image",
            JobType::Video => "video",
        }
    }
}

/// What the engine runs, by job type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "job_type", rename_all = "snake_case")]
pub enum JobParams {
    Image(ImageParams),
    Video(VideoParams),
}

impl JobParams {
    pub fn job_type(&self) -> JobType {
        match self {
            JobParams::Image(_) => JobType::Image,
            JobParams::Video(_) => JobType::Video,
        }
    }

    pub fn seed(&self) -> u64 {
        match self {
            JobParams::Image(p) => p.seed,
            JobParams::Video(p) => p.seed,
        }
    }

    pub fn total_steps(&self) -> u32 {
        match self {
            JobParams::Image(p) => p.steps,
            JobParams::Video(p) => p.total_steps(),
        }
    }

    pub fn prompt(&self) -> &str {
        match self {
            JobParams::Image(p) => &p.prompt,
            JobParams::Video(p) => &p.prompt,
        }
    }

    /// What the job is billed by: images, or seconds of video.
    pub fn units(&self) -> f64 {
        match self {
            JobParams::Image(p) => f64::from(p.n),
            JobParams::Video(p) => p.duration_s(),
        }
    }
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub step: u32,
    pub total_steps: u32,
    pub stage: String,
    pub stage_label: String,
}

/// Everything the Job Durable Object knows about one job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobState {
    pub id: JobId,
    pub account_id: AccountId,
    pub test_mode: bool,
    pub model_id: String,
    pub workflow: String,
    pub params: JobParams,
    pub input_files: Vec<Filename>,
    pub status: JobStatus,
    pub progress: Progress,
    pub outputs: Vec<OutputMeta>,
    pub cost: MicroUsd,
    pub reply_url: Option<String>,
    pub reply_ref: Option<String>,
    /// The edge's public origin the job was submitted to, for output URLs in events.
    #[serde(default)]
    pub base_url: String,
    /// Whether `replyUrl` also gets `job.progress` events.
    #[serde(default)]
    pub webhook_progress: bool,
    /// Whether `replyUrl` gets `job.started` (`webhook_events: ["terminal"]` turns it off).
    #[serde(default = "yes")]
    pub webhook_started: bool,
    pub error_code: Option<FailureCode>,
    pub error_message: Option<String>,
    pub queued_at_ms: i64,
    pub started_at_ms: Option<i64>,
    pub completed_at_ms: Option<i64>,
    /// The dispatch attempt whose events are accepted.
    pub attempt: u32,
    /// The highest event sequence number applied in this attempt.
    pub last_seq: u32,
    pub origin_id: Option<String>,
    pub engine: Option<String>,
    pub simulated: Option<bool>,
}

/// Why an event changed nothing. Not an error: origins retry, and the edge answers
/// 200 to a duplicate so the origin stops retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ignored {
    /// From an earlier dispatch attempt.
    StaleAttempt,
    /// Already applied (same or lower sequence number).
    Duplicate,
    /// The job already ended.
    Terminal,
}

/// What applying an event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Progressed,
    /// The job reached a terminal status with this event.
    Ended(JobStatus),
}

/// Everything needed to create a job, gathered by the edge at submission.
pub struct NewJob {
    pub id: JobId,
    pub account_id: AccountId,
    pub test_mode: bool,
    pub model_id: String,
    pub workflow: String,
    pub params: JobParams,
    pub input_files: Vec<Filename>,
    pub cost: MicroUsd,
    pub reply_url: Option<String>,
    pub reply_ref: Option<String>,
    pub base_url: String,
    pub webhook_progress: bool,
    pub webhook_started: bool,
}

fn yes() -> bool {
    true
}

impl JobState {
    pub fn new(job: NewJob, now_ms: i64) -> Self {
        let total_steps = job.params.total_steps();
        Self {
            id: job.id,
            account_id: job.account_id,
            test_mode: job.test_mode,
            model_id: job.model_id,
            workflow: job.workflow,
            params: job.params,
            input_files: job.input_files,
            status: JobStatus::Queued,
            progress: Progress {
                step: 0,
                total_steps,
                stage: "queued".into(),
                stage_label: "Waiting for a GPU".into(),
            },
            outputs: Vec::new(),
            cost: job.cost,
            reply_url: job.reply_url,
            reply_ref: job.reply_ref,
            base_url: job.base_url,
            webhook_progress: job.webhook_progress,
            webhook_started: job.webhook_started,
            error_code: None,
            error_message: None,
            queued_at_ms: now_ms,
            started_at_ms: None,
            completed_at_ms: None,
            attempt: 1,
            last_seq: 0,
            origin_id: None,
            engine: None,
            simulated: None,
        }
    }

    /// Applies one origin event, at most once, in order, never after the end.
    pub fn apply(&mut self, env: &EventEnvelope, now_ms: i64) -> Result<Applied, Ignored> {
        if self.status.is_terminal() {
            return Err(Ignored::Terminal);
        }
        if env.attempt != self.attempt {
            return Err(Ignored::StaleAttempt);
        }
        if env.seq <= self.last_seq {
            return Err(Ignored::Duplicate);
        }
        self.last_seq = env.seq;
        self.origin_id = Some(env.origin_id.clone());
        match &env.event {
            OriginEvent::LoadingModel { .. } => {
                self.start(now_ms);
                self.status = JobStatus::LoadingModel;
                self.progress.stage = "loading_model".into();
                self.progress.stage_label = "Loading the model onto the GPU".into();
                Ok(Applied::Progressed)
            }
            OriginEvent::Processing {
                step,
                total_steps,
                stage,
                stage_label,
            } => {
                self.start(now_ms);
                self.status = JobStatus::Processing;
                self.progress = Progress {
                    step: *step.min(total_steps),
                    total_steps: *total_steps,
                    stage: stage.clone(),
                    stage_label: stage_label.clone(),
                };
                Ok(Applied::Progressed)
            }
            OriginEvent::Completed {
                outputs,
                engine,
                simulated,
            } => {
                self.start(now_ms);
                self.outputs = outputs.clone();
                self.engine = Some(engine.clone());
                self.simulated = Some(*simulated);
                self.progress.step = self.progress.total_steps;
                self.progress.stage = "completed".into();
                self.progress.stage_label = "Done".into();
                self.end(JobStatus::Completed, now_ms);
                Ok(Applied::Ended(JobStatus::Completed))
            }
            // Interrupted on the GPU by someone other than the caller (the GPU host's
            // operator): the job ends `cancelled`, like a cancel, and is refunded.
            OriginEvent::Failed { code, message } if code == FailureCode::Cancelled.as_str() => {
                self.cancel(now_ms);
                self.error_message = Some(message.clone());
                Ok(Applied::Ended(JobStatus::Cancelled))
            }
            OriginEvent::Failed { code, message } => {
                self.fail(FailureCode::from_origin(code), message, now_ms);
                Ok(Applied::Ended(JobStatus::Failed))
            }
        }
    }

    /// Ends the job as failed for a reason found at the edge (dispatch refused, timeout).
    /// Returns false when the job had already ended.
    pub fn fail(&mut self, code: FailureCode, message: &str, now_ms: i64) -> bool {
        if self.status.is_terminal() {
            return false;
        }
        self.error_code = Some(code);
        self.error_message = Some(message.to_owned());
        self.progress.stage = "failed".into();
        self.progress.stage_label = "Failed".into();
        self.end(JobStatus::Failed, now_ms);
        true
    }

    /// Cancels the job unless it already ended. Returns false when it had.
    pub fn cancel(&mut self, now_ms: i64) -> bool {
        if self.status.is_terminal() {
            return false;
        }
        self.error_code = Some(FailureCode::Cancelled);
        self.error_message = Some("The job was cancelled.".to_owned());
        self.progress.stage = "cancelled".into();
        self.progress.stage_label = "Cancelled".into();
        self.end(JobStatus::Cancelled, now_ms);
        true
    }

    /// Whether a job whose origin went silent may be dispatched once more.
    pub fn may_retry(&self) -> bool {
        !self.status.is_terminal() && self.attempt < ATTEMPTS_MAX
    }

    /// Moves the job to its next dispatch attempt after its origin went silent: back to
    /// `queued` with progress reset. Events of the old attempt are ignored from now on.
    pub fn requeue(&mut self) {
        self.attempt += 1;
        self.last_seq = 0;
        self.status = JobStatus::Queued;
        self.origin_id = None;
        self.progress = Progress {
            step: 0,
            total_steps: self.params.total_steps(),
            stage: "queued".into(),
            stage_label: "Waiting for another GPU (the first one stopped answering)".into(),
        };
    }

    fn start(&mut self, now_ms: i64) {
        self.started_at_ms.get_or_insert(now_ms);
    }

    fn end(&mut self, status: JobStatus, now_ms: i64) {
        self.status = status;
        self.completed_at_ms = Some(now_ms);
    }

    pub fn job_type(&self) -> JobType {
        self.params.job_type()
    }

    /// Sets when each output stops being served: `retention_ms` after completion.
    pub fn set_expiry(&mut self, retention_ms: i64) {
        let until = self
            .completed_at_ms
            .unwrap_or(self.queued_at_ms)
            .saturating_add(retention_ms);
        for o in &mut self.outputs {
            o.expires_at_ms = Some(until);
        }
    }

    /// The HTTP error a synchronous request answers with when this job did not complete.
    pub fn error(&self) -> Option<ApiError> {
        match self.status {
            JobStatus::Failed => {
                let (status, code) = self
                    .error_code
                    .unwrap_or(FailureCode::GenerationFailed)
                    .http();
                let msg = self
                    .error_message
                    .as_deref()
                    .unwrap_or("The generation failed.");
                Some(ApiError::new(
                    status,
                    code,
                    format!("{msg} Your credits for this job were refunded."),
                ))
            }
            JobStatus::Cancelled => {
                let (status, code) = FailureCode::Cancelled.http();
                Some(ApiError::new(status, code, "The job was cancelled."))
            }
            _ => None,
        }
    }

    /// The job object of `docs/api.md` ("GET /v1/jobs/{id}"). `base_url` is the edge's public origin, for output URLs;
    /// `queue_position` (1 = next) comes from the dispatcher for queued jobs.
    pub fn to_view(&self, base_url: &str, queue_position: Option<u32>) -> Value {
        let outputs: Vec<Value> = self
            .outputs
            .iter()
            .map(|o| {
                let mut v = json!({
                    "filename": o.filename,
                    "url": format!("{base_url}/outputs/{}", o.filename),
                    "content_type": o.content_type,
                    "width": o.width,
                    "height": o.height,
                    "size_bytes": o.size_bytes,
                });
                if let Some(d) = o.duration_s {
                    v["duration_s"] = json!(d);
                }
                if let Some(a) = o.has_audio {
                    v["has_audio"] = json!(a);
                }
                if let Some(at) = o.expires_at_ms {
                    v["expires_at"] = json!(rfc3339(at));
                }
                v
            })
            .collect();
        let params = match &self.params {
            JobParams::Image(p) => serde_json::to_value(p).unwrap_or(Value::Null),
            JobParams::Video(p) => serde_json::to_value(p).unwrap_or(Value::Null),
        };
        json!({
            "id": self.id,
            "object": "job",
            "job_type": self.job_type(),
            "model_id": self.model_id,
            "workflow_id": self.workflow,
            "status": self.status,
            "progress": self.progress,
            "params": params,
            "input_files": self.input_files,
            "output_files": self.outputs.iter().map(|o| &o.filename).collect::<Vec<_>>(),
            "outputs": outputs,
            "units": match &self.params {
                JobParams::Image(_) => json!(1),
                JobParams::Video(p) => json!((p.duration_s() * 10_000.0).round() / 10_000.0),
            },
            "cost_usd": self.cost.to_usd_json(),
            "seed": self.params.seed(),
            "replyRef": self.reply_ref,
            "error_message": self.error_message,
            "error_code": self.error_code,
            "queue_position": queue_position.filter(|_| self.status == JobStatus::Queued),
            "test_mode": self.test_mode,
            "attempt": self.attempt,
            "metadata": {
                "engine": self.engine,
                "simulated": self.simulated,
                "origin_id": self.origin_id,
                // The same instants as the `*_at` fields, in Unix milliseconds, for
                // clients that measure latency.
                "timings_ms": {
                    "queued_at": self.queued_at_ms,
                    "started_at": self.started_at_ms,
                    "completed_at": self.completed_at_ms,
                },
            },
            "queued_at": rfc3339(self.queued_at_ms),
            "started_at": self.started_at_ms.map(rfc3339),
            "completed_at": self.completed_at_ms.map(rfc3339),
        })
    }
}

#[cfg(test)]
mod tests;
