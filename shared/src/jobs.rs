//! Jobs as the API shows them: statuses, progress, the job object, and the one state
//! machine that applies origin events. The Job Durable Object stores a [`JobState`]
//! and changes it only through the methods here, so the rules are tested natively.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::fields::Fields;
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
            JobParams::Image(_) => 1.0,
            JobParams::Video(p) => p.duration_s(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseFormat {
    Url,
    B64Json,
}

/// Submission options shared by the generation endpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct SubmitOptions {
    pub reply_url: Option<String>,
    /// The field the URL came in (`replyUrl` or `webhook_url`), for error messages.
    pub reply_url_param: String,
    pub reply_ref: Option<String>,
    pub response_format: ResponseFormat,
    /// `pollForResult`: wait up to this many 3 s polls before answering.
    pub poll_for_result: Option<u32>,
    /// `webhook_events`: which optional webhook events `replyUrl` gets.
    pub webhook_events: crate::webhooks::EventFilter,
}

impl SubmitOptions {
    pub fn parse(f: &mut Fields, allow_b64: bool) -> Result<Self, ApiError> {
        let (reply_url, reply_url_param) = match f.string_alias(&["replyUrl", "webhook_url"])? {
            None => (None, "replyUrl".to_owned()),
            Some((name, url)) => (Some(check_reply_url(&name, url)?), name),
        };
        let reply_ref = f.string("replyRef")?;
        if let Some(r) = &reply_ref {
            if r.chars().count() > REPLY_REF_LEN_MAX {
                return Err(ApiError::invalid_param(
                    "replyRef",
                    "invalid_value",
                    format!("`replyRef` must be at most {REPLY_REF_LEN_MAX} characters."),
                ));
            }
        }
        let response_format = match f.string("response_format")?.as_deref() {
            None | Some("url") => ResponseFormat::Url,
            Some("b64_json") if allow_b64 => ResponseFormat::B64Json,
            Some(other) => {
                return Err(ApiError::invalid_param(
                    "response_format",
                    "invalid_value",
                    format!("`response_format` must be \"url\" or \"b64_json\" (got {other:?})."),
                ))
            }
        };
        let poll_for_result = match f.int("pollForResult")? {
            None => None,
            Some(n) if (1..=POLLS_MAX).contains(&n) => Some(n as u32),
            Some(n) => {
                return Err(ApiError::invalid_param(
                    "pollForResult",
                    "out_of_range",
                    format!("`pollForResult` must be between 1 and {POLLS_MAX} (got {n})."),
                ))
            }
        };
        let webhook_events = match f.string_list("webhook_events")? {
            None => crate::webhooks::EventFilter::default(),
            Some(values) => crate::webhooks::parse_event_filter(&values)
                .map_err(|m| ApiError::invalid_param("webhook_events", "invalid_value", m))?,
        };
        Ok(Self {
            reply_url,
            reply_url_param,
            reply_ref,
            response_format,
            poll_for_result,
            webhook_events,
        })
    }
}

