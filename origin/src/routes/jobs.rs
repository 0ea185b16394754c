//! The edge's calls about jobs, each signed with the edge→origin keyring over its method,
//! path (with query) and raw body.
//!
//! `POST /v1/jobs` ([`DISPATCH_PATH`](kiln_shared::origin::DISPATCH_PATH)): the edge
//! hands this origin a job. Checked in this order, each failure in the API's error
//! shape: the signature over the raw body (401), the body (400 `invalid_json`), a replay
//! of an accepted or running `(job_id, attempt)` (409 `duplicate_dispatch`), a free slot
//! (503 `no_capacity`, which leaves the job queued at the edge). Then 202, and the job
//! runs in the background holding its slot (see [`crate::running`]). A dispatch of a
//! newer attempt of a job first stops the older attempts still running here (the edge
//! has moved the job on) and waits for their slots, so it can take one of them.
//!
//! `DELETE /v1/jobs/{job_id}` ([`cancel_path`](kiln_shared::origin::cancel_path)): stop a
//! job the edge cancelled. The signature first (401), then 404 `job_not_found` unless an
//! attempt of the job is in progress here. Every attempt of it is stopped — no further
//! event, no upload — and the answer, 200 `{"cancelled": true}`, comes once their slots
//! are free (or after [`CANCEL_WAIT_SECS_MAX`]), so the edge can dispatch its next job here
//! straight away.

use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::Json;
use kiln_shared::ids::JobId;
use kiln_shared::origin::DispatchJob;
use kiln_shared::signing::{ReceivedHeaders, HEADER_KEY_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP};
use serde_json::{json, Value};

use crate::error::AppError;
use crate::flag::Flag;
use crate::startup::AppState;

/// A dispatch is a prompt and a few parameters, a few KiB; 1 MiB leaves room for
/// growth and still bounds what an unauthenticated caller can make us buffer.
pub const BODY_BYTES_MAX: usize = 1024 * 1024;
/// An engine stops within a step; a cancel (or a newer attempt's dispatch) goes on
/// after this even if one does not.
pub const CANCEL_WAIT_SECS_MAX: u64 = 5;

pub async fn handle_dispatch(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), AppError> {
    let body = verified_body(&state, &method, &uri, &headers, body)?;
    let job: DispatchJob = serde_json::from_slice(&body)?;

    let superseded = state.running.stop_older(&job.job_id, job.attempt);
    if !superseded.is_empty() {
        tracing::info!(job_id = %job.job_id, attempt = job.attempt, "stopping older attempts");
        wait_released(&superseded, job.job_id.as_str()).await;
    }
    let slot = {
        let mut seen = state.lock_seen();
        let now = Instant::now();
        if seen.contains(&job.job_id, job.attempt, now)
            || state.running.contains(&job.job_id, job.attempt)
        {
            return Err(AppError::DuplicateDispatch {
                job_id: job.job_id,
                attempt: job.attempt,
            });
        }
        // An engine that counts its own hardware (one ComfyUI server per slot) admits
        // a real job only while a ready server is free; test-mode jobs run on the sim.
        if !job.test_mode && state.runner.engine.ready_free() == Some(0) {
            return Err(AppError::NoCapacity);
        }
        // Recorded only once admitted: a dispatch refused with 503 is retried by the
        // edge with the same attempt number and must not then look like a replay.
        let permit = state
            .slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| AppError::NoCapacity)?;
        seen.insert(job.job_id.clone(), job.attempt, now);
        state.running.admit(job.job_id.clone(), job.attempt, permit)
    };

    tracing::info!(job_id = %job.job_id, attempt = job.attempt, "dispatch accepted");
    tokio::spawn(state.runner.clone().run(job, slot));
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"accepted": true, "origin_id": state.runner.origin_id})),
    ))
}

pub async fn handle_cancel(
    State(state): State<AppState>,
    job_id: Result<Path<String>, PathRejection>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, AppError> {
    verified_body(&state, &method, &uri, &headers, body)?;
    let raw = job_id.map(|Path(id)| id).unwrap_or_default();
    let released = JobId::parse(&raw)
        .map(|id| state.running.stop(&id))
        .unwrap_or_default();
    if released.is_empty() {
        return Err(AppError::JobNotFound { job_id: raw });
    }
    tracing::info!(job_id = %raw, "cancel: stopping the job");
    wait_released(&released, &raw).await;
    Ok(Json(json!({"cancelled": true})))
}

/// Waits until every stopped attempt gave its slot back, or [`CANCEL_WAIT_SECS_MAX`].
async fn wait_released(released: &[Flag], job_id: &str) {
    let all = async {
        for flag in released {
            flag.wait().await;
        }
    };
    if tokio::time::timeout(Duration::from_secs(CANCEL_WAIT_SECS_MAX), all)
        .await
        .is_err()
    {
        tracing::warn!(%job_id, "a stopped job has not given its slot back yet");
    }
}

/// The request body, once its signature checks out.
fn verified_body(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Bytes, AppError> {
    let body = body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => AppError::PayloadTooLarge,
        _ => AppError::UnreadableBody,
    })?;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let received = ReceivedHeaders {
        key_id: header(HEADER_KEY_ID),
        timestamp: header(HEADER_TIMESTAMP),
        signature: header(HEADER_SIGNATURE),
    };
    // The signed path includes the query, so one cannot be added to a captured request.
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    state.dispatch_keys.verify(
        crate::unix_secs_now(),
        &received,
        method.as_str(),
        path,
        &body,
    )?;
    Ok(body)
}
