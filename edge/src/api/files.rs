//! The account's files: `POST /v1/uploads` (multipart field `file`), `GET
//! /v1/uploads/mine` and `GET /v1/generations/mine` (newest first, `limit`/`offset`),
//! `DELETE /v1/uploads/{id}` and `DELETE /v1/generations/{filename}`.
//!
//! An upload is read as a stream with a byte limit (413 as soon as it is passed, the
//! rest never buffered), recognised from its bytes by [`kiln_shared::files::probe`]
//! (415 for anything but PNG, APNG, JPEG, WebP and GIF; 400 for a canvas too large to
//! decode safely), stored in R2 under `uploads/`, and indexed in the account's DO,
//! which deduplicates by SHA-256: the same bytes twice are one file.

use futures_util::StreamExt;
use kiln_shared::files::probe;
use kiln_shared::query::Page;
use kiln_shared::time::rfc3339;
use kiln_shared::{ApiError, ErrorCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use worker::{Env, HttpMetadata, Request, Response};

use crate::api::auth::Caller;
use crate::api::outputs::EXPIRES_META;
use crate::durable::account::proto::{DeleteFile, FileKind, FileRecord, ListFiles, RecordUpload};
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

/// The `file` field of a multipart body, read with the size limit enforced as it
/// streams in: its bytes and the client's file name.
async fn read_file_field(req: &mut Request) -> EdgeResult<(Vec<u8>, Option<String>)> {
    let content_type = req.headers().get("content-type")?.unwrap_or_default();
    let boundary = multer::parse_boundary(&content_type).map_err(|_| {
        ApiError::unsupported_media(
            "Send the file as multipart/form-data, in a field named `file`.",
        )
    })?;
    if req
        .headers()
        .get("content-length")?
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > UPLOAD_BYTES_MAX + FRAMING_BYTES_MAX)
    {
        return Err(too_large().into());
    }
    // Read with the limit enforced chunk by chunk: past it, stop and answer 413 without
    // reading the rest.
    let cap = UPLOAD_BYTES_MAX + FRAMING_BYTES_MAX;
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
    while let Some(field) = multipart.next_field().await.map_err(refused)? {
        if field.name() != Some("file") {
            continue;
        }
        let name = field
            .file_name()
            .map(|n| n.chars().take(ORIGINAL_NAME_CHARS_MAX).collect());
        let bytes = field.bytes().await.map_err(refused)?;
        return Ok((bytes.to_vec(), name));
    }
    Err(ApiError::invalid_param(
        "file",
        ErrorCode::MissingParameter,
        "Send the file in a multipart field named `file`.",
    )
    .into())
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
    let (bytes, original_filename) = read_file_field(&mut req).await?;
    let probe = probe(&bytes)?;
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let filename = format!("up_{}.{}", ids_token(), probe.format.extension());
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
        created_at_ms: now_ms(),
        expires_at_ms: now_ms().saturating_add(config::file_retention_ms(env)),
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
        .custom_metadata(std::collections::HashMap::from([(
            EXPIRES_META.to_owned(),
            record.expires_at_ms.to_string(),
        )]))
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
