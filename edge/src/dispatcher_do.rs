//! The Dispatcher Durable Object (one per origin pool, named [`POOL`]): the registry of
//! GPU origins, the bounded fair queue, and the leases of running jobs (DESIGN.md flows
//! 2 and 6).
//!
//! - **Registry.** Origins come from the `ORIGINS` setting and from signed heartbeats
//!   (`Heartbeat`: url, slots, busy, models, resident models, running jobs). For an
//!   origin named in `ORIGINS`, the configured URL wins over the one it reports. An origin
//!   is *up* while its heartbeats are fresh, *unknown* when configured but never heard
//!   from (still tried), *down* when its heartbeats stopped or a dispatch to it failed.
//! - **Queue.** `enqueue` stores the job; the alarm hands queued jobs to origins with a
//!   free slot in the order of [`kiln_shared::queue::plan`] (round-robin across
//!   accounts, model-resident origins first). An origin's 503 or a network error leaves
//!   the job queued for the next round.
//! - **Leases.** A running job's lease is renewed by every heartbeat of its origin that
//!   lists it. A lease older than `LEASE_SECS` means the origin went silent: the Job DO
//!   decides (re-dispatch once elsewhere, or fail with a refund).
//!
//! The pick of a job and an origin, and marking them taken, run with no `await` in
//! between, so concurrent requests and the alarm cannot hand one job out twice. State
//! lives in SQL only.

use std::collections::HashMap;
use std::time::Duration;

use kiln_shared::ids::JobId;
use kiln_shared::origin::{cancel_path, DispatchJob, Heartbeat, DISPATCH_PATH};
use kiln_shared::queue::{self, Candidate, Waiting};
use kiln_shared::ApiError;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use worker::{durable_object, DurableObject, Env, Method, Request, Response, SqlStorage, State};

use crate::config;
use crate::error::{EdgeError, EdgeResult};
use crate::http::{call_do, fetch_with_timeout, internal_body, json, query_param, request};
use crate::jobs::job_stub;
use crate::now_ms;

/// The one pool today; more pools (regions, GPU kinds) would be more names.
pub const POOL: &str = "default";
/// How long the dispatcher waits for an origin to accept (or refuse) a job.
const DISPATCH_TIMEOUT_MS: u64 = 10_000;
/// How long a cancel waits for the origin to confirm it stopped.
const CANCEL_TIMEOUT_MS: u64 = 5_000;
/// An origin that answered 503 is not offered jobs again for this long, unless a
/// heartbeat or a finished job says it has room.
const FULL_BACKOFF_MS: i64 = 2_000;
/// An origin that could not be reached is not tried again for this long.
const DOWN_BACKOFF_MS: i64 = 3_000;
/// While jobs wait, the queue is looked at again at least this often.
const RETRY_TICK_MS: i64 = 1_000;
/// At most this many jobs wait; beyond it submissions get 503 `queue_full`.
pub const QUEUE_LEN_MAX: i64 = 1_000;
/// Durations kept per workflow for estimates.
const SAMPLES_PER_WORKFLOW: i64 = 100;
/// At most this many jobs are listed by `/active`.
const ACTIVE_LIST_MAX: i64 = 100;

#[durable_object]
pub struct DispatcherDo {
    state: State,
    env: Env,
    sql: SqlStorage,
}

/// `POST /enqueue`.
#[derive(Serialize, Deserialize)]
pub struct Enqueue {
    pub account_id: String,
    pub job: DispatchJob,
}

/// `POST /done`: a job ended (any way); its slot is free.
#[derive(Serialize, Deserialize)]
pub struct Done {
    pub job_id: String,
    /// Run time of a completed job, for estimates.
    pub run_ms: Option<i64>,
    pub workflow: String,
}

/// `POST /cancel`.
#[derive(Serialize, Deserialize)]
pub struct Cancel {
    pub job_id: String,
}

/// What the Job DO is told when its origin went silent, and what it answers.
#[derive(Serialize, Deserialize)]
pub struct Lost {
    pub attempt: u32,
    pub origin_id: String,
    /// Whether another live origin could take the job.
    pub can_retry: bool,
    /// The job never left the queue: no origin that serves its model has been up for a
    /// whole lease. It fails with 503 `no_capacity` instead of `origin_lost`.
    #[serde(default)]
    pub no_origin: bool,
}

