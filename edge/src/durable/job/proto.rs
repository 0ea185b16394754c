//! The Job DO's messages: each route declared once, with its typed request and reply.

use kiln_shared::jobs::JobState;
use kiln_shared::origin::{DispatchJob, EventAck, EventEnvelope};
use serde::{Deserialize, Serialize};

use super::outbox::{AttemptRecord, Deliveries};
use super::JobDo;
use crate::message;

/// A job as the Job DO answers it; `queue_position` (1 = next) is set while the job
/// waits in the queue and the caller asked for it.
#[derive(Serialize, Deserialize)]
pub struct JobEnvelope {
    pub job: JobState,
    pub queue_position: Option<u32>,
}

/// Store a new job (held and priced) and queue it with the Dispatcher. A repeat
/// answers the stored job.
#[derive(Serialize, Deserialize)]
pub struct Create {
    pub job: JobState,
}

/// The job now; with its place in the queue when `with_position`.
#[derive(Serialize, Deserialize)]
pub struct GetJob {
    pub with_position: bool,
}

/// Answers when the job ends or `timeout_ms` passes, whichever is first.
#[derive(Serialize, Deserialize)]
pub struct Wait {
    pub timeout_ms: u64,
}

/// The job's event stream: the current state first, then every change (answered with
/// the stream itself: `Client::open`).
#[derive(Serialize, Deserialize)]
pub struct Subscribe;

/// Cancel the job: 409 `job_ended` when it already ended.
#[derive(Serialize, Deserialize)]
pub struct Cancel;

/// From the Dispatcher: the job cannot run where it was (its origin went silent, or
/// no origin serves it).
#[derive(Serialize, Deserialize)]
pub struct Lost {
    pub attempt: u32,
    pub origin_id: String,
    /// Whether another live origin could take the job.
    pub can_retry: bool,
    /// The job never left the queue: no origin that serves its model has been up for a
    /// whole lease. It fails with 503 `no_capacity` instead of `origin_lost`.
    pub no_origin: bool,
}

#[derive(Serialize, Deserialize)]
pub struct LostAnswer {
    /// The job's next attempt, to queue again; `None` when it ended instead.
    pub requeue: Option<DispatchJob>,
}

/// The job's webhook events and every delivery attempt.
#[derive(Serialize, Deserialize)]
pub struct ListDeliveries;

/// Re-send the terminal event now.
#[derive(Serialize, Deserialize)]
pub struct ReplayWebhook;

message!(JobDo, Create => "/create", JobEnvelope);
message!(JobDo, GetJob => "/get", JobEnvelope);
message!(JobDo, Wait => "/wait", JobEnvelope);
message!(JobDo, Subscribe => "/subscribe", ());
message!(JobDo, EventEnvelope => "/event", EventAck);
message!(JobDo, Cancel => "/cancel", JobEnvelope);
message!(JobDo, Lost => "/lost", LostAnswer);
message!(JobDo, ListDeliveries => "/deliveries", Deliveries);
message!(JobDo, ReplayWebhook => "/webhook/replay", AttemptRecord);
