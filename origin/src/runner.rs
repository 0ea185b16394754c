//! Runs one admitted job (`docs/architecture.md`, "3. Run"): the engine's progress
//! becomes signed events, in order, numbered by `seq` from 1; outputs are uploaded; the
//! job's GPU slot is released; then exactly one terminal event, `completed` or `failed`,
//! ends the job.
//! The slot goes back *before* the terminal event because the edge dispatches its next
//! job here as soon as it has applied that event, and must not get a 503 for it.
//!
//! Event delivery is sequential, so the edge sees events in `seq` order. A progress
//! event that cannot be delivered is skipped (the next one supersedes it). If an upload
//! or the terminal event cannot be delivered, the job stops without a result and the
//! edge fails it with a refund when its hard timeout passes.
//!
//! A job is abandoned — no further event, no upload, slot released at once — when its
//! stop flag is set: by the edge's `DELETE` (a cancel), by a newer attempt of the same
//! job being dispatched here, or by the edge answering an event with `stop: true`.

use std::sync::Arc;

use bytes::Bytes;
use kiln_shared::origin::{DispatchJob, EventAck, EventEnvelope, OriginEvent};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{Instrument, Span};

use crate::edge_client::{DeliveryError, EdgeClient, RetryPolicy};
use crate::engine::{Engine, EngineError, Output, Progress};
use crate::flag::Flag;
use crate::running::JobSlot;

/// Progress the engine may get ahead of delivery before it waits for the edge.
pub const PROGRESS_QUEUE_LEN_MAX: usize = 64;

/// The code of every engine failure, as the API documents it.
pub const FAILED_CODE: &str = "generation_failed";
/// The code of a job interrupted on the GPU by its operator: it ends `cancelled`.
pub const CANCELLED_CODE: &str = "cancelled";
/// Shown when the engine broke in a way the client should not see the details of.
pub const INTERNAL_FAILURE_MESSAGE: &str = "The engine failed while generating.";

/// Everything a job needs while it runs.
#[derive(Debug)]
pub struct Runner {
    pub origin_id: String,
    pub engine: Engine,
    pub edge: EdgeClient,
}

impl Runner {
    /// Runs `job` to its end, holding `slot` until the work is done and listed until
    /// the terminal event is delivered or given up on.
    pub async fn run(self: Arc<Self>, job: DispatchJob, slot: JobSlot) {
        let span = tracing::info_span!("job", job_id = %job.job_id, attempt = job.attempt);
        self.run_inner(job, slot).instrument(span).await;
    }

    async fn run_inner(self: Arc<Self>, job: DispatchJob, mut slot: JobSlot) {
        tracing::info!(workflow = %job.workflow, "job started");
        let stop = slot.stop().clone();
        let mut reporter = Reporter {
            runner: &self,
            job: &job,
            seq: 0,
            stop: &stop,
        };
        let event = tokio::select! {
            biased;
            () = stop.wait() => None,
            event = self.work(&job, &mut reporter, &stop) => event,
        };
        // Whatever happens next, the GPU is free now.
        slot.release();
        let Some(event) = event else {
            if stop.is_set() {
                tracing::info!("job stopped; no result is reported");
            }
            return;
        };
        let outcome = match &event {
            OriginEvent::Completed { .. } => "completed",
            _ => "failed",
        };
        let delivered = tokio::select! {
            biased;
            () = stop.wait() => {
                tracing::info!(outcome, "job stopped before its result was sent");
                return;
            }
            delivered = reporter.send(event, RetryPolicy::ESSENTIAL) => delivered,
        };
        match delivered {
            Ok(_) => tracing::info!(outcome, "job ended"),
            Err(e) => {
                tracing::error!(error = %e, outcome, "could not deliver the job's result")
            }
        }
    }