#[derive(Serialize, Deserialize)]
pub struct LostAnswer {
    /// The job's next attempt, to queue again; `None` when it ended instead.
    pub requeue: Option<DispatchJob>,
}

#[derive(Serialize, Deserialize)]
pub struct Position {
    pub position: Option<u32>,
}

#[derive(Serialize, Deserialize)]
pub struct Active {
    pub job_ids: Vec<String>,
}

/// `GET /v1/queue/status`.
#[derive(Serialize, Deserialize)]
pub struct QueueStatus {
    pub status: String,
    pub queue_running: u64,
    pub queue_pending: u64,
    pub estimated_wait_seconds: f64,
    pub slots: u64,
}

/// `GET /v1/jobs/estimate`.
#[derive(Serialize, Deserialize)]
pub struct Estimate {
    pub avg_seconds: Option<f64>,
    pub sample_count: u64,
}

/// One origin as `/health` and `/v1/models` show it.
#[derive(Serialize, Deserialize, Clone)]
pub struct OriginView {
    pub id: String,
    pub url: String,
    /// `up`, `unknown` (configured, never heard from) or `down`.
    pub status: String,
    pub engine: Option<String>,
    pub simulated: Option<bool>,
    pub slots: u32,
    pub busy: u32,
    pub models: Vec<String>,
    pub resident_models: Vec<String>,
    pub vram_free_gb: Option<f64>,
    pub last_heartbeat_at: Option<String>,
}

#[derive(Deserialize)]
struct OriginRow {
    id: String,
    url: String,
    slots: i64,
    engine: Option<String>,
    simulated: Option<i64>,
    models: String,
    resident: String,
    vram_free_gb: Option<f64>,
    last_seen_ms: i64,
    down_until_ms: i64,
    full_until_ms: i64,
}

#[derive(Deserialize)]
struct JobRow {
    job_id: String,
    account_id: String,
    model_id: String,
    seq: i64,
    attempt: i64,
    state: String,
    origin_id: Option<String>,
    lease_ms: i64,
    exclude_origin: Option<String>,
    enqueued_ms: i64,
}

#[derive(Deserialize)]
struct Count {
    n: i64,
}

#[derive(Deserialize)]
struct Served {
    account_id: String,
    n: i64,
}

#[derive(Deserialize)]
struct Avg {
    avg_ms: Option<f64>,
    n: i64,
}

/// How an origin answered a dispatch.
enum Outcome {
    Accepted,
    Full,
    Unreachable(String),
}

impl DurableObject for DispatcherDo {
    fn new(state: State, env: Env) -> Self {
        let sql = state.storage().sql();
        let this = Self { state, env, sql };
        if let Err(e) = this.init() {
            worker::console_error!("dispatcher init: {e:?}");
        }
        this
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let path = req.path();
        let result = match (req.method(), path.as_str()) {
            (Method::Post, "/enqueue") => match internal_body::<Enqueue>(&mut req).await {
                Ok(b) => self.enqueue(b).await,
                Err(e) => Err(e),
            },
            (Method::Post, "/done") => match internal_body::<Done>(&mut req).await {
                Ok(b) => self.done(b).await,
                Err(e) => Err(e),
            },
            (Method::Post, "/cancel") => match internal_body::<Cancel>(&mut req).await {
                Ok(b) => self.cancel(b).await,
                Err(e) => Err(e),
            },
            (Method::Post, "/heartbeat") => match internal_body::<Heartbeat>(&mut req).await {
                Ok(b) => self.heartbeat(b).await,
                Err(e) => Err(e),
            },
            (Method::Get, "/position") => self.position(&req),
            (Method::Get, "/active") => self.active(&req),
            (Method::Get, "/status") => self.status(),
            (Method::Get, "/estimate") => self.estimate(&req),
            (Method::Get, "/origins") => self.origins().and_then(|o| json(200, &o)),
            _ => Err(ApiError::route_not_found("DO", &path).into()),
        };
        Ok(result.unwrap_or_else(EdgeError::into_response))
    }

