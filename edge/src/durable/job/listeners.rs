//! Who hears about a job: synchronous waiters, the job's event streams, and the
//! account's stream (the UserStream DO).

use std::time::Duration;

use futures_channel::oneshot;
use kiln_shared::jobs::{JobState, JobStatus};
use worker::Response;

use super::proto::*;
use super::JobDo;
use crate::durable::dispatcher::proto::GetPosition;
use crate::durable::user_stream::proto::Publish;
use crate::platform::bindings;
use crate::platform::clock::now_ms;
use crate::platform::config;
use crate::platform::error::EdgeResult;
use crate::platform::sse::frame;

/// How long progress steps skip an account stream that had no subscriber; a client that
/// subscribes meanwhile gets the job's state first and its steps from then on.
const USER_STREAM_QUIET_MS: i64 = 1_000;
/// A single wait never exceeds this; callers loop for longer windows.
const WAIT_MS_MAX: u64 = 100_000;

impl JobDo {
    fn wake(&self) {
        for w in self.waiters.borrow_mut().drain(..) {
            let _ = w.send(());
        }
    }

    /// The job's place in the queue, from the Dispatcher; `None` unless queued.
    pub(super) async fn position(&self, job: &JobState) -> Option<u32> {
        if job.status != JobStatus::Queued {
            return None;
        }
        bindings::dispatcher(&self.env)
            .ok()?
            .call(&GetPosition {
                job_id: job.id.clone(),
            })
            .await
            .ok()?
            .position
    }

    /// The SSE frame for the job's current state.
    fn frame_of(job: &JobState, position: Option<u32>) -> String {
        frame(job.status.as_str(), &job.to_view(&job.base_url, position))
    }

    /// Tells every listener about the job's new state: SSE subscribers of this job, the
    /// account's stream, and synchronous waiters.
    pub(super) async fn publish(&self, job: &JobState, position: Option<u32>) {
        // `save` queued webhooks for this state: have the alarm send them.
        if self.webhooks_queued.replace(false) {
            if let Err(e) = self.rearm().await {
                worker::console_error!("job {} rearm: {e:?}", job.id);
            }
        }
        let f = Self::frame_of(job, position);
        self.hub.publish(&f, job.status.is_terminal());
        self.wake();
        // Progress steps are superseded by the next one: while the account has no
        // stream open, they are not sent there (status changes always are).
        let now = now_ms();
        if job.status == JobStatus::Processing && now < self.user_stream_quiet_until.get() {
            return;
        }
        let result = match bindings::user_stream(&self.env, &job.account_id) {
            Ok(stream) => stream.call(&Publish { frame: f }).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(p) if !p.subscribers => self.user_stream_quiet_until.set(now + USER_STREAM_QUIET_MS),
            Ok(_) => self.user_stream_quiet_until.set(0),
            Err(e) => worker::console_warn!("user stream publish for {}: {e:?}", job.id),
        }
    }

    pub(super) async fn get(&self, req: GetJob) -> EdgeResult<JobEnvelope> {
        let job = self.load_existing()?;
        let queue_position = if req.with_position {
            self.position(&job).await
        } else {
            None
        };
        Ok(JobEnvelope {
            job,
            queue_position,
        })
    }

    /// Answers when the job ends or `timeout_ms` passes, whichever is first.
    pub(super) async fn wait(&self, req: Wait) -> EdgeResult<JobEnvelope> {
        use futures_util::future::select;
        let timeout_ms = i64::try_from(req.timeout_ms.min(WAIT_MS_MAX)).unwrap_or(0);
        let deadline = now_ms() + timeout_ms;
        loop {
            let job = self.load_existing()?;
            let remaining = deadline - now_ms();
            if job.status.is_terminal() || remaining <= 0 {
                let queue_position = self.position(&job).await;
                return Ok(JobEnvelope {
                    job,
                    queue_position,
                });
            }
            let (tx, rx) = oneshot::channel();
            self.waiters.borrow_mut().push(tx);
            // The timer bounds each wait even if a wake-up is lost to an isolate reset.
            let timer =
                worker::Delay::from(Duration::from_millis(remaining.clamp(0, 5_000) as u64));
            select(rx, timer).await;
        }
    }

    /// `GET /v1/jobs/{id}/stream`: the current state first, then every change; the
    /// stream ends after the terminal event.
    pub(super) async fn stream(&self) -> EdgeResult<Response> {
        let job = self.load_existing()?;
        let position = self.position(&job).await;
        let first = [Self::frame_of(&job, position)];
        self.hub.subscribe(
            &first,
            job.status.is_terminal(),
            config::sse_ping_secs(&self.env),
        )
    }
}
