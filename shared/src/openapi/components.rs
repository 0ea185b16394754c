//! Reusable responses, headers, parameters and security schemes.

use serde_json::{json, Value};

use super::op::{err, header_refs, overlay, RATE_LIMIT_HEADERS};
use crate::ErrorCode::*;

const INTERNAL_ERROR: &str =
    "`internal_error`: an unexpected failure; the cause is logged, not returned.";

/// The 500 of a route whose failures are all unexpected: `InternalError`, inlined where a
/// keyed route's answer must carry the rate-limit headers.
pub(crate) fn internal_error() -> Value {
    err(&[InternalError], json!({"description": INTERNAL_ERROR}))
}

/// The answers of an unkeyed route that reads a JSON body of at most 4 KiB (413, 415,
/// 500), with the operation's own (`own`) over them.
pub(crate) fn small_body_responses(own: Value) -> Value {
    overlay(
        json!({
            "413": {
                "$ref": "#/components/responses/PayloadTooLarge",
                "description": "`payload_too_large`: the body is over 4 KiB."
            },
            "415": {
                "$ref": "#/components/responses/UnsupportedMediaType"
            },
            "500": {
                "$ref": "#/components/responses/InternalError"
            }
        }),
        own,
    )
}

/// `?limit=` of a paged list: 1–100 items a page, `default` when absent. Written inline,
/// not as a shared parameter.
pub(crate) fn limit_param(default: u32) -> Value {
    json!({
        "name": "limit",
        "in": "query",
        "required": false,
        "schema": {
            "type": "integer",
            "minimum": 1,
            "maximum": 100,
            "default": default
        }
    })
}

pub(crate) fn responses() -> Vec<(&'static str, Value)> {
    vec![
        (
            "Unauthorized",
            err(
                &[MissingApiKey, InvalidApiKey],
                json!({
                    "description": "`missing_api_key` (no `Authorization: Bearer` header) or `invalid_api_key` (malformed, unknown or revoked key). Sent before rate limiting, so without `X-RateLimit-*` headers."
                }),
            ),
        ),
        (
            "PayloadTooLarge",
            err(
                &[PayloadTooLarge],
                json!({
                    "description": "`payload_too_large`: the body exceeds the route's limit."
                }),
            ),
        ),
        ("InternalError", internal_error()),
        (
            "TooManyRequests",
            err(
                &[RateLimited],
                json!({
                    "description": "`rate_limited`: this key is over its limit. Nothing ran.",
                    "headers": header_refs(&[
                        "X-RateLimit-Limit",
                        "X-RateLimit-Remaining",
                        "X-RateLimit-Reset",
                        "Retry-After"
                    ])
                }),
            ),
        ),
        (
            "Conflict",
            err(
                &[IdempotencyConflict, IdempotencyInProgress],
                json!({
                    "description": "`idempotency_conflict`: the `Idempotency-Key` was used with a different request; or `idempotency_in_progress`: a request with this key is still running (retry shortly). `param` is `Idempotency-Key`."
                }),
            ),
        ),
        (
            "JobNotFound",
            err(
                &[JobNotFound],
                json!({
                    "description": "`job_not_found`: malformed id, unknown id, or a job of another account (never 403, so ids cannot be probed).",
                    "headers": header_refs(&RATE_LIMIT_HEADERS)
                }),
            ),
        ),
        (
            "KeyedInternalError",
            err(
                &[InternalError],
                json!({
                    "description": INTERNAL_ERROR,
                    "headers": header_refs(&RATE_LIMIT_HEADERS)
                }),
            ),
        ),
        (
            "UnsupportedMediaType",
            err(
                &[UnsupportedMediaType],
                json!({
                    "description": "`unsupported_media_type`: the body's `Content-Type` is not JSON (`application/json`, `application/*+json`) nor `text/plain` or `application/x-www-form-urlencoded`, which are read as JSON too."
                }),
            ),
        ),
    ]
}

pub(crate) fn headers() -> Vec<(&'static str, Value)> {
    vec![
        (
            "X-RateLimit-Limit",
            json!({
                "description": "Requests per minute allowed for this key: min(RATE_LIMIT_PER_MIN, the key's `rate_limit_per_min`). Also the bucket's size (the burst).",
                "schema": {
                    "type": "integer",
                    "minimum": 1
                }
            }),
        ),
        (
            "X-RateLimit-Remaining",
            json!({
                "description": "Whole requests left in the bucket after this one.",
                "schema": {
                    "type": "integer",
                    "minimum": 0
                }
            }),
        ),
        (
            "X-RateLimit-Reset",
            json!({
                "description": "Seconds (not a timestamp) until the bucket is full again, rounded up.",
                "schema": {
                    "type": "integer",
                    "minimum": 0
                }
            }),
        ),
        (
            "Retry-After",
            json!({
                "description": "Seconds until one request is allowed again (at least 1).",
                "schema": {
                    "type": "integer",
                    "minimum": 1
                }
            }),
        ),
        (
            "Idempotent-Replayed",
            json!({
                "description": "`true` when this is the stored response of an earlier request with the same `Idempotency-Key`; the request did not run again. Absent otherwise.",
                "schema": {
                    "type": "string",
                    "enum": [
                        "true"
                    ]
                }
            }),
        ),
        (
            "X-Kiln-Job-Id",
            json!({
                "description": "The job's id.",
                "schema": {
                    "type": "string",
                    "pattern": "^job_[0-9a-hjkmnp-tv-z]{26}$"
                }
            }),
        ),
        (
            "X-Credits-Remaining-Usd",
            json!({
                "description": "Available balance (balance − held) after this job's hold, in USD as a decimal string (`1.98`); a job that already failed counts as refunded. A replayed response carries the value of the first response.",
                "schema": {
                    "type": "string"
                }
            }),
        ),
        (
            "Allow",
            json!({
                "description": "On 405 answers: the methods the path accepts (RFC 9110), e.g. `GET, HEAD`.",
                "schema": {
                    "type": "string"
                }
            }),
        ),
    ]
}

