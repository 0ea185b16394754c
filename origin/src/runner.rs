//! Runs one admitted job (DESIGN.md flow 3): the engine's progress becomes signed
//! events, in order, numbered by `seq` from 1; outputs are uploaded; then exactly one
//! terminal event, `completed` or `failed`, ends the job.
//!
//! Event delivery is sequential, so the edge sees events in `seq` order. A progress
//! event that cannot be delivered is skipped (the next one supersedes it). If an upload
//! or the terminal event cannot be delivered, the job stops without a result and the
//! edge fails it with a refund when its hard timeout passes.

use std::sync::Arc;

use bytes::Bytes;
use kiln_shared::origin::{DispatchJob, EventEnvelope, OriginEvent};
use tokio::sync::mpsc;
use tracing::{Instrument, Span};

use crate::edge_client::{EdgeClient, RetryPolicy};
use crate::engine::{Engine, EngineError, Progress};

/// Progress the engine may get ahead of delivery before it waits for the edge.
pub const PROGRESS_QUEUE_LEN_MAX: usize = 64;

pub const STAGE_SAMPLING: &str = "sampling";
pub const STAGE_SAMPLING_LABEL: &str = "Sampling";
/// The code of every engine failure, as the API documents it.
pub const FAILED_CODE: &str = "generation_failed";
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
    /// Runs `job` to its end. Returns once the terminal event was delivered or given up
    /// on, so the caller can free the slot then.
    pub async fn run(self: Arc<Self>, job: DispatchJob) {
        let span = tracing::info_span!("job", job_id = %job.job_id, attempt = job.attempt);
        self.run_inner(job).instrument(span).await;
    }

    async fn run_inner(self: Arc<Self>, job: DispatchJob) {
        tracing::info!(workflow = %job.workflow, "job started");
        let mut reporter = Reporter {
            runner: &self,
            job: &job,
            seq: 0,
        };
        let (tx, mut rx) = mpsc::channel(PROGRESS_QUEUE_LEN_MAX);
        let forward = async {
            while let Some(progress) = rx.recv().await {
                reporter.progress(progress).await;
            }
        };
        // The engine runs as its own task so that a panic in it still ends the job with
        // `failed` rather than leaving the edge to wait for its lease to run out.
        let engine = {
            let runner = Arc::clone(&self);
            let job = job.clone();
            tokio::spawn(
                async move { runner.engine.run(&job, tx).await }.instrument(Span::current()),
            )
        };
        let (joined, ()) = tokio::join!(engine, forward);
        let result =
            joined.unwrap_or_else(|e| Err(EngineError::Internal(format!("engine task: {e}"))));

        let event = match result {
            Ok(outputs) => {
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
                        return;
                    }
                    metas.push(output.meta);
                }
                OriginEvent::Completed {
                    outputs: metas,
                    engine: self.engine.name().to_owned(),
                    simulated: self.engine.simulated(),
                }
            }
            Err(EngineError::Failed(message)) => OriginEvent::Failed {
                code: FAILED_CODE.to_owned(),
                message,
            },
            Err(e @ EngineError::Internal(_)) => {
                tracing::error!(error = %e, "engine error");
                OriginEvent::Failed {
                    code: FAILED_CODE.to_owned(),
                    message: INTERNAL_FAILURE_MESSAGE.to_owned(),
                }
            }
        };
        let outcome = match &event {
            OriginEvent::Completed { .. } => "completed",
            _ => "failed",
        };
        match reporter.send(event, RetryPolicy::ESSENTIAL).await {
            Ok(()) => tracing::info!(outcome, "job ended"),
            Err(e) => {
                tracing::error!(error = %e, outcome, "could not deliver the job's result")
            }
        }
    }
}

/// Numbers and sends the events of one job attempt.
struct Reporter<'a> {
    runner: &'a Runner,
    job: &'a DispatchJob,
    /// The last sequence number used; the edge applies each number at most once.
    seq: u32,
}

impl Reporter<'_> {
    async fn progress(&mut self, progress: Progress) {
        let event = match progress {
            Progress::LoadingModel => OriginEvent::LoadingModel {
                model_id: self.job.model_id.clone(),
            },
            Progress::Sampling { step, total_steps } => OriginEvent::Processing {
                step,
                total_steps,
                stage: STAGE_SAMPLING.to_owned(),
                stage_label: STAGE_SAMPLING_LABEL.to_owned(),
            },
        };
        if let Err(e) = self.send(event, RetryPolicy::PROGRESS).await {
            tracing::warn!(error = %e, "progress event dropped");
        }
    }

    async fn send(
        &mut self,
        event: OriginEvent,
        policy: RetryPolicy,
    ) -> Result<(), crate::edge_client::DeliveryError> {
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
