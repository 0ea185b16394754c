//! `GET /v1/jobs/{id}`: the job object. Jobs of other accounts are 404, not 403, so
//! ids cannot be probed.

use kiln_shared::ids::JobId;
use kiln_shared::jobs::JobState;
use kiln_shared::ApiError;
use worker::{Env, Method, Request, Response, Stub};

use crate::auth::Caller;
use crate::error::EdgeResult;
use crate::http::{call_do, json};
use crate::job_do::JobEnvelope;
use crate::router::base_url;

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

/// Loads a job the caller owns.
pub async fn load_owned(env: &Env, caller: &Caller, id: &str) -> EdgeResult<JobState> {
    let id = JobId::parse(id).ok_or_else(not_found)?;
    let env_: JobEnvelope = call_do(&job_stub(env, &id)?, Method::Get, "/state", None).await?;
    if env_.job.account_id != caller.account_id {
        return Err(not_found().into());
    }
    Ok(env_.job)
}

pub async fn handle_get(
    req: &Request,
    env: &Env,
    caller: &Caller,
    id: &str,
) -> EdgeResult<Response> {
    let job = load_owned(env, caller, id).await?;
    json(200, &job.to_view(&base_url(req)?))
}
