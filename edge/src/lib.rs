//! Kiln's edge: a Cloudflare Worker (workers-rs, wasm) in front of the GPU origins.
//!
//! - [`router`]  — the fetch entry point: one table of every route, errors in one shape.
//! - [`auth`]    — API key → account, one hop to the key's Account Durable Object.
//! - [`accounts`], [`credits`], [`keys`], [`usage`] — registration, balances, keys, the ledger.
//! - [`billing`], [`admin`] — Stripe top-ups and operator adjustments.
//! - [`idempotency`] — `Idempotency-Key` on the POSTs that create things.
//! - [`generate`] — `POST /v1/images/generations` and `/v1/video/generations`: validate,
//!   price, hold, create, wait.
//! - [`bfl`]     — the BFL-style façade (`/flux/v1/{model}`, `/flux/v1/get_result`).
//! - [`jobs`]    — get, cancel, list active, stream (SSE), estimate.
//! - [`catalog`] — `GET /v1/models`, `GET /v1/queue/status`.
//! - [`sse`]     — event-stream frames and the subscriber hub.
//! - [`outputs`] — `GET /outputs/{filename}` from R2, with ranges and long caching.
//! - [`webhooks`], [`outbox`] — the webhook signing secret; each job's durable outbox of
//!   signed webhook deliveries, retried from the Job DO's alarm.
//! - [`origin_callbacks`] — signed events and output uploads from origins.
//! - [`health`], [`openapi`] — service status and the API document.
//! - Durable Objects: [`account_do`] (keys, ledger), [`job_do`] (one job's lifecycle),
//!   [`dispatcher_do`] (origin registry, fair queue, leases), [`user_stream_do`] (an
//!   account's event stream), [`email_do`] (one trial per email), [`probe_do`] (a
//!   no-op, for health and benchmarks).
//! - [`config`], [`http`], [`error`] — configuration, HTTP helpers, the error type.
//!
//! Rules shared with the origin and the tests (validation, prices, job states,
//! signing) live in `kiln-shared`, not here.

pub mod account_do;
pub mod accounts;
pub mod admin;
pub mod auth;
pub mod bfl;
pub mod billing;
pub mod catalog;
pub mod config;
pub mod credits;
pub mod dispatcher_do;
pub mod email_do;
pub mod error;
pub mod generate;
pub mod health;
pub mod http;
pub mod idempotency;
pub mod job_do;
pub mod jobs;
pub mod keys;
pub mod openapi;
pub mod origin_callbacks;
pub mod outbox;
pub mod outputs;
pub mod probe_do;
pub mod router;
pub mod sse;
pub mod usage;
pub mod user_stream_do;
pub mod webhooks;

use worker::{event, Context, Env, Request, Response};

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    Ok(router::route(req, env).await)
}

/// Wall-clock time in Unix milliseconds (the Workers clock advances on I/O).
pub fn now_ms() -> i64 {
    worker::Date::now().as_millis() as i64
}

/// Cryptographically secure random bytes from the runtime's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).expect("the Workers runtime always provides crypto.getRandomValues");
    buf
}

/// A short random token (16 base32 chars), for ids that need no structure.
pub fn ids_token() -> String {
    kiln_shared::ids::random_token(&random_bytes::<10>(), 16)
}