    /// Runs the engine, forwards its progress and uploads its outputs. Returns the
    /// terminal event to send, or `None` when there is none to send (an upload failed,
    /// or the job was stopped).
    async fn work(
        self: &Arc<Self>,
        job: &DispatchJob,
        reporter: &mut Reporter<'_>,
        stop: &Flag,
    ) -> Option<OriginEvent> {
        // Inputs first: a job whose inputs cannot be had fails before the engine starts.
        let inputs = match crate::inputs::prepare(&self.edge, job).await {
            Ok(inputs) => inputs,
            Err(e) => return failure(e),
        };
        let (tx, mut rx) = mpsc::channel(PROGRESS_QUEUE_LEN_MAX);
        let forward = async {
            while let Some(progress) = rx.recv().await {
                reporter.progress(progress).await;
            }
        };
        // The engine runs as its own task so that a panic in it still ends the job with
        // `failed` rather than leaving the edge to wait for its lease to run out.
        let mut engine = EngineTask({
            let (runner, job, stop) = (Arc::clone(self), job.clone(), stop.clone());
            tokio::spawn(
                async move { runner.engine.run(&job, &inputs, tx, &stop).await }
                    .instrument(Span::current()),
            )
        });
        let (joined, ()) = tokio::join!(&mut engine.0, forward);
        // The edge may have said stop in answer to the last progress event.
        if stop.is_set() {
            return None;
        }
        let result =
            joined.unwrap_or_else(|e| Err(EngineError::Internal(format!("engine task: {e}"))));

        match result {
            Ok(outputs) => self.upload(job, outputs).await,
            Err(e) => failure(e),
        }
    }

    /// Uploads every output; returns `completed`, or `None` if an upload failed.
    async fn upload(&self, job: &DispatchJob, outputs: Vec<Output>) -> Option<OriginEvent> {
        let mut metas = Vec::with_capacity(outputs.len());
        for output in outputs {
            let upload = self
                .edge
                .upload_output(
                    &job.job_id,
                    &output.meta.filename,
                    Bytes::from(output.bytes),
                )
                .await;
            if let Err(e) = upload {
                tracing::error!(error = %e, "output upload failed; stopping the job");
                return None;
            }
            metas.push(output.meta);
        }
        let (engine, simulated) = self.engine.runs(job);
        Some(OriginEvent::Completed {
            outputs: metas,
            engine: engine.to_owned(),
            simulated,
        })
    }
}

/// The terminal event for an engine error, or `None` for a stop.
fn failure(e: EngineError) -> Option<OriginEvent> {
    match e {
        EngineError::Failed(message) => Some(OriginEvent::Failed {
            code: FAILED_CODE.to_owned(),
            message,
        }),
        e @ EngineError::Internal(_) => {
            tracing::error!(error = %e, "engine error");
            Some(OriginEvent::Failed {
                code: FAILED_CODE.to_owned(),
                message: INTERNAL_FAILURE_MESSAGE.to_owned(),
            })
        }
        EngineError::Interrupted(message) => Some(OriginEvent::Failed {
            code: CANCELLED_CODE.to_owned(),
            message,
        }),
        EngineError::Stopped => None,
    }
}

/// The engine's task, aborted if the job is abandoned while it runs.
struct EngineTask(JoinHandle<Result<Vec<Output>, EngineError>>);

impl Drop for EngineTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Numbers and sends the events of one job attempt.
struct Reporter<'a> {
    runner: &'a Runner,
    job: &'a DispatchJob,
    /// The last sequence number used; the edge applies each number at most once.
    seq: u32,
    /// Set when the edge answers an event with `stop`.
    stop: &'a Flag,
}

impl Reporter<'_> {
    async fn progress(&mut self, progress: Progress) {
        // Progress can be queued behind the event whose answer said stop.
        if self.stop.is_set() {
            return;
        }
        let event = match progress {
            Progress::LoadingModel => OriginEvent::LoadingModel {
                model_id: self.job.model_id.clone(),
            },
            Progress::Processing {
                step,
                total_steps,
                stage,
                stage_label,
            } => OriginEvent::Processing {
                step,
                total_steps,
                stage: stage.to_owned(),
                stage_label,
            },
        };
        match self.send(event, RetryPolicy::PROGRESS).await {
            Ok(Some(ack)) if ack.stop => {
                tracing::info!("the edge said stop (job cancelled, ended or moved on)");
                self.stop.set();
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "progress event dropped"),
        }
    }

    async fn send(
        &mut self,
        event: OriginEvent,
        policy: RetryPolicy,
    ) -> Result<Option<EventAck>, DeliveryError> {
        self.seq += 1;
        let envelope = EventEnvelope {
            origin_id: self.runner.origin_id.clone(),
            attempt: self.job.attempt,
            seq: self.seq,
            event,
        };
        self.runner
            .edge
            .send_event(&self.job.job_id, &envelope, policy)
            .await
    }
}
