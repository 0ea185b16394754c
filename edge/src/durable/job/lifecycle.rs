//! A job's life: creation and queueing, the origin's events, cancel, a lost origin, and
//! the settlement of its hold. The Dispatcher is told when the job ends or is withdrawn.

use kiln_shared::jobs::{Applied, FailureCode, Ignored, JobParams, JobState, JobStatus};
use kiln_shared::origin::{DispatchJob, EventAck, EventEnvelope};
use kiln_shared::{ApiError, ErrorCode};

use super::proto::*;
use super::{JobDo, Stored};
use crate::durable::account::proto::{FileKind, FileRecord, RecordOutputs, Settle};
use crate::durable::dispatcher::proto::{Enqueue, Finish, Withdraw};
use crate::platform::bindings;
use crate::platform::clock::now_ms;
use crate::platform::config;
use crate::platform::error::{EdgeError, EdgeResult};
use crate::platform::rpc::Message;

/// The job as an origin receives it.
pub fn dispatch_job(job: &JobState) -> DispatchJob {
    DispatchJob {
        job_id: job.id.clone(),
        attempt: job.attempt,
        model_id: job.model_id.clone(),
        workflow: job.workflow.clone(),
        params: job.params.clone(),
        input_files: job.input_files.clone(),
        test_mode: job.test_mode,
    }
}

impl JobDo {
    pub(super) async fn create(&self, mut job: JobState) -> EdgeResult<JobEnvelope> {
        if let Some(Stored { job: existing, .. }) = self.load()? {
            let queue_position = self.position(&existing).await;
            return Ok(JobEnvelope {
                job: existing,
                queue_position,
            });
        }
        let timeout_ms =
            i64::try_from(config::job_timeout_secs(&self.env) * 1000).unwrap_or(i64::MAX);
        let deadline_ms = job.queued_at_ms.saturating_add(timeout_ms);
        self.sql.exec(
            "INSERT INTO job (id, state, settled, deadline_ms) VALUES (?, ?, 0, ?)",
            vec![
                job.id.as_str().into(),
                serde_json::to_string(&job)?.into(),
                deadline_ms.into(),
            ],
        )?;
        self.rearm().await?;
        // Announced before it is queued, so no origin event can overtake it.
        self.publish(&job, None).await;
        let queued = match bindings::dispatcher(&self.env) {
            Ok(dispatcher) => {
                dispatcher
                    .call(&Enqueue {
                        account_id: job.account_id.clone(),
                        job: dispatch_job(&job),
                    })
                    .await
            }
            Err(e) => Err(e),
        };
        let queue_position = match queued {
            Ok(p) => p.position,
            Err(e) => {
                self.refused(&mut job, &e).await?;
                None
            }
        };
        Ok(JobEnvelope {
            job,
            queue_position,
        })
    }

    /// The queue refused the job: it fails at once (with the queue's reason when it
    /// gave one) and its hold is released.
    async fn refused(&self, job: &mut JobState, e: &EdgeError) -> EdgeResult<()> {
        let (code, message) = match e {
            EdgeError::Api(api) => match FailureCode::of_refusal(api) {
                Some(code) => (code, api.message().to_owned()),
                None => {
                    worker::console_error!("enqueue {} failed: {e:?}", job.id);
                    no_capacity()
                }
            },
            EdgeError::Runtime(_) => {
                worker::console_error!("enqueue {} failed: {e:?}", job.id);
                no_capacity()
            }
        };
        if job.fail(code, &message, now_ms()) {
            self.save(job)?;
            self.settle(job).await?;
            self.publish(job, None).await;
        }
        Ok(())
    }

    pub(super) async fn event(&self, ev: EventEnvelope) -> EdgeResult<EventAck> {
        let mut job = self.load_existing()?;
        match job.apply(&ev, now_ms()) {
            Err(ignored) => Ok(EventAck {
                applied: false,
                // The origin should stop working on a job that ended or moved on.
                stop: matches!(ignored, Ignored::Terminal | Ignored::StaleAttempt),
            }),
            Ok(applied) => {
                if applied == Applied::Ended(JobStatus::Completed) {
                    job.set_expiry(config::file_retention_ms(&self.env));
                }
                self.save(&job)?;
                if let Applied::Ended(_) = applied {
                    self.settle(&job).await?;
                    self.release_slot(&job).await;
                }
                self.publish(&job, None).await;
                Ok(EventAck {
                    applied: true,
                    stop: false,
                })
            }
        }
    }

    /// Tells the Dispatcher the job ended, so its slot goes to the next job.
    async fn release_slot(&self, job: &JobState) {
        let run_ms = match (job.status, job.started_at_ms, job.completed_at_ms) {
            (JobStatus::Completed, Some(s), Some(c)) => Some(c - s),
            _ => None,
        };
        let finish = Finish {
            job_id: job.id.clone(),
            run_ms,
            workflow: job.workflow.clone(),
        };
        self.tell_dispatcher(job, &finish).await;
    }

