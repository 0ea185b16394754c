//! The event streams: `GET /v1/jobs/{id}/stream` (one job) and
//! `GET /v1/jobs/stream/user` (every job of the account). Both accept the key as
//! `?key=` (browsers' EventSource cannot send headers) and start with the current state.

use worker::{Env, Response};

use crate::api::auth::Caller;
use crate::api::jobs::{active_jobs, load_owned};
use crate::durable::job::proto::Subscribe as JobSubscribe;
use crate::durable::user_stream::proto::Subscribe;
use crate::platform::bindings;
use crate::platform::error::EdgeResult;
use crate::platform::sse;

/// `GET /v1/jobs/{id}/stream`.
pub async fn handle_job(env: &Env, caller: &Caller, id: &str) -> EdgeResult<Response> {
    let owned = load_owned(env, caller, id).await?;
    let resp = bindings::job(env, &owned.job.id)?
        .open(&JobSubscribe)
        .await?;
    sse::forward(resp)
}

/// `GET /v1/jobs/stream/user`: every event of every job of the account, starting with
/// the current state of its active jobs.
pub async fn handle_user(env: &Env, caller: &Caller) -> EdgeResult<Response> {
    let first: Vec<String> = active_jobs(env, caller)
        .await?
        .iter()
        .map(|e| {
            sse::frame(
                e.job.status.as_str(),
                &e.job.to_view(&e.job.base_url, e.queue_position),
            )
        })
        .collect();
    let resp = bindings::user_stream(env, &caller.account_id)?
        .open(&Subscribe { first })
        .await?;
    sse::forward(resp)
}
