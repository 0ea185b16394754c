//! The account's files: `POST /v1/uploads` (one multipart field, `file`), `GET
//! /v1/uploads/mine` and `GET /v1/generations/mine` (newest first, `limit`/`offset`),
//! `DELETE /v1/uploads/{id}` and `DELETE /v1/generations/{filename}`.
//!
//! An upload is read as a stream with a byte limit (413 as soon as it is passed, the
//! rest never buffered), recognised from its bytes by [`kiln_shared::files::probe`]
//! (415 for anything but PNG, APNG, JPEG, WebP and GIF; 400 for a canvas too large to
//! decode safely), stored in R2 under `uploads/`, and indexed in the account's DO,
//! which deduplicates by SHA-256: the same bytes twice are one file.

use futures_util::StreamExt;
use kiln_shared::files::{probe, Probe};
use kiln_shared::query::Page;
use kiln_shared::time::rfc3339;
use kiln_shared::{ApiError, ErrorCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use worker::{Env, HttpMetadata, Request, Response};

use crate::api::auth::Caller;
use crate::api::outputs::expiry_metadata;
use crate::durable::account::proto::{
    DeleteFile, FileKind, FileRecord, ListFiles, RecordUpload, Recorded,
};
use crate::platform::clock::{ids_token, now_ms};
use crate::platform::config;
use crate::platform::error::EdgeResult;
use crate::platform::http::{json, query_param};

/// The largest upload: 20 MB.
pub const UPLOAD_BYTES_MAX: u64 = 20 * 1000 * 1000;
/// Room for the multipart framing around the file.
const FRAMING_BYTES_MAX: u64 = 64 * 1024;
/// Longer client file names are cut.
const ORIGINAL_NAME_CHARS_MAX: usize = 255;

/// The R2 key of an upload.
pub fn upload_key(filename: &str) -> String {
    format!("uploads/{filename}")
}

fn too_large() -> ApiError {
    ApiError::payload_too_large(format!(
        "The file exceeds {} MB.",
        UPLOAD_BYTES_MAX / 1_000_000
    ))
}

/// One field of a multipart body: its name, the client's file name, and its bytes.
pub struct Part {
    pub name: String,
    pub file_name: Option<String>,
    pub bytes: Vec<u8>,
}

/// Reads a multipart body whose parts are at most [`UPLOAD_BYTES_MAX`] each and
/// `body_max` in all, enforced as it streams in: past it, 413 without reading the rest.
/// Not multipart is 415 with `hint`.
pub async fn read_multipart(req: &mut Request, body_max: u64, hint: &str) -> EdgeResult<Vec<Part>> {
    let content_type = req.headers().get("content-type")?.unwrap_or_default();
    let boundary =
        multer::parse_boundary(&content_type).map_err(|_| ApiError::unsupported_media(hint))?;
    let cap = body_max + FRAMING_BYTES_MAX;
    if req
        .headers()
        .get("content-length")?
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > cap)
    {
        return Err(too_large().into());
    }
    let mut body_stream = req.stream()?;
    let mut body: Vec<u8> = Vec::new();
    while let Some(chunk) = body_stream.next().await {
        let chunk = chunk?;
        if (body.len() + chunk.len()) as u64 > cap {
            return Err(too_large().into());
        }
        body.extend_from_slice(&chunk);
    }
    let stream =
        futures_util::stream::once(
            async move { Ok::<_, std::io::Error>(bytes::Bytes::from(body)) },
        );
    let limits = multer::Constraints::new().size_limit(
        multer::SizeLimit::new()
            .whole_stream(cap)
            .per_field(UPLOAD_BYTES_MAX),
    );
    let mut multipart = multer::Multipart::with_constraints(stream, boundary, limits);
    let refused = |e: multer::Error| -> crate::platform::error::EdgeError {
        match e {
            multer::Error::StreamSizeExceeded { .. } | multer::Error::FieldSizeExceeded { .. } => {
                too_large().into()
            }
            other => ApiError::bad_request(
                ErrorCode::InvalidBody,
                format!("The multipart body could not be read: {other}."),
            )
            .into(),
        }
    };
    let mut parts = Vec::new();
    while let Some(field) = multipart.next_field().await.map_err(refused)? {
        let name = field.name().unwrap_or_default().to_owned();
        let file_name = field
            .file_name()
            .map(|n| n.chars().take(ORIGINAL_NAME_CHARS_MAX).collect());
        let bytes = field.bytes().await.map_err(refused)?.to_vec();
        parts.push(Part {
            name,
            file_name,
            bytes,
        });
    }
    Ok(parts)
}

