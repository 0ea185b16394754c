//! The fair queue: enqueue, places, hand-out rounds (the signed dispatch to an origin),
//! and jobs leaving it (finished or withdrawn).

use std::collections::HashMap;
use std::time::Duration;

use kiln_shared::ids::JobId;
use kiln_shared::origin::DISPATCH_PATH;
use kiln_shared::queue::{self, Waiting};
use kiln_shared::{ApiError, ErrorCode};
use serde::Deserialize;
use worker::Method;

use super::proto::*;
use super::{DispatcherDo, JobRow, Slot, JOB_COLUMNS};
use crate::platform::clock::now_ms;
use crate::platform::config;
use crate::platform::error::EdgeResult;
use crate::platform::http::{fetch_with_timeout, request};

/// How long the dispatcher waits for an origin to accept (or refuse) a job.
const DISPATCH_TIMEOUT_MS: u64 = 10_000;
/// An origin that answered 503 is not offered jobs again for this long, unless a
/// heartbeat or a finished job says it has room.
const FULL_BACKOFF_MS: i64 = 2_000;
/// An origin that could not be reached is not tried again for this long.
pub(super) const DOWN_BACKOFF_MS: i64 = 3_000;
/// At most this many jobs wait; beyond it submissions get 503 `queue_full`.
pub const QUEUE_LEN_MAX: i64 = 1_000;
/// At most this many jobs are listed as active.
const ACTIVE_LIST_MAX: i64 = 100;
/// Durations kept per workflow for estimates.
const SAMPLES_PER_WORKFLOW: i64 = 100;

/// How an origin answered a dispatch.
enum Outcome {
    Accepted,
    Full,
    Unreachable(String),
}

#[derive(Deserialize)]
struct Served {
    account_id: String,
    n: i64,
}

impl DispatcherDo {
    pub(super) fn waiting(&self) -> EdgeResult<Vec<Waiting>> {
        Ok(self
            .job_rows(Slot::Queued)?
            .into_iter()
            .map(|r| Waiting {
                job_id: r.job_id.to_string(),
                account_id: r.account_id,
                model_id: r.model_id,
                seq: r.seq,
                exclude_origin: r.exclude_origin,
            })
            .collect())
    }

    pub(super) fn served(&self) -> EdgeResult<HashMap<String, i64>> {
        let rows: Vec<Served> = self
            .sql
            .exec("SELECT account_id, n FROM served", None)?
            .to_array()?;
        Ok(rows.into_iter().map(|s| (s.account_id, s.n)).collect())
    }

