//! `GET /outputs/{filename}`: generated files from R2. Filenames carry 80 random bits
//! of job id, so the URL itself is the capability, as with other generation APIs;
//! files never change, so they are cached for a year. Byte ranges are served so
//! video players can seek.

use kiln_shared::headers::ByteRange;
use kiln_shared::ids::Filename;
use kiln_shared::{ApiError, ErrorCode};
use worker::{Env, Headers, Method, Range, Request, Response};

use crate::platform::error::{EdgeError, EdgeResult};

/// Immutable content: a year in every cache.
const CACHE_CONTROL: &str = "public, max-age=31536000, immutable";

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
    let resp = Response::from_stream(body.stream()?)?;
    if let ByteRange::Part { start, end } = range {
        headers.set("content-range", &format!("bytes {start}-{end}/{size}"))?;
        return Ok(resp.with_status(206).with_headers(headers));
    }
    Ok(resp.with_headers(headers))
}
