//! `POST /v1/billing/stripe/webhook`: Stripe's `checkout.session.completed` tops up the
//! account named by the session. The signature is checked before anything is parsed;
//! each event id is applied once (the Account DO records it), so Stripe's retries and
//! replays change nothing. Errors answer non-2xx so Stripe retries and alerts.

use kiln_shared::keys::{ApiKey, KeyKind};
use kiln_shared::stripe::{self, Event};
use serde_json::{json, Value};
use worker::{Env, Method, Request, Response};

use crate::account_do::{NewKey, TopUpRequest};
use crate::auth::account_stub;
use crate::config;
use crate::error::EdgeResult;
use crate::http::{call_do, json, json_body};
use crate::keys::new_key_id;
use crate::{now_ms, random_bytes};

/// Stripe events are a few KiB; this leaves room without inviting abuse.
const BODY_BYTES_MAX: usize = 256 * 1024;

pub async fn handle_stripe_webhook(mut req: Request, env: &Env) -> EdgeResult<Response> {
    let body = json_body(&mut req, BODY_BYTES_MAX).await?;
    let secret = config::stripe_webhook_secret(env)?;
    let header = req.headers().get("stripe-signature")?;
    stripe::verify(&secret, header.as_deref(), &body, now_ms() / 1000)?;
    let top_up = match stripe::parse_event(&body)? {
        Event::Ignored { event_id, why } => {
            return json(
                200,
                &json!({"received": true, "event_id": event_id, "applied": false, "reason": why}),
            )
        }
        Event::TopUp(t) => t,
    };
    let gen_key = ApiKey::generate(KeyKind::Gen, &top_up.account, random_bytes());
    let request = TopUpRequest {
        event_id: top_up.event_id.clone(),
        tier: top_up.tier.as_str().to_owned(),
        amount_micros: top_up.tier.amount().micros(),
        gen_key: NewKey {
            id: new_key_id(),
            hash: gen_key.hash().as_str().to_owned(),
            kind: KeyKind::Gen.as_str().to_owned(),
            prefix: gen_key.display_prefix(),
            label: "paid".to_owned(),
            rate_limit_per_min: None,
        },
        gen_key_secret: gen_key.reveal().to_owned(),
    };
    let result: Value = call_do(
        &account_stub(env, &top_up.account)?,
        Method::Post,
        "/topup",
        Some(&serde_json::to_value(&request)?),
    )
    .await?;
    json(
        200,
        &json!({"received": true, "event_id": top_up.event_id, "applied": result["applied"], "converted": result["converted"]}),
    )
}
