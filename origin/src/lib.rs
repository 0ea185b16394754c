//! Kiln's GPU origin: receives signed jobs from the edge, runs them on an engine, and
//! reports back to the edge with signed events and uploads (`docs/architecture.md`,
//! "2. Queue and dispatch" and "3. Run").
//!
//! The main path reads [`routes`] → [`runner`] → [`engine`].
//!
//! - [`config`]      — settings from `KILN_*` environment variables and CLI flags.
//! - [`startup`]     — [`startup::Application`] (bind, serve, shut down) and
//!   [`startup::app`], the router that tests drive with `tower::ServiceExt::oneshot`.
//! - [`error`]       — [`error::AppError`], the one place errors become the API's error shape.
//! - [`routes`]      — `GET /health`, the edge's `POST /v1/jobs` dispatch and
//!   `DELETE /v1/jobs/{job_id}` cancel.
//! - [`replay`]      — remembers accepted dispatches so a replayed one is refused.
//! - [`running`]     — the job attempts in progress and the GPU slots they hold.
//! - [`runner`]      — runs one admitted job: engine progress → signed events → upload →
//!   slot released → result; abandons it when told to stop.
//! - [`heartbeat`]   — tells the edge every few seconds that this origin is alive and
//!   what it runs.
//! - [`flag`]        — a set-once signal tasks wait on (stop, slot released).
//! - [`engine`]      — the engines a job can run on; only [`engine::sim`] exists today,
//!   with its media (PNG images, H.264 MP4 videos) under it.
//! - [`edge_client`] — signed, retried calls from the origin to the edge's internal endpoints.

pub mod config;
pub mod edge_client;
pub mod engine;
pub mod error;
pub mod flag;
pub mod heartbeat;
pub mod inputs;
pub mod replay;
pub mod routes;
pub mod runner;
pub mod running;
pub mod startup;

use std::time::{SystemTime, UNIX_EPOCH};

/// The wall clock in Unix milliseconds; kiln-shared takes time as an argument, so this
/// is the one place the origin reads it (for signatures and for `/health` timestamps).
pub(crate) fn unix_ms_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The wall clock in Unix seconds, as request signatures use it.
pub(crate) fn unix_secs_now() -> i64 {
    unix_ms_now() / 1000
}
