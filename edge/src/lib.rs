//! Kiln's edge: a Cloudflare Worker (workers-rs, wasm) in front of the GPU origins.
//! Three layers, each a folder (map: `docs/architecture.md`, "Edge layout"):
//!
//! - [`api`] — the routes: one module per resource, handlers only.
//! - [`durable`] — the Durable Objects, one folder or file each, with their messages.
//! - [`platform`] — HTTP, SSE, clock and randomness, configuration, errors, and one typed
//!   client per Durable Object binding.
//!
//! Rules shared with the origin and the tests (validation, prices, job states, signing,
//! webhooks) live in `kiln-shared`, not here.

pub mod api;
pub mod durable;
pub mod platform;

use worker::{event, Context, Env, Request, Response, ScheduleContext, ScheduledEvent};

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    Ok(api::router::route(req, env).await)
}

/// The Cron Trigger (`wrangler.toml` `[triggers]`): sweeps expired files.
#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    match api::outputs::sweep(&env).await {
        Ok(n) => worker::console_log!("file sweep: {n} expired file(s) emptied"),
        Err(e) => worker::console_error!("file sweep: {e:?}"),
    }
}
