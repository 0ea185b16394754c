//! Small HTTP helpers shared by the edge's modules: JSON responses, reading bodies with
//! a size limit, and the JSON calls the Worker makes to its Durable Objects.

use kiln_shared::headers::check_json_content_type;
use kiln_shared::ApiError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use worker::{Headers, Method, Request, RequestInit, Response, Stub};

use crate::error::{EdgeError, EdgeResult};

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

/// Calls a Durable Object with an optional JSON body. A non-2xx answer in the API's
/// error shape becomes that [`ApiError`]; anything else non-2xx is a runtime error.
pub async fn call_do<T: DeserializeOwned>(
    stub: &Stub,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> EdgeResult<T> {
    let mut init = RequestInit::new();
    init.with_method(method);
    if let Some(body) = body {
        let headers = Headers::new();
        headers.set("content-type", "application/json")?;
        init.with_headers(headers)
            .with_body(Some(body.to_string().into()));
    }
    let req = Request::new_with_init(&format!("https://do.internal{path}"), &init)?;
    let mut resp = stub.fetch_with_request(req).await?;
    let status = resp.status_code();
    let text = resp.text().await?;
    if (200..300).contains(&status) {
        return Ok(serde_json::from_str(&text)?);
    }
    let parsed: Option<Value> = serde_json::from_str(&text).ok();
    match parsed.as_ref().and_then(|v| ApiError::from_json(status, v)) {
        Some(api) => Err(api.into()),
        None => Err(worker::Error::RustError(format!("{path} answered {status}: {text}")).into()),
    }
}

/// Reads a Durable Object's JSON request body into `T`; malformed internal calls are
/// bugs, reported as runtime errors.
pub async fn internal_body<T: DeserializeOwned>(req: &mut Request) -> EdgeResult<T> {
    Ok(req.json::<T>().await?)
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