    async fn alarm(&self) -> worker::Result<Response> {
        if let Err(e) = self.tick().await {
            worker::console_error!("dispatcher alarm: {e:?}");
        }
        if let Err(e) = self.rearm().await {
            worker::console_error!("dispatcher rearm: {e:?}");
            self.state.storage().set_alarm(RETRY_TICK_MS).await?;
        }
        Response::ok("")
    }
}

impl DispatcherDo {
    fn init(&self) -> EdgeResult<()> {
        self.sql.exec(
            "CREATE TABLE IF NOT EXISTS origins (
                id TEXT PRIMARY KEY, url TEXT NOT NULL, slots INTEGER NOT NULL DEFAULT 1,
                engine TEXT, simulated INTEGER, models TEXT NOT NULL DEFAULT '[]',
                resident TEXT NOT NULL DEFAULT '[]', vram_free_gb REAL,
                from_config INTEGER NOT NULL DEFAULT 0, last_seen_ms INTEGER NOT NULL DEFAULT 0,
                down_until_ms INTEGER NOT NULL DEFAULT 0, full_until_ms INTEGER NOT NULL DEFAULT 0)",
            None,
        )?;
        self.sql.exec(
            "CREATE TABLE IF NOT EXISTS jobs (
                job_id TEXT PRIMARY KEY, account_id TEXT NOT NULL, model_id TEXT NOT NULL,
                seq INTEGER NOT NULL, attempt INTEGER NOT NULL,
                state TEXT NOT NULL CHECK (state IN ('queued', 'dispatching', 'running')),
                origin_id TEXT, lease_ms INTEGER NOT NULL DEFAULT 0, exclude_origin TEXT,
                payload TEXT NOT NULL, enqueued_ms INTEGER NOT NULL)",
            None,
        )?;
        self.sql.exec(
            "CREATE TABLE IF NOT EXISTS served (account_id TEXT PRIMARY KEY, n INTEGER NOT NULL)",
            None,
        )?;
        self.sql.exec(
            "CREATE TABLE IF NOT EXISTS durations (
                id INTEGER PRIMARY KEY AUTOINCREMENT, workflow TEXT NOT NULL, ms INTEGER NOT NULL)",
            None,
        )?;
        self.sql.exec(
            "CREATE INDEX IF NOT EXISTS durations_by_workflow ON durations (workflow, id)",
            None,
        )?;
        // A dispatch cut short by an isolate reset: try again; an origin that did take
        // it answers 409 for the same attempt, which counts as accepted.
        self.sql.exec(
            "UPDATE jobs SET state = 'queued', origin_id = NULL WHERE state = 'dispatching'",
            None,
        )?;
        let configured = config::origins(&self.env).unwrap_or_default();
        for (id, url) in &configured {
            self.sql.exec(
                "INSERT INTO origins (id, url, from_config) VALUES (?, ?, 1)
                 ON CONFLICT (id) DO UPDATE SET url = excluded.url, from_config = 1",
                vec![id.as_str().into(), url.as_str().into()],
            )?;
        }
        // Configured origins that left the configuration and never sent a heartbeat.
        let keep: Vec<String> = configured.iter().map(|(id, _)| id.clone()).collect();
        let keep_json = serde_json::to_string(&keep)?;
        self.sql.exec(
            "DELETE FROM origins WHERE from_config = 1 AND last_seen_ms = 0
             AND id NOT IN (SELECT value FROM json_each(?))",
            vec![keep_json.into()],
        )?;
        Ok(())
    }

    fn lease_ms(&self) -> i64 {
        (config::lease_secs(&self.env) * 1000) as i64
    }

    fn origin_rows(&self) -> EdgeResult<Vec<OriginRow>> {
        Ok(self
            .sql
            .exec(
                "SELECT id, url, slots, engine, simulated, models, resident, vram_free_gb,
                        last_seen_ms, down_until_ms, full_until_ms FROM origins ORDER BY id",
                None,
            )?
            .to_array()?)
    }

    fn job_rows(&self, state: Option<&str>) -> EdgeResult<Vec<JobRow>> {
        let cols = "job_id, account_id, model_id, seq, attempt, state, origin_id, lease_ms,
                    exclude_origin, enqueued_ms";
        Ok(match state {
            Some(s) => self
                .sql
                .exec(
                    &format!("SELECT {cols} FROM jobs WHERE state = ? ORDER BY seq"),
                    vec![s.into()],
                )?
                .to_array()?,
            None => self
                .sql
                .exec(&format!("SELECT {cols} FROM jobs ORDER BY seq"), None)?
                .to_array()?,
        })
    }

    fn count(&self, query: &str) -> EdgeResult<i64> {
        let rows: Vec<Count> = self.sql.exec(query, None)?.to_array()?;
        Ok(rows.first().map(|c| c.n).unwrap_or(0))
    }

    fn count_where(&self, query: &str, value: &str) -> EdgeResult<i64> {
        let rows: Vec<Count> = self.sql.exec(query, vec![value.into()])?.to_array()?;
        Ok(rows.first().map(|c| c.n).unwrap_or(0))
    }

    /// `up`, `unknown` or `down` at `now`.
    fn origin_status(&self, o: &OriginRow, now: i64) -> &'static str {
        if o.down_until_ms > now {
            "down"
        } else if o.last_seen_ms == 0 {
            "unknown"
        } else if now - o.last_seen_ms <= self.lease_ms() {
            "up"
        } else {
            "down"
        }
    }

    fn origins(&self) -> EdgeResult<Vec<OriginView>> {
        let now = now_ms();
        let busy = self.busy_per_origin()?;
        self.origin_rows()?
            .into_iter()
            .map(|o| {
                Ok(OriginView {
                    status: self.origin_status(&o, now).to_owned(),
                    busy: busy.get(&o.id).copied().unwrap_or(0),
                    slots: o.slots as u32,
                    engine: o.engine.clone(),
                    simulated: o.simulated.map(|s| s != 0),
                    models: serde_json::from_str(&o.models)?,
                    resident_models: serde_json::from_str(&o.resident)?,
                    vram_free_gb: o.vram_free_gb,
                    last_heartbeat_at: (o.last_seen_ms > 0)
                        .then(|| kiln_shared::time::rfc3339(o.last_seen_ms)),
                    id: o.id,
                    url: o.url,
                })
            })
            .collect()
    }

    fn busy_per_origin(&self) -> EdgeResult<HashMap<String, u32>> {
        #[derive(Deserialize)]
        struct Busy {
            origin_id: String,
            n: i64,
        }
        let rows: Vec<Busy> = self
            .sql
            .exec(
                "SELECT origin_id, COUNT(*) AS n FROM jobs
                 WHERE state IN ('dispatching', 'running') AND origin_id IS NOT NULL
                 GROUP BY origin_id",
                None,
            )?
            .to_array()?;
        Ok(rows
            .into_iter()
            .map(|b| (b.origin_id, b.n as u32))
            .collect())
    }

    /// Origins that may be offered `model` now (up or unknown), with their free slots.
    fn candidates(&self, now: i64) -> EdgeResult<Vec<Candidate>> {
        let busy = self.busy_per_origin()?;
        let mut out = Vec::new();
        for o in self.origin_rows()? {
            if self.origin_status(&o, now) == "down" {
                continue;
            }
            let used = busy.get(&o.id).copied().unwrap_or(0);
            let free = if o.full_until_ms > now {
                0
            } else {
                (o.slots.max(0) as u32).saturating_sub(used)
            };
            out.push(Candidate {
                models: serde_json::from_str(&o.models)?,
                resident: serde_json::from_str(&o.resident)?,
                id: o.id,
                free,
            });
        }
        Ok(out)
    }

    /// Whether some origin other than `except` that serves `model` is up or unknown.
    fn any_origin_for(&self, model: &str, except: Option<&str>, now: i64) -> EdgeResult<bool> {
        Ok(self.candidates(now)?.iter().any(|c| {
            Some(c.id.as_str()) != except
                && (c.models.is_empty() || c.models.iter().any(|m| m == model))
        }))
    }

    fn waiting(&self) -> EdgeResult<Vec<Waiting>> {
        Ok(self
            .job_rows(Some("queued"))?
            .into_iter()
            .map(|r| Waiting {
                job_id: r.job_id,
                account_id: r.account_id,
                model_id: r.model_id,
                seq: r.seq,
                exclude_origin: r.exclude_origin,
            })
            .collect())
    }

    fn served(&self) -> EdgeResult<HashMap<String, i64>> {
        let rows: Vec<Served> = self
            .sql
            .exec("SELECT account_id, n FROM served", None)?
            .to_array()?;
        Ok(rows.into_iter().map(|s| (s.account_id, s.n)).collect())
    }

    async fn enqueue(&self, req: Enqueue) -> EdgeResult<Response> {
        let job_id = req.job.job_id.to_string();
        let exists =
            self.count_where("SELECT COUNT(*) AS n FROM jobs WHERE job_id = ?", &job_id)? > 0;
        if !exists {
            let now = now_ms();
            if self.count("SELECT COUNT(*) AS n FROM jobs WHERE state = 'queued'")? >= QUEUE_LEN_MAX
            {
                return Err(ApiError::new(
                    503,
                    "queue_full",
                    "The queue is full; try again in a minute.",
                )
                .into());
            }
            if !self.any_origin_for(&req.job.model_id, None, now)? {
                return Err(ApiError::new(
                    503,
                    "no_capacity",
                    format!(
                        "No GPU origin serving {} is up right now.",
                        req.job.model_id
                    ),
                )
                .into());
            }
            let seq = self
                .count("SELECT COALESCE(MAX(seq), 0) + 1 AS n FROM jobs")?
                .max(1);
            self.sql.exec(
                "INSERT INTO jobs (job_id, account_id, model_id, seq, attempt, state, payload,
                                   enqueued_ms)
                 VALUES (?, ?, ?, ?, ?, 'queued', ?, ?)",
                vec![
                    job_id.as_str().into(),
                    req.account_id.as_str().into(),
                    req.job.model_id.as_str().into(),
                    seq.into(),
                    i64::from(req.job.attempt).into(),
                    serde_json::to_string(&req.job)?.into(),
                    now.into(),
                ],
            )?;
            self.pump_soon().await?;
        }
        json(
            200,
            &Position {
                position: self.position_of(&job_id)?,
            },
        )
    }

    fn position_of(&self, job_id: &str) -> EdgeResult<Option<u32>> {
        let waiting = self.waiting()?;
        let order = queue::fair_order(&waiting, &self.served()?);
        Ok(order
            .iter()
            .position(|&i| waiting[i].job_id == job_id)
            .map(|p| p as u32 + 1))
    }

    fn position(&self, req: &Request) -> EdgeResult<Response> {
        let job_id = query_param(req, "job_id")?.unwrap_or_default();
        json(
            200,
            &Position {
                position: self.position_of(&job_id)?,
            },
        )
    }

    fn active(&self, req: &Request) -> EdgeResult<Response> {
        #[derive(Deserialize)]
        struct Id {
            job_id: String,
        }
        let account = query_param(req, "account_id")?.unwrap_or_default();
        let rows: Vec<Id> = self
            .sql
            .exec(
                "SELECT job_id FROM jobs WHERE account_id = ? ORDER BY seq LIMIT ?",
                vec![account.into(), ACTIVE_LIST_MAX.into()],
            )?
            .to_array()?;
        json(
            200,
            &Active {
                job_ids: rows.into_iter().map(|r| r.job_id).collect(),
            },
        )
    }

    fn avg_secs(&self, workflow: &str) -> EdgeResult<(Option<f64>, u64)> {
        let rows: Vec<Avg> = self
            .sql
            .exec(
                "SELECT AVG(ms) AS avg_ms, COUNT(*) AS n FROM durations WHERE workflow = ?",
                vec![workflow.into()],
            )?
            .to_array()?;
        Ok(match rows.first() {
            Some(a) if a.n > 0 => (a.avg_ms.map(|ms| (ms / 100.0).round() / 10.0), a.n as u64),
            _ => (None, 0),
        })
    }

    fn estimate(&self, req: &Request) -> EdgeResult<Response> {
        let workflow = query_param(req, "workflow")?.unwrap_or_default();
        let (avg_seconds, sample_count) = self.avg_secs(&workflow)?;
        json(
            200,
            &Estimate {
                avg_seconds,
                sample_count,
            },
        )
    }

    fn status(&self) -> EdgeResult<Response> {
        let now = now_ms();
        let running = self.count("SELECT COUNT(*) AS n FROM jobs WHERE state != 'queued'")? as u64;
        let pending = self.count("SELECT COUNT(*) AS n FROM jobs WHERE state = 'queued'")? as u64;
        let slots: u64 = self
            .origin_rows()?
            .iter()
            .filter(|o| self.origin_status(o, now) != "down")
            .map(|o| o.slots.max(0) as u64)
            .sum();
        // The typical job: the mean over every workflow's recent samples.
        let avg: Vec<Avg> = self
            .sql
            .exec(
                "SELECT AVG(ms) AS avg_ms, COUNT(*) AS n FROM durations",
                None,
            )?
            .to_array()?;
        let avg_secs = avg
            .first()
            .and_then(|a| a.avg_ms)
            .map(|ms| ms / 1000.0)
            .unwrap_or(kiln_shared::catalog::typical_secs("flux2-dev:txt2img").unwrap_or(25.0));
        json(
            200,
            &QueueStatus {
                status: if running + pending == 0 {
                    "idle"
                } else {
                    "busy"
                }
                .to_owned(),
                queue_running: running,
                queue_pending: pending,
                estimated_wait_seconds: queue::estimated_wait_secs(
                    pending, running, slots, avg_secs,
                ),
                slots,
            },
        )
    }

    async fn done(&self, req: Done) -> EdgeResult<Response> {
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
        json(200, &json!({"ok": true}))
    }

    async fn cancel(&self, req: Cancel) -> EdgeResult<Response> {
        let rows: Vec<JobRow> = self
            .sql
            .exec(
                "DELETE FROM jobs WHERE job_id = ? RETURNING job_id, account_id, model_id, seq,
                 attempt, state, origin_id, lease_ms, exclude_origin, enqueued_ms",
                vec![req.job_id.as_str().into()],
            )?
            .to_array()?;
        let Some(row) = rows.into_iter().next() else {
            return json(200, &json!({"was": "none"}));
        };
        if row.state == "queued" {
            return json(200, &json!({"was": "queued"}));
        }
        // Running: tell its origin to stop, so the GPU is free for the next job.
        let stopped = match &row.origin_id {
            Some(origin) => self.stop_on_origin(origin, &row.job_id).await,
            None => false,
        };
        self.pump_soon().await?;
        json(200, &json!({"was": "running", "origin_stopped": stopped}))
    }

    async fn stop_on_origin(&self, origin_id: &str, job_id: &str) -> bool {
        let Some(url) = self
            .origin_rows()
            .ok()
            .and_then(|rows| rows.into_iter().find(|o| o.id == origin_id).map(|o| o.url))
        else {
            return false;
        };
        let Some(id) = JobId::parse(job_id) else {
            return false;
        };
        let path = cancel_path(&id);
        let keys = match config::edge_to_origin_keys(&self.env) {
            Ok(k) => k,
            Err(_) => return false,
        };
        let signed = keys.sign(now_ms() / 1000, "DELETE", &path, b"");
        let req = match request(
            &format!("{url}{path}"),
            Method::Delete,
            &signed.pairs(),
            None,
        ) {
            Ok(r) => r,
            Err(_) => return false,
        };
        match fetch_with_timeout(req, Duration::from_millis(CANCEL_TIMEOUT_MS)).await {
            Ok(Some(resp)) => resp.status_code() == 200,
            other => {
                worker::console_warn!("cancel of {job_id} on {origin_id}: {:?}", other.is_ok());
                false
            }
        }
    }

    async fn heartbeat(&self, hb: Heartbeat) -> EdgeResult<Response> {
        let now = now_ms();
        let url = hb.url.trim_end_matches('/').to_owned();
        self.sql.exec(
            "INSERT INTO origins (id, url, slots, engine, simulated, models, resident,
                                  vram_free_gb, last_seen_ms, down_until_ms, full_until_ms)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0)
             ON CONFLICT (id) DO UPDATE SET
               url = CASE WHEN origins.from_config = 1 THEN origins.url ELSE excluded.url END,
               slots = excluded.slots,
               engine = excluded.engine, simulated = excluded.simulated,
               models = excluded.models, resident = excluded.resident,
               vram_free_gb = excluded.vram_free_gb, last_seen_ms = excluded.last_seen_ms,
               down_until_ms = 0, full_until_ms = 0",
            vec![
                hb.origin_id.as_str().into(),
                url.into(),
                i64::from(hb.slots).into(),
                hb.engine.as_str().into(),
                i64::from(hb.simulated).into(),
                serde_json::to_string(&hb.models)?.into(),
                serde_json::to_string(&hb.resident_models)?.into(),
                hb.vram_free_gb.into(),
                now.into(),
            ],
        )?;
        for r in &hb.running {
            self.sql.exec(
                "UPDATE jobs SET lease_ms = ? WHERE job_id = ? AND origin_id = ? AND attempt = ?
                 AND state = 'running'",
                vec![
                    now.into(),
                    r.job_id.as_str().into(),
                    hb.origin_id.as_str().into(),
                    i64::from(r.attempt).into(),
                ],
            )?;
        }
        if hb.busy < hb.slots
            && self.count("SELECT COUNT(*) AS n FROM jobs WHERE state = 'queued'")? > 0
        {
            self.pump_soon().await?;
        }
        json(200, &json!({"ok": true}))
    }

    /// Runs the alarm as soon as possible: it hands out queued jobs.
    async fn pump_soon(&self) -> EdgeResult<()> {
        self.state.storage().set_alarm(1).await?;
        Ok(())
    }

    /// Sets the next alarm: soon while jobs wait, at the earliest lease expiry while
    /// jobs run, none when idle.
    async fn rearm(&self) -> EdgeResult<()> {
        let now = now_ms();
        let queued = self.count("SELECT COUNT(*) AS n FROM jobs WHERE state = 'queued'")?;
        let running = self.job_rows(Some("running"))?;
        let lease = self.lease_ms();
        let next_lease = running.iter().map(|r| r.lease_ms + lease - now).min();
        // Jobs that arrived while this round was dispatching, with a slot free for
        // them: hand them out at once rather than on the next tick.
        let ready = queued > 0
            && !queue::plan(&self.waiting()?, &self.served()?, &self.candidates(now)?).is_empty();
        let next = match (queued > 0, next_lease) {
            _ if ready => Some(1),
            (true, Some(l)) => Some(l.min(RETRY_TICK_MS)),
            (true, None) => Some(RETRY_TICK_MS),
            (false, Some(l)) => Some(l),
            (false, None) => None,
        };
        match next {
            Some(ms) => self.state.storage().set_alarm(ms.max(1)).await?,
            None => self.state.storage().delete_alarm().await?,
        }
        Ok(())
    }

    /// One round: take back jobs from silent origins, give up on queued jobs no origin
    /// can serve, then hand out queued jobs.
    async fn tick(&self) -> EdgeResult<()> {
        self.expire_leases().await?;
        self.fail_unservable().await?;
        self.pump().await
    }

    /// Queued jobs that have waited a whole lease while no origin serving their model
    /// was up (or unknown) fail with 503 and a refund, rather than waiting for the hard
    /// timeout. Submissions in that state are refused at once by `enqueue`.
    async fn fail_unservable(&self) -> EdgeResult<()> {
        let now = now_ms();
        let lease = self.lease_ms();
        for row in self.job_rows(Some("queued"))? {
            if now - row.enqueued_ms <= lease
                || self.any_origin_for(&row.model_id, row.exclude_origin.as_deref(), now)?
            {
                continue;
            }
            let lost = Lost {
                attempt: row.attempt as u32,
                origin_id: String::new(),
                can_retry: false,
                no_origin: true,
            };
            let answer = self.tell_job_lost(&row.job_id, &lost).await;
            match answer {
                Ok(_) => {
                    self.sql.exec(
                        "DELETE FROM jobs WHERE job_id = ? AND state = 'queued'",
                        vec![row.job_id.as_str().into()],
                    )?;
                }
                Err(e) => worker::console_error!("unservable {}: {e:?}", row.job_id),
            }
        }
        Ok(())
    }

    async fn expire_leases(&self) -> EdgeResult<()> {
        let now = now_ms();
        let lease = self.lease_ms();
        for row in self.job_rows(Some("running"))? {
            if now - row.lease_ms <= lease {
                continue;
            }
            let origin = row.origin_id.clone().unwrap_or_default();
            worker::console_warn!(
                "job {} lost its origin {origin} (no sign of life for {} ms)",
                row.job_id,
                now - row.lease_ms
            );
            // The origin is silent: no more jobs for it until it is heard from again.
            self.sql.exec(
                "UPDATE origins SET down_until_ms = ? WHERE id = ? AND last_seen_ms < ?",
                vec![
                    (now + DOWN_BACKOFF_MS).into(),
                    origin.as_str().into(),
                    (now - lease).into(),
                ],
            )?;
            let lost = Lost {
                attempt: row.attempt as u32,
                origin_id: origin.clone(),
                can_retry: self.any_origin_for(&row.model_id, Some(&origin), now)?,
                no_origin: false,
            };
            let answer = self.tell_job_lost(&row.job_id, &lost).await;
            match answer {
                Ok(LostAnswer {
                    requeue: Some(next),
                }) => {
                    self.sql.exec(
                        "UPDATE jobs SET state = 'queued', origin_id = NULL, attempt = ?,
                         exclude_origin = ?, payload = ?, lease_ms = 0 WHERE job_id = ?",
                        vec![
                            i64::from(next.attempt).into(),
                            origin.as_str().into(),
                            serde_json::to_string(&next)?.into(),
                            row.job_id.as_str().into(),
                        ],
                    )?;
                }
                Ok(LostAnswer { requeue: None }) => {
                    self.sql.exec(
                        "DELETE FROM jobs WHERE job_id = ?",
                        vec![row.job_id.as_str().into()],
                    )?;
                }
                // The Job DO will be asked again on the next round.
                Err(e) => worker::console_error!("lost {}: {e:?}", row.job_id),
            }
        }
        Ok(())
    }

    /// Tells a job's DO that it cannot run where it was (its origin went silent, or no
    /// origin serves it); the Job DO decides whether it goes back to the queue.
    async fn tell_job_lost(&self, job_id: &str, lost: &Lost) -> EdgeResult<LostAnswer> {
        let id = JobId::parse(job_id).ok_or_else(ApiError::internal)?;
        let body = serde_json::to_value(lost)?;
        call_do(
            &job_stub(&self.env, &id)?,
            Method::Post,
            "/lost",
            Some(&body),
        )
        .await
    }

    async fn pump(&self) -> EdgeResult<()> {
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
                "UPDATE jobs SET state = 'dispatching', origin_id = ? WHERE job_id = ?",
                vec![origin_id.as_str().into(), w.job_id.as_str().into()],
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
                        "UPDATE jobs SET state = 'running', lease_ms = ?
                         WHERE job_id = ? AND state = 'dispatching'",
                        vec![now.into(), job_id.as_str().into()],
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
            "UPDATE jobs SET state = 'queued', origin_id = NULL
             WHERE job_id = ? AND state = 'dispatching'",
            vec![job_id.into()],
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

/// The pool's Dispatcher DO.
pub fn dispatcher_stub(env: &Env) -> EdgeResult<worker::Stub> {
    Ok(env
        .durable_object("DISPATCHER")?
        .id_from_name(POOL)?
        .get_stub()?)
}

/// The catalog's `available` flag: some origin serving `model` is up.
pub fn serving(origins: &[OriginView], model: &str) -> bool {
    origins
        .iter()
        .any(|o| o.status == "up" && (o.models.is_empty() || o.models.iter().any(|m| m == model)))
}

/// For callers that want the registry as JSON values.
pub fn origins_json(origins: &[OriginView]) -> Vec<Value> {
    origins
        .iter()
        .map(|o| {
            json!({
                "id": o.id,
                "status": o.status,
                "engine": o.engine,
                "simulated": o.simulated,
                "slots": o.slots,
                "busy": o.busy,
                "models": o.models,
                "resident_models": o.resident_models,
                "vram_free_gb": o.vram_free_gb,
                "last_heartbeat_at": o.last_heartbeat_at,
            })
        })
        .collect()
}
