//! The Job Durable Object: one per job, the only writer of that job's state. It
//! dispatches the job to an origin, applies the origin's signed events through
//! [`JobState::apply`] (each at most once), settles the account's hold exactly once
//! when the job ends, wakes synchronous waiters, and fails the job with 504 and a
//! refund when its hard timeout passes (an alarm, so it fires even if nobody asks).
//!
//! State lives in SQL only: a panic or eviction resets the isolate, and the in-memory
//! waiter list is just a latency optimisation over the bounded wait loop.

use std::cell::RefCell;
use std::time::Duration;

use futures_channel::oneshot;
use kiln_shared::jobs::{Applied, JobState};
use kiln_shared::origin::{DispatchJob, EventEnvelope, DISPATCH_PATH};
use kiln_shared::ApiError;
use serde::{Deserialize, Serialize};
use serde_json::json;
use worker::{durable_object, DurableObject, Env, Method, Request, Response, SqlStorage, State};

use crate::account_do::SettleRequest;
use crate::config;
use crate::error::{EdgeError, EdgeResult};
use crate::http::{call_do, fetch_with_timeout, internal_body, json, query_param, request};
use crate::now_ms;

/// How long the edge waits for an origin to accept a dispatch.
const DISPATCH_TIMEOUT_MS: u64 = 10_000;
/// Retry pace for settling with the Account DO when it could not be reached.
const SETTLE_RETRY_MS: i64 = 5_000;
/// A single wait never exceeds this; callers loop for longer windows.
const WAIT_MS_MAX: u64 = 100_000;

#[durable_object]
pub struct JobDo {
    state: State,
    env: Env,
    sql: SqlStorage,
    /// Requests waiting for this job to change; woken on every applied event.
    waiters: RefCell<Vec<oneshot::Sender<()>>>,
}

