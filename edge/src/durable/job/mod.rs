//! The Job Durable Object: one per job, the only writer of that job's state
//! (`docs/architecture.md`, "1. Submit", "4. Settle" and "6. Lost origins"). It queues
//! the job with the Dispatcher, applies the origin's signed events through
//! [`JobState::apply`] (each at most once), settles the account's hold exactly once when
//! the job ends (captured if completed, released otherwise), tells the Dispatcher the
//! slot is free, and fans every change out to the job's SSE subscribers, the account's
//! stream and synchronous waiters. Each saved change also queues the webhook events it
//! calls for in the job's [`outbox`], in the same step; the one alarm sends them (and
//! enforces the hard timeout).
//!
//! - [`proto`] — its messages; [`lifecycle`] — create, events, cancel, lost origins,
//!   settlement; [`listeners`] — waiters, event streams, the account's stream;
//!   [`outbox`] — webhook deliveries.
//! - **Cancel**: queued → cancelled at once; running → cancelled here and the origin is
//!   told to stop (through the Dispatcher, which knows where it runs); the hold is
//!   released either way.
//! - **Lost origin**: the Dispatcher reports an expired lease; the job goes back to the
//!   queue once (attempt 2, another origin), then fails with a refund.
//! - **Hard timeout**: an alarm fails the job with 504 and a refund even if nobody asks.
//!
//! State lives in SQL only: a panic or eviction resets the isolate, and the in-memory
//! waiters and subscribers are a latency optimisation (clients reconnect; waits loop).

pub mod lifecycle;
pub mod listeners;
pub mod outbox;
pub mod proto;

use std::cell::{Cell, RefCell};

use futures_channel::oneshot;
use kiln_shared::jobs::{FailureCode, JobState};
use kiln_shared::{ApiError, ErrorCode};
use serde::Deserialize;
use worker::{durable_object, DurableObject, Env, Request, Response, SqlStorage, State};

use crate::platform::clock::now_ms;
use crate::platform::error::EdgeResult;
use crate::platform::rpc::{self, Message};
use crate::platform::sse::Hub;
use outbox::Outbox;
use proto::*;

/// Retry pace for settling with the Account DO when it could not be reached.
const SETTLE_RETRY_MS: i64 = 5_000;

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

#[derive(Deserialize)]
struct Row {
    state: String,
    settled: i64,
    deadline_ms: i64,
}

/// The stored job with its settlement flag and hard deadline.
struct Stored {
    job: JobState,
    settled: bool,
    deadline_ms: i64,
}

impl DurableObject for JobDo {
    fn new(state: State, env: Env) -> Self {
        let sql = state.storage().sql();
        let job_table = "CREATE TABLE IF NOT EXISTS job (
                id TEXT PRIMARY KEY, state TEXT NOT NULL, settled INTEGER NOT NULL DEFAULT 0,
                deadline_ms INTEGER NOT NULL)";
        rpc::create_tables(&sql, "job", &[job_table]);
        rpc::create_tables(&sql, "job outbox", outbox::SCHEMA);
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
        rpc::respond(self.route(&mut req).await)
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

impl JobDo {
    async fn route(&self, req: &mut Request) -> EdgeResult<Response> {
        match req.path().as_str() {
            Create::PATH => {
                rpc::answer::<Create>(self.create(rpc::read::<Create>(req).await?.job).await)
            }
            GetJob::PATH => rpc::answer::<GetJob>(self.get(rpc::read(req).await?).await),
            Wait::PATH => rpc::answer::<Wait>(self.wait(rpc::read(req).await?).await),
            Subscribe::PATH => self.stream().await,
            kiln_shared::origin::EventEnvelope::PATH => {
                rpc::answer::<kiln_shared::origin::EventEnvelope>(
                    self.event(rpc::read(req).await?).await,
                )
            }
            Cancel::PATH => rpc::answer::<Cancel>(self.cancel().await),
            Lost::PATH => rpc::answer::<Lost>(self.lost(rpc::read(req).await?).await),
            ListDeliveries::PATH => rpc::answer::<ListDeliveries>(self.outbox().list()),
            ReplayWebhook::PATH => rpc::answer::<ReplayWebhook>(self.replay().await),
            other => Err(rpc::unknown_route(other)),
        }
    }

    fn load(&self) -> EdgeResult<Option<Stored>> {
        let rows: Vec<Row> = self
            .sql
            .exec("SELECT state, settled, deadline_ms FROM job", None)?
            .to_array()?;
        match rows.into_iter().next() {
            None => Ok(None),
            Some(r) => Ok(Some(Stored {
                job: serde_json::from_str(&r.state)?,
                settled: r.settled != 0,
                deadline_ms: r.deadline_ms,
            })),
        }
    }

    fn load_existing(&self) -> EdgeResult<JobState> {
        self.load()?
            .map(|s| s.job)
            .ok_or_else(|| ApiError::not_found(ErrorCode::JobNotFound, "No such job.").into())
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

    fn outbox(&self) -> Outbox<'_> {
        Outbox {
            sql: &self.sql,
            env: &self.env,
        }
    }

    async fn on_alarm(&self) -> EdgeResult<()> {
        let Some(Stored {
            mut job,
            settled,
            deadline_ms,
        }) = self.load()?
        else {
            return Ok(());
        };
        if !job.status.is_terminal() && now_ms() >= deadline_ms {
            job.fail(
                FailureCode::GenerationTimeout,
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

    /// Sets the one alarm to the earliest thing due: the hard timeout of a running job,
    /// a settlement to retry, the next webhook delivery.
    async fn rearm(&self) -> EdgeResult<()> {
        let Some(stored) = self.load()? else {
            return Ok(());
        };
        let now = now_ms();
        let settle_retry =
            (stored.job.status.is_terminal() && !stored.settled).then_some(now + SETTLE_RETRY_MS);
        let deadline = (!stored.job.status.is_terminal()).then_some(stored.deadline_ms);
        let due = [deadline, settle_retry, self.outbox().next_due_ms()?]
            .into_iter()
            .flatten()
            .min();
        match due {
            Some(at) => self.state.storage().set_alarm((at - now).max(1)).await?,
            None => self.state.storage().delete_alarm().await?,
        }
        Ok(())
    }

    /// `POST /v1/jobs/{id}/webhook`.
    async fn replay(&self) -> EdgeResult<outbox::AttemptRecord> {
        let job = self.load_existing()?;
        self.outbox().replay(&job).await
    }
}
