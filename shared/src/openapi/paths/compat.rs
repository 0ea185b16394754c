use serde_json::json;

use super::prelude::*;

/// `POST /flux/v1/{model}`
pub(crate) fn bfl_submit() -> Op {
    Op::new(
        Post,
        "/flux/v1/{model}",
        Key,
        json!({
            "operationId": "bflSubmit",
            "tags": [
                "compat"
            ],
            "summary": "BFL-style image submission (always asynchronous)",
            "description": "The same image job as `POST /v1/images/generations?async_mode=true`: same rules, price ($0.02), hold, queue, webhooks and errors (Kiln's error shape). Always asynchronous: `?async_mode` and `Prefer` are not read and `pollForResult` has no effect. Order of checks as on the image endpoint without the mode; the BFL fields are checked with the body.",
            "parameters": [
                {
                    "name": "model",
                    "in": "path",
                    "required": true,
                    "schema": {
                        "type": "string",
                        "enum": [
                            "flux2-dev"
                        ]
                    },
                    "description": "The image model; anything else is 400 `model_not_found` (`param: model`)."
                },
                {
                    "$ref": "#/components/parameters/IdempotencyKey"
                }
            ],
            "requestBody": {
                "required": true,
                "content": json_example(
                    schema_ref("BflRequest"),
                    json!({
                        "prompt": "draw a rainbow",
                        "width": 1024,
                        "height": 768,
                        "guidance": 3.5
                    })
                )
            },
            "responses": submission_responses(json!({
                "200": {
                    "description": "Queued.",
                    "content": json_body(schema_ref("BflSubmitted")),
                    "headers": header_refs(&SUBMITTED_HEADERS)
                },
                "400": err(&[InvalidJson, InvalidType, MissingParameter, UnknownParameter, InvalidValue, InvalidDimensions, OutOfRange, ModelNotFound, InvalidReplyUrl], json!({
                    "description": "As on the image endpoint (`param` names the field; `guidance` errors name `cfg`), plus `unknown_parameter` for `model` in the body and BFL fields Kiln does not take, `invalid_value` for `output_format` ≠ png, `prompt_upsampling` ≠ false and any `image_prompt`, `model_not_found` for the path, and `invalid_reply_url`."
                })),
                "409": err(&[IdempotencyConflict, IdempotencyInProgress], json!({
                    "description": "`idempotency_conflict` / `idempotency_in_progress` (`param` is `Idempotency-Key`)."
                })),
                "500": {
                    "$ref": "#/components/responses/KeyedInternalError"
                }
            }))
        }),
    )
}

/// `GET /flux/v1/get_result`
pub(crate) fn bfl_get_result() -> Op {
    Op::new(
        Get,
        "/flux/v1/get_result",
        Key,
        json!({
            "operationId": "bflGetResult",
            "tags": [
                "compat"
            ],
            "summary": "BFL-style result of a job",
            "description": "Any job of the caller's account, whichever route submitted it.",
            "parameters": [
                {
                    "name": "id",
                    "in": "query",
                    "required": true,
                    "schema": {
                        "type": "string",
                        "pattern": "^job_[0-9a-hjkmnp-tv-z]{26}$"
                    },
                    "description": "The job id (`id` of the submission). Missing counts as unknown (404)."
                }
            ],
            "responses": {
                "200": {
                    "description": "The job in BFL's shape.",
                    "content": json_body(schema_ref("BflResult"))
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
