//! The top-level `webhooks`: what Kiln POSTs to a job's `replyUrl`.

use serde_json::{json, Value};

pub(crate) fn webhooks() -> Value {
    json!({
        "job.started": {
            "post": {
                "operationId": "webhookJobStarted",
                "tags": [
                    "webhooks"
                ],
                "summary": "The job started",
                "description": "Once per job, at the first sign of work: when an origin takes it (`loading_model`), or just before a later event if that is the first the edge applies. Not sent for a job that never started, nor again after a re-dispatch. Sent as POST to the job's `replyUrl` with `content-type: application/json`. Delivery is at-least-once: a non-2xx answer (3xx included: redirects are not followed), no answer within 15 s, or a network error is retried after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h and 24 h (±10 % jitter; 10 attempts in all, then `gave_up`); a `Retry-After` on the answer delays the next attempt to at least that long (at most 24 h) but never adds attempts; 410 stops.",
                "security": [],
                "parameters": [
                    {
                        "$ref": "#/components/parameters/WebhookId"
                    },
                    {
                        "$ref": "#/components/parameters/WebhookTimestamp"
                    },
                    {
                        "$ref": "#/components/parameters/WebhookSignature"
                    },
                    {
                        "$ref": "#/components/parameters/WebhookUserAgent"
                    }
                ],
                "requestBody": {
                    "required": true,
                    "content": {
                        "application/json": {
                            "schema": {
                                "allOf": [
                                    {
                                        "$ref": "#/components/schemas/WebhookPayload"
                                    },
                                    {
                                        "type": "object",
                                        "properties": {
                                            "type": {
                                                "const": "job.started"
                                            }
                                        }
                                    }
                                ]
                            }
                        }
                    }
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
            }
        },
        "job.progress": {
            "post": {
                "operationId": "webhookJobProgress",
                "tags": [
                    "webhooks"
                ],
                "summary": "A step of the job",
                "description": "Only with `webhook_events: [\"progress\"]`: one per `processing` event (per step), each with its own `webhook-id`. Sent as POST to the job's `replyUrl` with `content-type: application/json`. Delivery is at-least-once: a non-2xx answer (3xx included: redirects are not followed), no answer within 15 s, or a network error is retried after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h and 24 h (±10 % jitter; 10 attempts in all, then `gave_up`); a `Retry-After` on the answer delays the next attempt to at least that long (at most 24 h) but never adds attempts; 410 stops.",
                "security": [],
                "parameters": [
                    {
                        "$ref": "#/components/parameters/WebhookId"
                    },
                    {
                        "$ref": "#/components/parameters/WebhookTimestamp"
                    },
                    {
                        "$ref": "#/components/parameters/WebhookSignature"
                    },
                    {
                        "$ref": "#/components/parameters/WebhookUserAgent"
                    }
                ],
                "requestBody": {
                    "required": true,
                    "content": {
                        "application/json": {
                            "schema": {
                                "allOf": [
                                    {
                                        "$ref": "#/components/schemas/WebhookPayload"
                                    },
                                    {
                                        "type": "object",
                                        "properties": {
                                            "type": {
                                                "const": "job.progress"
                                            }
                                        }
                                    }
                                ]
                            }
                        }
                    }
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
            }
        },
        "job.completed": {
            "post": {
                "operationId": "webhookJobCompleted",
                "tags": [
                    "webhooks"
                ],
                "summary": "The job completed",
                "description": "Once; `job.outputs` holds the files. The price was charged. Sent as POST to the job's `replyUrl` with `content-type: application/json`. Delivery is at-least-once: a non-2xx answer (3xx included: redirects are not followed), no answer within 15 s, or a network error is retried after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h and 24 h (±10 % jitter; 10 attempts in all, then `gave_up`); a `Retry-After` on the answer delays the next attempt to at least that long (at most 24 h) but never adds attempts; 410 stops.",
                "security": [],
                "parameters": [
                    {
                        "$ref": "#/components/parameters/WebhookId"
                    },
                    {
                        "$ref": "#/components/parameters/WebhookTimestamp"
                    },
                    {
                        "$ref": "#/components/parameters/WebhookSignature"
                    },
                    {
                        "$ref": "#/components/parameters/WebhookUserAgent"
                    }
                ],
                "requestBody": {
                    "required": true,
                    "content": {
                        "application/json": {
                            "schema": {
                                "allOf": [
                                    {
                                        "$ref": "#/components/schemas/WebhookPayload"
                                    },
                                    {
                                        "type": "object",
                                        "properties": {
                                            "type": {
                                                "const": "job.completed"
                                            }
                                        }
                                    }
                                ]
                            }
                        }
                    }
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
            }
        },
        "job.failed": {
            "post": {
                "operationId": "webhookJobFailed",
                "tags": [
                    "webhooks"
                ],
                "summary": "The job failed",
                "description": "Once; `job.error_code` is `generation_failed`, `origin_lost`, `generation_timeout`, `no_capacity` or `queue_full`. The price was refunded. Sent as POST to the job's `replyUrl` with `content-type: application/json`. Delivery is at-least-once: a non-2xx answer (3xx included: redirects are not followed), no answer within 15 s, or a network error is retried after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h and 24 h (±10 % jitter; 10 attempts in all, then `gave_up`); a `Retry-After` on the answer delays the next attempt to at least that long (at most 24 h) but never adds attempts; 410 stops.",
                "security": [],
                "parameters": [
                    {
                        "$ref": "#/components/parameters/WebhookId"
                    },
                    {
                        "$ref": "#/components/parameters/WebhookTimestamp"
                    },
                    {
                        "$ref": "#/components/parameters/WebhookSignature"
                    },
                    {
                        "$ref": "#/components/parameters/WebhookUserAgent"
                    }
                ],
                "requestBody": {
                    "required": true,
                    "content": {
                        "application/json": {
                            "schema": {
                                "allOf": [
                                    {
                                        "$ref": "#/components/schemas/WebhookPayload"
                                    },
                                    {
                                        "type": "object",
                                        "properties": {
                                            "type": {
                                                "const": "job.failed"
                                            }
                                        }
                                    }
                                ]
                            }
                        }
                    }
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
            }
        },
        "job.cancelled": {
            "post": {
                "operationId": "webhookJobCancelled",
                "tags": [
                    "webhooks"
                ],
                "summary": "The job was cancelled",
                "description": "Once, after DELETE /v1/jobs/{id}. The price was refunded. Sent as POST to the job's `replyUrl` with `content-type: application/json`. Delivery is at-least-once: a non-2xx answer (3xx included: redirects are not followed), no answer within 15 s, or a network error is retried after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h and 24 h (±10 % jitter; 10 attempts in all, then `gave_up`); a `Retry-After` on the answer delays the next attempt to at least that long (at most 24 h) but never adds attempts; 410 stops.",
                "security": [],
                "parameters": [
                    {
                        "$ref": "#/components/parameters/WebhookId"
                    },
                    {
                        "$ref": "#/components/parameters/WebhookTimestamp"
                    },
                    {
                        "$ref": "#/components/parameters/WebhookSignature"
                    },
                    {
                        "$ref": "#/components/parameters/WebhookUserAgent"
                    }
                ],
                "requestBody": {
                    "required": true,
                    "content": {
                        "application/json": {
                            "schema": {
                                "allOf": [
                                    {
                                        "$ref": "#/components/schemas/WebhookPayload"
                                    },
                                    {
                                        "type": "object",
                                        "properties": {
                                            "type": {
                                                "const": "job.cancelled"
                                            }
                                        }
                                    }
                                ]
                            }
                        }
                    }
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
            }
        }
    })
}