    /// Takes the job out of the queue or off its origin (which is told to stop).
    pub(super) async fn withdraw(&self, job: &JobState) {
        let withdraw = Withdraw {
            job_id: job.id.clone(),
        };
        self.tell_dispatcher(job, &withdraw).await;
    }

    /// A best-effort message to the Dispatcher: a failure is logged, and the job's lease
    /// running out makes the Dispatcher clean up then.
    async fn tell_dispatcher<M>(&self, job: &JobState, msg: &M)
    where
        M: Message<Object = crate::durable::dispatcher::DispatcherDo>,
    {
        let result = match bindings::dispatcher(&self.env) {
            Ok(dispatcher) => dispatcher.call(msg).await.map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            worker::console_warn!("dispatcher {} for {}: {e:?}", M::PATH, job.id);
        }
    }

    pub(super) async fn cancel(&self) -> EdgeResult<JobEnvelope> {
        let mut job = self.load_existing()?;
        if !job.cancel(now_ms()) {
            return Err(ApiError::conflict(
                ErrorCode::JobEnded,
                format!(
                    "The job already ended ({}); there is nothing to cancel.",
                    job.status.as_str()
                ),
            )
            .into());
        }
        self.save(&job)?;
        self.settle(&job).await?;
        self.withdraw(&job).await;
        self.publish(&job, None).await;
        Ok(JobEnvelope {
            job,
            queue_position: None,
        })
    }

    /// The Dispatcher found the job's origin silent past its lease, or no origin for it.
    pub(super) async fn lost(&self, lost: Lost) -> EdgeResult<LostAnswer> {
        let mut job = self.load_existing()?;
        if job.status.is_terminal() || job.attempt != lost.attempt {
            return Ok(LostAnswer { requeue: None });
        }
        if lost.can_retry && job.may_retry() {
            job.requeue();
            self.save(&job)?;
            self.publish(&job, None).await;
            return Ok(LostAnswer {
                requeue: Some(dispatch_job(&job)),
            });
        }
        if lost.no_origin {
            job.fail(
                FailureCode::NoCapacity,
                "No GPU serving this model was available while the job waited.",
                now_ms(),
            );
        } else {
            job.fail(
                FailureCode::OriginLost,
                "The GPU running this job stopped answering and no other could take it over.",
                now_ms(),
            );
        }
        self.save(&job)?;
        self.settle(&job).await?;
        self.publish(&job, None).await;
        Ok(LostAnswer { requeue: None })
    }

    /// Captures (completed) or releases (anything else) the job's hold, once, and
    /// records a completed job's outputs in the account's file list. If the Account DO
    /// cannot be reached, the alarm retries until it succeeds.
    pub(super) async fn settle(&self, job: &JobState) -> EdgeResult<()> {
        let completed = job.status == JobStatus::Completed;
        let result = async {
            let account = bindings::account(&self.env, &job.account_id)?;
            if completed && !job.outputs.is_empty() {
                account
                    .call(&RecordOutputs {
                        files: job.outputs.iter().map(|o| output_record(job, o)).collect(),
                    })
                    .await?;
            }
            if job.cost.micros() > 0 {
                account
                    .call(&Settle {
                        job_id: job.id.clone(),
                        capture: completed,
                    })
                    .await?;
            }
            EdgeResult::Ok(())
        }
        .await;
        match result {
            Ok(()) => self.mark_settled(job),
            Err(e) => {
                worker::console_error!("settle {} failed, will retry: {e:?}", job.id);
                self.rearm().await
            }
        }
    }

    fn mark_settled(&self, job: &JobState) -> EdgeResult<()> {
        self.sql.exec(
            "UPDATE job SET settled = 1 WHERE id = ?",
            vec![job.id.as_str().into()],
        )?;
        Ok(())
    }
}

/// A job's output as the account's file list records it.
fn output_record(job: &JobState, o: &kiln_shared::origin::OutputMeta) -> FileRecord {
    let format = o.filename.extension().to_owned();
    FileRecord {
        filename: o.filename.to_string(),
        kind: FileKind::Output,
        // Outputs are never deduplicated; the name is unique already.
        sha256: String::new(),
        format,
        content_type: o.content_type.clone(),
        width: o.width,
        height: o.height,
        frame_count: match &job.params {
            JobParams::Video(v) => v.num_frames,
            JobParams::Image(_) => 1,
        },
        size_bytes: o.size_bytes,
        original_filename: None,
        job_id: Some(job.id.to_string()),
        created_at_ms: job.completed_at_ms.unwrap_or(job.queued_at_ms),
        // Set on completion; a JS-safe "never" otherwise.
        expires_at_ms: o.expires_at_ms.unwrap_or((1 << 53) - 1),
    }
}

fn no_capacity() -> (FailureCode, String) {
    (
        FailureCode::NoCapacity,
        "No GPU capacity was available for this job.".to_owned(),
    )
}