/// Stores and indexes one uploaded image, already read by [`probe`] (deduplicated per
/// account).
pub async fn store_upload(
    env: &Env,
    caller: &Caller,
    bytes: Vec<u8>,
    probe: Probe,
    original_filename: Option<String>,
) -> EdgeResult<Recorded> {
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let filename = format!("up_{}.{}", ids_token(), probe.format.extension());
    let now = now_ms();
    let record = FileRecord {
        filename: filename.clone(),
        kind: FileKind::Upload,
        sha256,
        format: probe.format.as_str().to_owned(),
        content_type: probe.format.content_type().to_owned(),
        width: probe.width,
        height: probe.height,
        frame_count: probe.frame_count,
        size_bytes: bytes.len() as u64,
        original_filename,
        job_id: None,
        created_at_ms: now,
        expires_at_ms: now.saturating_add(config::file_retention_ms(env)),
    };
    // The bytes first: an index row never names a file that is not stored. A duplicate's
    // fresh copy is removed again below.
    let bucket = env.bucket("MEDIA")?;
    bucket
        .put(upload_key(&filename), bytes)
        .http_metadata(HttpMetadata {
            content_type: Some(record.content_type.clone()),
            ..Default::default()
        })
        .custom_metadata(expiry_metadata(record.expires_at_ms))
        .execute()
        .await?;
    let recorded = match caller.account.call(&RecordUpload { file: record }).await {
        Ok(r) => r,
        Err(e) => {
            bucket.delete(upload_key(&filename)).await?;
            return Err(e);
        }
    };
    if recorded.deduplicated {
        bucket.delete(upload_key(&filename)).await?;
    }
    Ok(recorded)
}

/// A file as the API shows it.
pub fn file_object(base: &str, f: &FileRecord, deduplicated: Option<bool>) -> Value {
    let mut v = json!({
        "id": f.filename.split('.').next().unwrap_or(&f.filename),
        "object": match f.kind { FileKind::Upload => "upload", FileKind::Output => "output" },
        "filename": f.filename,
        "format": f.format,
        "content_type": f.content_type,
        "width": f.width,
        "height": f.height,
        "frame_count": f.frame_count,
        "size_bytes": f.size_bytes,
        "created_at": rfc3339(f.created_at_ms),
        "expires_at": rfc3339(f.expires_at_ms),
    });
    match f.kind {
        FileKind::Upload => v["original_filename"] = f.original_filename.clone().into(),
        FileKind::Output => {
            v["job_id"] = f.job_id.clone().into();
            v["url"] = format!("{base}/outputs/{}", f.filename).into();
        }
    }
    if let Some(d) = deduplicated {
        v["deduplicated"] = d.into();
    }
    v
}

/// `POST /v1/uploads`.
pub async fn handle_upload(mut req: Request, env: &Env, caller: &Caller) -> EdgeResult<Response> {
    let parts = read_multipart(
        &mut req,
        UPLOAD_BYTES_MAX,
        "Send the file as multipart/form-data, in a field named `file`.",
    )
    .await?;
    // One field, `file`: anything else is refused by name, like an unknown JSON field.
    let mut file = None;
    for part in parts {
        if part.name != "file" {
            return Err(ApiError::invalid_param(
                &part.name,
                ErrorCode::UnknownParameter,
                format!(
                    "`{}` is not a field of this endpoint; send the file in `file`.",
                    part.name
                ),
            )
            .into());
        }
        if file.is_some() {
            return Err(ApiError::invalid_param(
                "file",
                ErrorCode::InvalidValue,
                "Send one file per upload.",
            )
            .into());
        }
        file = Some(part);
    }
    let Some(file) = file else {
        return Err(ApiError::invalid_param(
            "file",
            ErrorCode::MissingParameter,
            "Send the file in a multipart field named `file`.",
        )
        .into());
    };
    let probe = probe(&file.bytes)?;
    let recorded = store_upload(env, caller, file.bytes, probe, file.file_name).await?;
    let base = crate::api::router::base_url(&req)?;
    let status = if recorded.deduplicated { 200 } else { 201 };
    json(
        status,
        &file_object(&base, &recorded.file, Some(recorded.deduplicated)),
    )
}

/// `GET /v1/uploads/mine` and `GET /v1/generations/mine`.
pub async fn handle_list(req: &Request, caller: &Caller, kind: FileKind) -> EdgeResult<Response> {
    let page = Page::parse(
        query_param(req, "limit")?.as_deref(),
        query_param(req, "offset")?.as_deref(),
    )?;
    let files = caller
        .account
        .call(&ListFiles {
            kind,
            limit: page.limit,
            offset: page.offset,
        })
        .await?;
    let base = crate::api::router::base_url(req)?;
    let data: Vec<Value> = files
        .files
        .iter()
        .map(|f| file_object(&base, f, None))
        .collect();
    json(
        200,
        &json!({"object": "list", "data": data, "has_more": files.has_more}),
    )
}

/// `DELETE /v1/uploads/{id}` (`id` with or without its extension) and
/// `DELETE /v1/generations/{filename}`.
pub async fn handle_delete(
    env: &Env,
    caller: &Caller,
    kind: FileKind,
    name: &str,
) -> EdgeResult<Response> {
    let file = caller
        .account
        .call(&DeleteFile {
            kind,
            name: name.to_owned(),
        })
        .await?;
    let key = match kind {
        FileKind::Upload => upload_key(&file.filename),
        FileKind::Output => format!("outputs/{}", file.filename),
    };
    env.bucket("MEDIA")?.delete(key).await?;
    json(200, &json!({"id": name, "deleted": true}))
}
