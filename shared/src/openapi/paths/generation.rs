use serde_json::{json, Value};

use super::prelude::*;
use crate::images;

/// The headers of an answer about a job that was created: its id, and the balance after
/// its hold.
const JOB_HEADERS: [&str; 2] = ["X-Kiln-Job-Id", "X-Credits-Remaining-Usd"];

/// The headers of an answer to a submission that `Idempotency-Key` can replay.
pub(crate) const SUBMITTED_HEADERS: [&str; 3] = [
    "X-Kiln-Job-Id",
    "X-Credits-Remaining-Usd",
    "Idempotent-Replayed",
];

/// The description of the JSON generation routes (images and video).
const GENERATION_DESCRIPTION: &str = "Order of checks: key (401), rate limit (429), body size (413, 64 KiB), `Idempotency-Key` (400 malformed, 409 conflict or in progress, or replay of the stored response), body and parameters (400), mode (400), `replyUrl` destination (400 `invalid_reply_url`), hold of the price (402), then the job is created and queued with the Dispatcher: 503 `no_capacity` if no origin serving the model is up, 503 `queue_full` if 1000 jobs are waiting (the job fails at once and its hold is released). The request never waits for an origin to accept the job. Mode precedence: `?async_mode=true`, then `Prefer: wait=N`, then `pollForResult`, else sync (wait up to SYNC_WAIT_SECS, default 90 s, queue time included). A job that ends without completing answers 409/500/503/504 in every mode once the edge sees it, and its hold is released. Credits are charged only when the job completes; `sk-test-` keys cost nothing.";

/// The answers every route that submits a job shares (402, 403, 410, 413, 415, 503),
/// with the operation's own (`own`) over them.
pub(crate) fn submission_responses(own: Value) -> Value {
    overlay(
        json!({
            "402": err(&[InsufficientCredits], json!({"description": "`insufficient_credits`: available balance (balance − held) is below the price; the message states both amounts."})),
            "403": err(&[FileNotYours], json!({"description": "`file_not_yours`: an `input_files` entry is not one of your files; nothing is charged."})),
            "410": err(&[Expired], json!({"description": "`expired`: an `input_files` entry has expired."})),
            "413": err(&[PayloadTooLarge], json!({"description": "`payload_too_large`: the body is over 64 KiB."})),
            "415": {
                "$ref": "#/components/responses/UnsupportedMediaType"
            },
            "503": err(&[NoCapacity, QueueFull], json!({
                "description": "`no_capacity`: no origin that serves the model is up; or `queue_full`: 1000 jobs are already waiting. The job failed at once and its hold was released. Retry later.",
                "headers": header_refs(&JOB_HEADERS)
            }))
        }),
        own,
    )
}

/// The answers of the generation routes: [`submission_responses`], the result (`result`,
/// a schema name) when the job completes within the wait (200, described by
/// `completed`), the job when it does not (202), and the job's failures (409, 500, 504);
/// with the operation's own (`own`) over them.
fn generation_responses(completed: &str, result: &str, own: Value) -> Value {
    let mut headers = header_refs(&SUBMITTED_HEADERS);
    let completed = json!({
        "description": completed,
        "headers": headers,
        "content": json_body(schema_ref(result))
    });
    headers["Location"] = json!({
        "description": "`/v1/jobs/{id}` (relative). Only on 202.",
        "schema": {
            "type": "string"
        }
    });
    submission_responses(overlay(
        json!({
            "200": completed,
            "202": {
                "description": "Not finished yet. Sync mode answers with the full job object; `async_mode`, `Prefer: wait` and `pollForResult` answer with `{job_id, status, queue_position, polling_url}`. Poll GET /v1/jobs/{id} or follow GET /v1/jobs/{id}/stream.",
                "headers": headers,
                "content": json_body(json!({
                    "oneOf": [schema_ref("Job"), schema_ref("JobAccepted")]
                }))
            },
            "409": err(&[IdempotencyConflict, IdempotencyInProgress, JobCancelled], json!({"description": "`idempotency_conflict` / `idempotency_in_progress` (`param` is `Idempotency-Key`); or `job_cancelled`: the job was cancelled (DELETE /v1/jobs/{id}) while this request waited for it (with X-Kiln-Job-Id and X-Credits-Remaining-Usd; refunded)."})),
            "500": err(&[GenerationFailed, InternalError], json!({
                "description": "`generation_failed`: the job failed, on the GPU or because its GPU stopped answering and no other could take over (job `error_code` `origin_lost`); credits refunded; carries X-Kiln-Job-Id and X-Credits-Remaining-Usd. Or `internal_error`. Not stored for `Idempotency-Key`.",
                "headers": header_refs(&JOB_HEADERS)
            })),
            "504": err(&[GenerationTimeout], json!({
                "description": "`generation_timeout`: the job did not end within JOB_TIMEOUT_SECS (default 600 s); credits refunded.",
                "headers": header_refs(&JOB_HEADERS)
            }))
        }),
        own,
    ))
}

/// `POST /v1/images/generations`
pub(crate) fn create_image() -> Op {
    Op::new(
        Post,
        "/v1/images/generations",
        Key,
        json!({
            "operationId": "createImage",
            "tags": [
                "generation"
            ],
            "summary": "Generate an image (FLUX.2-dev, $0.02)",
            "description": GENERATION_DESCRIPTION,
            "parameters": param_refs(&["AsyncMode", "PreferWait", "IdempotencyKey"]),
            "requestBody": {
                "required": true,
                "content": json_example(
                    schema_ref("ImageGenerationRequest"),
                    json!({
                        "prompt": "a kiln at dawn",
                        "width": 1024,
                        "height": 768
                    })
                )
            },
            "responses": generation_responses(
                "Completed within the wait (sync, `Prefer: wait`, `pollForResult`). OpenAI Images shape.",
                "ImageGenerationResult",
                json!({
                    "400": err(&[InvalidJson, InvalidType, MissingParameter, UnknownParameter, InvalidValue, InvalidDimensions, OutOfRange, ModelNotFound, InvalidReplyUrl], json!({"description": "Invalid parameters or body. `param` names the field at fault; codes: invalid_json, invalid_type, missing_parameter, unknown_parameter, invalid_value, invalid_dimensions, out_of_range, model_not_found, invalid_reply_url (`replyUrl` refused by the webhook destination rules; `param` is `replyUrl`)."}))
                })
            )
        }),
    )
}

