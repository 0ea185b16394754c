//! `POST /v1/jobs` ([`DISPATCH_PATH`](kiln_shared::origin::DISPATCH_PATH)): the edge
//! hands this origin a job. Checked in this order, each failure in the API's error
//! shape: the signature over the raw body (401), the body (400 `invalid_json`), a replay
//! of an accepted `(job_id, attempt)` (409 `duplicate_dispatch`), a free slot (503
//! `no_capacity`, which leaves the job queued at the edge). Then 202, and the job runs
//! in the background holding its slot until its result is delivered.

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::Json;
use kiln_shared::origin::DispatchJob;
use kiln_shared::signing::{ReceivedHeaders, HEADER_KEY_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP};
use serde_json::{json, Value};

use crate::error::AppError;
use crate::startup::AppState;

/// A dispatch is a prompt and a few parameters, a few KiB; 1 MiB leaves room for
/// growth and still bounds what an unauthenticated caller can make us buffer.
pub const BODY_BYTES_MAX: usize = 1024 * 1024;

pub async fn handle_dispatch(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), AppError> {
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
    let job: DispatchJob = serde_json::from_slice(&body)?;

    let permit = {
        let mut seen = state.lock_seen();
        let now = Instant::now();
        if seen.contains(&job.job_id, job.attempt, now) {
            return Err(AppError::DuplicateDispatch {
                job_id: job.job_id,
                attempt: job.attempt,
            });
        }
        // Recorded only once admitted: a dispatch refused with 503 is retried by the
        // edge with the same attempt number and must not then look like a replay.
        let permit = state
            .slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| AppError::NoCapacity)?;
        seen.insert(job.job_id.clone(), job.attempt, now);
        permit
    };

    tracing::info!(job_id = %job.job_id, attempt = job.attempt, "dispatch accepted");
    let runner = state.runner.clone();
    tokio::spawn(async move {
        runner.run(job).await;
        drop(permit);
    });
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"accepted": true, "origin_id": state.runner.origin_id})),
    ))
}
