//! The top-level `webhooks`: what Kiln POSTs to a job's `replyUrl`.

use serde_json::{json, Map, Value};

use super::op::{json_body, param_refs, schema_ref};

/// How every event is sent and retried (the end of each event's description).
const DELIVERY: &str = "Sent as POST to the job's `replyUrl` with `content-type: application/json`. Delivery is at-least-once: a non-2xx answer (3xx included: redirects are not followed), no answer within 15 s, or a network error is retried after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h and 24 h (±10 % jitter; 10 attempts in all, then `gave_up`); a `Retry-After` on the answer delays the next attempt to at least that long (at most 24 h) but never adds attempts; 410 stops.";

pub(crate) fn webhooks() -> Value {
    // (event type, operationId, summary, when it is sent)
    let events = [
        (
            "job.started",
            "webhookJobStarted",
            "The job started",
            "Once per job, at the first sign of work: when an origin takes it (`loading_model`), or just before a later event if that is the first the edge applies. Not sent for a job that never started, nor again after a re-dispatch.",
        ),
        (
            "job.progress",
            "webhookJobProgress",
            "A step of the job",
            "Only with `webhook_events: [\"progress\"]`: one per `processing` event (per step), each with its own `webhook-id`.",
        ),
        (
            "job.completed",
            "webhookJobCompleted",
            "The job completed",
            "Once; `job.outputs` holds the files. The price was charged.",
        ),
        (
            "job.failed",
            "webhookJobFailed",
            "The job failed",
            "Once; `job.error_code` is `generation_failed`, `origin_lost`, `generation_timeout`, `no_capacity` or `queue_full`. The price was refunded.",
        ),
        (
            "job.cancelled",
            "webhookJobCancelled",
            "The job was cancelled",
            "Once, after DELETE /v1/jobs/{id}. The price was refunded.",
        ),
    ];
    let events: Map<String, Value> = events
        .into_iter()
        .map(|(event, operation_id, summary, when)| {
            (
                event.to_owned(),
                json!({"post": post(event, operation_id, summary, when)}),
            )
        })
        .collect();
    Value::Object(events)
}

/// The POST of one event type.
fn post(event: &str, operation_id: &str, summary: &str, when: &str) -> Value {
    json!({
        "operationId": operation_id,
        "tags": [
            "webhooks"
        ],
        "summary": summary,
        "description": format!("{when} {DELIVERY}"),
        "security": [],
        "parameters": param_refs(&[
            "WebhookId",
            "WebhookTimestamp",
            "WebhookSignature",
            "WebhookUserAgent"
        ]),
        "requestBody": {
            "required": true,
            "content": json_body(json!({
                "allOf": [
                    schema_ref("WebhookPayload"),
                    {
                        "type": "object",
                        "properties": {
                            "type": {
                                "const": event
                            }
                        }
                    }
                ]
            }))
        },
        "responses": {
            "2XX": {
                "description": "Delivered; the body is ignored."
            },
            "410": {
                "description": "Gone: no further attempts of this event."
            },
            "default": {
                "description": "Any other answer is a failed attempt and is retried on the schedule (respecting `Retry-After`)."
            }
        }
    })
}
