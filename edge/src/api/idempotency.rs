//! `Idempotency-Key` for POSTs that create something. The caller's Account DO keeps the
//! records: the first request with a key runs and its successful response is stored;
//! a repeat with the same request gets that response again (marked
//! `Idempotent-Replayed: true`) without running — so nothing is charged twice — and a
//! repeat with a different request is 409. Failed requests are not stored, so a retry
//! after an error runs again.

use kiln_shared::idempotency::{fingerprint, IdempotencyKey, HEADER};
use std::future::Future;
use worker::{Headers, Request, Response};

use crate::api::auth::Caller;
use crate::durable::account::proto::{IdemAbort, IdemBegin, IdemFinish, IdemOutcome};
use crate::platform::error::EdgeResult;
use crate::platform::http::json_body;

/// Response headers worth replaying with the stored body.
const REPLAYED_HEADERS: &[&str] = &[
    "content-type",
    "location",
    "x-kiln-job-id",
    "x-credits-remaining-usd",
];

/// Reads the body (up to `max_bytes`) and runs `handler` at most once per key.
pub async fn run<'a, F, Fut>(
    mut req: Request,
    caller: &Caller,
    max_bytes: usize,
    handler: F,
) -> EdgeResult<Response>
where
    F: FnOnce(Request, Vec<u8>) -> Fut + 'a,
    Fut: Future<Output = EdgeResult<Response>> + 'a,
{
    let body = json_body(&mut req, max_bytes).await?;
    let Some(raw) = req.headers().get(HEADER)? else {
        return handler(req, body).await;
    };
    let key = IdempotencyKey::parse(&raw)?;
    let url = req.url()?;
    let target = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    };
    let begin = IdemBegin {
        key: key.as_str().to_owned(),
        fingerprint: fingerprint(req.method().as_ref(), &target, &body),
    };
    match caller.account.call(&begin).await? {
        IdemOutcome::Replay {
            status,
            body,
            headers,
        } => {
            let h = Headers::new();
            for (k, v) in &headers {
                h.set(k, v)?;
            }
            h.set("idempotent-replayed", "true")?;
            Ok(Response::ok(body)?.with_status(status).with_headers(h))
        }
        IdemOutcome::Proceed => {
            let result = handler(req, body).await;
            finish(caller, &key, result).await
        }
    }
}

async fn finish(
    caller: &Caller,
    key: &IdempotencyKey,
    result: EdgeResult<Response>,
) -> EdgeResult<Response> {
    let mut resp = match result {
        Ok(resp) if (200..300).contains(&resp.status_code()) => resp,
        other => {
            let abort = IdemAbort {
                key: key.as_str().to_owned(),
            };
            if let Err(e) = caller.account.call(&abort).await {
                worker::console_error!("idempotency abort failed: {e:?}");
            }
            return other;
        }
    };
    let status = resp.status_code();
    let headers = resp.headers().clone();
    let text = resp.text().await?;
    let kept: Vec<(String, String)> = REPLAYED_HEADERS
        .iter()
        .filter_map(|name| {
            headers
                .get(name)
                .ok()
                .flatten()
                .map(|v| ((*name).to_owned(), v))
        })
        .collect();
    let record = IdemFinish {
        key: key.as_str().to_owned(),
        status,
        body: text.clone(),
        headers: kept,
    };
    // The work is done; if storing the record fails, still answer, and log it.
    if let Err(e) = caller.account.call(&record).await {
        worker::console_error!("idempotency record not stored: {e:?}");
    }
    Ok(Response::ok(text)?
        .with_status(status)
        .with_headers(headers))
}
