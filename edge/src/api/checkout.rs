//! `POST /v1/billing/checkout`: a Stripe Checkout session for a credit tier, created
//! with Stripe's REST API. When it is paid, Stripe's `checkout.session.completed`
//! webhook ([`super::billing`]) credits the account named in the session. Without
//! `STRIPE_SECRET_KEY` (a local stack) the answer is 503 `billing_not_configured`.

use kiln_shared::dashboard::{checkout_form, parse_checkout};
use kiln_shared::{ApiError, ErrorCode};
use serde_json::{json, Value};
use worker::{Env, Method, Request, Response};

use crate::api::auth::Caller;
use crate::api::router::base_url;
use crate::platform::config;
use crate::platform::error::EdgeResult;
use crate::platform::http::{fetch_with_timeout, json, request};

/// The body is `{"tier": "..."}`.
pub const BODY_BYTES_MAX: usize = 1024;
/// Stripe answers in well under a second; a user is waiting on a button.
const STRIPE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);
const STRIPE_SESSIONS_URL: &str = "https://api.stripe.com/v1/checkout/sessions";

pub async fn handle_create(
    req: Request,
    body: Vec<u8>,
    env: &Env,
    caller: &Caller,
) -> EdgeResult<Response> {
    let tier = parse_checkout(&body)?;
    let Some(secret) = config::stripe_secret_key(env) else {
        return Err(ApiError::new(
            503,
            ErrorCode::BillingNotConfigured,
            "Stripe is not configured on this deployment (no STRIPE_SECRET_KEY), so credits cannot be bought here.",
        )
        .into());
    };
    let base = base_url(&req)?;
    let form = checkout_form(
        tier,
        &caller.account_id,
        &format!("{base}/app/credits?checkout=success"),
        &format!("{base}/app/credits?checkout=cancelled"),
    );
    let encoded = worker::url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let auth = format!("Bearer {secret}");
    let out = request(
        STRIPE_SESSIONS_URL,
        Method::Post,
        &[
            ("authorization", &auth),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        Some(encoded.into_bytes()),
    )?;
    let unavailable = |why: String| {
        worker::console_error!("stripe checkout: {why}");
        ApiError::new(
            503,
            ErrorCode::BillingNotConfigured,
            "Stripe did not create a Checkout session; try again later.",
        )
    };
    let mut resp = match fetch_with_timeout(out, STRIPE_TIMEOUT).await {
        Ok(Some(resp)) => resp,
        Ok(None) => return Err(unavailable("timed out".into()).into()),
        Err(e) => return Err(unavailable(format!("unreachable: {e:?}")).into()),
    };
    let status = resp.status_code();
    let text = resp.text().await?;
    let session: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    match (status, session["id"].as_str(), session["url"].as_str()) {
        (200..=299, Some(id), Some(url)) => json(
            201,
            &json!({"object": "checkout_session", "id": id, "url": url, "tier": tier.as_str(),
                    "amount_usd": tier.amount().to_usd_json()}),
        ),
        _ => Err(unavailable(format!("{status}: {text}")).into()),
    }
}
