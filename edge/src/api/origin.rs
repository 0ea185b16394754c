//! What origins send back, signed with the origin→edge keyring: progress and terminal
//! events (`POST /internal/origin/jobs/{id}/events`) and output files
//! (`PUT /internal/origin/jobs/{id}/outputs/{filename}`, stored in R2 before the
//! `completed` event names them), and heartbeats (`POST /internal/origin/heartbeat`,
//! for the Dispatcher's registry and leases). Unsigned, stale or forged requests are refused
//! before anything is read from or written to storage.

use kiln_shared::ids::{Filename, JobId};
use kiln_shared::origin::{EventEnvelope, Heartbeat};
use kiln_shared::signing::{ReceivedHeaders, HEADER_KEY_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP};
use kiln_shared::{ApiError, ErrorCode};
use serde_json::json;
use worker::{Env, HttpMetadata, Request, Response};

use crate::api::outputs::{expired, expiry_metadata, is_expired, output_key};
use crate::durable::job::proto::GetJob;
use crate::platform::bindings;
use crate::platform::clock::now_ms;
use crate::platform::config;
use crate::platform::error::EdgeResult;
use crate::platform::http::{body_bytes, json};

/// Events are small JSON objects.
const EVENT_BYTES_MAX: usize = 64 * 1024;
/// The largest output an origin may upload in one request.
const OUTPUT_BYTES_MAX: usize = 96 * 1024 * 1024;

/// Checks the request's signature over its method, path and body.
fn verify(req: &Request, env: &Env, body: &[u8]) -> EdgeResult<()> {
    let h = req.headers();
    let (key_id, ts, sig) = (
        h.get(HEADER_KEY_ID)?,
        h.get(HEADER_TIMESTAMP)?,
        h.get(HEADER_SIGNATURE)?,
    );
    let received = ReceivedHeaders {
        key_id: key_id.as_deref(),
        timestamp: ts.as_deref(),
        signature: sig.as_deref(),
    };
    let method = req.method();
    config::origin_to_edge_keys(env)?
        .verify(
            now_ms() / 1000,
            &received,
            method.as_ref(),
            &req.path(),
            body,
        )
        .map_err(|e| ApiError::from(e).into())
}

fn unknown_job() -> ApiError {
    ApiError::not_found(ErrorCode::JobNotFound, "No such job.")
}

pub async fn handle_event(mut req: Request, env: &Env, id: &str) -> EdgeResult<Response> {
    let body = body_bytes(&mut req, EVENT_BYTES_MAX).await?;
    verify(&req, env, &body)?;
    let id = JobId::parse(id).ok_or_else(unknown_job)?;
    let envelope: EventEnvelope = serde_json::from_slice(&body).map_err(ApiError::invalid_json)?;
    let ack = bindings::job(env, &id)?.call(&envelope).await?;
    json(200, &ack)
}

/// `POST /internal/origin/heartbeat`: a signed [`Heartbeat`] registers the origin with
/// the Dispatcher and renews the leases of the jobs it lists.
pub async fn handle_heartbeat(mut req: Request, env: &Env) -> EdgeResult<Response> {
    let body = body_bytes(&mut req, EVENT_BYTES_MAX).await?;
    verify(&req, env, &body)?;
    let hb: Heartbeat = serde_json::from_slice(&body).map_err(ApiError::invalid_json)?;
    let ok = hb.url.starts_with("http://") || hb.url.starts_with("https://");
    if !ok || hb.origin_id.is_empty() || hb.origin_id.len() > 64 {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidBody,
            "A heartbeat needs an origin_id and an http(s) url.",
        )
        .into());
    }
    bindings::dispatcher(env)?.call(&hb).await?;
    json(200, &json!({"ok": true}))
}

/// `GET /internal/origin/jobs/{id}/inputs/{filename}`: one of the job's input files,
/// for the origin running it (signed; never a public URL). Only files the job names
/// are served, from where they are stored (uploads, or the account's outputs).
pub async fn handle_input(req: Request, env: &Env, id: &str, name: &str) -> EdgeResult<Response> {
    verify(&req, env, b"")?;
    let id = JobId::parse(id).ok_or_else(unknown_job)?;
    let job = bindings::job(env, &id)?
        .call(&GetJob {
            with_position: false,
        })
        .await?
        .job;
    let Some(file) = job.input_files.iter().find(|f| f.as_str() == name) else {
        return Err(ApiError::not_found(
            ErrorCode::FileNotFound,
            "This job has no input file by that name.",
        )
        .into());
    };
    let key = input_key(file);
    let object = env
        .bucket("MEDIA")?
        .get(&key)
        .execute()
        .await?
        .ok_or_else(|| ApiError::not_found(ErrorCode::FileNotFound, "The input file is gone."))?;
    if is_expired(&object.custom_metadata()?, now_ms()) {
        return Err(expired().into());
    }
    let body = object
        .body()
        .ok_or_else(|| ApiError::not_found(ErrorCode::FileNotFound, "The input file is gone."))?;
    let headers = worker::Headers::new();
    headers.set("content-type", file.content_type())?;
    headers.set("content-length", &object.size().to_string())?;
    Ok(Response::from_body(body.response_body()?)?.with_headers(headers))
}

/// Where an input file is stored: uploads (`up_…`) under `uploads/`, outputs under
/// `outputs/`.
pub fn input_key(file: &Filename) -> String {
    if file.as_str().starts_with("up_") {
        crate::api::files::upload_key(file.as_str())
    } else {
        output_key(file)
    }
}

pub async fn handle_output(
    mut req: Request,
    env: &Env,
    id: &str,
    name: &str,
) -> EdgeResult<Response> {
    let body = body_bytes(&mut req, OUTPUT_BYTES_MAX).await?;
    verify(&req, env, &body)?;
    let id = JobId::parse(id).ok_or_else(unknown_job)?;
    let name = Filename::parse(name)
        .filter(|n| n.as_str().starts_with(&format!("{id}-")))
        .ok_or_else(|| {
            ApiError::invalid_param(
                "filename",
                ErrorCode::InvalidValue,
                "An output's filename must start with its job id.",
            )
        })?;
    let job = bindings::job(env, &id)?
        .call(&GetJob {
            with_position: false,
        })
        .await?;
    if job.job.status.is_terminal() {
        return Err(ApiError::conflict(ErrorCode::JobEnded, "The job has already ended.").into());
    }
    let size_bytes = body.len();
    env.bucket("MEDIA")?
        .put(output_key(&name), body)
        .http_metadata(HttpMetadata {
            content_type: Some(name.content_type().to_owned()),
            ..Default::default()
        })
        .custom_metadata({
            let mut meta = expiry_metadata(now_ms().saturating_add(config::file_retention_ms(env)));
            meta.insert("account_id".to_owned(), job.job.account_id.to_string());
            meta.insert("job_id".to_owned(), id.to_string());
            meta
        })
        .execute()
        .await?;
    json(201, &json!({"filename": name, "size_bytes": size_bytes}))
}
