//! `GET /outputs/{filename}`: generated files from R2. Filenames carry 80 random bits
//! of job id, so the URL itself is the capability, as with other generation APIs;
//! files never change, so they are cached for a year. Byte ranges are served so
//! video players can seek.

use kiln_shared::ids::Filename;
use kiln_shared::ApiError;
use worker::{Env, Headers, Method, Range, Request, Response};

use crate::error::{EdgeError, EdgeResult};

/// Immutable content: a year in every cache.
const CACHE_CONTROL: &str = "public, max-age=31536000, immutable";

/// The R2 key of an output file.
pub fn output_key(name: &Filename) -> String {
    format!("outputs/{name}")
}

fn not_found() -> ApiError {
    ApiError::not_found("file_not_found", "No such file.")
}

/// Parses a single `bytes=` range; anything else is served whole (RFC 9110 allows
/// ignoring a Range header).
fn parse_range(header: &str) -> Option<Range> {
    let spec = header.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (start, end) = spec.split_once('-')?;
    match (start.trim(), end.trim()) {
        ("", suffix) => Some(Range::Suffix {
            suffix: suffix.parse().ok()?,
        }),
        (start, "") => Some(Range::OffsetToEnd {
            offset: start.parse().ok()?,
        }),
        (start, end) => {
            let (s, e): (u64, u64) = (start.parse().ok()?, end.parse().ok()?);
            (e >= s).then_some(Range::OffsetWithLength {
                offset: s,
                length: e - s + 1,
            })
        }
    }
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

    let range = req.headers().get("range")?.and_then(|h| parse_range(&h));
    let (start, end) = match &range {
        None => (0, size.saturating_sub(1)),
        Some(Range::OffsetWithLength { offset, length }) => {
            (*offset, (offset + length - 1).min(size.saturating_sub(1)))
        }
        Some(Range::OffsetToEnd { offset }) => (*offset, size.saturating_sub(1)),
        Some(Range::Suffix { suffix }) => (size.saturating_sub(*suffix), size.saturating_sub(1)),
        Some(Range::Prefix { length }) => (0, length.saturating_sub(1).min(size.saturating_sub(1))),
    };
    if range.is_some() && (start >= size || size == 0) {
        let resp = EdgeError::Api(ApiError::new(
            416,
            "range_not_satisfiable",
            format!("The requested range is outside the file ({size} bytes)."),
        ))
        .into_response();
        resp.headers()
            .set("content-range", &format!("bytes */{size}"))?;
        return Ok(resp);
    }
    let length = if size == 0 { 0 } else { end - start + 1 };
    headers.set("content-length", &length.to_string())?;

    if req.method() == Method::Head {
        return Ok(Response::empty()?.with_headers(headers));
    }
    let mut get = bucket.get(&key);
    if range.is_some() {
        get = get.range(Range::OffsetWithLength {
            offset: start,
            length,
        });
    }
    let object = get.execute().await?.ok_or_else(not_found)?;
    let body = object.body().ok_or_else(not_found)?;
    let resp = Response::from_stream(body.stream()?)?.with_headers(headers.clone());
    if range.is_some() {
        headers.set("content-range", &format!("bytes {start}-{end}/{size}"))?;
        return Ok(resp.with_status(206).with_headers(headers));
    }
    Ok(resp)
}
