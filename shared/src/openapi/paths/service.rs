use serde_json::json;

use super::prelude::*;

/// `GET /health`
pub(crate) fn get_health() -> Op {
    Op::new(
        Get,
        "/health",
        Public,
        json!({
            "operationId": "getHealth",
            "tags": [
                "service"
            ],
            "summary": "The edge and every known origin",
            "description": "Origins configured in ORIGINS or registered by heartbeat, as the Dispatcher's registry describes them; configured origins never heard from are probed directly (2 s timeout).",
            "responses": {
                "200": {
                    "description": "Always 200 while the edge runs; see `status`.",
                    "content": json_body(schema_ref("Health"))
                },
                "500": {
                    "$ref": "#/components/responses/InternalError"
                }
            }
        }),
    )
}

/// `GET /health/durable-object`
pub(crate) fn get_health_durable_object() -> Op {
    Op::new(
        Get,
        "/health/durable-object",
        Public,
        json!({
            "operationId": "getHealthDurableObject",
            "tags": [
                "service"
            ],
            "summary": "One round trip to a no-op Durable Object",
            "description": "The Probe DO answers at once and stores nothing. Shows that this edge location reaches Durable Objects, and is the baseline `cargo xtask bench` measures the submit path against. No rate limiting.",
            "responses": {
                "200": {
                    "description": "The Durable Object answered.",
                    "content": json_example(
                        schema_ref("HealthDurableObject"),
                        json!({
                            "status": "ok",
                            "round_trip_ms": 3
                        })
                    )
                },
                "500": {
                    "$ref": "#/components/responses/InternalError"
                }
            }
        }),
    )
}

/// `GET /openapi.json`
pub(crate) fn get_open_api() -> Op {
    Op::new(
        Get,
        "/openapi.json",
        Public,
        json!({
            "operationId": "getOpenApi",
            "tags": [
                "service"
            ],
            "summary": "This document",
            "responses": {
                "200": {
                    "description": "OpenAPI 3.1 document.",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object"
                            }
                        }
                    }
                }
            }
        }),
    )
}

/// `GET /llms.txt`
pub(crate) fn get_llms_txt() -> Op {
    Op::new(
        Get,
        "/llms.txt",
        Public,
        json!({
            "operationId": "getLlmsTxt",
            "tags": [
                "service"
            ],
            "summary": "Kiln for language models: what it is, auth, a first request, every endpoint",
            "description": "Markdown (llmstxt.org), generated from this document (`cargo xtask openapi` writes it to docs/llms.txt).",
            "responses": {
                "200": {
                    "description": "The text, `text/plain; charset=utf-8`.",
                    "content": {
                        "text/plain": {
                            "schema": {
                                "type": "string"
                            },
                            "example": "# Kiln API\n\n> Kiln is an HTTP API for generative media: …\n"
                        }
                    }
                }
            }
        }),
    )
}
