//! Webhooks as the API shows them: `GET /v1/webhooks/secret` and
//! `POST /v1/webhooks/secret/rotate` (the account's Standard Webhooks signing secret,
//! `whsec_…`; after a rotation the old secret keeps signing, beside the new one, for
//! 24 h, so receivers can switch without dropping a delivery), and each job's delivery
//! log (`GET /v1/jobs/{id}/deliveries`) and replay (`POST /v1/jobs/{id}/webhook`). The
//! deliveries themselves: the Job DO's outbox (`durable::job::outbox`).

use kiln_shared::time::rfc3339;
use serde_json::json;
use worker::{Env, Response};

use crate::api::auth::Caller;
use crate::api::jobs::load_owned;
use crate::durable::account::proto::{GetWebhookSecrets, RotateWebhookSecret, WebhookSecrets};
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
    json(
        200,
        &json!({
            "object": "list",
            "job_id": owned.job.id,
            "reply_url": owned.job.reply_url,
            "events": d.events,
            "data": d.attempts,
        }),
    )
}

/// `POST /v1/jobs/{id}/webhook`: re-sends the terminal event now and reports the attempt.
pub async fn handle_replay(env: &Env, caller: &Caller, id: &str) -> EdgeResult<Response> {
    let owned = load_owned(env, caller, id).await?;
    let d = bindings::job(env, &owned.job.id)?
        .call(&ReplayWebhook)
        .await?;
    json(200, &d)
}
