//! The event streams' bodies (`text/event-stream`). OpenAPI 3.1 has no keyword for the
//! items of a stream; as tools read 3.1 documents (Schemathesis among them), a stream's
//! `schema` describes one event, modelled as OpenAPI 3.2's `itemSchema` models
//! Server-Sent Events: an object with `event` and `data`, `data` a string whose
//! `contentSchema` is the payload.

use serde_json::{json, Value};

/// A stream's Media Type Object, with its example.
pub(crate) fn event_stream(example: &str) -> Value {
    json!({
        "schema": {"$ref": "#/components/schemas/JobStreamEvent"},
        "example": example,
    })
}

/// One event of a job stream: `event` names the job's status and `data` is the job
/// object (the edge's `sse::frame(job.status, job.to_view())`), or `ping` with the time.
pub(crate) fn job_stream_event() -> Value {
    json!({
        "description": "One server-sent event of `GET /v1/jobs/{id}/stream` and `GET /v1/jobs/stream/user`: `event: <name>` and one `data:` line of JSON. Frames have no `id:`.",
        "oneOf": [
            {
                "type": "object",
                "title": "job",
                "required": ["event", "data"],
                "properties": {
                    "event": {
                        "$ref": "#/components/schemas/JobStatus",
                        "description": "The job's status after the change."
                    },
                    "data": {
                        "type": "string",
                        "contentMediaType": "application/json",
                        "contentSchema": {"$ref": "#/components/schemas/Job"}
                    }
                }
            },
            {
                "type": "object",
                "title": "ping",
                "required": ["event", "data"],
                "properties": {
                    "event": {"const": "ping"},
                    "data": {
                        "type": "string",
                        "contentMediaType": "application/json",
                        "contentSchema": {"$ref": "#/components/schemas/Ping"}
                    }
                }
            }
        ]
    })
}

/// The `ping` event's data: keeps proxies from closing an idle stream.
pub(crate) fn ping() -> Value {
    json!({
        "type": "object",
        "required": ["ts"],
        "additionalProperties": false,
        "description": "Sent every SSE_PING_SECS (15 s by default).",
        "properties": {"ts": {"type": "string", "format": "date-time"}},
        "example": {"ts": "2026-04-03T12:35:15Z"}
    })
}
