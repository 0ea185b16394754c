//! The web dashboard's own operations: its cookie session and Stripe Checkout. The
//! pages themselves (`/`, `/app/…`) are static assets, not API routes.

use serde_json::json;

use super::prelude::*;
use crate::openapi::derived::key_kind;
use crate::stripe::Tier;

fn tiers() -> Vec<&'static str> {
    Tier::ALL.iter().map(|t| t.as_str()).collect()
}

/// "starter $5, pro $20, max $50."
fn tier_prices() -> String {
    let each: Vec<String> = Tier::ALL
        .iter()
        .map(|t| format!("{} ${}", t.as_str(), t.amount().to_usd_string()))
        .collect();
    format!("{}.", each.join(", "))
}

const COOKIE_NOTE: &str = "The cookie `kiln_session` is `HttpOnly; Secure; SameSite=Strict; Path=/` and lasts 7 days. Every keyed operation accepts it instead of `Authorization` (the header wins when both are sent); the session acts as the key it was opened with (its kind, its rate limit) and ends when that key is revoked. A cookie-authenticated request other than GET or HEAD must carry `Origin` equal to this API's origin (403 `cross_origin`).";

fn session_schema() -> serde_json::Value {
    json!({
        "type": "object",
        "required": ["object", "account_id", "expires_at"],
        "properties": {
            "object": {"type": "string", "enum": ["session"]},
            "account_id": {"type": "string"},
            "kind": {"type": "string", "enum": key_kind(), "description": "Signing in with a key: that key's kind."},
            "email": {"type": "string", "description": "Sign-up only."},
            "is_trial": {"type": "boolean", "description": "Sign-up only."},
            "balance_usd": {"type": "number", "description": "Sign-up only."},
            "api_key": {"type": "string", "description": "Sign-up only: the new trial key, shown once."},
            "key": {"type": "object", "description": "Sign-up only: the new key's id, label and prefix."},
            "expires_at": {"type": "string", "format": "date-time"}
        }
    })
}

fn set_cookie_header() -> serde_json::Value {
    json!({
        "Set-Cookie": {
            "description": "`kiln_session=ks_…; Max-Age=604800; Path=/; HttpOnly; Secure; SameSite=Strict`",
            "schema": {"type": "string"}
        }
    })
}

/// `POST /v1/session`
pub(crate) fn open_session() -> Op {
    Op::new(
        Post,
        "/v1/session",
        Public,
        json!({
            "operationId": "openSession",
            "tags": ["accounts"],
            "summary": "Sign up (email) or sign in (API key) and get the dashboard's session cookie",
            "description": format!("`{{\"email\": …}}` registers a trial exactly as POST /v1/accounts does (same answer, the key shown once, 409 `trial_exists`) and signs in with its key; `{{\"api_key\": …}}` signs in with a live key of the account. Exactly one of the two. A browser's `Origin`, when sent, must be this API's origin (403 `cross_origin`; API clients send none). Body at most 4 KiB. {COOKIE_NOTE}"),
            "requestBody": {
                "required": true,
                "content": {
                    "application/json": {
                        "schema": schema_ref("SessionRequest"),
                        "example": {"email": "you@example.com"}
                    }
                }
            },
            "responses": {
                "200": {
                    "description": "Signed in with a key.",
                    "headers": set_cookie_header(),
                    "content": {"application/json": {"schema": session_schema()}}
                },
                "201": {
                    "description": "Signed up: a trial account with $2.00 and its first key.",
                    "headers": set_cookie_header(),
                    "content": {"application/json": {"schema": session_schema()}}
                },
                "400": err(&[InvalidJson, InvalidType, UnknownParameter, MissingParameter, InvalidValue], json!({
                    "description": "Neither or both of `email` and `api_key`, an invalid email, or a malformed body."
                })),
                "401": err(&[InvalidApiKey], json!({
                    "description": "`invalid_api_key`: the key is malformed, unknown or revoked (`param: api_key`)."
                })),
                "403": err(&[CrossOrigin], json!({
                    "description": "`cross_origin`: a browser request from another site."
                })),
                "409": err(&[TrialExists], json!({
                    "description": "`trial_exists`: this email already has a trial; sign in with its key."
                })),
                "413": err(&[PayloadTooLarge], json!({"description": "Body over 4 KiB."})),
                "415": {"$ref": "#/components/responses/UnsupportedMediaType"},
                "500": {"$ref": "#/components/responses/InternalError"}
            }
        }),
    )
}