#[derive(Serialize, Deserialize)]
pub struct JobEnvelope {
    pub job: JobState,
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
        if let Err(e) = sql.exec(
            "CREATE TABLE IF NOT EXISTS job (
                id TEXT PRIMARY KEY, state TEXT NOT NULL, settled INTEGER NOT NULL DEFAULT 0,
                deadline_ms INTEGER NOT NULL)",
            None,
        ) {
            worker::console_error!("job schema: {e}");
        }
        Self {
            state,
            env,
            sql,
            waiters: RefCell::new(Vec::new()),
        }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let path = req.path();
        let result = match (req.method(), path.as_str()) {
            (Method::Post, "/create") => match internal_body::<JobEnvelope>(&mut req).await {
                Ok(body) => self.create(body.job).await,
                Err(e) => Err(e),
            },
            (Method::Get, "/state") => self.get(),
            (Method::Get, "/wait") => self.wait(&req).await,
            (Method::Post, "/event") => match internal_body::<EventEnvelope>(&mut req).await {
                Ok(ev) => self.event(ev).await,
                Err(e) => Err(e),
            },
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

    fn load_existing(&self) -> EdgeResult<(JobState, bool, i64)> {
        self.load()?
            .ok_or_else(|| ApiError::not_found("job_not_found", "No such job.").into())
    }

    fn save(&self, job: &JobState) -> EdgeResult<()> {
        self.sql.exec(
            "UPDATE job SET state = ? WHERE id = ?",
            vec![serde_json::to_string(job)?.into(), job.id.as_str().into()],
        )?;
        Ok(())
    }

    fn wake(&self) {
        for w in self.waiters.borrow_mut().drain(..) {
            let _ = w.send(());
        }
    }

    async fn create(&self, job: JobState) -> EdgeResult<Response> {
        if let Some((existing, _, _)) = self.load()? {
            return json(200, &JobEnvelope { job: existing });
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
        self.state
            .storage()
            .set_alarm(deadline_ms.saturating_sub(now_ms()).max(1))
            .await?;
        let job = self.dispatch(job).await?;
        json(201, &JobEnvelope { job })
    }

    /// Hands the job to the first configured origin that accepts it. If none does, the
    /// job fails with 503 and its hold is released.
    async fn dispatch(&self, mut job: JobState) -> EdgeResult<JobState> {
        let keys = config::edge_to_origin_keys(&self.env)?;
        let body = serde_json::to_vec(&DispatchJob {
            job_id: job.id.clone(),
            attempt: job.attempt,
            model_id: job.model_id.clone(),
            workflow: job.workflow.clone(),
            params: job.params.clone(),
            input_files: job.input_files.clone(),
            test_mode: job.test_mode,
        })?;
        let mut last_error = String::from("no origin is configured");
        for (origin_id, url) in config::origins(&self.env)? {
            let signed = keys.sign(now_ms() / 1000, "POST", DISPATCH_PATH, &body);
            let mut headers = vec![("content-type", "application/json")];
            headers.extend(signed.pairs());
            let req = request(
                &format!("{url}{DISPATCH_PATH}"),
                Method::Post,
                &headers,
                Some(body.clone()),
            )?;
            match fetch_with_timeout(req, Duration::from_millis(DISPATCH_TIMEOUT_MS)).await {
                Ok(Some(resp)) if resp.status_code() == 202 => return Ok(job),
                Ok(Some(resp)) => {
                    last_error = format!("{origin_id} answered {}", resp.status_code())
                }
                Ok(None) => last_error = format!("{origin_id} did not answer in time"),
                Err(e) => last_error = format!("{origin_id}: {e:?}"),
            }
        }
        worker::console_warn!("job {} not dispatched: {last_error}", job.id);
        if job.fail(
            "no_capacity",
            "No GPU capacity was available for this job.",
            now_ms(),
        ) {
            self.save(&job)?;
            self.settle(&job).await?;
            self.wake();
        }
        Ok(job)
    }

    fn get(&self) -> EdgeResult<Response> {
        let (job, _, _) = self.load_existing()?;
        json(200, &JobEnvelope { job })
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
            let (job, _, _) = self.load_existing()?;
            let remaining = deadline - now_ms();
            if job.status.is_terminal() || remaining <= 0 {
                return json(200, &JobEnvelope { job });
            }
            let (tx, rx) = oneshot::channel();
            self.waiters.borrow_mut().push(tx);
            // The timer bounds each wait even if a wake-up is lost to an isolate reset.
            let timer = worker::Delay::from(Duration::from_millis(remaining.min(5_000) as u64));
            // Either a wake-up or the timer: look at the job again.
            select(rx, timer).await;
        }
    }

    async fn event(&self, ev: EventEnvelope) -> EdgeResult<Response> {
        let (mut job, _, _) = self.load_existing()?;
        match job.apply(&ev, now_ms()) {
            Err(ignored) => json(
                200,
                &json!({"applied": false, "reason": format!("{ignored:?}")}),
            ),
            Ok(applied) => {
                self.save(&job)?;
                if let Applied::Ended(_) = applied {
                    self.settle(&job).await?;
                }
                self.wake();
                json(200, &json!({"applied": true, "status": job.status}))
            }
        }
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
            capture: job.status == kiln_shared::jobs::JobStatus::Completed,
        })?;
        match call_do::<serde_json::Value>(&stub, Method::Post, "/settle", Some(&body)).await {
            Ok(_) => self.mark_settled(job),
            Err(e) => {
                worker::console_error!("settle {} failed, will retry: {e:?}", job.id);
                self.state.storage().set_alarm(SETTLE_RETRY_MS).await?;
                Ok(())
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
        let now = now_ms();
        if !job.status.is_terminal() {
            if now < deadline_ms {
                self.state.storage().set_alarm(deadline_ms - now).await?;
                return Ok(());
            }
            job.fail(
                "generation_timeout",
                "The job did not finish within its time limit.",
                now,
            );
            self.save(&job)?;
            self.wake();
        }
        if !settled {
            self.settle(&job).await?;
        }
        Ok(())
    }
}
