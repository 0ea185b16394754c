//! The jobs API: `GET /v1/jobs/{id}`, `DELETE /v1/jobs/{id}` (cancel),
//! `GET /v1/jobs/active`, the event streams `GET /v1/jobs/{id}/stream` and
//! `GET /v1/jobs/stream/user`, and `GET /v1/jobs/estimate`. Jobs of other accounts
//! are 404, not 403, so ids cannot be probed.

use kiln_shared::ids::JobId;
use kiln_shared::jobs::JobState;
use kiln_shared::ApiError;
use serde_json::{json, Value};
use worker::{Env, Method, Request, Response, Stub};

use crate::auth::Caller;
use crate::dispatcher_do::{dispatcher_stub, Active, Estimate};
use crate::error::EdgeResult;
use crate::http::{call_do, json, query_param};
use crate::job_do::JobEnvelope;
use crate::router::base_url;
use crate::sse;
use crate::user_stream_do::{user_stream_stub, Subscribe};

pub fn job_stub(env: &Env, id: &JobId) -> EdgeResult<Stub> {
    Ok(env
        .durable_object("JOBS")?
        .id_from_name(id.as_str())?
        .get_stub()?)
}

fn not_found() -> ApiError {
    ApiError::not_found(
        "job_not_found",
        "No job with this id belongs to your account.",
    )
}

/// Loads a job the caller owns, with its queue position when queued.
pub async fn load_owned(env: &Env, caller: &Caller, id: &str) -> EdgeResult<JobEnvelope> {
    let id = JobId::parse(id).ok_or_else(not_found)?;
    let env_: JobEnvelope =
        call_do(&job_stub(env, &id)?, Method::Get, "/state?position=1", None).await?;
    if env_.job.account_id != caller.account_id {
        return Err(not_found().into());
    }
    Ok(env_)
}

fn view(job: &JobState, base: &str, position: Option<u32>) -> Value {
    job.to_view(base, position)
}

pub async fn handle_get(
    req: &Request,
    env: &Env,
    caller: &Caller,
    id: &str,
) -> EdgeResult<Response> {
    let e = load_owned(env, caller, id).await?;
    json(200, &view(&e.job, &base_url(req)?, e.queue_position))
}

/// `DELETE /v1/jobs/{id}`: queued → cancelled at once; running → the origin stops.
/// Either way the hold is released. A job that already ended is 409 `job_ended`.
pub async fn handle_cancel(
    req: &Request,
    env: &Env,
    caller: &Caller,
    id: &str,
) -> EdgeResult<Response> {
    let owned = load_owned(env, caller, id).await?;
    let e: JobEnvelope = call_do(
        &job_stub(env, &owned.job.id)?,
        Method::Post,
        "/cancel",
        None,
    )
    .await?;
    json(200, &view(&e.job, &base_url(req)?, None))
}

/// The ids of the caller's queued and running jobs, oldest first.
async fn active_ids(env: &Env, caller: &Caller) -> EdgeResult<Vec<JobId>> {
    let path = format!("/active?account_id={}", caller.account_id);
    let active: Active = call_do(&dispatcher_stub(env)?, Method::Get, &path, None).await?;
    Ok(active
        .job_ids
        .iter()
        .filter_map(|id| JobId::parse(id))
        .collect())
}

/// The caller's active jobs' current states (ended ones left out).
async fn active_jobs(env: &Env, caller: &Caller) -> EdgeResult<Vec<JobEnvelope>> {
    let ids = active_ids(env, caller).await?;
    let loads = ids.iter().map(|id| async move {
        let stub = job_stub(env, id)?;
        call_do::<JobEnvelope>(&stub, Method::Get, "/state?position=1", None).await
    });
    let mut out = Vec::new();
    for r in futures_util::future::join_all(loads).await {
        let e = r?;
        if !e.job.status.is_terminal() && e.job.account_id == caller.account_id {
            out.push(e);
        }
    }
    Ok(out)
}

