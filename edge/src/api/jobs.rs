//! The jobs API: `GET /v1/jobs/{id}`, `DELETE /v1/jobs/{id}` (cancel),
//! `GET /v1/jobs/active` and `GET /v1/jobs/estimate`. Jobs of other accounts are 404,
//! not 403, so ids cannot be probed. (Event streams: [`super::streams`]; a job's
//! webhook deliveries: [`super::webhooks`].)

use kiln_shared::ids::JobId;
use kiln_shared::{ApiError, ErrorCode};
use serde_json::{json, Value};
use worker::{Env, Request, Response};

use crate::api::auth::Caller;
use crate::api::router::base_url;
use crate::durable::dispatcher::proto::{GetEstimate, ListActive};
use crate::durable::job::proto::{Cancel, GetJob, JobEnvelope};
use crate::platform::bindings;
use crate::platform::error::EdgeResult;
use crate::platform::http::{json, query_param};

fn not_found() -> ApiError {
    ApiError::not_found(
        ErrorCode::JobNotFound,
        "No job with this id belongs to your account.",
    )
}

const WITH_POSITION: GetJob = GetJob {
    with_position: true,
};

/// Loads a job the caller owns, with its queue position when queued.
pub async fn load_owned(env: &Env, caller: &Caller, id: &str) -> EdgeResult<JobEnvelope> {
    let id = JobId::parse(id).ok_or_else(not_found)?;
    let e = bindings::job(env, &id)?.call(&WITH_POSITION).await?;
    if e.job.account_id != caller.account_id {
        return Err(not_found().into());
    }
    Ok(e)
}

pub async fn handle_get(
    req: &Request,
    env: &Env,
    caller: &Caller,
    id: &str,
) -> EdgeResult<Response> {
    let e = load_owned(env, caller, id).await?;
    json(200, &e.job.to_view(&base_url(req)?, e.queue_position))
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
    let e = bindings::job(env, &owned.job.id)?.call(&Cancel).await?;
    json(200, &e.job.to_view(&base_url(req)?, None))
}

/// The caller's active jobs' current states (ended ones left out), oldest first.
pub async fn active_jobs(env: &Env, caller: &Caller) -> EdgeResult<Vec<JobEnvelope>> {
    let active = bindings::dispatcher(env)?
        .call(&ListActive {
            account_id: caller.account_id.clone(),
        })
        .await?;
    let loads = active
        .job_ids
        .iter()
        .map(|id| async move { bindings::job(env, id)?.call(&WITH_POSITION).await });
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
        .map(|e| e.job.to_view(&base, e.queue_position))
        .collect();
    json(200, &json!({"object": "list", "data": data}))
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
            ErrorCode::UnknownWorkflow,
            format!(
                "Unknown workflow_id {workflow:?}; one of: {}.",
                workflows.join(", ")
            ),
        )
        .into());
    };
    let e = bindings::dispatcher(env)?
        .call(&GetEstimate {
            workflow: workflow.clone(),
        })
        .await?;
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
