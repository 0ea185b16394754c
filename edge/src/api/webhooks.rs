//! Webhooks as the API shows them: `GET /v1/webhooks/secret` and
//! `POST /v1/webhooks/secret/rotate` (the account's Standard Webhooks signing secret,
//! `whsec_…`; after a rotation the old secret keeps signing, beside the new one, for
//! 24 h, so receivers can switch without dropping a delivery), and each job's delivery
//! log (`GET /v1/jobs/{id}/deliveries`) and replay (`POST /v1/jobs/{id}/webhook`). The
//! deliveries themselves: the Job DO's outbox (`durable::job::outbox`).

use kiln_shared::time::rfc3339;
use serde_json::{json, Value};
use worker::{Env, Response};

use crate::api::auth::Caller;
use crate::api::jobs::load_owned;
use crate::durable::account::proto::{GetWebhookSecrets, RotateWebhookSecret, WebhookSecrets};
use crate::durable::job::outbox::{AttemptRecord, EventRecord};
use crate::durable::job::proto::{ListDeliveries, ReplayWebhook};
use crate::platform::bindings;
use crate::platform::error::EdgeResult;
use crate::platform::http::json;

fn view(s: &WebhookSecrets) -> serde_json::Value {
    json!({
        "secret": s.current,
        "created_at": rfc3339(s.created_at_ms),
        "previous": s.previous.as_ref().map(|p| json!({
            "secret": p.secret,
            "expires_at": rfc3339(p.expires_at_ms),
        })),
        "signature_scheme": "Standard Webhooks v1 (HMAC-SHA256)",
    })
}

/// One event of a job, with where its delivery stands.
fn event_object(e: &EventRecord) -> Value {
    json!({
        "webhook_id": e.webhook_id,
        "type": e.event_type,
        "state": e.state,
        "attempts": e.attempts,
        "next_attempt_at": e.next_at_ms.map(rfc3339),
    })
}

/// One delivery attempt.
fn attempt_object(a: &AttemptRecord) -> Value {
    json!({
        "webhook_id": a.webhook_id,
        "type": a.event_type,
        "attempt": a.attempt,
        "attempted_at": rfc3339(a.at_ms),
        "status_code": a.status,
        "latency_ms": a.latency_ms,
        "error": a.error,
        "replay": a.replay,
    })
}

pub async fn handle_get(caller: &Caller) -> EdgeResult<Response> {
    let s = caller.account.call(&GetWebhookSecrets).await?;
    json(200, &view(&s))
}

pub async fn handle_rotate(caller: &Caller) -> EdgeResult<Response> {
    let s = caller.account.call(&RotateWebhookSecret).await?;
    json(200, &view(&s))
}

/// `GET /v1/jobs/{id}/deliveries`: the job's webhook events and every delivery attempt.
pub async fn handle_deliveries(env: &Env, caller: &Caller, id: &str) -> EdgeResult<Response> {
    let owned = load_owned(env, caller, id).await?;
    let d = bindings::job(env, &owned.job.id)?
        .call(&ListDeliveries)
        .await?;
    let events: Vec<Value> = d.events.iter().map(event_object).collect();
    let attempts: Vec<Value> = d.attempts.iter().map(attempt_object).collect();
    json(
        200,
        &json!({
            "object": "list",
            "job_id": owned.job.id,
            "reply_url": owned.job.reply_url,
            "events": events,
            "data": attempts,
        }),
    )
}

/// `POST /v1/jobs/{id}/webhook`: re-sends the terminal event now and reports the attempt.
pub async fn handle_replay(env: &Env, caller: &Caller, id: &str) -> EdgeResult<Response> {
    let owned = load_owned(env, caller, id).await?;
    let attempt = bindings::job(env, &owned.job.id)?
        .call(&ReplayWebhook)
        .await?;
    json(200, &attempt_object(&attempt))
}
