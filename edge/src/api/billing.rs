//! `POST /v1/billing/stripe/webhook`: Stripe's `checkout.session.completed` tops up the
//! account named by the session. The signature is checked before anything is parsed;
//! each event id is applied once (the Account DO records it), so Stripe's retries and
//! replays change nothing. Errors answer non-2xx so Stripe retries and alerts.

use kiln_shared::keys::{ApiKey, KeyKind};
use kiln_shared::stripe::{self, Event};
use serde_json::json;
use worker::{Env, Request, Response};

use crate::durable::account::proto::{NewKey, TopUp};
use crate::platform::bindings;
use crate::platform::clock::{now_ms, random_bytes};
use crate::platform::config;
use crate::platform::error::EdgeResult;
use crate::platform::http::{json, json_body};

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
    let result = bindings::account(env, &top_up.account)?
        .call(&TopUp {
            event_id: top_up.event_id.clone(),
            tier: top_up.tier.as_str().to_owned(),
            amount: top_up.tier.amount(),
            gen_key: NewKey::new(&gen_key, "paid", None),
            gen_key_secret: gen_key.reveal().to_owned(),
        })
        .await?;
    json(
        200,
        &json!({"received": true, "event_id": top_up.event_id, "applied": result.applied, "converted": result.converted}),
    )
}
