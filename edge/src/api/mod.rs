//! The API layer: one module per resource, handlers only. [`router`] is the one table of
//! every route; handlers validate with `kiln-shared`, call Durable Objects through the
//! typed clients of [`crate::platform::bindings`], and build the API's JSON.
//!
//! - [`router`] — every route, its methods, key checks and rate limits.
//! - [`auth`], [`idempotency`] — API key → account; `Idempotency-Key`.
//! - [`accounts`], [`keys`], [`credits`], [`usage`] — registration, keys, balances, the ledger.
//! - [`billing`], [`admin`] — Stripe top-ups; operator adjustments and the ledger bench.
//! - [`session`], [`checkout`] — the dashboard's cookie session; Stripe Checkout sessions.
//! - [`images`], [`video`] — the generation endpoints; [`edits`] — OpenAI's image edits;
//!   [`submit`] — the flow they share.
//! - [`jobs`] — get, cancel, active jobs, estimates; [`streams`] — the event streams.
//! - [`webhooks`] — the signing secret, each job's delivery log and replay.
//! - [`bfl`] — the BFL-style façade.
//! - [`files`] — uploads, and the lists of your uploads and outputs; [`outputs`] —
//!   generated files from R2.
//! - [`catalog`], [`health`], [`openapi`] — models and queue status, health, the document.
//! - [`origin`] — what origins send: signed events, output uploads, heartbeats.

pub mod accounts;
pub mod admin;
pub mod auth;
pub mod bfl;
pub mod billing;
pub mod catalog;
pub mod checkout;
pub mod credits;
pub mod edits;
pub mod files;
pub mod health;
pub mod idempotency;
pub mod images;
pub mod jobs;
pub mod keys;
pub mod openapi;
pub mod origin;
pub mod outputs;
pub mod router;
pub mod session;
pub mod streams;
pub mod submit;
pub mod usage;
pub mod video;
pub mod webhooks;