/// `POST /v1/video/generations`
pub(crate) fn create_video() -> Op {
    Op::new(
        Post,
        "/v1/video/generations",
        Key,
        json!({
            "operationId": "createVideo",
            "tags": [
                "generation"
            ],
            "summary": "Generate a video (LTX-2.3, $0.04 per second)",
            "description": GENERATION_DESCRIPTION,
            "parameters": param_refs(&["AsyncMode", "PreferWait", "IdempotencyKey"]),
            "requestBody": {
                "required": true,
                "content": json_example(
                    schema_ref("VideoGenerationRequest"),
                    json!({
                        "prompt": "waves at dusk",
                        "model": "ltx-2.3-fast",
                        "num_frames": 49
                    })
                )
            },
            "responses": generation_responses(
                "Completed within the wait (sync, `Prefer: wait`, `pollForResult`): `data[0].url` is the MP4.",
                "VideoGenerationResult",
                json!({
                    "400": err(&[InvalidJson, InvalidType, MissingParameter, UnknownParameter, InvalidValue, InvalidDimensions, InvalidNumFrames, OutOfRange, ModelNotFound, InvalidReplyUrl], json!({"description": "Invalid parameters or body. `param` names the field at fault; codes: invalid_json, invalid_type, missing_parameter, unknown_parameter, invalid_value (e.g. `fps` ≠ 24, `response_format` ≠ url, any `input_files`), invalid_dimensions (size not 960×544, 544×960 or 768×768), invalid_num_frames (not 25–241 and 8n+1; the message names the nearest valid values), out_of_range, model_not_found, invalid_reply_url (`replyUrl` refused by the webhook destination rules; `param` is `replyUrl`)."}))
                })
            )
        }),
    )
}

/// `POST /v1/images/edits`
pub(crate) fn edit_image() -> Op {
    Op::new(
        Post,
        "/v1/images/edits",
        Key,
        json!({
            "summary": "OpenAI-compatible image edit: FLUX.2 img2img with 1–4 reference images",
            "operationId": "editImage",
            "parameters": param_refs(&["AsyncMode", "PreferWait"]),
            "requestBody": {
                "required": true,
                "content": upload_form(
                    "image",
                    json!({
                        "type": "object",
                        "required": [
                            "image",
                            "prompt"
                        ],
                        "properties": {
                            "image": {
                                "type": "string",
                                "format": "binary",
                                "description": format!("A reference image (PNG, APNG, JPEG, WebP or GIF), stored as one of your uploads (deduplicated): repeat the part for 1–{} images. Clients that send a list may name the parts `image[]` instead, but not both names in one request (400 `invalid_value`).", images::INPUT_FILES_MAX)
                            },
                            "prompt": crate::openapi::requests::prompt(),
                            "size": {
                                "type": "string",
                                "pattern": format!("^$|^(auto|{})$", images::SIZE_PATTERN.trim_start_matches('^').trim_end_matches('$')),
                                "description": "`WxH` (as `size` of the image endpoint) or `auto` (the default size); empty is absent."
                            },
                            "n": {
                                "type": "integer",
                                "minimum": 1,
                                "maximum": images::N_MAX
                            },
                            "response_format": {
                                "type": "string",
                                "enum": [
                                    "url",
                                    "b64_json"
                                ]
                            },
                            "model": {
                                "type": "string",
                                "enum": images::MODELS
                            },
                            "user": {
                                "type": "string",
                                "description": "Accepted and ignored."
                            }
                        },
                        "additionalProperties": false
                    })
                )
            },
            "tags": [
                "generation"
            ],
            "responses": generation_responses(
                "Completed within the wait (sync, `Prefer: wait`, `pollForResult`). OpenAI Images shape.",
                "ImageGenerationResult",
                json!({
                    "400": err(&[InvalidBody, InvalidType, MissingParameter, UnknownParameter, InvalidValue, InvalidDimensions, OutOfRange, ModelNotFound, ImageTooLarge, InvalidImage], json!({"description": "Invalid form or parameters. `param` names the field at fault: `invalid_body` (unreadable multipart), `missing_parameter` (no `image` or `prompt`), `unknown_parameter` (e.g. `mask`), `invalid_value` (more than 4 images, a field that is not text), `image_too_large` or `invalid_image` (`param` is `image`), and the image endpoint's `invalid_type`, `invalid_dimensions`, `out_of_range`, `model_not_found`."})),
                    "409": err(&[JobCancelled], json!({"description": "`job_cancelled`: the job was cancelled (DELETE /v1/jobs/{id}) while this request waited for it (with X-Kiln-Job-Id and X-Credits-Remaining-Usd; refunded). This endpoint does not read `Idempotency-Key`."})),
                    "413": err(&[PayloadTooLarge], json!({"description": "`payload_too_large`: the form is over 80 MB (4 images of at most 20 MB)."})),
                    "415": err(&[UnsupportedMediaType], json!({"description": "`unsupported_media_type`: not multipart, or an image that is not PNG, APNG, JPEG, WebP or GIF."}))
                })
            )
        }),
    )
}
