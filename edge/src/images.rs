//! `POST /v1/images/generations` (FLUX.2-dev), the submit flow of DESIGN.md:
//! authenticate → validate and price (kiln-shared) → hold the price on the account →
//! create the Job DO (which dispatches to an origin) → answer by mode:
//!
//! - default (sync): wait up to the sync window (90 s) for the result, OpenAI Images
//!   shape; still running then → 202 with the job object and `Location`.
//! - `?async_mode=true`: 202 at once with `{job_id, status}`.
//! - `Prefer: wait=N` (1–90) or `pollForResult: n` (n × 3 s): wait that long, then
//!   answer like async.
//!
//! A job that fails or times out answers 500/503/504 and its hold is released.

use base64::Engine as _;
use kiln_shared::ids::JobId;
use kiln_shared::images::ImageRequest;
use kiln_shared::jobs::{JobParams, JobState, JobStatus, NewJob, ResponseFormat, SubmitOptions};
use kiln_shared::money::MicroUsd;
use kiln_shared::ApiError;
use serde_json::{json, Value};
use worker::{Env, Method, Request, Response};

use crate::account_do::{Balances, HoldRequest, SettleRequest};
use crate::auth::Caller;
use crate::config;
use crate::error::{EdgeError, EdgeResult};
use crate::http::{call_do, json, query_param};
use crate::job_do::JobEnvelope;
use crate::jobs::job_stub;
use crate::outputs::output_key;
use crate::router::base_url;
use crate::{now_ms, random_bytes};

/// A generation request is a small JSON object; 4000-char prompts fit many times over.
pub const BODY_BYTES_MAX: usize = 64 * 1024;
/// `Prefer: wait=N` accepts at most the sync window.
const PREFER_WAIT_SECS_MAX: u64 = 90;
/// Each useapi-style `pollForResult` poll stands for 3 s of waiting.
const POLL_SECS: u64 = 3;
/// Seeds drawn for `seed: -1` stay in u32 so they are easy to read and reuse.
const RANDOM_SEED_MAX: u64 = u32::MAX as u64;

/// How the client wants to be answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Answer at once.
    Async,
    /// Wait up to this long; then 202 with the job object.
    Sync(u64),
    /// Wait up to this long; then answer like async.
    Wait(u64),
}

fn mode(req: &Request, env: &Env, options: &SubmitOptions) -> EdgeResult<Mode> {
    if let Some(v) = query_param(req, "async_mode")? {
        match v.as_str() {
            "true" | "1" => return Ok(Mode::Async),
            "false" | "0" => {}
            _ => {
                return Err(ApiError::invalid_param(
                    "async_mode",
                    "invalid_value",
                    "`async_mode` must be true or false.",
                )
                .into())
            }
        }
    }
    let prefer = req.headers().get("prefer")?;
    if let Some(wait) = prefer.as_deref().and_then(|p| {
        p.split(',')
            .find_map(|part| part.trim().strip_prefix("wait="))
    }) {
        return match wait.trim().parse::<u64>() {
            Ok(n) if (1..=PREFER_WAIT_SECS_MAX).contains(&n) => Ok(Mode::Wait(n)),
            _ => Err(ApiError::invalid_param(
                "Prefer",
                "invalid_value",
                format!("`Prefer: wait=N` takes N from 1 to {PREFER_WAIT_SECS_MAX}."),
            )
            .into()),
        };
    }
    if let Some(polls) = options.poll_for_result {
        return Ok(Mode::Wait(u64::from(polls) * POLL_SECS));
    }
    Ok(Mode::Sync(config::sync_wait_secs(env)))
}

