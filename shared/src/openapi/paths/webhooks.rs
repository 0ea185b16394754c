use serde_json::json;

use super::prelude::*;

/// `GET /v1/jobs/{id}/deliveries`
pub(crate) fn list_job_deliveries() -> Op {
    Op::new(
        Get,
        "/v1/jobs/{id}/deliveries",
        Key,
        json!({
            "operationId": "listJobDeliveries",
            "tags": [
                "webhooks"
            ],
            "summary": "The job's webhook events and delivery attempts",
            "description": "Every webhook event of the job with its state, and every delivery attempt (retries and replays included), oldest first. Not paginated.",
            "parameters": [
                job_id_param()
            ],
            "responses": {
                "200": {
                    "description": "The delivery log.",
                    "content": json_body(schema_ref("WebhookDeliveries"))
                },
                "404": {
                    "$ref": "#/components/responses/JobNotFound"
                },
                "500": {
                    "$ref": "#/components/responses/KeyedInternalError"
                }
            }
        }),
    )
}

/// `POST /v1/jobs/{id}/webhook`
pub(crate) fn replay_job_webhook() -> Op {
    Op::new(
        Post,
        "/v1/jobs/{id}/webhook",
        Key,
        json!({
            "operationId": "replayJobWebhook",
            "tags": [
                "webhooks"
            ],
            "summary": "Replay the job's terminal webhook now",
            "description": "Sends the job's terminal event (`job.completed`, `job.failed` or `job.cancelled`) to its `replyUrl` again, at once, with the event's `webhook-id` and body and a fresh timestamp and signature, and answers when the attempt is over (at most 15 s). A 2xx marks the event delivered and ends its pending retries; any other outcome only adds to the log (the replay counts as one of the event's attempts). The destination rules apply. The body is ignored; not covered by `Idempotency-Key`.",
            "parameters": [
                job_id_param()
            ],
            "responses": {
                "200": {
                    "description": "The attempt, whatever the receiver answered (see `status_code` and `error`).",
                    "content": json_body(schema_ref("WebhookDelivery"))
                },
                "404": {
                    "$ref": "#/components/responses/JobNotFound"
                },
                "409": err(&[NoReplyUrl, JobNotFinished], json!({
                    "description": "`no_reply_url`: the job was submitted without a `replyUrl`; or `job_not_finished`: the job has not ended yet."
                })),
                "500": {
                    "$ref": "#/components/responses/KeyedInternalError"
                }
            }
        }),
    )
}

/// `GET /v1/webhooks/secret`
pub(crate) fn get_webhook_secret() -> Op {
    Op::new(
        Get,
        "/v1/webhooks/secret",
        Key,
        json!({
            "operationId": "getWebhookSecret",
            "tags": [
                "webhooks"
            ],
            "summary": "The account's webhook signing secret",
            "description": "One `whsec_` secret per account signs the webhooks of all its jobs (Standard Webhooks: `v1,` + base64 HMAC-SHA256 of `{webhook-id}.{webhook-timestamp}.{body}`). Created on first use. Any key of the account may read it.",
            "responses": {
                "200": {
                    "description": "The secret, and the previous one while it still signs.",
                    "content": json_example(
                        schema_ref("WebhookSecret"),
                        json!({
                            "secret": "whsec_f4/JSAm…",
                            "created_at": "2026-04-03T12:30:00Z",
                            "previous": null,
                            "signature_scheme": "Standard Webhooks v1 (HMAC-SHA256)"
                        })
                    )
                },
                "500": {
                    "$ref": "#/components/responses/KeyedInternalError"
                }
            }
        }),
    )
}

/// `POST /v1/webhooks/secret/rotate`
pub(crate) fn rotate_webhook_secret() -> Op {
    Op::new(
        Post,
        "/v1/webhooks/secret/rotate",
        Key,
        json!({
            "operationId": "rotateWebhookSecret",
            "tags": [
                "webhooks"
            ],
            "summary": "Rotate the webhook signing secret",
            "description": "Makes a new current secret. The old one keeps signing beside it for 24 h (deliveries carry two `v1,` entries, newest first); a secret rotated out earlier stops at once, so at most two sign. The body is ignored (but read like every JSON body: at most 64 KiB, a JSON `Content-Type`). With an `Idempotency-Key`, a repeat within 24 h answers the first rotation again (`Idempotent-Replayed: true`) instead of rotating once more.",
            "parameters": [
                {
                    "$ref": "#/components/parameters/IdempotencyKey"
                }
            ],
            "responses": {
                "200": {
                    "description": "The new secret, with `previous` set.",
                    "headers": {
                        "Idempotent-Replayed": {
                            "$ref": "#/components/headers/Idempotent-Replayed"
                        }
                    },
                    "content": json_body(schema_ref("WebhookSecret"))
                },
                "400": err(&[InvalidValue], json!({
                    "description": "`invalid_value`: a malformed `Idempotency-Key` (`param` is `Idempotency-Key`)."
                })),
                "409": {
                    "$ref": "#/components/responses/Conflict"
                },
                "413": err(&[PayloadTooLarge], json!({
                    "description": "`payload_too_large`: the body is over 64 KiB."
                })),
                "415": {
                    "$ref": "#/components/responses/UnsupportedMediaType"
                },
                "500": {
                    "$ref": "#/components/responses/KeyedInternalError"
                }
            }
        }),
    )
}