/// `GET /v1/session`
pub(crate) fn get_session() -> Op {
    Op::new(
        Get,
        "/v1/session",
        Key,
        json!({
            "operationId": "getSession",
            "tags": ["accounts"],
            "summary": "Who the caller is: the account and key behind the cookie (or the key sent)",
            "description": COOKIE_NOTE,
            "responses": {
                "200": {
                    "description": "The caller.",
                    "content": {"application/json": {"schema": {
                        "type": "object",
                        "required": ["object", "account_id", "key_id", "kind", "via"],
                        "properties": {
                            "object": {"type": "string", "enum": ["session"]},
                            "account_id": {"type": "string"},
                            "key_id": {"type": "string", "description": "The key the session acts as."},
                            "kind": {"type": "string", "enum": key_kind()},
                            "via": {"type": "string", "enum": ["session", "api_key"]}
                        }
                    }}}
                },
                "401": err(&[MissingApiKey, InvalidApiKey, InvalidSession], json!({
                    "description": "No key and no cookie (`missing_api_key`), a bad key (`invalid_api_key`), or a session that expired, was signed out, or whose key was revoked (`invalid_session`)."
                })),
                "500": err(&[InternalError], json!({
                    "description": "`internal_error`: an unexpected failure; the cause is logged, not returned."
                }))
            }
        }),
    )
}

/// `DELETE /v1/session`
pub(crate) fn close_session() -> Op {
    Op::new(
        Delete,
        "/v1/session",
        Public,
        json!({
            "operationId": "closeSession",
            "tags": ["accounts"],
            "summary": "Sign out: forget the session and clear the cookie",
            "description": "Answers 200 whether or not a session was open. A browser's `Origin`, when sent, must be this API's origin.",
            "responses": {
                "200": {
                    "description": "Signed out.",
                    "headers": {
                        "Set-Cookie": {"description": "`kiln_session=; Max-Age=0; …`", "schema": {"type": "string"}}
                    },
                    "content": {"application/json": {"schema": {
                        "type": "object",
                        "required": ["object", "signed_out"],
                        "properties": {
                            "object": {"type": "string", "enum": ["session"]},
                            "signed_out": {"type": "boolean", "enum": [true]}
                        }
                    }}}
                },
                "403": err(&[CrossOrigin], json!({
                    "description": "`cross_origin`: a browser request from another site."
                })),
                "500": {"$ref": "#/components/responses/InternalError"}
            }
        }),
    )
}

/// `POST /v1/billing/checkout`
pub(crate) fn create_checkout() -> Op {
    Op::new(
        Post,
        "/v1/billing/checkout",
        Key,
        json!({
            "operationId": "createCheckoutSession",
            "tags": ["billing"],
            "summary": "Buy a credit tier: a Stripe Checkout session to redirect the user to",
            "description": "Creates a Stripe Checkout session (one USD line item at the tier's price; `client_reference_id` and `metadata.account_id` name the caller's account, `metadata.tier` the tier). When it is paid, Stripe's `checkout.session.completed` (POST /v1/billing/stripe/webhook) credits the account. A deployment without `STRIPE_SECRET_KEY` (the local stack) answers 503 `billing_not_configured`. Order: key (401), rate limit (429), body size (413, 1 KiB), `Idempotency-Key`, fields (400), Stripe.",
            "parameters": [{"$ref": "#/components/parameters/IdempotencyKey"}],
            "requestBody": {
                "required": true,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["tier"],
                            "additionalProperties": false,
                            "properties": {
                                "tier": {"type": "string", "enum": tiers(), "description": tier_prices()}
                            }
                        },
                        "example": {"tier": "pro"}
                    }
                }
            },
            "responses": {
                "201": {
                    "description": "Created: send the user to `url`.",
                    "content": {"application/json": {"schema": {
                        "type": "object",
                        "required": ["object", "id", "url", "tier", "amount_usd"],
                        "properties": {
                            "object": {"type": "string", "enum": ["checkout_session"]},
                            "id": {"type": "string", "description": "Stripe's `cs_…` id."},
                            "url": {"type": "string", "format": "uri"},
                            "tier": {"type": "string", "enum": tiers()},
                            "amount_usd": {"type": "number"}
                        }
                    }}},
                    "headers": {
                        "Idempotent-Replayed": {"$ref": "#/components/headers/Idempotent-Replayed"}
                    }
                },
                "400": err(&[InvalidJson, InvalidType, UnknownParameter, MissingParameter, InvalidValue], json!({
                    "description": "A malformed body, or `tier` not one of starter, pro, max (`param: tier`); a malformed `Idempotency-Key`."
                })),
                "403": err(&[CrossOrigin], json!({
                    "description": "`cross_origin`: authenticated by the session cookie from another site."
                })),
                "409": err(&[IdempotencyConflict, IdempotencyInProgress], json!({
                    "description": "`idempotency_conflict` or `idempotency_in_progress` (`param: Idempotency-Key`)."
                })),
                "413": err(&[PayloadTooLarge], json!({"description": "Body over 1 KiB."})),
                "415": {"$ref": "#/components/responses/UnsupportedMediaType"},
                "500": err(&[InternalError], json!({
                    "description": "`internal_error`: an unexpected failure; the cause is logged, not returned."
                })),
                "503": err(&[BillingNotConfigured], json!({
                    "description": "`billing_not_configured`: this deployment has no Stripe secret key, or Stripe did not answer."
                }))
            }
        }),
    )
}
