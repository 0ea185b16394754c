//! The Job Durable Object: one per job, the only writer of that job's state (DESIGN.md
//! flows 1, 4 and 6). It queues the job with the Dispatcher, applies the origin's
//! signed events through [`JobState::apply`] (each at most once), settles the account's
//! hold exactly once when the job ends (captured if completed, released otherwise),
//! tells the Dispatcher the slot is free, and fans every change out to the job's SSE
//! subscribers, the account's stream and synchronous waiters. Each saved change also
//! queues the webhook events it calls for in the job's [`outbox`](crate::outbox), in
//! the same step; the one alarm sends them (and enforces the hard timeout).
//!
//! - **Cancel**: queued → cancelled at once; running → cancelled here and the origin is
//!   told to stop (through the Dispatcher, which knows where it runs); the hold is
//!   released either way.
//! - **Lost origin**: the Dispatcher reports an expired lease; the job goes back to the
//!   queue once (attempt 2, another origin), then fails with a refund.
//! - **Hard timeout**: an alarm fails the job with 504 and a refund even if nobody asks.
//!
//! State lives in SQL only: a panic or eviction resets the isolate, and the in-memory
//! waiters and subscribers are a latency optimisation (clients reconnect; waits loop).

use std::cell::{Cell, RefCell};
use std::time::Duration;

use futures_channel::oneshot;
use kiln_shared::jobs::{Applied, Ignored, JobState, JobStatus};
use kiln_shared::origin::{DispatchJob, EventAck, EventEnvelope};
use kiln_shared::ApiError;
use serde::{Deserialize, Serialize};
use worker::{durable_object, DurableObject, Env, Method, Request, Response, SqlStorage, State};

use crate::account_do::SettleRequest;
use crate::config;
use crate::dispatcher_do::{dispatcher_stub, Cancel, Done, Enqueue, Lost, LostAnswer, Position};
use crate::error::{EdgeError, EdgeResult};
use crate::http::{call_do, internal_body, json, query_param};
use crate::now_ms;
use crate::outbox::{self, Outbox};
use crate::sse::{frame, Hub};
use crate::user_stream_do::{user_stream_stub, Publish, Published};

/// Retry pace for settling with the Account DO when it could not be reached.
const SETTLE_RETRY_MS: i64 = 5_000;
/// How long progress steps skip an account stream that had no subscriber; a client that
/// subscribes meanwhile gets the job's state first and its steps from then on.
const USER_STREAM_QUIET_MS: i64 = 1_000;
/// A single wait never exceeds this; callers loop for longer windows.
const WAIT_MS_MAX: u64 = 100_000;

#[durable_object]
pub struct JobDo {
    state: State,
    env: Env,
    sql: SqlStorage,
    /// Requests waiting for this job to change; woken on every applied event.
    waiters: RefCell<Vec<oneshot::Sender<()>>>,
    /// Open `GET /v1/jobs/{id}/stream` connections.
    hub: Hub,
    /// Until then, progress steps skip the account's stream: it had no subscriber.
    user_stream_quiet_until: Cell<i64>,
    /// Set when `save` queued webhook events, so `publish` re-arms the alarm only then.
    webhooks_queued: Cell<bool>,
}

/// A job as Durable Objects pass it around; `queue_position` (1 = next) is set while
/// the job waits in the queue and the caller asked for it.
#[derive(Serialize, Deserialize)]
pub struct JobEnvelope {
    pub job: JobState,
    #[serde(default)]
    pub queue_position: Option<u32>,
}

#[derive(Deserialize)]
struct Row {
    state: String,
    settled: i64,
    deadline_ms: i64,
}

