use serde_json::json;

use super::prelude::*;

/// `POST /v1/billing/stripe/webhook`
pub(crate) fn stripe_webhook() -> Op {
    Op::new(
        Post,
        "/v1/billing/stripe/webhook",
        Stripe,
        json!({
            "operationId": "stripeWebhook",
            "tags": [
                "billing"
            ],
            "summary": "Stripe `checkout.session.completed` → top-up",
            "description": "For Stripe, not for API clients. Order: body size (413, 256 KiB), `STRIPE_WEBHOOK_SECRET` configured (else 500), signature (400 `invalid_signature`), event (400). The account is `data.object.client_reference_id`, else `data.object.metadata.account_id`. The credit follows what was paid: `amount_total` of exactly 500, 2000 or 5000 (cents) picks the tier (`starter` $5, `pro` $20, `max` $50) and the credit is the tier's amount. `metadata.tier` is optional and must agree with the amount; `currency`, when present, must be `usd`. An account id that names no account answers 404 `account_not_found`, so Stripe retries and alerts. Each event id is applied once per account (retries and replays answer `applied: false`). A top-up marks the account paid (`is_trial: false`); a trial account also receives an `sk-gen-` key labeled `paid`, revealed once through POST /v1/keys/{id}/reveal. No rate limiting, no X-RateLimit-* headers.",
            "requestBody": {
                "required": true,
                "content": json_body(schema_ref("StripeEvent"))
            },
            "responses": {
                "200": {
                    "description": "Received: applied, duplicate, or ignored.",
                    "content": json_body(schema_ref("StripeWebhookResult"))
                },
                "400": err(&[InvalidSignature, InvalidJson, InvalidValue], json!({
                    "description": "`invalid_signature` (missing header, no timestamp, timestamp more than 300 s off, no matching `v1`); `invalid_json`; `invalid_value` with param `id` (no event id), `client_reference_id` (no valid account id), `currency` (not USD) or `amount_total` (not 500, 2000 or 5000 cents, or disagreeing with `metadata.tier`)."
                })),
                "404": err(&[AccountNotFound], json!({
                    "description": "`account_not_found`: the session names an account id that does not exist. Stripe retries the event."
                })),
                "413": {
                    "$ref": "#/components/responses/PayloadTooLarge",
                    "description": "Body over 256 KiB."
                },
                "415": {
                    "$ref": "#/components/responses/UnsupportedMediaType"
                },
                "500": {
                    "$ref": "#/components/responses/InternalError"
                }
            }
        }),
    )
}
