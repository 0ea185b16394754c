//! The Dispatcher DO's messages: each route declared once, with its typed request and
//! reply.

use kiln_shared::ids::{AccountId, JobId};
use kiln_shared::origin::{DispatchJob, Heartbeat};
use kiln_shared::queue::OriginStatus;
use serde::{Deserialize, Serialize};

use super::DispatcherDo;
use crate::message;

/// Queue a job. Answers its place (1 = next); 503 `queue_full` or `no_capacity` when
/// it cannot be queued.
#[derive(Serialize, Deserialize)]
pub struct Enqueue {
    pub account_id: AccountId,
    pub job: DispatchJob,
}

#[derive(Serialize, Deserialize)]
pub struct Position {
    pub position: Option<u32>,
}

/// A job's place in the queue; `None` unless it is queued.
#[derive(Serialize, Deserialize)]
pub struct GetPosition {
    pub job_id: JobId,
}

/// A job ended (any way): its slot is free.
#[derive(Serialize, Deserialize)]
pub struct Finish {
    pub job_id: JobId,
    /// Run time of a completed job, for estimates.
    pub run_ms: Option<i64>,
    pub workflow: String,
}

#[derive(Serialize, Deserialize)]
pub struct Ack;

/// Take a job out of the queue, or off its origin (which is told to stop).
#[derive(Serialize, Deserialize)]
pub struct Withdraw {
    pub job_id: JobId,
}

/// Where the withdrawn job was.
#[derive(Serialize, Deserialize)]
#[serde(tag = "was", rename_all = "snake_case")]
pub enum Withdrawn {
    None,
    Queued,
    Running { origin_stopped: bool },
}

/// The account's queued and running jobs, oldest first.
#[derive(Serialize, Deserialize)]
pub struct ListActive {
    pub account_id: AccountId,
}

#[derive(Serialize, Deserialize)]
pub struct Active {
    pub job_ids: Vec<JobId>,
}

/// The queue as `GET /v1/queue/status` shows it.
#[derive(Serialize, Deserialize)]
pub struct GetQueueStatus;

#[derive(Serialize, Deserialize)]
pub struct QueueStatus {
    /// `idle` or `busy`.
    pub status: String,
    pub queue_running: u64,
    pub queue_pending: u64,
    pub estimated_wait_seconds: f64,
    pub slots: u64,
}

/// The mean run time of a workflow's recent completed jobs.
#[derive(Serialize, Deserialize)]
pub struct GetEstimate {
    pub workflow: String,
}

#[derive(Serialize, Deserialize)]
pub struct Estimate {
    pub avg_seconds: Option<f64>,
    pub sample_count: u64,
}

/// The registry of origins.
#[derive(Serialize, Deserialize)]
pub struct ListOrigins;

#[derive(Serialize, Deserialize)]
pub struct Origins {
    pub origins: Vec<OriginView>,
}

/// One origin as `/health` and `/v1/models` show it.
#[derive(Serialize, Deserialize, Clone)]
pub struct OriginView {
    pub id: String,
    pub url: String,
    pub status: OriginStatus,
    pub engine: Option<String>,
    pub simulated: Option<bool>,
    pub slots: u32,
    pub busy: u32,
    pub models: Vec<String>,
    pub resident_models: Vec<String>,
    pub vram_free_gb: Option<f64>,
    /// Why the origin said it cannot run jobs, while it says so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    pub last_heartbeat_at: Option<String>,
}

message!(DispatcherDo, Enqueue => "/enqueue", Position);
message!(DispatcherDo, GetPosition => "/position", Position);
message!(DispatcherDo, Finish => "/finish", Ack);
message!(DispatcherDo, Withdraw => "/withdraw", Withdrawn);
message!(DispatcherDo, Heartbeat => "/heartbeat", Ack);
message!(DispatcherDo, ListActive => "/active", Active);
message!(DispatcherDo, GetQueueStatus => "/status", QueueStatus);
message!(DispatcherDo, GetEstimate => "/estimate", Estimate);
message!(DispatcherDo, ListOrigins => "/origins", Origins);
