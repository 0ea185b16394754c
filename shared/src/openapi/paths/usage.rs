use serde_json::json;

use super::prelude::*;

/// `GET /v1/usage`
pub(crate) fn list_usage() -> Op {
    Op::new(
        Get,
        "/v1/usage",
        Key,
        json!({
            "operationId": "listUsage",
            "tags": [
                "usage"
            ],
            "summary": "Charges and credits, newest first",
            "parameters": [
                overlay(limit_param(50), json!({
                    "description": "Rows per page, 1–100 (else 400 `out_of_range`, param `limit`)."
                })),
                {
                    "name": "cursor",
                    "in": "query",
                    "required": false,
                    "schema": {
                        "type": "string",
                        "pattern": crate::query::CURSOR_PATTERN
                    },
                    "description": "`next_cursor` of the previous page (`u_` and a positive number, no leading zero); empty means the first page. Anything else is 400 `invalid_value` (param `cursor`)."
                }
            ],
            "responses": {
                "200": {
                    "description": "A page.",
                    "content": json_body(schema_ref("UsagePage"))
                },
                "400": err(&[OutOfRange, InvalidValue], json!({
                    "description": "`out_of_range` (`limit`) or `invalid_value` (`cursor` is not one this endpoint returned); `param` names the query parameter."
                })),
                "500": internal_error()
            }
        }),
    )
}
