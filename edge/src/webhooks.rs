//! `GET /v1/webhooks/secret` and `POST /v1/webhooks/secret/rotate`: the account's
//! Standard Webhooks signing secret (`whsec_…`). After a rotation the old secret keeps
//! signing, beside the new one, for 24 h, so receivers can switch without dropping a
//! delivery.

use kiln_shared::time::rfc3339;
use serde_json::json;
use worker::{Method, Response};

use crate::account_do::WebhookSecrets;
use crate::auth::Caller;
use crate::error::EdgeResult;
use crate::http::{call_do, json};

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
    let s: WebhookSecrets = call_do(&caller.account, Method::Get, "/webhooks/secret", None).await?;
    json(200, &view(&s))
}

pub async fn handle_rotate(caller: &Caller) -> EdgeResult<Response> {
    let s: WebhookSecrets = call_do(
        &caller.account,
        Method::Post,
        "/webhooks/secret/rotate",
        None,
    )
    .await?;
    json(200, &view(&s))
}
