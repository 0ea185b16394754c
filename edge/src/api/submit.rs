//! The submit flow shared by `POST /v1/images/generations` ([`super::images`]),
//! `POST /v1/video/generations` ([`super::video`]) and the BFL façade
//! (`docs/architecture.md`, "1. Submit"): authenticate → validate and price
//! (kiln-shared) → hold the price on the account → create the Job DO (which queues the
//! job with the Dispatcher) → answer by mode:
//!
//! - default (sync): wait up to the sync window (90 s) for the result, OpenAI Images
//!   shape; still running then → 202 with the job object and `Location`.
//! - `?async_mode=true`: 202 at once with `{job_id, status}`.
//! - `Prefer: wait=N` (N s, at most 90; `wait=0` is async; anything else in `Prefer` is
//!   ignored, RFC 7240) or `pollForResult: n` (n × 3 s): wait that long, then answer
//!   like async.
//!
//! A job that fails or times out answers 500/503/504 and its hold is released.

use base64::Engine as _;
use kiln_shared::headers::prefer_wait;
use kiln_shared::ids::Filename;
use kiln_shared::ids::JobId;
use kiln_shared::jobs::{JobParams, JobState, JobStatus, NewJob, ResponseFormat, SubmitOptions};
use kiln_shared::money::MicroUsd;
use kiln_shared::query::async_mode;
use kiln_shared::{ApiError, ErrorCode};
use serde_json::json;
use worker::{Env, Request, Response};

use crate::api::auth::Caller;
use crate::api::outputs::output_key;
use crate::api::router::base_url;
use crate::durable::account::proto::{Balances, Hold, OwnFiles, Settle};
use crate::durable::job::proto::{Create, Wait};
use crate::platform::bindings;
use crate::platform::clock::{now_ms, random_bytes};
use crate::platform::config;
use crate::platform::error::{EdgeError, EdgeResult};
use crate::platform::http::{json, query_param};

/// A generation request is a small JSON object; 4000-char prompts fit many times over.
pub const BODY_BYTES_MAX: usize = 64 * 1024;
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
        if async_mode(&v)? {
            return Ok(Mode::Async);
        }
    }
    match req
        .headers()
        .get("prefer")?
        .as_deref()
        .and_then(prefer_wait)
    {
        Some(0) => return Ok(Mode::Async),
        Some(n) => return Ok(Mode::Wait(n)),
        None => {}
    }
    if let Some(polls) = options.poll_for_result {
        return Ok(Mode::Wait(u64::from(polls) * POLL_SECS));
    }
    Ok(Mode::Sync(config::sync_wait_secs(env)))
}

/// A validated generation request of either kind, ready to price and queue.
pub(super) struct Submission {
    pub model_id: String,
    pub workflow: String,
    pub params: JobParams,
    pub input_files: Vec<Filename>,
    pub price: MicroUsd,
    pub options: SubmitOptions,
}

/// The seed drawn for a request that asked for a random one.
pub(super) fn random_seed() -> u64 {
    u64::from_le_bytes(random_bytes()) % (RANDOM_SEED_MAX + 1)
}

/// The submit flow shared by images, video and the BFL façade.
pub(super) async fn submit(
    req: Request,
    env: &Env,
    caller: &Caller,
    s: Submission,
    force_async: bool,
) -> EdgeResult<Response> {
    let mode = if force_async {
        Mode::Async
    } else {
        mode(&req, env, &s.options)?
    };
    if let Some(url) = &s.options.reply_url {
        // The SSRF guard: never deliver to private, loopback or link-local addresses.
        kiln_shared::webhooks::check_destination(url, &config::webhook_allow_list(env)).map_err(
            |why| {
                ApiError::invalid_param(&s.options.reply_url_param, ErrorCode::InvalidReplyUrl, why)
            },
        )?;
    }
    // Inputs must be the caller's own files: checked before anything is held.
    if !s.input_files.is_empty() {
        caller
            .account
            .call(&OwnFiles {
                filenames: s.input_files.iter().map(|f| f.to_string()).collect(),
            })
            .await?;
    }
    let base = base_url(&req)?;
    let id = JobId::generate(now_ms() as u64, random_bytes());
    let cost = if caller.kind.is_test() {
        MicroUsd::ZERO
    } else {
        s.price
    };
    let new_job = NewJob {
        id: id.clone(),
        account_id: caller.account_id.clone(),
        test_mode: caller.kind.is_test(),
        model_id: s.model_id,
        workflow: s.workflow,
        params: s.params,
        input_files: s.input_files,
        cost,
        reply_url: s.options.reply_url.clone(),
        reply_ref: s.options.reply_ref.clone(),
        base_url: base.clone(),
        webhook_progress: s.options.webhook_events.progress,
        webhook_started: s.options.webhook_events.started,
    };
    let balances = hold(caller, &new_job).await?;
    let job = JobState::new(new_job, now_ms());
    let created = match bindings::job(env, &id) {
        Ok(job_do) => job_do.call(&Create { job }).await,
        Err(e) => Err(e),
    };
    let (job, position) = match created {
        Ok(env_) => (env_.job, env_.queue_position),
        Err(e) => {
            release_after_failed_create(caller, &id, cost).await;
            return Err(e);
        }
    };
    let (job, position) = match mode {
        Mode::Async => (job, position),
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
    let resp = respond(env, &base, &job, position, mode, s.options.response_format)
        .await
        .unwrap_or_else(EdgeError::into_response);
    let headers = resp.headers();
    headers.set("x-credits-remaining-usd", &remaining.to_usd_string())?;
    headers.set("x-kiln-job-id", id.as_str())?;
    Ok(resp)
}

/// Reserves the job's price; a test-mode job (price 0) only reads the balance.
async fn hold(caller: &Caller, job: &NewJob) -> EdgeResult<Balances> {
    caller
        .account
        .call(&Hold {
            job_id: job.id.clone(),
            amount: job.cost,
            job_type: job.params.job_type(),
            model_id: job.model_id.clone(),
            units: job.params.units(),
            prompt_preview: job.params.prompt().to_owned(),
        })
        .await
}

/// The Job DO could not be created, so nothing will ever settle this hold: release it
/// here. A failure is logged; the hold then stays open for an operator to see.
async fn release_after_failed_create(caller: &Caller, id: &JobId, cost: MicroUsd) {
    if cost.micros() == 0 {
        return;
    }
    let settle = Settle {
        job_id: id.clone(),
        capture: false,
    };
    if let Err(e) = caller.account.call(&settle).await {
        worker::console_error!("could not release hold of {id}: {e:?}");
    }
}

/// Waits for the job to end, up to `secs`; the job and, if still queued, its place.
pub async fn wait(env: &Env, id: &JobId, secs: u64) -> EdgeResult<(JobState, Option<u32>)> {
    let e = bindings::job(env, id)?
        .call(&Wait {
            timeout_ms: secs.saturating_mul(1000),
        })
        .await?;
    Ok((e.job, e.queue_position))
}

async fn respond(
    env: &Env,
    base: &str,
    job: &JobState,
    position: Option<u32>,
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
        Mode::Sync(_) => job.to_view(base, position),
        Mode::Async | Mode::Wait(_) => json!({
            "job_id": job.id,
            "status": job.status,
            "queue_position": position.filter(|_| job.status == JobStatus::Queued),
            "polling_url": format!("{base}{location}"),
        }),
    };
    let resp = json(202, &body)?;
    resp.headers().set("location", &location)?;
    Ok(resp)
}