pub async fn handle_generate(
    req: Request,
    body: Vec<u8>,
    env: &Env,
    caller: &Caller,
) -> EdgeResult<Response> {
    let image = ImageRequest::parse(&body)?;
    let mode = mode(&req, env, &image.options)?;
    if !image.input_files.is_empty() {
        return Err(ApiError::invalid_param(
            "input_files",
            "invalid_value",
            "img2img is not available yet on this deployment.",
        )
        .into());
    }
    let seed = u64::from_le_bytes(random_bytes()) % (RANDOM_SEED_MAX + 1);
    let id = JobId::generate(now_ms() as u64, random_bytes());
    let cost = if caller.kind.is_test() {
        MicroUsd::ZERO
    } else {
        image.price()
    };
    let new_job = NewJob {
        id: id.clone(),
        account_id: caller.account_id.clone(),
        test_mode: caller.kind.is_test(),
        model_id: image.model.clone(),
        workflow: image.workflow(),
        params: JobParams::Image(image.params(seed)),
        input_files: image.input_files.clone(),
        cost,
        reply_url: image.options.reply_url.clone(),
        reply_ref: image.options.reply_ref.clone(),
    };
    let balances = hold(caller, &new_job).await?;
    let job = JobState::new(new_job, now_ms());
    let created: EdgeResult<JobEnvelope> = call_do(
        &job_stub(env, &id)?,
        Method::Post,
        "/create",
        Some(&serde_json::to_value(JobEnvelope { job })?),
    )
    .await;
    let job = match created {
        Ok(env_) => env_.job,
        Err(e) => {
            release_after_failed_create(caller, &id, cost).await;
            return Err(e);
        }
    };
    let base = base_url(&req)?;
    let job = match mode {
        Mode::Async => job,
        Mode::Sync(secs) | Mode::Wait(secs) => wait(env, &id, secs).await?,
    };
    // A job that ended without completing has had its hold released.
    let remaining = if job.status.is_terminal() && job.status != JobStatus::Completed {
        balances
            .available()
            .checked_add(cost)
            .unwrap_or(balances.available())
    } else {
        balances.available()
    };
    // Errors carry the job id and balance too, so a failed sync call can be looked up.
    let resp = respond(env, &base, &job, mode, image.options.response_format)
        .await
        .unwrap_or_else(EdgeError::into_response);
    let headers = resp.headers();
    headers.set("x-credits-remaining-usd", &remaining.to_usd_string())?;
    headers.set("x-kiln-job-id", id.as_str())?;
    Ok(resp)
}

/// Reserves the job's price; a test-mode job (price 0) only reads the balance.
async fn hold(caller: &Caller, job: &NewJob) -> EdgeResult<Balances> {
    let body = serde_json::to_value(HoldRequest {
        job_id: job.id.to_string(),
        amount_micros: job.cost.micros(),
        job_type: "image".to_owned(),
        model_id: job.model_id.clone(),
        units: 1.0,
        prompt_preview: job.params.prompt().to_owned(),
    })?;
    call_do(&caller.account, Method::Post, "/hold", Some(&body)).await
}

/// The Job DO could not be created, so nothing will ever settle this hold: release it
/// here. A failure is logged; the hold then stays open for an operator to see.
async fn release_after_failed_create(caller: &Caller, id: &JobId, cost: MicroUsd) {
    if cost.micros() == 0 {
        return;
    }
    let body = serde_json::to_value(SettleRequest {
        job_id: id.to_string(),
        capture: false,
    });
    let result = match body {
        Ok(body) => call_do::<Value>(&caller.account, Method::Post, "/settle", Some(&body)).await,
        Err(e) => Err(e.into()),
    };
    if let Err(e) = result {
        worker::console_error!("could not release hold of {id}: {e:?}");
    }
}

/// Waits for the job to end, up to `secs`.
pub async fn wait(env: &Env, id: &JobId, secs: u64) -> EdgeResult<JobState> {
    let path = format!("/wait?timeout_ms={}", secs * 1000);
    let env_: JobEnvelope = call_do(&job_stub(env, id)?, Method::Get, &path, None).await?;
    Ok(env_.job)
}

async fn respond(
    env: &Env,
    base: &str,
    job: &JobState,
    mode: Mode,
    format: ResponseFormat,
) -> EdgeResult<Response> {
    if let Some(err) = job.error() {
        return Err(EdgeError::Api(err));
    }
    let location = format!("/v1/jobs/{}", job.id);
    if job.status == JobStatus::Completed && mode != Mode::Async {
        let mut data = Vec::with_capacity(job.outputs.len());
        for o in &job.outputs {
            data.push(match format {
                ResponseFormat::Url => json!({"url": format!("{base}/outputs/{}", o.filename)}),
                ResponseFormat::B64Json => {
                    let object = env
                        .bucket("MEDIA")?
                        .get(output_key(&o.filename))
                        .execute()
                        .await?
                        .ok_or_else(ApiError::internal)?;
                    let bytes = object
                        .body()
                        .ok_or_else(ApiError::internal)?
                        .bytes()
                        .await?;
                    json!({"b64_json": base64::engine::general_purpose::STANDARD.encode(bytes)})
                }
            });
        }
        return json(
            200,
            &json!({
                "created": job.completed_at_ms.unwrap_or(job.queued_at_ms) / 1000,
                "job_id": job.id,
                "data": data,
            }),
        );
    }
    let body = match mode {
        Mode::Sync(_) => job.to_view(base),
        Mode::Async | Mode::Wait(_) => json!({
            "job_id": job.id,
            "status": job.status,
            "polling_url": format!("{base}{location}"),
        }),
    };
    let resp = json(202, &body)?;
    resp.headers().set("location", &location)?;
    Ok(resp)
}
