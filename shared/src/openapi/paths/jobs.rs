use serde_json::{json, Value};

use super::prelude::*;
use crate::openapi::streams::event_stream;
use crate::openapi::JOB_ID_PATTERN;

/// `id` of the `/v1/jobs/{id}` routes.
pub(crate) fn job_id_param() -> Value {
    json!({
        "name": "id",
        "in": "path",
        "required": true,
        "schema": {
            "type": "string",
            "pattern": JOB_ID_PATTERN
        }
    })
}

/// `GET /v1/jobs/{id}`
pub(crate) fn get_job() -> Op {
    Op::new(
        Get,
        "/v1/jobs/{id}",
        Key,
        json!({
            "operationId": "getJob",
            "tags": [
                "jobs"
            ],
            "summary": "The job object",
            "parameters": [
                job_id_param()
            ],
            "description": "Jobs of other accounts are 404, like unknown ids. `queue_position` is set while the job is queued.",
            "responses": {
                "200": {
                    "description": "The job.",
                    "content": json_body(schema_ref("Job"))
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

/// `DELETE /v1/jobs/{id}`
pub(crate) fn cancel_job() -> Op {
    Op::new(
        Delete,
        "/v1/jobs/{id}",
        Key,
        json!({
            "operationId": "cancelJob",
            "tags": [
                "jobs"
            ],
            "summary": "Cancel a job",
            "description": "Queued: leaves the queue, cancelled at once. Loading or processing: cancelled at once, and the edge tells its origin (signed DELETE) to stop, freeing the GPU slot. Either way the hold is released, stream subscribers get a `cancelled` event, and a request still waiting for the job answers 409 `job_cancelled`. No body.",
            "parameters": [
                job_id_param()
            ],
            "responses": {
                "200": {
                    "description": "The cancelled job (`status: cancelled`, `error_code: cancelled`, `completed_at` set).",
                    "content": json_body(schema_ref("Job"))
                },
                "404": {
                    "$ref": "#/components/responses/JobNotFound"
                },
                "409": err(&[JobEnded], json!({
                    "description": "`job_ended`: the job already completed, failed or was cancelled; nothing changed."
                })),
                "500": {
                    "$ref": "#/components/responses/KeyedInternalError"
                }
            }
        }),
    )
}

/// `GET /v1/jobs/active`
pub(crate) fn list_active_jobs() -> Op {
    Op::new(
        Get,
        "/v1/jobs/active",
        Key,
        json!({
            "operationId": "listActiveJobs",
            "tags": [
                "jobs"
            ],
            "summary": "Your queued and running jobs",
            "description": "Jobs in `queued`, `loading_model` or `processing`, oldest submission first, at most 100; queued ones with `queue_position`. Not paginated.",
            "responses": {
                "200": {
                    "description": "The active jobs (possibly none).",
                    "content": json_body(schema_ref("JobList"))
                },
                "500": {
                    "$ref": "#/components/responses/KeyedInternalError"
                }
            }
        }),
    )
}

/// `GET /v1/jobs/{id}/stream`
pub(crate) fn stream_job() -> Op {
    Op::new(
        Get,
        "/v1/jobs/{id}/stream",
        KeyOrQuery,
        json!({
            "operationId": "streamJob",
            "tags": [
                "jobs"
            ],
            "summary": "Follow one job (SSE)",
            "description": "The first event is the job's current state (for a queued job with `queue_position`), so a late subscriber loses nothing; then one event per change in order; the stream ends after the terminal event (`completed`, `failed` or `cancelled`), at once if the job has already ended. A job re-queued after a lost origin sends `queued` again with `attempt: 2`.",
            "parameters": [
                job_id_param()
            ],
            "responses": {
                "200": {
                    "description": "Server-sent events. Each frame is `event: <name>` and `data: <JSON>` on one line. Event names are job statuses (`queued`, `loading_model`, `processing`, `completed`, `failed`, `cancelled`) with the whole job object (`Job`) as data, and `ping` with `{\"ts\": \"<RFC 3339>\"}` every SSE_PING_SECS (15 s by default). Frames have no `id:`; `Last-Event-ID` is ignored. Also carries the X-RateLimit-* headers, `Cache-Control: no-cache, no-transform` and `X-Accel-Buffering: no`. Ends after the terminal event.",
                    "content": {
                        "text/event-stream": event_stream("event: queued\ndata: {\"id\":\"job_…\",\"object\":\"job\",\"status\":\"queued\",\"queue_position\":1,…}\n\nevent: loading_model\ndata: {\"id\":\"job_…\",\"status\":\"loading_model\",…}\n\nevent: processing\ndata: {\"id\":\"job_…\",\"status\":\"processing\",\"progress\":{\"stage\":\"sampling\",\"stage_label\":\"Sampling\",\"step\":1,\"total_steps\":20},…}\n\nevent: ping\ndata: {\"ts\":\"2026-04-03T12:35:15Z\"}\n\nevent: completed\ndata: {\"id\":\"job_…\",\"status\":\"completed\",\"outputs\":[…],…}\n\n")
                    }
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

/// `GET /v1/jobs/stream/user`
pub(crate) fn stream_user_jobs() -> Op {
    Op::new(
        Get,
        "/v1/jobs/stream/user",
        KeyOrQuery,
        json!({
            "operationId": "streamUserJobs",
            "tags": [
                "jobs"
            ],
            "summary": "Follow every job of your account (SSE)",
            "description": "Starts with one event per active job (its current state, oldest first), then the events of every job of the account as they happen, including jobs submitted later (their first event here is `loading_model`: the initial `queued` state of a new job is not sent on this stream). Pings every 15 s; never ends by itself.",
            "parameters": [],
            "responses": {
                "200": {
                    "description": "Server-sent events. Each frame is `event: <name>` and `data: <JSON>` on one line. Event names are job statuses (`queued`, `loading_model`, `processing`, `completed`, `failed`, `cancelled`) with the whole job object (`Job`) as data, and `ping` with `{\"ts\": \"<RFC 3339>\"}` every SSE_PING_SECS (15 s by default). Frames have no `id:`; `Last-Event-ID` is ignored. Also carries the X-RateLimit-* headers, `Cache-Control: no-cache, no-transform` and `X-Accel-Buffering: no`. Stays open until the client closes it.",
                    "content": {
                        "text/event-stream": event_stream("event: processing\ndata: {\"id\":\"job_A…\",\"status\":\"processing\",…}\n\nevent: loading_model\ndata: {\"id\":\"job_B…\",\"status\":\"loading_model\",…}\n\nevent: ping\ndata: {\"ts\":\"2026-04-03T12:35:15Z\"}\n\n")
                    }
                },
                "500": {
                    "$ref": "#/components/responses/KeyedInternalError"
                }
            }
        }),
    )
}

/// `GET /v1/jobs/estimate`
pub(crate) fn estimate_job() -> Op {
    Op::new(
        Get,
        "/v1/jobs/estimate",
        Public,
        json!({
            "operationId": "estimateJob",
            "tags": [
                "jobs"
            ],
            "summary": "Typical run time of a workflow",
            "description": "Mean run time of the last 100 completed jobs of the workflow (`source: recent_jobs`), or the catalog's typical GPU time before any (`source: typical`). Run time excludes the time in the queue. No auth, not rate-limited.",
            "parameters": [
                {
                    "name": "workflow_id",
                    "in": "query",
                    "required": true,
                    "schema": {
                        "type": "string",
                        "enum": [
                            "flux2-dev:txt2img",
                            "flux2-dev:img2img",
                            "ltx-2.3:t2v",
                            "ltx-2.3:i2v",
                            "ltx-2.3-fast:t2v",
                            "ltx-2.3-fast:i2v"
                        ]
                    },
                    "description": "A workflow id, as in a job's `workflow_id`. Typical times: flux2-dev:txt2img 25 s, flux2-dev:img2img 28 s, ltx-2.3:t2v 150 s, ltx-2.3:i2v 165 s, ltx-2.3-fast:t2v 60 s, ltx-2.3-fast:i2v 66 s."
                }
            ],
            "responses": {
                "200": {
                    "description": "The estimate.",
                    "content": json_body(schema_ref("Estimate"))
                },
                "400": err(&[UnknownWorkflow], json!({
                    "description": "`unknown_workflow`: `workflow_id` missing or not one of the workflow ids (param `workflow_id`; the message lists them)."
                })),
                "500": {
                    "$ref": "#/components/responses/InternalError"
                }
            }
        }),
    )
}