impl DurableObject for JobDo {
    fn new(state: State, env: Env) -> Self {
        let sql = state.storage().sql();
        let job_table = "CREATE TABLE IF NOT EXISTS job (
                id TEXT PRIMARY KEY, state TEXT NOT NULL, settled INTEGER NOT NULL DEFAULT 0,
                deadline_ms INTEGER NOT NULL)";
        for ddl in std::iter::once(job_table).chain(outbox::SCHEMA.iter().copied()) {
            if let Err(e) = sql.exec(ddl, None) {
                worker::console_error!("job schema: {e}");
            }
        }
        Self {
            state,
            env,
            sql,
            waiters: RefCell::new(Vec::new()),
            hub: Hub::default(),
            user_stream_quiet_until: Cell::new(0),
            webhooks_queued: Cell::new(false),
        }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let path = req.path();
        let result = match (req.method(), path.as_str()) {
            (Method::Post, "/create") => match internal_body::<JobEnvelope>(&mut req).await {
                Ok(body) => self.create(body.job).await,
                Err(e) => Err(e),
            },
            (Method::Get, "/state") => self.get(&req).await,
            (Method::Get, "/wait") => self.wait(&req).await,
            (Method::Get, "/stream") => self.stream().await,
            (Method::Post, "/event") => match internal_body::<EventEnvelope>(&mut req).await {
                Ok(ev) => self.event(ev).await,
                Err(e) => Err(e),
            },
            (Method::Post, "/cancel") => self.cancel().await,
            (Method::Post, "/lost") => match internal_body::<Lost>(&mut req).await {
                Ok(lost) => self.lost(lost).await,
                Err(e) => Err(e),
            },
            (Method::Get, "/deliveries") => self.outbox().list().and_then(|d| json(200, &d)),
            (Method::Post, "/webhook/replay") => self.replay().await,
            _ => Err(ApiError::route_not_found("DO", &path).into()),
        };
        Ok(result.unwrap_or_else(EdgeError::into_response))
    }

    async fn alarm(&self) -> worker::Result<Response> {
        if let Err(e) = self.on_alarm().await {
            worker::console_error!("job alarm: {e:?}");
            // Try again shortly: a missed settlement would leave a hold open.
            self.state.storage().set_alarm(SETTLE_RETRY_MS).await?;
        }
        Response::ok("")
    }
}

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
    fn load(&self) -> EdgeResult<Option<(JobState, bool, i64)>> {
        let rows: Vec<Row> = self
            .sql
            .exec("SELECT state, settled, deadline_ms FROM job", None)?
            .to_array()?;
        match rows.into_iter().next() {
            None => Ok(None),
            Some(r) => Ok(Some((
                serde_json::from_str(&r.state)?,
                r.settled != 0,
                r.deadline_ms,
            ))),
        }
    }

    fn load_existing(&self) -> EdgeResult<JobState> {
        self.load()?
            .map(|(job, _, _)| job)
            .ok_or_else(|| ApiError::not_found("job_not_found", "No such job.").into())
    }

    /// Stores the job's new state and, in the same synchronous step (so both land or
    /// neither), the webhook events it calls for.
    fn save(&self, job: &JobState) -> EdgeResult<()> {
        self.sql.exec(
            "UPDATE job SET state = ? WHERE id = ?",
            vec![serde_json::to_string(job)?.into(), job.id.as_str().into()],
        )?;
        if self
            .outbox()
            .record(job, &job.to_view(&job.base_url, None))?
        {
            self.webhooks_queued.set(true);
        }
        Ok(())
    }

    fn wake(&self) {
        for w in self.waiters.borrow_mut().drain(..) {
            let _ = w.send(());
        }
    }

    /// The job's place in the queue, from the Dispatcher; `None` unless queued.
    async fn position(&self, job: &JobState) -> Option<u32> {
        if job.status != JobStatus::Queued {
            return None;
        }
        let path = format!("/position?job_id={}", job.id);
        let stub = dispatcher_stub(&self.env).ok()?;
        call_do::<Position>(&stub, Method::Get, &path, None)
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
    async fn publish(&self, job: &JobState, position: Option<u32>) {
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
        let body = match serde_json::to_value(Publish { frame: f }) {
            Ok(b) => b,
            Err(_) => return,
        };
        let result: EdgeResult<Published> =
            match user_stream_stub(&self.env, job.account_id.as_str()) {
                Ok(stub) => call_do(&stub, Method::Post, "/publish", Some(&body)).await,
                Err(e) => Err(e),
            };
        match result {
            Ok(p) if !p.subscribers => self.user_stream_quiet_until.set(now + USER_STREAM_QUIET_MS),
            Ok(_) => self.user_stream_quiet_until.set(0),
            Err(e) => worker::console_warn!("user stream publish for {}: {e:?}", job.id),
        }
    }

    async fn create(&self, mut job: JobState) -> EdgeResult<Response> {
        if let Some((existing, _, _)) = self.load()? {
            let queue_position = self.position(&existing).await;
            return json(
                200,
                &JobEnvelope {
                    job: existing,
                    queue_position,
                },
            );
        }
        let deadline_ms = job.queued_at_ms + (config::job_timeout_secs(&self.env) * 1000) as i64;
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
        let body = serde_json::to_value(Enqueue {
            account_id: job.account_id.to_string(),
            job: dispatch_job(&job),
        })?;
        let queued: EdgeResult<Position> = match dispatcher_stub(&self.env) {
            Ok(stub) => call_do(&stub, Method::Post, "/enqueue", Some(&body)).await,
            Err(e) => Err(e),
        };
        let queue_position = match queued {
            Ok(p) => p.position,
            Err(e) => {
                let (code, message) = match &e {
                    EdgeError::Api(api) if api.status() == 503 => {
                        (api.code(), api.message().to_owned())
                    }
                    _ => {
                        worker::console_error!("enqueue {} failed: {e:?}", job.id);
                        (
                            "no_capacity",
                            "No GPU capacity was available for this job.".to_owned(),
                        )
                    }
                };
                if job.fail(code, &message, now_ms()) {
                    self.save(&job)?;
                    self.settle(&job).await?;
                    self.publish(&job, None).await;
                }
                None
            }
        };
        json(
            201,
            &JobEnvelope {
                job,
                queue_position,
            },
        )
    }

    async fn get(&self, req: &Request) -> EdgeResult<Response> {
        let job = self.load_existing()?;
        let queue_position = if query_param(req, "position")?.is_some() {
            self.position(&job).await
        } else {
            None
        };
        json(
            200,
            &JobEnvelope {
                job,
                queue_position,
            },
        )
    }

    /// Answers when the job ends or `timeout_ms` passes, whichever is first.
    async fn wait(&self, req: &Request) -> EdgeResult<Response> {
        use futures_util::future::select;
        let timeout_ms = query_param(req, "timeout_ms")?
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            .min(WAIT_MS_MAX);
        let deadline = now_ms() + timeout_ms as i64;
        loop {
            let job = self.load_existing()?;
            let remaining = deadline - now_ms();
            if job.status.is_terminal() || remaining <= 0 {
                let queue_position = self.position(&job).await;
                return json(
                    200,
                    &JobEnvelope {
                        job,
                        queue_position,
                    },
                );
            }
            let (tx, rx) = oneshot::channel();
            self.waiters.borrow_mut().push(tx);
            // The timer bounds each wait even if a wake-up is lost to an isolate reset.
            let timer = worker::Delay::from(Duration::from_millis(remaining.min(5_000) as u64));
            select(rx, timer).await;
        }
    }

    /// `GET /v1/jobs/{id}/stream`: the current state first, then every change; the
    /// stream ends after the terminal event.
    async fn stream(&self) -> EdgeResult<Response> {
        let job = self.load_existing()?;
        let position = self.position(&job).await;
        let first = [Self::frame_of(&job, position)];
        self.hub.subscribe(
            &first,
            job.status.is_terminal(),
            config::sse_ping_secs(&self.env),
        )
    }

    async fn event(&self, ev: EventEnvelope) -> EdgeResult<Response> {
        let mut job = self.load_existing()?;
        match job.apply(&ev, now_ms()) {
            Err(ignored) => json(
                200,
                &EventAck {
                    applied: false,
                    // The origin should stop working on a job that ended or moved on.
                    stop: matches!(ignored, Ignored::Terminal | Ignored::StaleAttempt),
                },
            ),
            Ok(applied) => {
                self.save(&job)?;
                if let Applied::Ended(_) = applied {
                    self.settle(&job).await?;
                    self.release_slot(&job).await;
                }
                self.publish(&job, None).await;
                json(
                    200,
                    &EventAck {
                        applied: true,
                        stop: false,
                    },
                )
            }
        }
    }

    /// Tells the Dispatcher the job ended, so its slot goes to the next job. If this
    /// fails, the job's lease runs out and the Dispatcher cleans up then.
    async fn release_slot(&self, job: &JobState) {
        let run_ms = match (job.status, job.started_at_ms, job.completed_at_ms) {
            (JobStatus::Completed, Some(s), Some(c)) => Some(c - s),
            _ => None,
        };
        let done = Done {
            job_id: job.id.to_string(),
            run_ms,
            workflow: job.workflow.clone(),
        };
        self.tell_dispatcher(job, "/done", &done).await;
    }

    /// Takes the job out of the queue or off its origin (which is told to stop).
    async fn withdraw(&self, job: &JobState) {
        let cancel = Cancel {
            job_id: job.id.to_string(),
        };
        self.tell_dispatcher(job, "/cancel", &cancel).await;
    }

    /// A best-effort POST to the Dispatcher: a failure is logged, and the job's lease
    /// running out makes the Dispatcher clean up then.
    async fn tell_dispatcher<T: Serialize>(&self, job: &JobState, path: &str, body: &T) {
        let result: EdgeResult<serde_json::Value> =
            match (serde_json::to_value(body), dispatcher_stub(&self.env)) {
                (Ok(body), Ok(stub)) => call_do(&stub, Method::Post, path, Some(&body)).await,
                (Err(e), _) => Err(e.into()),
                (_, Err(e)) => Err(e),
            };
        if let Err(e) = result {
            worker::console_warn!("dispatcher {path} for {}: {e:?}", job.id);
        }
    }

    async fn cancel(&self) -> EdgeResult<Response> {
        let mut job = self.load_existing()?;
        if !job.cancel(now_ms()) {
            return Err(ApiError::conflict(
                "job_ended",
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
        json(
            200,
            &JobEnvelope {
                job,
                queue_position: None,
            },
        )
    }

    /// The Dispatcher found the job's origin silent past its lease.
    async fn lost(&self, lost: Lost) -> EdgeResult<Response> {
        let mut job = self.load_existing()?;
        if job.status.is_terminal() || job.attempt != lost.attempt {
            return json(200, &LostAnswer { requeue: None });
        }
        if lost.can_retry && job.may_retry() {
            job.requeue();
            self.save(&job)?;
            self.publish(&job, None).await;
            return json(
                200,
                &LostAnswer {
                    requeue: Some(dispatch_job(&job)),
                },
            );
        }
        if lost.no_origin {
            job.fail(
                "no_capacity",
                "No GPU serving this model was available while the job waited.",
                now_ms(),
            );
        } else {
            job.fail(
                "origin_lost",
                "The GPU running this job stopped answering and no other could take it over.",
                now_ms(),
            );
        }
        self.save(&job)?;
        self.settle(&job).await?;
        self.publish(&job, None).await;
        json(200, &LostAnswer { requeue: None })
    }

    /// Captures (completed) or releases (anything else) the job's hold, once. If the
    /// Account DO cannot be reached, the alarm retries until it succeeds.
    async fn settle(&self, job: &JobState) -> EdgeResult<()> {
        if job.cost.micros() == 0 {
            self.mark_settled(job)?;
            return Ok(());
        }
        let stub = self
            .env
            .durable_object("ACCOUNTS")?
            .id_from_name(job.account_id.as_str())?
            .get_stub()?;
        let body = serde_json::to_value(SettleRequest {
            job_id: job.id.to_string(),
            capture: job.status == JobStatus::Completed,
        })?;
        match call_do::<serde_json::Value>(&stub, Method::Post, "/settle", Some(&body)).await {
            Ok(_) => self.mark_settled(job),
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

    async fn on_alarm(&self) -> EdgeResult<()> {
        let Some((mut job, settled, deadline_ms)) = self.load()? else {
            return Ok(());
        };
        if !job.status.is_terminal() && now_ms() >= deadline_ms {
            job.fail(
                "generation_timeout",
                "The job did not finish within its time limit.",
                now_ms(),
            );
            self.save(&job)?;
            self.settle(&job).await?;
            self.withdraw(&job).await;
            self.publish(&job, None).await;
        } else if job.status.is_terminal() && !settled {
            self.settle(&job).await?;
        }
        let delivered = self.outbox().deliver_due(&job).await;
        self.rearm().await?;
        delivered
    }

    fn outbox(&self) -> Outbox<'_> {
        Outbox {
            sql: &self.sql,
            env: &self.env,
        }
    }

    /// Sets the one alarm to the earliest thing due: the hard timeout of a running job,
    /// a settlement to retry, the next webhook delivery.
    async fn rearm(&self) -> EdgeResult<()> {
        let Some((job, settled, deadline_ms)) = self.load()? else {
            return Ok(());
        };
        let now = now_ms();
        let mut due: Vec<i64> = Vec::new();
        if !job.status.is_terminal() {
            due.push(deadline_ms);
        } else if !settled {
            due.push(now + SETTLE_RETRY_MS);
        }
        if let Some(next) = self.outbox().next_due_ms()? {
            due.push(next);
        }
        match due.into_iter().min() {
            Some(at) => self.state.storage().set_alarm((at - now).max(1)).await?,
            None => self.state.storage().delete_alarm().await?,
        }
        Ok(())
    }

    /// `POST /v1/jobs/{id}/webhook`.
    async fn replay(&self) -> EdgeResult<Response> {
        let job = self.load_existing()?;
        let delivery = self.outbox().replay(&job).await?;
        json(200, &delivery)
    }
}