fn check_reply_url(param: &str, url: String) -> Result<String, ApiError> {
    let lower = url.to_ascii_lowercase();
    let scheme_len = ["https://", "http://"]
        .iter()
        .find(|p| lower.starts_with(*p))
        .map(|p| p.len());
    let rest = scheme_len.map(|n| &url[n..]);
    let host_ok = rest
        .map(|r| r.split(['/', '?', '#']).next().unwrap_or(""))
        .is_some_and(|authority| !authority.is_empty() && !authority.contains(char::is_whitespace));
    if !host_ok || url.len() > REPLY_URL_LEN_MAX {
        return Err(ApiError::invalid_param(
            param,
            "invalid_value",
            format!("`{param}` must be an http(s) URL of at most {REPLY_URL_LEN_MAX} characters."),
        ));
    }
    Ok(url)
}

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
    pub error_code: Option<String>,
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
            OriginEvent::Failed { code, message } => {
                self.fail(code, message, now_ms);
                Ok(Applied::Ended(JobStatus::Failed))
            }
        }
    }

    /// Ends the job as failed for a reason found at the edge (dispatch refused, timeout).
    /// Returns false when the job had already ended.
    pub fn fail(&mut self, code: &str, message: &str, now_ms: i64) -> bool {
        if self.status.is_terminal() {
            return false;
        }
        self.error_code = Some(code.to_owned());
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
        self.error_code = Some("cancelled".to_owned());
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

    /// The HTTP error a synchronous request answers with when this job did not complete.
    pub fn error(&self) -> Option<ApiError> {
        match self.status {
            JobStatus::Failed => {
                let (status, code) = match self.error_code.as_deref() {
                    Some("generation_timeout") => (504, "generation_timeout"),
                    Some("no_capacity") => (503, "no_capacity"),
                    Some("queue_full") => (503, "queue_full"),
                    _ => (500, "generation_failed"),
                };
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
            JobStatus::Cancelled => Some(ApiError::new(
                409,
                "job_cancelled",
                "The job was cancelled.",
            )),
            _ => None,
        }
    }

    /// The job object of API.md. `base_url` is the edge's public origin, for output URLs;
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
mod tests {
    use super::*;

    fn job() -> JobState {
        let id = JobId::generate(1_000, [1; 10]);
        JobState::new(
            NewJob {
                id,
                account_id: AccountId::generate([2; 10]),
                test_mode: false,
                model_id: "flux2-dev".into(),
                workflow: "flux2-dev:txt2img".into(),
                params: JobParams::Image(ImageParams {
                    prompt: "p".into(),
                    width: 512,
                    height: 512,
                    steps: 4,
                    cfg: 4.0,
                    seed: 9,
                }),
                input_files: vec![],
                cost: MicroUsd::from_cents(2),
                reply_url: None,
                reply_ref: Some("ref-1".into()),
                base_url: "http://edge".into(),
                webhook_progress: false,
                webhook_started: true,
            },
            1_000,
        )
    }

    fn ev(attempt: u32, seq: u32, event: OriginEvent) -> EventEnvelope {
        EventEnvelope {
            origin_id: "o1".into(),
            attempt,
            seq,
            event,
        }
    }

    fn processing(step: u32) -> OriginEvent {
        OriginEvent::Processing {
            step,
            total_steps: 4,
            stage: "sampling".into(),
            stage_label: "Sampling".into(),
        }
    }

    fn completed() -> OriginEvent {
        OriginEvent::Completed {
            outputs: vec![],
            engine: "sim".into(),
            simulated: true,
        }
    }

    #[test]
    fn walks_the_statuses_in_order() {
        let mut j = job();
        assert_eq!(j.status, JobStatus::Queued);
        j.apply(
            &ev(
                1,
                1,
                OriginEvent::LoadingModel {
                    model_id: "flux2-dev".into(),
                },
            ),
            2_000,
        )
        .unwrap();
        assert_eq!(
            (j.status, j.started_at_ms),
            (JobStatus::LoadingModel, Some(2_000))
        );
        j.apply(&ev(1, 2, processing(2)), 3_000).unwrap();
        assert_eq!((j.status, j.progress.step), (JobStatus::Processing, 2));
        assert_eq!(
            j.apply(&ev(1, 3, completed()), 4_000),
            Ok(Applied::Ended(JobStatus::Completed))
        );
        assert_eq!(
            (j.progress.step, j.completed_at_ms, j.started_at_ms),
            (4, Some(4_000), Some(2_000))
        );
        let view = j.to_view("http://edge", Some(3));
        assert_eq!(view["queue_position"], Value::Null);
        assert_eq!(view["status"], "completed");
        assert_eq!(view["replyRef"], "ref-1");
        assert_eq!(view["cost_usd"], json!(0.02));
        assert_eq!(view["queued_at"], "1970-01-01T00:00:01Z");
    }

    #[test]
    fn events_apply_at_most_once_and_never_after_the_end() {
        let mut j = job();
        j.apply(&ev(1, 2, processing(1)), 1).unwrap();
        assert_eq!(
            j.apply(&ev(1, 2, processing(3)), 2),
            Err(Ignored::Duplicate)
        );
        assert_eq!(
            j.apply(&ev(1, 1, processing(3)), 2),
            Err(Ignored::Duplicate)
        );
        assert_eq!(
            j.apply(&ev(2, 9, processing(3)), 2),
            Err(Ignored::StaleAttempt)
        );
        assert_eq!(j.progress.step, 1);
        j.apply(
            &ev(
                1,
                3,
                OriginEvent::Failed {
                    code: "oom".into(),
                    message: "out of memory".into(),
                },
            ),
            3,
        )
        .unwrap();
        assert_eq!(j.apply(&ev(1, 4, completed()), 4), Err(Ignored::Terminal));
        assert!(!j.fail("x", "y", 5));
        assert_eq!(j.error().unwrap().status(), 500);
    }

    #[test]
    fn cancel_and_requeue() {
        let mut j = job();
        assert_eq!(j.to_view("http://e", Some(2))["queue_position"], 2);
        j.apply(&ev(1, 1, processing(2)), 5).unwrap();
        assert!(j.may_retry());
        j.requeue();
        assert_eq!(
            (j.status, j.attempt, j.progress.step),
            (JobStatus::Queued, 2, 0)
        );
        // The lost attempt's events no longer count; the new one's do.
        assert_eq!(
            j.apply(&ev(1, 2, processing(3)), 6),
            Err(Ignored::StaleAttempt)
        );
        j.apply(&ev(2, 1, processing(1)), 7).unwrap();
        assert!(!j.may_retry());
        assert!(j.cancel(8));
        assert_eq!(j.status, JobStatus::Cancelled);
        assert_eq!(j.error().unwrap().status(), 409);
        assert!(!j.cancel(9));
        assert_eq!(j.apply(&ev(2, 2, completed()), 10), Err(Ignored::Terminal));
    }

    #[test]
    fn failures_map_to_statuses() {
        for (code, status) in [
            ("generation_timeout", 504),
            ("no_capacity", 503),
            ("origin_lost", 500),
            ("engine_error", 500),
        ] {
            let mut j = job();
            assert!(j.fail(code, "m", 1));
            assert_eq!(j.error().unwrap().status(), status, "{code}");
            assert!(j.error().unwrap().message().contains("refunded"));
        }
        assert_eq!(job().error(), None);
    }
}
