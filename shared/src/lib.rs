#![cfg_attr(feature = "openapi", recursion_limit = "512")]
//! Kiln's shared rules: everything the edge, the origin and the tests must agree on.
//!
//! This crate is pure — no clock, no randomness source, no I/O — so it builds for
//! wasm (the edge) and native (the origin, the tests) alike. Callers pass time and
//! random bytes in.
//!
//! - [`accounts`] — registration rules: email normalisation, the trial grant.
//! - [`bfl`]     — the BFL-style façade's translation of a request body.
//! - [`catalog`] — `GET /v1/models`: models, cost rules, parameter schemas.
//! - [`dashboard`] — the web dashboard's cookie session, its CSRF check, Stripe Checkout.
//! - [`error`]   — the API's one error shape (`{"error": {...}}`) and its status codes.
//! - [`money`]   — [`money::MicroUsd`], integer micro-dollars; no floats in the ledger.
//! - [`ids`]     — [`ids::JobId`], [`ids::AccountId`], output filenames; parse, don't validate.
//! - [`keys`]    — API key format (`sk-trial-`, `sk-gen-`, `sk-test-`) and key hashing.
//! - [`files`]   — uploaded images: format, size and frames from the bytes; bombs refused.
//! - [`fields`]  — typed extraction from request JSON, naming the param on every error.
//! - [`headers`] — `Range` and `Prefer: wait=N`, parsed without panics.
//! - [`images`]  — `POST /v1/images/generations`: parameter rules, defaults and price.
//! - [`video`]   — `POST /v1/video/generations`: rules, the stage plan, price per frame.
//! - [`jobs`]    — the job object, statuses and progress as the API shows them.
//! - [`origin`]  — the edge ↔ origin protocol: dispatched jobs, events, paths.
//! - [`idempotency`] — `Idempotency-Key` parsing and request fingerprints.
//! - [`query`]   — query parameters: `async_mode`, the usage page (`limit`, `cursor`).
//! - [`queue`]   — the dispatcher's choices: fair order across accounts, origin choice.
//! - [`ratelimit`] — the per-key token bucket behind `429` and `X-RateLimit-*`.
//! - [`stripe`]  — `Stripe-Signature` verification and the top-up events and tiers.
//! - [`signing`] — HMAC request signing used in both directions between edge and origin.
//! - [`time`]    — RFC 3339 formatting of Unix milliseconds.
//! - [`webhooks`] — `replyUrl` deliveries: Standard Webhooks signing, retries, SSRF guard, events.
//! - [`openapi`] — (feature `openapi`) the OpenAPI document and `llms.txt`, built from the code.

pub mod accounts;
pub mod bfl;
pub mod catalog;
pub mod dashboard;
pub mod error;
pub mod fields;
pub mod files;
pub mod headers;
pub mod idempotency;
pub mod ids;
pub mod images;
pub mod jobs;
pub mod keys;
pub mod money;
#[cfg(feature = "openapi")]
pub mod openapi;
pub mod origin;
pub mod query;
pub mod queue;
pub mod ratelimit;
pub mod signing;
pub mod stripe;
pub mod time;
pub mod video;
pub mod webhooks;

#[cfg(test)]
mod proptest_json;

pub use error::{ApiError, ErrorCode};
pub use money::MicroUsd;
