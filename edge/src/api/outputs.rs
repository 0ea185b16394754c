//! `GET /outputs/{filename}`: generated files from R2. Filenames carry 80 random bits
//! of job id, so the URL itself is the capability, as with other generation APIs;
//! files never change, so they are cached for a year. Byte ranges are served so
//! video players can seek. Past its `expires_at` a file answers 410 `expired`; the
//! scheduled sweep ([`sweep`]) then deletes its bytes and keeps an empty tombstone, so
//! it keeps answering 410.

use kiln_shared::headers::ByteRange;
use kiln_shared::ids::Filename;
use kiln_shared::{ApiError, ErrorCode};
use worker::{Env, Headers, Method, Range, Request, Response};

use crate::platform::error::{EdgeError, EdgeResult};

/// Immutable content: a year in every cache.
const CACHE_CONTROL: &str = "public, max-age=31536000, immutable";

/// The R2 custom-metadata field that holds when a stored file expires (Unix ms).
pub const EXPIRES_META: &str = "expires_at_ms";

/// The custom metadata of a stored file that expires at `expires_at_ms`.
pub fn expiry_metadata(expires_at_ms: i64) -> std::collections::HashMap<String, String> {
    std::collections::HashMap::from([(EXPIRES_META.to_owned(), expires_at_ms.to_string())])
}

/// Whether a stored object's metadata says it has expired at `now`.
pub fn is_expired(meta: &std::collections::HashMap<String, String>, now: i64) -> bool {
    meta.get(EXPIRES_META)
        .and_then(|v| v.parse::<i64>().ok())
        .is_some_and(|at| at <= now)
}

/// 410 `expired`.
pub fn expired() -> ApiError {
    ApiError::new(
        410,
        ErrorCode::Expired,
        "This file has expired and is no longer served.",
    )
}

/// The R2 key of an output file.
pub fn output_key(name: &Filename) -> String {
    format!("outputs/{name}")
}

fn not_found() -> ApiError {
    ApiError::not_found(ErrorCode::FileNotFound, "No such file.")
}

pub async fn handle_get(req: &Request, env: &Env, name: &str) -> EdgeResult<Response> {
    let name = Filename::parse(name).ok_or_else(not_found)?;
    let bucket = env.bucket("MEDIA")?;
    let key = output_key(&name);
    let head = bucket.head(&key).await?.ok_or_else(not_found)?;
    if is_expired(&head.custom_metadata()?, crate::platform::clock::now_ms()) {
        return Err(expired().into());
    }
    let size = head.size();
    let etag = head.http_etag();

    let headers = Headers::new();
    headers.set("content-type", name.content_type())?;
    headers.set("cache-control", CACHE_CONTROL)?;
    headers.set("etag", &etag)?;
    headers.set("accept-ranges", "bytes")?;

    if req.headers().get("if-none-match")?.as_deref() == Some(etag.as_str()) {
        return Ok(Response::empty()?.with_status(304).with_headers(headers));
    }

    // `Range` is read by kiln-shared's checked parser, so bytes are only ever addressed
    // within `0..size`. It applies to GET only: HEAD ignores it (RFC 9110 §14.2) and
    // describes the whole file.
    let range = match req.headers().get("range")? {
        Some(h) if req.method() == Method::Get => ByteRange::parse(&h, size),
        _ => ByteRange::Whole,
    };
    if range == ByteRange::Unsatisfiable {
        let resp = EdgeError::Api(ApiError::new(
            416,
            ErrorCode::RangeNotSatisfiable,
            format!("The requested range is outside the file ({size} bytes)."),
        ))
        .into_response();
        resp.headers()
            .set("content-range", &format!("bytes */{size}"))?;
        return Ok(resp);
    }
    headers.set("content-length", &range.len(size).to_string())?;

    if req.method() == Method::Head {
        return Ok(Response::empty()?.with_headers(headers));
    }
    let mut get = bucket.get(&key);
    if let ByteRange::Part { start, .. } = range {
        get = get.range(Range::OffsetWithLength {
            offset: start,
            length: range.len(size),
        });
    }
    let object = get.execute().await?.ok_or_else(not_found)?;
    let body = object.body().ok_or_else(not_found)?;
    let resp = Response::from_body(body.response_body()?)?;
    if let ByteRange::Part { start, end } = range {
        headers.set("content-range", &format!("bytes {start}-{end}/{size}"))?;
        return Ok(resp.with_status(206).with_headers(headers));
    }
    Ok(resp.with_headers(headers))
}

/// Files a sweep looks at per prefix and run, at most (bounded work per Cron Trigger).
const SWEEP_LIST_MAX: u32 = 1000;

/// The scheduled sweep: every expired upload and output loses its bytes. An empty
/// object with the same metadata stays as a tombstone, so the file keeps answering 410
/// (and the job keeps its record). Returns how many files were swept.
pub async fn sweep(env: &Env) -> EdgeResult<usize> {
    let bucket = env.bucket("MEDIA")?;
    let now = crate::platform::clock::now_ms();
    let mut swept = 0;
    for prefix in ["outputs/", "uploads/"] {
        let mut cursor: Option<String> = None;
        let mut seen = 0;
        loop {
            let mut list = bucket
                .list()
                .prefix(prefix)
                .limit(SWEEP_LIST_MAX)
                .include(vec![worker::Include::CustomMetadata]);
            if let Some(c) = cursor.take() {
                list = list.cursor(c);
            }
            let page = list.execute().await?;
            for object in page.objects() {
                seen += 1;
                let meta = object.custom_metadata()?;
                if object.size() > 0 && is_expired(&meta, now) {
                    bucket
                        .put(object.key(), Vec::<u8>::new())
                        .custom_metadata(meta)
                        .execute()
                        .await?;
                    swept += 1;
                }
            }
            cursor = page.cursor();
            if cursor.is_none() || seen >= SWEEP_LIST_MAX {
                break;
            }
        }
    }
    Ok(swept)
}