    pub(super) async fn enqueue(&self, req: Enqueue) -> EdgeResult<Position> {
        let job_id = req.job.job_id.to_string();
        let exists = self.count(
            "SELECT COUNT(*) AS n FROM jobs WHERE job_id = ?",
            vec![job_id.as_str().into()],
        )? > 0;
        if !exists {
            let now = now_ms();
            if self.queued_count()? >= QUEUE_LEN_MAX {
                return Err(ApiError::new(
                    503,
                    ErrorCode::QueueFull,
                    "The queue is full; try again in a minute.",
                )
                .into());
            }
            if !self.any_origin_for(&req.job.model_id, None, now)? {
                return Err(ApiError::new(
                    503,
                    ErrorCode::NoCapacity,
                    format!(
                        "No GPU origin serving {} is up right now.",
                        req.job.model_id
                    ),
                )
                .into());
            }
            let seq = self
                .count("SELECT COALESCE(MAX(seq), 0) + 1 AS n FROM jobs", vec![])?
                .max(1);
            self.sql.exec(
                "INSERT INTO jobs (job_id, account_id, model_id, seq, attempt, state, payload,
                                   enqueued_ms)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                vec![
                    job_id.as_str().into(),
                    req.account_id.as_str().into(),
                    req.job.model_id.as_str().into(),
                    seq.into(),
                    i64::from(req.job.attempt).into(),
                    Slot::Queued.as_str().into(),
                    serde_json::to_string(&req.job)?.into(),
                    now.into(),
                ],
            )?;
            self.pump_soon().await?;
        }
        Ok(Position {
            position: self.position_of(&job_id)?,
        })
    }

    pub(super) fn position_of(&self, job_id: &str) -> EdgeResult<Option<u32>> {
        let waiting = self.waiting()?;
        let order = queue::fair_order(&waiting, &self.served()?);
        Ok(order
            .iter()
            .position(|&i| waiting[i].job_id == job_id)
            .and_then(|p| u32::try_from(p + 1).ok()))
    }

    pub(super) fn active(&self, req: ListActive) -> EdgeResult<Active> {
        #[derive(Deserialize)]
        struct Id {
            job_id: JobId,
        }
        let rows: Vec<Id> = self
            .sql
            .exec(
                "SELECT job_id FROM jobs WHERE account_id = ? ORDER BY seq LIMIT ?",
                vec![req.account_id.as_str().into(), ACTIVE_LIST_MAX.into()],
            )?
            .to_array()?;
        Ok(Active {
            job_ids: rows.into_iter().map(|r| r.job_id).collect(),
        })
    }

    /// A job ended: its slot is free, and a completed job's run time is a sample.
    pub(super) async fn finish(&self, req: Finish) -> EdgeResult<Ack> {
        #[derive(Deserialize)]
        struct O {
            origin_id: Option<String>,
        }
        let rows: Vec<O> = self
            .sql
            .exec(
                "DELETE FROM jobs WHERE job_id = ? RETURNING origin_id",
                vec![req.job_id.as_str().into()],
            )?
            .to_array()?;
        if let Some(origin) = rows.into_iter().next().and_then(|r| r.origin_id) {
            // It just finished a job, so it has room now.
            self.sql.exec(
                "UPDATE origins SET full_until_ms = 0 WHERE id = ?",
                vec![origin.into()],
            )?;
        }
        if let Some(ms) = req.run_ms.filter(|ms| *ms >= 0) {
            self.sql.exec(
                "INSERT INTO durations (workflow, ms) VALUES (?, ?)",
                vec![req.workflow.as_str().into(), ms.into()],
            )?;
            self.sql.exec(
                "DELETE FROM durations WHERE workflow = ? AND id NOT IN
                   (SELECT id FROM durations WHERE workflow = ? ORDER BY id DESC LIMIT ?)",
                vec![
                    req.workflow.as_str().into(),
                    req.workflow.as_str().into(),
                    SAMPLES_PER_WORKFLOW.into(),
                ],
            )?;
        }
        self.pump_soon().await?;
        Ok(Ack)
    }

    /// Takes a job out of the queue, or off its origin (told to stop, so the GPU is
    /// free for the next job).
    pub(super) async fn withdraw(&self, req: Withdraw) -> EdgeResult<Withdrawn> {
        let rows: Vec<JobRow> = self
            .sql
            .exec(
                &format!("DELETE FROM jobs WHERE job_id = ? RETURNING {JOB_COLUMNS}"),
                vec![req.job_id.as_str().into()],
            )?
            .to_array()?;
        let Some(row) = rows.into_iter().next() else {
            return Ok(Withdrawn::None);
        };
        if row.state == Slot::Queued {
            return Ok(Withdrawn::Queued);
        }
        let origin_stopped = match &row.origin_id {
            Some(origin) => self.stop_on_origin(origin, &row.job_id).await,
            None => false,
        };
        self.pump_soon().await?;
        Ok(Withdrawn::Running { origin_stopped })
    }

    /// One hand-out round: queued jobs to origins with free slots, in fair order.
    pub(super) async fn pump(&self) -> EdgeResult<()> {
        let now = now_ms();
        let waiting = self.waiting()?;
        if waiting.is_empty() {
            return Ok(());
        }
        let served = self.served()?;
        let plan = queue::plan(&waiting, &served, &self.candidates(now)?);
        if plan.is_empty() {
            return Ok(());
        }
        let origins: HashMap<String, String> = self
            .origin_rows()?
            .into_iter()
            .map(|o| (o.id, o.url))
            .collect();
        let mut counter = served.values().copied().max().unwrap_or(0);
        let mut sends = Vec::with_capacity(plan.len());
        for (i, origin_id) in plan {
            let w = &waiting[i];
            counter += 1;
            // Taken, before any await: nobody else can hand this job out now.
            self.sql.exec(
                "UPDATE jobs SET state = ?, origin_id = ? WHERE job_id = ?",
                vec![
                    Slot::Dispatching.as_str().into(),
                    origin_id.as_str().into(),
                    w.job_id.as_str().into(),
                ],
            )?;
            self.sql.exec(
                "INSERT INTO served (account_id, n) VALUES (?, ?)
                 ON CONFLICT (account_id) DO UPDATE SET n = excluded.n",
                vec![w.account_id.as_str().into(), counter.into()],
            )?;
            let url = origins.get(&origin_id).cloned().unwrap_or_default();
            sends.push(self.send(w.job_id.clone(), origin_id, url));
        }
        for (job_id, origin_id, outcome) in futures_util::future::join_all(sends).await {
            let now = now_ms();
            match outcome {
                Outcome::Accepted => {
                    self.sql.exec(
                        "UPDATE jobs SET state = ?, lease_ms = ? WHERE job_id = ? AND state = ?",
                        vec![
                            Slot::Running.as_str().into(),
                            now.into(),
                            job_id.as_str().into(),
                            Slot::Dispatching.as_str().into(),
                        ],
                    )?;
                }
                Outcome::Full => {
                    self.requeue_after_refusal(&job_id)?;
                    self.sql.exec(
                        "UPDATE origins SET full_until_ms = ? WHERE id = ?",
                        vec![(now + FULL_BACKOFF_MS).into(), origin_id.as_str().into()],
                    )?;
                }
                Outcome::Unreachable(why) => {
                    worker::console_warn!("dispatch of {job_id} to {origin_id} failed: {why}");
                    self.requeue_after_refusal(&job_id)?;
                    self.sql.exec(
                        "UPDATE origins SET down_until_ms = ? WHERE id = ?",
                        vec![(now + DOWN_BACKOFF_MS).into(), origin_id.as_str().into()],
                    )?;
                }
            }
        }
        Ok(())
    }

    fn requeue_after_refusal(&self, job_id: &str) -> EdgeResult<()> {
        self.sql.exec(
            "UPDATE jobs SET state = ?, origin_id = NULL WHERE job_id = ? AND state = ?",
            vec![
                Slot::Queued.as_str().into(),
                job_id.into(),
                Slot::Dispatching.as_str().into(),
            ],
        )?;
        Ok(())
    }

    /// POSTs the signed job to an origin.
    async fn send(
        &self,
        job_id: String,
        origin_id: String,
        url: String,
    ) -> (String, String, Outcome) {
        let outcome = self
            .send_inner(&job_id, &url)
            .await
            .unwrap_or_else(|e| Outcome::Unreachable(format!("{e:?}")));
        (job_id, origin_id, outcome)
    }

    async fn send_inner(&self, job_id: &str, url: &str) -> EdgeResult<Outcome> {
        #[derive(Deserialize)]
        struct P {
            payload: String,
        }
        let rows: Vec<P> = self
            .sql
            .exec(
                "SELECT payload FROM jobs WHERE job_id = ?",
                vec![job_id.into()],
            )?
            .to_array()?;
        let Some(p) = rows.into_iter().next() else {
            // Cancelled while being handed out.
            return Ok(Outcome::Accepted);
        };
        let body = p.payload.into_bytes();
        let keys = config::edge_to_origin_keys(&self.env)?;
        let signed = keys.sign(now_ms() / 1000, "POST", DISPATCH_PATH, &body);
        let mut headers = vec![("content-type", "application/json")];
        headers.extend(signed.pairs());
        let req = request(
            &format!("{url}{DISPATCH_PATH}"),
            Method::Post,
            &headers,
            Some(body),
        )?;
        Ok(
            match fetch_with_timeout(req, Duration::from_millis(DISPATCH_TIMEOUT_MS)).await {
                // 409: the origin already has this attempt (a retried hand-out).
                Ok(Some(resp)) if matches!(resp.status_code(), 202 | 409) => Outcome::Accepted,
                Ok(Some(resp)) if resp.status_code() == 503 => Outcome::Full,
                Ok(Some(resp)) => Outcome::Unreachable(format!("answered {}", resp.status_code())),
                Ok(None) => Outcome::Unreachable("timed out".into()),
                Err(e) => Outcome::Unreachable(format!("{e:?}")),
            },
        )
    }
}