pub(crate) fn parameters() -> Vec<(&'static str, Value)> {
    vec![
        (
            "AsyncMode",
            json!({
                "name": "async_mode",
                "in": "query",
                "required": false,
                "schema": {"type": "string", "enum": ["true", "false", "1", "0"]},
                "description": "`true`/`1`: answer 202 at once. `false`/`0`: as if absent. Anything else is 400 `invalid_value` (param `async_mode`)."
            }),
        ),
        (
            "PreferWait",
            json!({
                "name": "Prefer",
                "in": "header",
                "required": false,
                "schema": {"type": "string", "examples": ["wait=30"]},
                "description": format!(
                    "RFC 7240 preferences. `wait=N` (N whole seconds; only the first `wait` counts): wait up to N s for the result (200), else 202 like async. N over {max} counts as {max}; `wait=0` answers at once like `async_mode=true`. A `wait` that is not a whole number, and every other preference, is ignored (RFC 7240 §2): never an error.",
                    max = crate::headers::PREFER_WAIT_SECS_MAX
                )
            }),
        ),
        (
            "IdempotencyKey",
            json!({
                "name": crate::idempotency::HEADER,
                "in": "header",
                "required": false,
                "schema": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": crate::idempotency::KEY_LEN_MAX,
                    "pattern": "^[!-~]+$"
                },
                "description": "1–255 visible ASCII characters (else 400 `invalid_value`, param `Idempotency-Key`). Scoped to the account (all its keys) for 24 h from the first request. The same key with the same method, path+query and body bytes returns the first 2xx response again with `Idempotent-Replayed: true`, without running; a different request is 409 `idempotency_conflict`; while the first is still running (up to 10 min) 409 `idempotency_in_progress`. Non-2xx answers are not stored: a retry after an error runs again."
            }),
        ),
        (
            "WebhookId",
            json!({
                "name": "webhook-id",
                "in": "header",
                "required": true,
                "schema": {
                    "type": "string",
                    "pattern": "^msg_[0-9a-hjkmnp-tv-z]{26}$",
                    "examples": [
                        "msg_a2ds2zkzxe8h2mgqfrra8jptp4"
                    ]
                },
                "description": "The event's id: the same on every retry and replay of this event, different for every other event. De-duplicate on it."
            }),
        ),
        (
            "WebhookTimestamp",
            json!({
                "name": "webhook-timestamp",
                "in": "header",
                "required": true,
                "schema": {
                    "type": "string",
                    "pattern": "^[0-9]+$",
                    "examples": [
                        "1775219709"
                    ]
                },
                "description": "When this attempt was signed, Unix seconds. Reject values more than 300 s from your clock."
            }),
        ),
        (
            "WebhookSignature",
            json!({
                "name": "webhook-signature",
                "in": "header",
                "required": true,
                "schema": {
                    "type": "string",
                    "examples": [
                        "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4="
                    ]
                },
                "description": "`v1,<base64 HMAC-SHA256 of \"{webhook-id}.{webhook-timestamp}.{raw body}\">`, keyed by the decoded part of the account's `whsec_` secret. One space-separated entry per active secret, newest first (two for 24 h after a rotation); accept if any matches."
            }),
        ),
        (
            "WebhookUserAgent",
            json!({
                "name": "user-agent",
                "in": "header",
                "required": true,
                "schema": {
                    "type": "string",
                    "const": "Kiln-Webhooks/1"
                }
            }),
        ),
    ]
}

pub(crate) fn security_schemes() -> Vec<(&'static str, Value)> {
    vec![
        (
            "bearerAuth",
            json!({
                "type": "http",
                "scheme": "bearer",
                "description": "`Authorization: Bearer sk-trial-…` (or `sk-gen-`, `sk-test-`). The key embeds its account id."
            }),
        ),
        (
            "adminToken",
            json!({
                "type": "http",
                "scheme": "bearer",
                "description": "`Authorization: Bearer <ADMIN_TOKEN>`: the operator token (edge secret `ADMIN_TOKEN`), compared in constant time. With no token configured every request is 401 `invalid_admin_token`. Not an API key."
            }),
        ),
        (
            "stripeSignature",
            json!({
                "type": "apiKey",
                "in": "header",
                "name": "Stripe-Signature",
                "description": "`t=<unix>,v1=<hex>[,v1=<hex>…]`: HMAC-SHA256 of `\"{t}.{raw body}\"` keyed by the endpoint secret `STRIPE_WEBHOOK_SECRET` (`whsec_…`, used whole). Any matching `v1` passes; `t` must be within 300 s of the edge's clock. Failures are 400 `invalid_signature`."
            }),
        ),
        (
            "queryKey",
            json!({
                "type": "apiKey",
                "in": "query",
                "name": "key",
                "description": "The API key as `?key=sk-…`. Accepted only by the event streams (`/v1/jobs/{id}/stream`, `/v1/jobs/stream/user`), because a browser's EventSource cannot send headers, and only when no `Authorization` header is sent (the header wins). Ignored by every other route."
            }),
        ),
    ]
}