/// `GET /v1/jobs/active`: your jobs in queued, loading_model or processing.
pub async fn handle_active(req: &Request, env: &Env, caller: &Caller) -> EdgeResult<Response> {
    let base = base_url(req)?;
    let data: Vec<Value> = active_jobs(env, caller)
        .await?
        .iter()
        .map(|e| view(&e.job, &base, e.queue_position))
        .collect();
    json(200, &json!({"object": "list", "data": data}))
}

/// `GET /v1/jobs/{id}/stream`.
pub async fn handle_stream(env: &Env, caller: &Caller, id: &str) -> EdgeResult<Response> {
    let owned = load_owned(env, caller, id).await?;
    let resp = job_stub(env, &owned.job.id)?
        .fetch_with_str("https://do.internal/stream")
        .await?;
    if resp.status_code() != 200 {
        return Err(ApiError::internal().into());
    }
    sse::forward(resp)
}

/// `GET /v1/jobs/stream/user`: every event of every job of the account, starting with
/// the current state of its active jobs.
pub async fn handle_user_stream(env: &Env, caller: &Caller) -> EdgeResult<Response> {
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
    let body = serde_json::to_value(Subscribe { first })?;
    let mut init = worker::RequestInit::new();
    let headers = worker::Headers::new();
    headers.set("content-type", "application/json")?;
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(body.to_string().into()));
    let req = Request::new_with_init("https://do.internal/subscribe", &init)?;
    let resp = user_stream_stub(env, caller.account_id.as_str())?
        .fetch_with_request(req)
        .await?;
    if resp.status_code() != 200 {
        return Err(ApiError::internal().into());
    }
    sse::forward(resp)
}

/// `GET /v1/jobs/estimate?workflow_id=flux2-dev:txt2img` (no auth): the mean run time
/// of recent completed jobs of that workflow; the catalog's typical time until there
/// are samples.
pub async fn handle_estimate(req: &Request, env: &Env) -> EdgeResult<Response> {
    let workflows = kiln_shared::catalog::workflows();
    let workflow = query_param(req, "workflow_id")?.unwrap_or_default();
    let Some(typical) = kiln_shared::catalog::typical_secs(&workflow) else {
        return Err(ApiError::invalid_param(
            "workflow_id",
            "unknown_workflow",
            format!(
                "Unknown workflow_id {workflow:?}; one of: {}.",
                workflows.join(", ")
            ),
        )
        .into());
    };
    let path = format!("/estimate?workflow={workflow}");
    let e: Estimate = call_do(&dispatcher_stub(env)?, Method::Get, &path, None).await?;
    json(
        200,
        &json!({
            "workflow_id": workflow,
            "avg_seconds": e.avg_seconds.unwrap_or(typical),
            "sample_count": e.sample_count,
            "source": if e.sample_count > 0 { "recent_jobs" } else { "typical" },
        }),
    )
}

/// `GET /v1/jobs/{id}/deliveries`: the job's webhook events and every delivery attempt.
pub async fn handle_deliveries(env: &Env, caller: &Caller, id: &str) -> EdgeResult<Response> {
    let owned = load_owned(env, caller, id).await?;
    let d: crate::outbox::Deliveries = call_do(
        &job_stub(env, &owned.job.id)?,
        Method::Get,
        "/deliveries",
        None,
    )
    .await?;
    json(
        200,
        &json!({
            "object": "list",
            "job_id": owned.job.id,
            "reply_url": owned.job.reply_url,
            "events": d.events,
            "data": d.attempts,
        }),
    )
}

/// `POST /v1/jobs/{id}/webhook`: re-sends the terminal event now and reports the attempt.
pub async fn handle_replay(env: &Env, caller: &Caller, id: &str) -> EdgeResult<Response> {
    let owned = load_owned(env, caller, id).await?;
    let d: crate::outbox::DeliveryView = call_do(
        &job_stub(env, &owned.job.id)?,
        Method::Post,
        "/webhook/replay",
        None,
    )
    .await?;
    json(200, &d)
}
