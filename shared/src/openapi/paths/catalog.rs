use serde_json::json;

use super::prelude::*;

/// `GET /v1/models`
pub(crate) fn list_models() -> Op {
    Op::new(
        Get,
        "/v1/models",
        Public,
        json!({
            "operationId": "listModels",
            "tags": [
                "catalog"
            ],
            "summary": "The model catalog",
            "description": "Every model with its kind, endpoint, workflows, cost rule, parameter schema, defaults and current availability. No auth, not rate-limited.",
            "responses": {
                "200": {
                    "description": "The catalog (flux2-dev, ltx-2.3, ltx-2.3-fast).",
                    "content": json_body(schema_ref("ModelList"))
                },
                "500": {
                    "$ref": "#/components/responses/InternalError"
                }
            }
        }),
    )
}

/// `GET /v1/queue/status`
pub(crate) fn get_queue_status() -> Op {
    Op::new(
        Get,
        "/v1/queue/status",
        Public,
        json!({
            "operationId": "getQueueStatus",
            "tags": [
                "catalog"
            ],
            "summary": "The queue now",
            "description": "Running and pending jobs, slots, and a rough wait for a job submitted now. No auth, not rate-limited.",
            "responses": {
                "200": {
                    "description": "The queue.",
                    "content": json_body(schema_ref("QueueStatus"))
                },
                "500": {
                    "$ref": "#/components/responses/InternalError"
                }
            }
        }),
    )
}
