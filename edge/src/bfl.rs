//! The BFL-style façade (API.md "Compatibility façades"), for clients written against
//! Black Forest Labs' API shape: `POST /flux/v1/{model}` answers `{id, polling_url}`
//! and `GET /flux/v1/get_result?id=` answers `{id, status: Pending|Ready|Error,
//! result: {sample}}`. Underneath it is the same image job as
//! `POST /v1/images/generations?async_mode=true`: the same rules, price, hold, queue,
//! `replyUrl`/`webhook_url`/`replyRef` webhooks and errors.

use kiln_shared::jobs::JobStatus;
use kiln_shared::ApiError;
use serde_json::{json, Map, Value};
use worker::{Env, Request, Response};

use crate::auth::Caller;
use crate::error::EdgeResult;
use crate::generate;
use crate::http::{json, query_param};
use crate::jobs::load_owned;
use crate::router::base_url;

/// BFL fields with a Kiln name of their own.
const RENAMED: &[(&str, &str)] = &[("guidance", "cfg")];

/// Rewrites a BFL body into a Kiln image request for `model`. BFL options Kiln cannot
/// honour are refused by name rather than silently ignored.
fn translate(body: &[u8], model: &str) -> Result<Vec<u8>, ApiError> {
    let v: Value = serde_json::from_slice(body).map_err(ApiError::invalid_json)?;
    let Value::Object(mut m) = v else {
        return Err(ApiError::invalid_json("the body must be a JSON object"));
    };
    if m.contains_key("model") {
        return Err(ApiError::invalid_param(
            "model",
            "unknown_parameter",
            "The model is part of the path here: POST /flux/v1/{model}.",
        ));
    }
    // No-code tools send empty and null fields, and booleans as strings: read those
    // as "not set" / the boolean, as the generation endpoints do.
    match m.remove("output_format") {
        None | Some(Value::Null) => {}
        Some(Value::String(f)) if f.is_empty() || f.eq_ignore_ascii_case("png") => {}
        Some(other) => {
            return Err(ApiError::invalid_param(
                "output_format",
                "invalid_value",
                format!("Only \"png\" is produced (got {other})."),
            ))
        }
    }
    match m.remove("prompt_upsampling") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => {}
        Some(Value::String(v)) if v.is_empty() || v.eq_ignore_ascii_case("false") => {}
        Some(_) => {
            return Err(ApiError::invalid_param(
                "prompt_upsampling",
                "invalid_value",
                "Prompt upsampling is not offered; send the prompt you want rendered.",
            ))
        }
    }
    if m.remove("image_prompt")
        .is_some_and(|v| !v.is_null() && v != Value::String(String::new()))
    {
        return Err(ApiError::invalid_param(
            "image_prompt",
            "invalid_value",
            "Image prompts (Redux) are not available.",
        ));
    }
    if m.contains_key("guidance") && m.contains_key("cfg") {
        return Err(ApiError::invalid_param(
            "guidance",
            "invalid_value",
            "Send `guidance` (BFL) or `cfg` (Kiln), not both.",
        ));
    }
    let mut out = Map::new();
    for (k, v) in m {
        let name = RENAMED
            .iter()
            .find(|(from, _)| *from == k)
            .map_or(k.as_str(), |(_, to)| to);
        out.insert(name.to_owned(), v);
    }
    out.insert("model".into(), Value::String(model.to_owned()));
    Ok(Value::Object(out).to_string().into_bytes())
}

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
    let inner = generate::image(req, body, env, caller, true).await?;
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
