//! The Dispatcher Durable Object (one per origin pool; see `platform::bindings::POOL`):
//! the registry of GPU origins, the bounded fair queue, and the leases of running jobs
//! (`docs/architecture.md`, "2. Queue and dispatch" and "6. Lost origins").
//!
//! - [`registry`] — origins come from the `ORIGINS` setting and from signed heartbeats
//!   (url, slots, busy, models, resident models, running jobs). For an origin named in
//!   `ORIGINS`, the configured URL wins over the one it reports. Its status is
//!   [`OriginStatus`]: up while its heartbeats are fresh, unknown when configured but
//!   never heard from (still tried), down when its heartbeats stopped or a dispatch to
//!   it failed.
//! - [`queue`] — `Enqueue` stores the job; the alarm hands queued jobs to origins with
//!   a free slot in the order of [`kiln_shared::queue::plan`] (round-robin across
//!   accounts, model-resident origins first). An origin's 503 or a network error leaves
//!   the job queued for the next round.
//! - [`leases`] — a running job's lease is renewed by every heartbeat of its origin that
//!   lists it. A lease older than `LEASE_SECS` means the origin went silent: the Job DO
//!   decides (re-dispatch once elsewhere, or fail with a refund).
//! - [`estimates`] — run times of recent jobs, queue status.
//!
//! The pick of a job and an origin, and marking them taken, run with no `await` in
//! between, so concurrent requests and the alarm cannot hand one job out twice. State
//! lives in SQL only.

pub mod estimates;
pub mod leases;
pub mod proto;
pub mod queue;
pub mod registry;

use kiln_shared::ids::JobId;
use kiln_shared::queue::OriginStatus;
use serde::Deserialize;
use worker::{durable_object, DurableObject, Env, Request, Response, SqlStorage, State};

use crate::platform::config;
use crate::platform::error::EdgeResult;
use crate::platform::rpc::{self, Message};
use proto::*;

/// While jobs wait, the queue is looked at again at least this often.
const RETRY_TICK_MS: i64 = 1_000;

#[durable_object]
pub struct DispatcherDo {
    state: State,
    env: Env,
    sql: SqlStorage,
}

/// Where a job stands in the dispatcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Slot {
    /// Waiting for an origin.
    Queued,
    /// Being handed to an origin (taken, not yet accepted).
    Dispatching,
    /// Accepted by its origin; under lease.
    Running,
}

impl Slot {
    fn as_str(self) -> &'static str {
        match self {
            Slot::Queued => "queued",
            Slot::Dispatching => "dispatching",
            Slot::Running => "running",
        }
    }
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
    problem: Option<String>,
}

#[derive(Deserialize)]
struct JobRow {
    job_id: JobId,
    account_id: String,
    model_id: String,
    seq: i64,
    attempt: u32,
    state: Slot,
    origin_id: Option<String>,
    lease_ms: i64,
    exclude_origin: Option<String>,
    enqueued_ms: i64,
}

const JOB_COLUMNS: &str = "job_id, account_id, model_id, seq, attempt, state, origin_id, lease_ms,
    exclude_origin, enqueued_ms";

#[derive(Deserialize)]
struct Count {
    n: i64,
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
        rpc::respond(self.route(&mut req).await)
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
    async fn route(&self, req: &mut Request) -> EdgeResult<Response> {
        match req.path().as_str() {
            Enqueue::PATH => rpc::answer::<Enqueue>(self.enqueue(rpc::read(req).await?).await),
            GetPosition::PATH => {
                let m: GetPosition = rpc::read(req).await?;
                rpc::answer::<GetPosition>(
                    self.position_of(m.job_id.as_str())
                        .map(|position| Position { position }),
                )
            }
            Finish::PATH => rpc::answer::<Finish>(self.finish(rpc::read(req).await?).await),
            Withdraw::PATH => rpc::answer::<Withdraw>(self.withdraw(rpc::read(req).await?).await),
            kiln_shared::origin::Heartbeat::PATH => rpc::answer::<kiln_shared::origin::Heartbeat>(
                self.heartbeat(rpc::read(req).await?).await,
            ),
            ListActive::PATH => rpc::answer::<ListActive>(self.active(rpc::read(req).await?)),
            GetQueueStatus::PATH => rpc::answer::<GetQueueStatus>(self.queue_status()),
            GetEstimate::PATH => rpc::answer::<GetEstimate>(self.estimate(rpc::read(req).await?)),
            ListOrigins::PATH => {
                rpc::answer::<ListOrigins>(self.origins().map(|origins| Origins { origins }))
            }
            other => Err(rpc::unknown_route(other)),
        }
    }

    fn init(&self) -> EdgeResult<()> {
        self.sql.exec(
            "CREATE TABLE IF NOT EXISTS origins (
                id TEXT PRIMARY KEY, url TEXT NOT NULL, slots INTEGER NOT NULL DEFAULT 1,
                engine TEXT, simulated INTEGER, models TEXT NOT NULL DEFAULT '[]',
                resident TEXT NOT NULL DEFAULT '[]', vram_free_gb REAL,
                from_config INTEGER NOT NULL DEFAULT 0, last_seen_ms INTEGER NOT NULL DEFAULT 0,
                down_until_ms INTEGER NOT NULL DEFAULT 0, full_until_ms INTEGER NOT NULL DEFAULT 0,
                problem TEXT)",
            None,
        )?;
        // Tables made before origins could report a problem gain the column.
        let has_problem = self.count(
            "SELECT COUNT(*) AS n FROM pragma_table_info('origins') WHERE name = ?",
            vec!["problem".into()],
        )?;
        if has_problem == 0 {
            self.sql
                .exec("ALTER TABLE origins ADD COLUMN problem TEXT", None)?;
        }
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
            "UPDATE jobs SET state = ?, origin_id = NULL WHERE state = ?",
            vec![
                Slot::Queued.as_str().into(),
                Slot::Dispatching.as_str().into(),
            ],
        )?;
        self.register_configured_origins()
    }

    fn lease_ms(&self) -> i64 {
        (config::lease_secs(&self.env) * 1000) as i64
    }

    fn origin_status(&self, o: &OriginRow, now: i64) -> OriginStatus {
        OriginStatus::at(o.down_until_ms, o.last_seen_ms, self.lease_ms(), now)
    }

    fn job_rows(&self, state: Slot) -> EdgeResult<Vec<JobRow>> {
        Ok(self
            .sql
            .exec(
                &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE state = ? ORDER BY seq"),
                vec![state.as_str().into()],
            )?
            .to_array()?)
    }

    fn count(&self, query: &str, args: Vec<worker::SqlStorageValue>) -> EdgeResult<i64> {
        let rows: Vec<Count> = self.sql.exec(query, args)?.to_array()?;
        Ok(rows.first().map(|c| c.n).unwrap_or(0))
    }

    fn queued_count(&self) -> EdgeResult<i64> {
        self.count(
            "SELECT COUNT(*) AS n FROM jobs WHERE state = ?",
            vec![Slot::Queued.as_str().into()],
        )
    }

    /// Runs the alarm as soon as possible: it hands out queued jobs.
    async fn pump_soon(&self) -> EdgeResult<()> {
        self.state.storage().set_alarm(1).await?;
        Ok(())
    }
}
