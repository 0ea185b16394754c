//! The BFL-style façade (`docs/api.md`, "BFL-compatible API"), for clients written against
//! Black Forest Labs' API shape: `POST /flux/v1/{model}` answers `{id, polling_url}`
//! and `GET /flux/v1/get_result?id=` answers `{id, status: Pending|Ready|Error,
//! result: {sample}}`. Underneath it is the same image job as
//! `POST /v1/images/generations?async_mode=true`: the same rules, price, hold, queue,
//! `replyUrl`/`webhook_url`/`replyRef` webhooks and errors.

use kiln_shared::bfl::translate;
use kiln_shared::jobs::JobStatus;
use serde_json::{json, Value};
use worker::{Env, Request, Response};

use crate::api::auth::Caller;
use crate::api::images;
use crate::api::jobs::load_owned;
use crate::api::router::base_url;
use crate::platform::error::EdgeResult;
use crate::platform::http::{json, query_param};

/// `POST /flux/v1/{model}`.
pub async fn handle_submit(
    req: Request,
    body: Vec<u8>,
    env: &Env,
    caller: &Caller,
    model: &str,
) -> EdgeResult<Response> {
    let body = translate(&body, model)?;
    let base = base_url(&req)?;
    let inner = images::image(req, body, env, caller, true).await?;
    let Some(id) = inner.headers().get("x-kiln-job-id")? else {
        // An error answer (already in the API's error shape): pass it on.
        return Ok(inner);
    };
    if inner.status_code() >= 400 {
        return Ok(inner);
    }
    let resp = json(
        200,
        &json!({
            "id": id,
            "polling_url": format!("{base}/flux/v1/get_result?id={id}"),
        }),
    )?;
    for h in ["x-kiln-job-id", "x-credits-remaining-usd"] {
        if let Some(v) = inner.headers().get(h)? {
            resp.headers().set(h, &v)?;
        }
    }
    Ok(resp)
}

/// `GET /flux/v1/get_result?id=`.
pub async fn handle_result(req: &Request, env: &Env, caller: &Caller) -> EdgeResult<Response> {
    let id = query_param(req, "id")?.unwrap_or_default();
    let job = load_owned(env, caller, &id).await?.job;
    let base = base_url(req)?;
    let (status, result) = match job.status {
        JobStatus::Completed => (
            "Ready",
            json!({
                "sample": job.outputs.first().map(|o| format!("{base}/outputs/{}", o.filename)),
                "prompt": job.params.prompt(),
                "seed": job.params.seed(),
            }),
        ),
        JobStatus::Failed | JobStatus::Cancelled => (
            "Error",
            json!({"error_code": job.error_code, "error_message": job.error_message}),
        ),
        _ => ("Pending", Value::Null),
    };
    json(
        200,
        &json!({
            "id": job.id,
            "status": status,
            "result": result,
            "progress": job.progress.step as f64 / job.progress.total_steps.max(1) as f64,
            "replyRef": job.reply_ref,
        }),
    )
}
