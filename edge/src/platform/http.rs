//! Small HTTP helpers shared by the edge's modules: JSON responses, reading bodies with
//! a size limit, query parameters, and outbound requests with timeouts. (Calls to
//! Durable Objects: [`super::rpc`].)

use kiln_shared::headers::check_json_content_type;
use kiln_shared::ApiError;
use serde::Serialize;
use worker::{Headers, Method, Request, RequestInit, Response};

use crate::platform::error::{EdgeError, EdgeResult};

/// A JSON response with a status.
pub fn json<T: Serialize>(status: u16, body: &T) -> EdgeResult<Response> {
    Ok(Response::from_json(body)?.with_status(status))
}

/// Reads a request body, refusing more than `max_bytes` (413) before buffering it
/// where the client declared its length.
pub async fn body_bytes(req: &mut Request, max_bytes: usize) -> EdgeResult<Vec<u8>> {
    let declared = req
        .headers()
        .get("content-length")?
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > max_bytes) {
        return Err(too_large(max_bytes));
    }
    let body = req.bytes().await?;
    if body.len() > max_bytes {
        return Err(too_large(max_bytes));
    }
    Ok(body)
}

/// Reads a JSON request body: its `Content-Type` must allow JSON (415 otherwise, see
/// [`check_json_content_type`]) and it is read as [`body_bytes`] reads.
pub async fn json_body(req: &mut Request, max_bytes: usize) -> EdgeResult<Vec<u8>> {
    check_json_content_type(req.headers().get("content-type")?.as_deref())?;
    body_bytes(req, max_bytes).await
}

fn too_large(max_bytes: usize) -> EdgeError {
    ApiError::payload_too_large(format!("The request body exceeds {max_bytes} bytes.")).into()
}

/// The query parameter `name`, if present.
pub fn query_param(req: &Request, name: &str) -> EdgeResult<Option<String>> {
    Ok(req
        .url()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned()))
}

/// Sends an outbound request, aborting it after `timeout`. `Ok(None)` means it timed out.
pub async fn fetch_with_timeout(
    req: Request,
    timeout: std::time::Duration,
) -> EdgeResult<Option<Response>> {
    use futures_util::future::{select, Either};
    let controller = worker::AbortController::default();
    let signal = controller.signal();
    let fetch = worker::Fetch::Request(req);
    let send = fetch.send_with_signal(&signal);
    let timer = worker::Delay::from(timeout);
    futures_util::pin_mut!(send);
    match select(send, timer).await {
        Either::Left((resp, _)) => Ok(Some(resp?)),
        Either::Right(_) => {
            controller.abort();
            Ok(None)
        }
    }
}

/// Builds a request with a body and headers.
pub fn request(
    url: &str,
    method: Method,
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
) -> EdgeResult<Request> {
    let h = Headers::new();
    for (k, v) in headers {
        h.set(k, v)?;
    }
    let mut init = RequestInit::new();
    init.with_method(method).with_headers(h);
    if let Some(body) = body {
        let array = worker::js_sys::Uint8Array::from(body.as_slice());
        init.with_body(Some(array.into()));
    }
    Ok(Request::new_with_init(url, &init)?)
}
