//! Component schemas, one function each (those of request bodies and derived wire types
//! are in `requests.rs` and `derived.rs`, and listed from there).

use serde_json::{json, Value};

use super::op::{overlay, schema_ref};
use super::{derived, examples, requests, JOB_ID_PATTERN};
use crate::webhooks::EventType;
use crate::ErrorCode;

/// Every component schema, by name.
pub(crate) fn schemas() -> Vec<(&'static str, Value)> {
    vec![
        ("Error", error()),
        ("AccountRequest", requests::account_request()),
        ("SessionRequest", requests::session_request()),
        (
            "AccountCreated",
            with_example(account_created(), examples::account_created()),
        ),
        ("Credits", with_example(credits(), examples::credits())),
        (
            "ImageGenerationRequest",
            requests::image_generation_request(),
        ),
        ("ImageData", image_data()),
        (
            "ImageGenerationResult",
            with_example(image_generation_result(), image_result_example()),
        ),
        (
            "JobAccepted",
            with_example(job_accepted(), job_accepted_example()),
        ),
        ("JobStatus", derived::job_status()),
        (
            "Output",
            with_example(
                output(),
                examples::completed_video_job()["outputs"][0].clone(),
            ),
        ),
        ("Job", with_example(job(), examples::completed_image_job())),
        ("Health", health()),
        ("OriginStatus", origin_status()),
        ("HealthDurableObject", health_durable_object()),
        ("KeyCreateRequest", requests::key_create_request()),
        ("ApiKey", api_key()),
        ("KeyList", key_list()),
        ("ApiKeyCreated", api_key_created()),
        ("KeyRevoked", key_revoked()),
        ("KeyRevealed", key_revealed()),
        ("UsageCharge", usage_charge()),
        ("UsageCredit", usage_credit()),
        ("UsagePage", usage_page()),
        ("StripeEvent", stripe_event()),
        ("StripeWebhookResult", stripe_webhook_result()),
        ("AdminCreditRequest", requests::admin_credit_request()),
        ("AdminCreditResult", admin_credit_result()),
        ("LedgerBenchRequest", ledger_bench_request()),
        ("LedgerBenchResult", ledger_bench_result()),
        ("ProbeBenchResult", probe_bench_result()),
        (
            "ImageParams",
            with_example(
                derived::image_params(),
                examples::completed_image_job()["params"].clone(),
            ),
        ),
        (
            "VideoParams",
            with_example(
                derived::video_params(),
                examples::completed_video_job()["params"].clone(),
            ),
        ),
        (
            "JobList",
            with_example(
                job_list(),
                json!({"object": "list", "data": [examples::queued_image_job()]}),
            ),
        ),
        (
            "VideoGenerationRequest",
            requests::video_generation_request(),
        ),
        (
            "VideoGenerationResult",
            with_example(video_generation_result(), video_result_example()),
        ),
        (
            "Model",
            with_example(model(), crate::catalog::models(|_| true)["data"][0].clone()),
        ),
        (
            "ModelList",
            with_example(model_list(), crate::catalog::models(|_| true)),
        ),
        ("QueueStatus", queue_status()),
        ("Estimate", estimate()),
        ("JobStreamEvent", super::streams::job_stream_event()),
        ("Ping", super::streams::ping()),
        ("WebhookEventType", webhook_event_type()),
        (
            "WebhookPayload",
            with_example(webhook_payload(), webhook_payload_example()),
        ),
        ("WebhookEvent", webhook_event()),
        ("WebhookDelivery", webhook_delivery()),
        ("WebhookDeliveries", webhook_deliveries()),
        ("WebhookSecret", webhook_secret()),
        ("BflRequest", requests::bfl_request()),
        ("BflSubmitted", bfl_submitted()),
        ("BflResult", bfl_result()),
        ("File", file()),
    ]
}

/// [`crate::ApiError::to_json`]: `code` is every [`ErrorCode`], `type` every value of
/// [`crate::ApiError::error_type`], and the example a real parser's error.
fn error() -> Value {
    let mut types: Vec<&str> = Vec::new();
    for status in 400..600 {
        let t = crate::ApiError::new(status, ErrorCode::InternalError, "").error_type();
        if !types.contains(&t) {
            types.push(t);
        }
    }
    let codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    let example = crate::images::ImageRequest::parse(br#"{"prompt": "a kiln", "width": 1000}"#)
        .expect_err("1000 is not a multiple of 64")
        .to_json();
    json!({
        "type": "object",
        "description": "Every error, in the OpenAI error shape. `type` is derived from the HTTP status (400/405/409/410/413/415/416 invalid_request_error, 401 authentication_error, 402 insufficient_quota, 403 permission_error, 404 not_found_error, 429 rate_limit_error, 503 service_unavailable_error, others api_error); `param` names the request field (or header) at fault when there is one. Each answer's `code` is one of those its operation lists.",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["message", "type", "param", "code"],
                "properties": {
                    "message": {"type": "string"},
                    "type": {"type": "string", "enum": types},
                    "param": {"type": ["string", "null"], "examples": ["width"]},
                    "code": {"type": "string", "enum": codes}
                }
            }
        },
        "example": example
    })
}

fn account_created() -> Value {
    json!({
        "type": "object",
        "required": [
            "account_id",
            "email",
            "is_trial",
            "balance_usd",
            "api_key",
            "key"
        ],
        "properties": {
            "account_id": {
                "type": "string",
                "pattern": "^acct_[0-9a-hjkmnp-tv-z]{16}$"
            },
            "email": {
                "type": "string",
                "description": "The normalised address."
            },
            "is_trial": {
                "type": "boolean",
                "const": true
            },
            "balance_usd": {
                "type": "number",
                "examples": [
                    2
                ]
            },
            "api_key": {
                "type": "string",
                "description": "`sk-trial-` key. Shown only in this response; only its SHA-256 is stored.",
                "pattern": "^sk-trial-[0-9a-hjkmnp-tv-z]{48}$"
            },
            "key": {
                "type": "object",
                "required": [
                    "id",
                    "label",
                    "prefix"
                ],
                "properties": {
                    "id": {
                        "type": "string",
                        "pattern": "^key_"
                    },
                    "label": {
                        "type": "string",
                        "const": "default"
                    },
                    "prefix": {
                        "type": "string",
                        "description": "Kind prefix and last four characters, e.g. `sk-trial-…ab12`."
                    }
                }
            }
        }
    })
}

fn credits() -> Value {
    json!({
        "type": "object",
        "required": [
            "account_id",
            "balance_usd",
            "held_usd",
            "available_usd",
            "is_trial",
            "last_used_at"
        ],
        "properties": {
            "account_id": {
                "type": "string",
                "pattern": "^acct_[0-9a-hjkmnp-tv-z]{16}$",
                "description": "The caller's account id (for Stripe Checkout's `client_reference_id`)."
            },
            "balance_usd": {
                "type": "number",
                "description": "What the account owns, including held amounts."
            },
            "held_usd": {
                "type": "number",
                "description": "Reserved by jobs that have not ended."
            },
            "available_usd": {
                "type": "number",
                "description": "balance_usd − held_usd; what new jobs can hold."
            },
            "is_trial": {
                "type": "boolean"
            },
            "last_used_at": {
                "type": [
                    "string",
                    "null"
                ],
                "format": "date-time",
                "description": "Last successful authentication with any of the account's keys."
            }
        }
    })
}

fn image_data() -> Value {
    json!({
        "type": "object",
        "properties": {
            "url": {
                "type": "string",
                "format": "uri"
            },
            "b64_json": {
                "type": "string",
                "contentEncoding": "base64"
            }
        },
        "description": "`url` (response_format=url) or `b64_json` (response_format=b64_json)."
    })
}

/// The properties of a completed generation's answer (images and video): the job, and
/// `data`, an array of `item`.
fn result_properties(item: Value) -> Value {
    json!({
        "created": {
            "type": "integer",
            "description": "Unix seconds when the job completed."
        },
        "job_id": {
            "type": "string",
            "pattern": JOB_ID_PATTERN
        },
        "data": {
            "type": "array",
            "items": item
        }
    })
}

fn image_generation_result() -> Value {
    json!({
        "type": "object",
        "required": [
            "created",
            "job_id",
            "data"
        ],
        "properties": result_properties(schema_ref("ImageData"))
    })
}

fn job_accepted() -> Value {
    json!({
        "type": "object",
        "required": [
            "job_id",
            "status",
            "queue_position",
            "polling_url"
        ],
        "properties": {
            "job_id": {
                "type": "string",
                "pattern": "^job_[0-9a-hjkmnp-tv-z]{26}$"
            },
            "status": {
                "$ref": "#/components/schemas/JobStatus"
            },
            "queue_position": {
                "type": [
                    "integer",
                    "null"
                ],
                "minimum": 1,
                "description": "Place in the queue (1 = next) while `queued`, else null."
            },
            "polling_url": {
                "type": "string",
                "format": "uri",
                "description": "Absolute URL of GET /v1/jobs/{id}."
            }
        },
        "description": "The 202 answer of `async_mode=true`, and of `Prefer: wait` / `pollForResult` once their wait is over. An async answer always has `status: queued`."
    })
}

fn output() -> Value {
    json!({
        "type": "object",
        "required": [
            "filename",
            "url",
            "content_type",
            "width",
            "height",
            "size_bytes"
        ],
        "properties": {
            "filename": {
                "type": "string",
                "pattern": "^[a-z0-9_-]+\\.[a-z0-9]{1,5}$",
                "examples": [
                    "job_01jq8m0v3x4y5z6a7b8c9d0e1f-0.png",
                    "job_01jq8m0v3x4y5z6a7b8c9d0e1f-0.mp4"
                ]
            },
            "url": {
                "type": "string",
                "format": "uri"
            },
            "content_type": {
                "type": "string",
                "examples": [
                    "image/png",
                    "video/mp4"
                ]
            },
            "width": {
                "type": "integer",
                "description": "Pixels; for a video, the output size (2× the requested one)."
            },
            "height": {
                "type": "integer"
            },
            "size_bytes": {
                "type": "integer"
            },
            "duration_s": {
                "type": "number",
                "description": "Video outputs only: seconds, `num_frames / 24`."
            },
            "has_audio": {
                "type": "boolean",
                "description": "Video outputs only: whether the MP4 has a sound track (LTX-2.3 makes sound with the picture; the sim's MP4 has none)."
            },
            "expires_at": {
                "type": "string",
                "format": "date-time",
                "description": "After this the file answers 410 `expired`; the job keeps this record."
            }
        }
    })
}

fn job() -> Value {
    let mut s = json!({
        "type": "object",
        "required": [
            "id",
            "object",
            "job_type",
            "model_id",
            "workflow_id",
            "status",
            "progress",
            "params",
            "input_files",
            "output_files",
            "outputs",
            "units",
            "cost_usd",
            "seed",
            "replyRef",
            "error_message",
            "error_code",
            "queue_position",
            "test_mode",
            "attempt",
            "metadata",
            "queued_at",
            "started_at",
            "completed_at"
        ],
        "properties": {
            "id": {
                "type": "string",
                "pattern": "^job_[0-9a-hjkmnp-tv-z]{26}$"
            },
            "object": {
                "type": "string",
                "const": "job"
            },
            "job_type": {
                "type": "string",
                "enum": [
                    "image",
                    "video"
                ]
            },
            "model_id": {
                "type": "string",
                "examples": [
                    "flux2-dev",
                    "ltx-2.3",
                    "ltx-2.3-fast"
                ]
            },
            "workflow_id": {
                "type": "string",
                "examples": [
                    "flux2-dev:txt2img",
                    "ltx-2.3:t2v",
                    "ltx-2.3-fast:t2v"
                ]
            },
            "status": {
                "$ref": "#/components/schemas/JobStatus"
            },
            "progress": {
                "type": "object",
                "required": [
                    "step",
                    "total_steps",
                    "stage",
                    "stage_label"
                ],
                "properties": {
                    "step": {
                        "type": "integer"
                    },
                    "total_steps": {
                        "type": "integer"
                    },
                    "stage": {
                        "type": "string",
                        "examples": [
                            "queued",
                            "loading_model",
                            "sampling",
                            "stage_1",
                            "stage_2",
                            "completed",
                            "failed",
                            "cancelled"
                        ]
                    },
                    "stage_label": {
                        "type": "string"
                    }
                },
                "description": "`step` of `total_steps` counts across all stages. Images: one stage, `sampling`, `total_steps` = `steps`. Video: `stage_1` (30 steps) then `stage_2` (10) for `ltx-2.3` (40 in all); `stage_1` (8) for `ltx-2.3-fast`. `stage_label` says it for a person (\"Stage 2 of 2: refining and upscaling to 1920×1088\")."
            },
            "params": {
                "oneOf": [
                    {
                        "$ref": "#/components/schemas/ImageParams"
                    },
                    {
                        "$ref": "#/components/schemas/VideoParams"
                    }
                ],
                "description": "The generation parameters, with the concrete seed."
            },
            "input_files": {
                "type": "array",
                "items": {
                    "type": "string"
                },
                "description": "The filenames the job was given as inputs (empty for text-only jobs)."
            },
            "output_files": {
                "type": "array",
                "items": {
                    "type": "string"
                }
            },
            "outputs": {
                "type": "array",
                "items": {
                    "$ref": "#/components/schemas/Output"
                }
            },
            "units": {
                "type": "number",
                "description": "What the job is billed by: 1 for an image; seconds of video (`num_frames / 24`) for a video."
            },
            "cost_usd": {
                "type": "number",
                "description": "Price held for the job (0 for test-mode jobs). Charged only if it completes."
            },
            "seed": {
                "type": "integer",
                "description": "The seed used."
            },
            "replyRef": {
                "type": [
                    "string",
                    "null"
                ]
            },
            "error_message": {
                "type": [
                    "string",
                    "null"
                ]
            },
            "error_code": {
                "type": [
                    "string",
                    "null"
                ],
                "description": "Set when the job did not complete: `generation_failed` (the engine failed), `origin_lost` (its GPU stopped answering and no other could take over; HTTP 500 `generation_failed`), `generation_timeout`, `no_capacity` or `queue_full` (refused at submission), `cancelled` (HTTP 409 `job_cancelled`).",
                "examples": [
                    "generation_failed",
                    "origin_lost",
                    "generation_timeout",
                    "no_capacity",
                    "queue_full",
                    "cancelled"
                ]
            },
            "queue_position": {
                "type": [
                    "integer",
                    "null"
                ],
                "minimum": 1,
                "description": "While `queued`: the job's place in the fair queue, 1 = next (it can go up as well as down). Null in every other status, and in stream events after the first."
            },
            "test_mode": {
                "type": "boolean"
            },
            "attempt": {
                "type": "integer",
                "minimum": 1,
                "maximum": 2,
                "description": "1; 2 after the job was dispatched again because its first origin stopped answering. Events of an earlier attempt are ignored."
            },
            "metadata": {
                "type": "object",
                "required": [
                    "engine",
                    "simulated",
                    "origin_id",
                    "timings_ms"
                ],
                "properties": {
                    "engine": {
                        "type": [
                            "string",
                            "null"
                        ],
                        "examples": [
                            "sim"
                        ],
                        "description": "Set on completion."
                    },
                    "simulated": {
                        "type": [
                            "boolean",
                            "null"
                        ],
                        "description": "Set on completion; true with the sim engine."
                    },
                    "origin_id": {
                        "type": [
                            "string",
                            "null"
                        ],
                        "examples": [
                            "origin-1"
                        ],
                        "description": "The origin running (or that ran) the job; null while queued."
                    },
                    "timings_ms": {
                        "type": "object",
                        "required": [
                            "queued_at",
                            "started_at",
                            "completed_at"
                        ],
                        "description": "The `*_at` instants in Unix milliseconds.",
                        "properties": {
                            "queued_at": {
                                "type": "integer"
                            },
                            "started_at": {
                                "type": [
                                    "integer",
                                    "null"
                                ]
                            },
                            "completed_at": {
                                "type": [
                                    "integer",
                                    "null"
                                ]
                            }
                        }
                    }
                }
            },
            "queued_at": {
                "type": "string",
                "format": "date-time"
            },
            "started_at": {
                "type": [
                    "string",
                    "null"
                ],
                "format": "date-time",
                "description": "The first origin event (of any attempt)."
            },
            "completed_at": {
                "type": [
                    "string",
                    "null"
                ],
                "format": "date-time",
                "description": "When the job ended (completed, failed or cancelled)."
            }
        }
    });
    let p = &mut s["properties"];
    p["id"]["pattern"] = json!(super::JOB_ID_PATTERN);
    p["job_type"]["enum"] = derived::job_type();
    p["model_id"]["examples"] = json!(crate::images::MODELS
        .iter()
        .chain(crate::video::MODELS)
        .collect::<Vec<_>>());
    p["workflow_id"]["examples"] = json!(crate::catalog::workflows());
    let description = p["progress"]["description"].take();
    p["progress"] = derived::progress();
    p["progress"]["description"] = description;
    p["error_code"]["examples"] = derived::failure_code();
    p["attempt"]["maximum"] = json!(crate::jobs::ATTEMPTS_MAX);
    s
}

fn health() -> Value {
    json!({
        "type": "object",
        "required": [
            "status",
            "service",
            "origins"
        ],
        "properties": {
            "status": {
                "type": "string",
                "enum": [
                    "ok",
                    "degraded"
                ],
                "description": "`ok` when at least one origin is `up`, else `degraded`."
            },
            "service": {
                "type": "string",
                "const": "kiln-edge"
            },
            "origins": {
                "type": "array",
                "items": {
                    "$ref": "#/components/schemas/OriginStatus"
                }
            }
        },
        "description": "The edge and every origin the Dispatcher knows (configured in ORIGINS or registered by a signed heartbeat)."
    })
}

fn origin_status() -> Value {
    json!({
        "type": "object",
        "required": [
            "id",
            "status"
        ],
        "description": "An origin as its heartbeats describe it. `up`: a heartbeat within LEASE_SECS; `down`: heartbeats stopped, a dispatch to it just failed, or its heartbeats say it cannot run jobs (`problem`). A configured origin never heard from is probed with `GET {origin}/health` (2 s timeout) instead: its own health fields when it answers (no `last_heartbeat_at`), else `{id, status: down, error}`.",
        "properties": {
            "id": {
                "type": "string"
            },
            "status": {
                "type": "string",
                "enum": [
                    "up",
                    "down"
                ]
            },
            "engine": {
                "type": [
                    "string",
                    "null"
                ],
                "examples": [
                    "sim"
                ]
            },
            "simulated": {
                "type": [
                    "boolean",
                    "null"
                ]
            },
            "slots": {
                "type": "integer"
            },
            "busy": {
                "type": "integer",
                "description": "Jobs the Dispatcher has handed this origin that have not ended (the origin's own count when probed)."
            },
            "models": {
                "type": "array",
                "items": {
                    "type": "string"
                }
            },
            "resident_models": {
                "type": "array",
                "items": {
                    "type": "string"
                },
                "description": "Models loaded on a GPU now."
            },
            "vram_free_gb": {
                "type": [
                    "number",
                    "null"
                ]
            },
            "problem": {
                "type": [
                    "string",
                    "null"
                ],
                "description": "While the origin's heartbeats say it cannot run jobs (e.g. its ComfyUI servers are unreachable): why. It is `down` meanwhile."
            },
            "last_heartbeat_at": {
                "type": [
                    "string",
                    "null"
                ],
                "format": "date-time"
            },
            "error": {
                "type": "string"
            }
        }
    })
}

fn health_durable_object() -> Value {
    json!({
        "type": "object",
        "required": [
            "status",
            "round_trip_ms"
        ],
        "properties": {
            "status": {
                "type": "string",
                "const": "ok"
            },
            "round_trip_ms": {
                "type": "integer",
                "minimum": 0,
                "description": "One Worker → Durable Object round trip, timed inside the Worker, in whole milliseconds."
            }
        }
    })
}

fn api_key() -> Value {
    let mut s = json!({
        "type": "object",
        "required": [
            "id",
            "object",
            "kind",
            "label",
            "prefix",
            "created_at",
            "last_used_at",
            "revoked_at",
            "reveal_available",
            "rate_limit_per_min"
        ],
        "properties": overlay(key_properties(), json!({
            "prefix": {
                "type": "string",
                "description": "`sk-<kind>-…<last 4>`; never the secret.",
                "examples": [
                    "sk-trial-…ab12"
                ]
            },
            "last_used_at": {
                "type": [
                    "string",
                    "null"
                ],
                "format": "date-time",
                "description": "Last allowed request with this key."
            },
            "revoked_at": {
                "type": [
                    "string",
                    "null"
                ],
                "format": "date-time",
                "description": "Revoked keys stay listed."
            },
            "reveal_available": {
                "type": "boolean",
                "description": "A secret Kiln created for you (the `sk-gen-` key of a first payment) is waiting for POST /v1/keys/{id}/reveal."
            }
        }))
    });
    s["properties"]["kind"]["enum"] = derived::key_kind();
    s
}

fn key_list() -> Value {
    json!({
        "type": "object",
        "required": [
            "object",
            "data"
        ],
        "properties": {
            "object": {
                "const": "list"
            },
            "data": {
                "type": "array",
                "items": {
                    "$ref": "#/components/schemas/ApiKey"
                },
                "description": "Every key of the account, revoked ones included, oldest first. Not paginated."
            }
        }
    })
}

fn api_key_created() -> Value {
    json!({
        "type": "object",
        "required": [
            "id",
            "object",
            "kind",
            "label",
            "prefix",
            "created_at",
            "rate_limit_per_min",
            "api_key"
        ],
        "properties": overlay(key_properties(), json!({
            "prefix": {
                "type": "string"
            },
            "api_key": {
                "type": "string",
                "description": "The full key. Shown only in this response (and in an idempotent replay of it)."
            }
        }))
    })
}

/// The properties of a key that [`api_key`] and [`api_key_created`] share.
fn key_properties() -> Value {
    json!({
        "id": {
            "type": "string",
            "pattern": "^key_[0-9a-hjkmnp-tv-z]{16}$"
        },
        "object": {
            "const": "api_key"
        },
        "kind": {
            "type": "string",
            "enum": [
                "trial",
                "gen",
                "test"
            ],
            "description": "`trial` (sk-trial-), `gen` (sk-gen-, paid), `test` (sk-test-, test mode)."
        },
        "label": {
            "type": "string"
        },
        "created_at": {
            "type": "string",
            "format": "date-time"
        },
        "rate_limit_per_min": {
            "type": [
                "integer",
                "null"
            ],
            "minimum": 1,
            "maximum": 100000,
            "description": "The key's own per-minute limit; the effective limit is the lower of this and RATE_LIMIT_PER_MIN. `null`: the deployment's limit."
        }
    })
}

fn key_revoked() -> Value {
    json!({
        "type": "object",
        "required": [
            "id",
            "revoked"
        ],
        "properties": {
            "id": {
                "type": "string",
                "pattern": "^key_[0-9a-hjkmnp-tv-z]{16}$"
            },
            "revoked": {
                "const": true
            }
        }
    })
}

fn key_revealed() -> Value {
    json!({
        "type": "object",
        "required": [
            "id",
            "api_key"
        ],
        "properties": {
            "id": {
                "type": "string",
                "pattern": "^key_[0-9a-hjkmnp-tv-z]{16}$"
            },
            "api_key": {
                "type": "string",
                "description": "The full key, e.g. `sk-gen-…`. The secret is then forgotten."
            }
        }
    })
}

fn usage_charge() -> Value {
    json!({
        "type": "object",
        "required": [
            "id",
            "type",
            "status",
            "refunded",
            "job_id",
            "job_type",
            "model_id",
            "units",
            "cost_usd",
            "prompt_preview",
            "ts",
            "settled_at"
        ],
        "properties": {
            "id": {
                "type": "string",
                "pattern": "^u_[0-9]+$"
            },
            "type": {
                "const": "charge"
            },
            "status": {
                "type": "string",
                "enum": [
                    "pending",
                    "charged",
                    "refunded"
                ],
                "description": "`pending` while the job runs (held), `charged` once it completed (captured), `refunded` if it failed or timed out (released)."
            },
            "refunded": {
                "type": "boolean",
                "description": "`status == \"refunded\"`."
            },
            "job_id": {
                "type": [
                    "string",
                    "null"
                ]
            },
            "job_type": {
                "type": [
                    "string",
                    "null"
                ],
                "examples": [
                    "image"
                ]
            },
            "model_id": {
                "type": [
                    "string",
                    "null"
                ],
                "examples": [
                    "flux2-dev"
                ]
            },
            "units": {
                "type": [
                    "number",
                    "null"
                ]
            },
            "cost_usd": {
                "type": "number"
            },
            "prompt_preview": {
                "type": [
                    "string",
                    "null"
                ],
                "description": "First 80 characters of the prompt."
            },
            "ts": {
                "type": "string",
                "format": "date-time",
                "description": "When the price was held (submission)."
            },
            "settled_at": {
                "type": [
                    "string",
                    "null"
                ],
                "format": "date-time"
            }
        }
    })
}

fn usage_credit() -> Value {
    json!({
        "type": "object",
        "required": [
            "id",
            "type",
            "source",
            "amount_usd",
            "note",
            "ts"
        ],
        "properties": {
            "id": {
                "type": "string",
                "pattern": "^u_[0-9]+$"
            },
            "type": {
                "const": "credit"
            },
            "source": {
                "type": "string",
                "enum": [
                    "grant",
                    "top_up",
                    "adjustment"
                ],
                "description": "`grant`: trial credit; `top_up`: Stripe payment; `adjustment`: operator grant or correction."
            },
            "amount_usd": {
                "type": "number",
                "description": "Signed for adjustments (a correction is negative)."
            },
            "note": {
                "type": [
                    "string",
                    "null"
                ],
                "description": "`trial credit`; `stripe <event id> (<tier>)`; or the adjustment's reason."
            },
            "ts": {
                "type": "string",
                "format": "date-time"
            }
        }
    })
}

fn usage_page() -> Value {
    json!({
        "type": "object",
        "required": [
            "object",
            "data",
            "has_more",
            "next_cursor"
        ],
        "properties": {
            "object": {
                "const": "list"
            },
            "data": {
                "type": "array",
                "items": {
                    "oneOf": [
                        {
                            "$ref": "#/components/schemas/UsageCharge"
                        },
                        {
                            "$ref": "#/components/schemas/UsageCredit"
                        }
                    ]
                },
                "description": "Newest first. Test-mode (`sk-test-`) jobs cost nothing and leave no row."
            },
            "has_more": {
                "type": "boolean"
            },
            "next_cursor": {
                "type": [
                    "string",
                    "null"
                ],
                "description": "Pass as `cursor` for the next (older) page; `null` when `has_more` is false."
            }
        }
    })
}

fn stripe_event() -> Value {
    json!({
        "type": "object",
        "description": "A Stripe event, read only after the signature matched. Kiln acts on `checkout.session.completed` with `data.object.payment_status == \"paid\"`; anything else is acknowledged and ignored.",
        "required": [
            "id"
        ],
        "properties": {
            "id": {
                "type": "string",
                "description": "Event id; each is applied at most once per account."
            },
            "type": {
                "type": "string"
            },
            "data": {
                "type": "object",
                "properties": {
                    "object": {
                        "type": "object",
                        "properties": {
                            "client_reference_id": {
                                "type": "string",
                                "description": "The Kiln account id (`acct_…`); else `metadata.account_id`."
                            },
                            "payment_status": {
                                "type": "string"
                            },
                            "amount_total": {
                                "type": "integer",
                                "description": "Cents paid; decides the tier: 500 starter ($5), 2000 pro ($20), 5000 max ($50). Any other amount is refused (400, param `amount_total`)."
                            },
                            "currency": {
                                "type": "string",
                                "description": "Must be `usd` (any case) when present; another currency is refused (400, param `currency`)."
                            },
                            "metadata": {
                                "type": "object",
                                "properties": {
                                    "account_id": {
                                        "type": "string"
                                    },
                                    "tier": {
                                        "type": "string",
                                        "enum": [
                                            "starter",
                                            "pro",
                                            "max"
                                        ],
                                        "description": "Optional; if present it must name the tier that `amount_total` pays for (else 400, param `amount_total`)."
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    })
}

fn stripe_webhook_result() -> Value {
    json!({
        "type": "object",
        "required": [
            "received",
            "event_id",
            "applied"
        ],
        "properties": {
            "received": {
                "const": true
            },
            "event_id": {
                "type": "string"
            },
            "applied": {
                "type": "boolean",
                "description": "`false` for an event id already applied, or an ignored event."
            },
            "converted": {
                "type": [
                    "boolean",
                    "null"
                ],
                "description": "Present when the event was a top-up: `true` if a trial account became paid (and received an `sk-gen-` key); `null` for a duplicate."
            },
            "reason": {
                "type": "string",
                "enum": [
                    "event type not handled",
                    "session not paid"
                ],
                "description": "Only for ignored events."
            }
        }
    })
}

fn admin_credit_result() -> Value {
    json!({
        "type": "object",
        "required": [
            "account_id",
            "balance_usd",
            "held_usd"
        ],
        "properties": {
            "account_id": {
                "type": "string"
            },
            "balance_usd": {
                "type": "number"
            },
            "held_usd": {
                "type": "number"
            }
        }
    })
}

fn ledger_bench_request() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": [
            "account_id"
        ],
        "properties": {
            "account_id": {
                "type": "string",
                "pattern": "^acct_[0-9a-hjkmnp-tv-z]{16}$",
                "description": "The account whose ledger is exercised (required even for `target: \"probe\"`). Use a dedicated benchmark account: the released holds stay in its ledger."
            },
            "holds": {
                "type": "integer",
                "minimum": 1,
                "maximum": 450,
                "default": 450,
                "description": "Holds (then releases) to place, or probe calls to make. Each is one Durable Object call, and a Worker request may make at most 1000 subrequests."
            },
            "concurrency": {
                "type": "integer",
                "minimum": 1,
                "maximum": 256,
                "default": 1,
                "description": "Calls in flight at once."
            },
            "target": {
                "type": "string",
                "enum": [
                    "ledger",
                    "probe"
                ],
                "default": "ledger",
                "description": "`ledger`: holds of 1 µ$ on the account, then their releases. `probe`: the same loop against the no-op Probe DO (the baseline); the account is not touched."
            }
        }
    })
}

fn ledger_bench_result() -> Value {
    json!({
        "type": "object",
        "description": "For `target: \"ledger\"`. Elapsed times are whole milliseconds (at least 1), measured inside the Worker.",
        "required": [
            "holds",
            "concurrency",
            "hold_elapsed_ms",
            "holds_per_sec",
            "release_elapsed_ms",
            "releases_per_sec"
        ],
        "properties": {
            "holds": {
                "type": "integer"
            },
            "concurrency": {
                "type": "integer"
            },
            "hold_elapsed_ms": {
                "type": "integer"
            },
            "holds_per_sec": {
                "type": "number"
            },
            "release_elapsed_ms": {
                "type": "integer"
            },
            "releases_per_sec": {
                "type": "number"
            }
        }
    })
}

fn probe_bench_result() -> Value {
    json!({
        "type": "object",
        "description": "For `target: \"probe\"`. Elapsed time in whole milliseconds (at least 1), measured inside the Worker.",
        "required": [
            "calls",
            "concurrency",
            "elapsed_ms",
            "calls_per_sec"
        ],
        "properties": {
            "calls": {
                "type": "integer"
            },
            "concurrency": {
                "type": "integer"
            },
            "elapsed_ms": {
                "type": "integer"
            },
            "calls_per_sec": {
                "type": "number"
            }
        }
    })
}

/// A list of `item` (a schema name) in OpenAI's shape: `object: "list"`, `data`.
fn list_of(item: &str) -> Value {
    json!({
        "type": "object",
        "required": [
            "object",
            "data"
        ],
        "properties": list_properties(item)
    })
}

/// The properties of [`list_of`] `item`.
pub(crate) fn list_properties(item: &str) -> Value {
    json!({
        "object": {
            "type": "string",
            "const": "list"
        },
        "data": {
            "type": "array",
            "items": schema_ref(item)
        }
    })
}

fn job_list() -> Value {
    list_of("Job")
}

fn video_generation_result() -> Value {
    json!({
        "type": "object",
        "required": [
            "created",
            "job_id",
            "data"
        ],
        "description": "OpenAI Images-like shape for a completed video.",
        "properties": result_properties(json!({
            "type": "object",
            "required": [
                "url"
            ],
            "properties": {
                "url": {
                    "type": "string",
                    "format": "uri",
                    "description": "The MP4 (`/outputs/job_…-0.mp4`): H.264, 24 fps, at 2× the requested size."
                }
            }
        }))
    })
}

fn model() -> Value {
    json!({
        "type": "object",
        "required": [
            "id",
            "object",
            "kind",
            "name",
            "endpoint",
            "workflows",
            "cost",
            "parameters",
            "available"
        ],
        "properties": {
            "id": {
                "type": "string",
                "enum": [
                    "flux2-dev",
                    "ltx-2.3",
                    "ltx-2.3-fast"
                ]
            },
            "object": {
                "type": "string",
                "const": "model"
            },
            "kind": {
                "type": "string",
                "enum": [
                    "image",
                    "video"
                ]
            },
            "name": {
                "type": "string",
                "examples": [
                    "FLUX.2 [dev]",
                    "LTX-2.3 (two-stage)",
                    "LTX-2.3 fast (distilled)"
                ]
            },
            "endpoint": {
                "type": "string",
                "examples": [
                    "/v1/images/generations",
                    "/v1/video/generations"
                ]
            },
            "workflows": {
                "type": "array",
                "items": {
                    "type": "string"
                },
                "examples": [
                    [
                        "ltx-2.3:t2v",
                        "ltx-2.3:i2v"
                    ]
                ],
                "description": "Workflow ids (`model:mode`), as `GET /v1/jobs/estimate` takes them."
            },
            "stages": {
                "type": "integer",
                "description": "Video only: 2 for `ltx-2.3`, 1 for `ltx-2.3-fast`."
            },
            "cost": {
                "type": "object",
                "required": [
                    "unit",
                    "usd_per_unit",
                    "rule"
                ],
                "properties": {
                    "unit": {
                        "type": "string",
                        "enum": [
                            "image",
                            "second"
                        ]
                    },
                    "usd_per_unit": {
                        "type": "number",
                        "examples": [
                            0.02,
                            0.04
                        ]
                    },
                    "rule": {
                        "type": "string",
                        "examples": [
                            "$0.02 per image",
                            "$0.04 per second of video: ceil(num_frames × 40000 / 24) micro-dollars"
                        ]
                    }
                }
            },
            "parameters": {
                "type": "object",
                "description": "JSON Schema of the generation fields, with defaults and bounds. Video adds `x-sizes` (the allowed width×height pairs) and `x-output-scale` (2)."
            },
            "available": {
                "type": "boolean",
                "description": "Whether an origin that serves the model is up now (by its heartbeats)."
            }
        }
    })
}

fn model_list() -> Value {
    list_of("Model")
}

fn queue_status() -> Value {
    json!({
        "type": "object",
        "required": [
            "status",
            "queue_running",
            "queue_pending",
            "estimated_wait_seconds",
            "slots"
        ],
        "properties": {
            "status": {
                "type": "string",
                "enum": [
                    "idle",
                    "busy"
                ],
                "description": "`idle` when nothing is queued or running."
            },
            "queue_running": {
                "type": "integer",
                "description": "Jobs an origin has (or is being handed)."
            },
            "queue_pending": {
                "type": "integer",
                "description": "Jobs waiting in the queue."
            },
            "estimated_wait_seconds": {
                "type": "number",
                "description": "Rough wait for a job submitted now: 0 while running + pending < slots, else the rounds of jobs ahead times the mean run time of recent completed jobs (25 s before any), rounded to 0.1 s."
            },
            "slots": {
                "type": "integer",
                "description": "GPU slots of the origins that are not down."
            }
        },
        "example": {
            "status": "busy",
            "queue_running": 2,
            "queue_pending": 3,
            "estimated_wait_seconds": 50.0,
            "slots": 2
        }
    })
}

fn estimate() -> Value {
    json!({
        "type": "object",
        "required": [
            "workflow_id",
            "avg_seconds",
            "sample_count",
            "source"
        ],
        "properties": {
            "workflow_id": {
                "type": "string"
            },
            "avg_seconds": {
                "type": "number",
                "description": "Mean run time (first origin event to completion, without queue time), rounded to 0.1 s."
            },
            "sample_count": {
                "type": "integer",
                "description": "Completed jobs averaged (the last 100 of the workflow at most); 0 with `source: typical`."
            },
            "source": {
                "type": "string",
                "enum": [
                    "recent_jobs",
                    "typical"
                ],
                "description": "`typical`: no completed job yet, so the catalog's typical GPU time."
            }
        },
        "example": {
            "workflow_id": "flux2-dev:txt2img",
            "avg_seconds": 25.3,
            "sample_count": 42,
            "source": "recent_jobs"
        }
    })
}

fn webhook_event_type() -> Value {
    let mut s = json!({
        "type": "string",
        "enum": [
            "job.started",
            "job.progress",
            "job.completed",
            "job.failed",
            "job.cancelled"
        ],
        "description": "`job.started`: once, at the first sign of work (not for a job that never started; not with `webhook_events: [\"terminal\"]`). `job.progress`: one per step, only with `webhook_events: [\"progress\"]`. `job.completed`, `job.failed`, `job.cancelled`: once, when the job ends; every job with a `replyUrl` gets exactly one of them."
    });
    s["enum"] = json!(EventType::ALL
        .iter()
        .map(|e| e.as_str())
        .collect::<Vec<_>>());
    s
}

fn webhook_payload() -> Value {
    json!({
        "type": "object",
        "required": [
            "type",
            "replyRef",
            "job"
        ],
        "additionalProperties": false,
        "description": "The body of every webhook: compact JSON with the keys in this order, frozen when the event is recorded (every retry and replay sends the same bytes). Verify the signature over the raw body before parsing.",
        "properties": {
            "type": {
                "$ref": "#/components/schemas/WebhookEventType"
            },
            "replyRef": {
                "type": [
                    "string",
                    "null"
                ],
                "description": "The job's `replyRef`, or null."
            },
            "job": {
                "allOf": [
                    {
                        "$ref": "#/components/schemas/Job"
                    }
                ],
                "description": "The job object as it was when the event happened, with `queue_position: null`."
            }
        },
        "example": {
            "type": "job.completed",
            "replyRef": "order-7",
            "job": {
                "id": "job_01jq8m0v3x4y5z6a7b8c9d0e1f",
                "object": "job",
                "status": "completed",
                "replyRef": "order-7",
                "outputs": [
                    {
                        "filename": "job_01jq8m0v3x4y5z6a7b8c9d0e1f-0.png",
                        "url": "http://127.0.0.1:8787/outputs/job_01jq8m0v3x4y5z6a7b8c9d0e1f-0.png",
                        "content_type": "image/png",
                        "width": 1024,
                        "height": 1024,
                        "size_bytes": 1482113
                    }
                ]
            }
        }
    })
}

/// The properties that name a webhook event, in [`webhook_event`] and
/// [`webhook_delivery`].
fn event_properties() -> Value {
    json!({
        "webhook_id": {
            "type": "string",
            "pattern": "^msg_[0-9a-hjkmnp-tv-z]{26}$",
            "examples": [
                "msg_a2ds2zkzxe8h2mgqfrra8jptp4"
            ]
        },
        "type": {
            "$ref": "#/components/schemas/WebhookEventType"
        }
    })
}

fn webhook_event() -> Value {
    let mut s = json!({
        "type": "object",
        "required": [
            "webhook_id",
            "type",
            "state",
            "attempts",
            "next_attempt_at"
        ],
        "description": "One webhook event of a job and where its delivery stands.",
        "properties": overlay(event_properties(), json!({
            "state": {
                "type": "string",
                "enum": [
                    "pending",
                    "delivered",
                    "gone",
                    "gave_up"
                ],
                "description": "`pending`: will be tried again at `next_attempt_at`. `delivered`: a 2xx. `gone`: the receiver answered 410; no more attempts. `gave_up`: the retry schedule ran out (10 attempts), or the destination was refused at an attempt."
            },
            "attempts": {
                "type": "integer",
                "minimum": 0,
                "description": "Attempts so far, replays included."
            },
            "next_attempt_at": {
                "type": [
                    "string",
                    "null"
                ],
                "format": "date-time",
                "description": "Set while `pending`."
            }
        }))
    });
    s["properties"]["state"]["enum"] = derived::delivery_state();
    s
}

fn webhook_delivery() -> Value {
    json!({
        "type": "object",
        "required": [
            "webhook_id",
            "type",
            "attempt",
            "attempted_at",
            "status_code",
            "latency_ms",
            "error",
            "replay"
        ],
        "description": "One delivery attempt.",
        "properties": overlay(event_properties(), json!({
            "attempt": {
                "type": "integer",
                "minimum": 1,
                "description": "Numbers the attempts of one event from 1; a replay continues the count."
            },
            "attempted_at": {
                "type": "string",
                "format": "date-time",
                "description": "When the attempt started."
            },
            "status_code": {
                "type": [
                    "integer",
                    "null"
                ],
                "description": "The receiver's HTTP status; null after a timeout (15 s), a network error or a refused destination."
            },
            "latency_ms": {
                "type": [
                    "integer",
                    "null"
                ]
            },
            "error": {
                "type": [
                    "string",
                    "null"
                ],
                "description": "Null after a 2xx; else `answered <status>`, `no answer within 15 s`, `destination not allowed: …`, or the runtime's description of the network error.",
                "examples": [
                    "answered 500",
                    "no answer within 15 s"
                ]
            },
            "replay": {
                "type": "boolean",
                "description": "Made by POST /v1/jobs/{id}/webhook."
            }
        })),
        "example": {
            "webhook_id": "msg_mtetbq3y6qv9q8m52mj3zm46pg",
            "type": "job.completed",
            "attempt": 2,
            "attempted_at": "2026-04-03T12:50:00Z",
            "status_code": 204,
            "latency_ms": 6,
            "error": null,
            "replay": true
        }
    })
}

fn webhook_deliveries() -> Value {
    json!({
        "type": "object",
        "required": [
            "object",
            "job_id",
            "reply_url",
            "events",
            "data"
        ],
        "properties": {
            "object": {
                "type": "string",
                "const": "list"
            },
            "job_id": {
                "type": "string",
                "pattern": "^job_[0-9a-hjkmnp-tv-z]{26}$"
            },
            "reply_url": {
                "type": [
                    "string",
                    "null"
                ],
                "description": "The `replyUrl` as submitted; null if none (both lists are then empty)."
            },
            "events": {
                "type": "array",
                "items": {
                    "$ref": "#/components/schemas/WebhookEvent"
                },
                "description": "Every event of the job, in the order they happened."
            },
            "data": {
                "type": "array",
                "items": {
                    "$ref": "#/components/schemas/WebhookDelivery"
                },
                "description": "Every attempt, oldest first, retries and replays included. Not paginated."
            }
        }
    })
}

fn webhook_secret() -> Value {
    json!({
        "type": "object",
        "required": [
            "secret",
            "created_at",
            "previous",
            "signature_scheme"
        ],
        "description": "The account's Standard Webhooks signing secret. One per account, shared by all its keys; created on first use.",
        "properties": {
            "secret": {
                "type": "string",
                "pattern": "^whsec_",
                "description": "`whsec_` + base64 of 32 random bytes (44 characters); the HMAC key is the decoded part. Signs every delivery."
            },
            "created_at": {
                "type": "string",
                "format": "date-time",
                "description": "When it became the current secret."
            },
            "previous": {
                "type": [
                    "object",
                    "null"
                ],
                "required": [
                    "secret",
                    "expires_at"
                ],
                "description": "After a rotation: the secret that was current before, which also signs (a second `v1,` entry) until `expires_at`, 24 h after the rotation. Else null.",
                "properties": {
                    "secret": {
                        "type": "string",
                        "pattern": "^whsec_"
                    },
                    "expires_at": {
                        "type": "string",
                        "format": "date-time"
                    }
                }
            },
            "signature_scheme": {
                "type": "string",
                "const": "Standard Webhooks v1 (HMAC-SHA256)"
            }
        },
        "example": {
            "secret": "whsec_oESzSJY…",
            "created_at": "2026-04-03T12:40:00Z",
            "previous": {
                "secret": "whsec_f4/JSAm…",
                "expires_at": "2026-04-04T12:40:00Z"
            },
            "signature_scheme": "Standard Webhooks v1 (HMAC-SHA256)"
        }
    })
}

fn bfl_submitted() -> Value {
    json!({
        "type": "object",
        "required": [
            "id",
            "polling_url"
        ],
        "properties": {
            "id": {
                "type": "string",
                "pattern": "^job_[0-9a-hjkmnp-tv-z]{26}$",
                "description": "A Kiln job id: GET /v1/jobs/{id}, its stream, DELETE and the webhook routes work with it."
            },
            "polling_url": {
                "type": "string",
                "format": "uri",
                "description": "Absolute URL of GET /flux/v1/get_result?id=…"
            }
        },
        "example": {
            "id": "job_01jq8m0v3x4y5z6a7b8c9d0e1f",
            "polling_url": "http://127.0.0.1:8787/flux/v1/get_result?id=job_01jq8m0v3x4y5z6a7b8c9d0e1f"
        }
    })
}

fn bfl_result() -> Value {
    json!({
        "type": "object",
        "required": [
            "id",
            "status",
            "result",
            "progress",
            "replyRef"
        ],
        "properties": {
            "id": {
                "type": "string",
                "pattern": "^job_[0-9a-hjkmnp-tv-z]{26}$"
            },
            "status": {
                "type": "string",
                "enum": [
                    "Pending",
                    "Ready",
                    "Error"
                ],
                "description": "`Pending`: queued, loading_model or processing. `Ready`: completed. `Error`: failed or cancelled."
            },
            "result": {
                "oneOf": [
                    {
                        "type": "null"
                    },
                    {
                        "type": "object",
                        "required": [
                            "sample",
                            "prompt",
                            "seed"
                        ],
                        "description": "Ready.",
                        "properties": {
                            "sample": {
                                "type": [
                                    "string",
                                    "null"
                                ],
                                "format": "uri",
                                "description": "URL of the first output (`/outputs/…`; it does not expire)."
                            },
                            "prompt": {
                                "type": "string"
                            },
                            "seed": {
                                "type": "integer"
                            }
                        }
                    },
                    {
                        "type": "object",
                        "required": [
                            "error_code",
                            "error_message"
                        ],
                        "description": "Error.",
                        "properties": {
                            "error_code": {
                                "type": [
                                    "string",
                                    "null"
                                ]
                            },
                            "error_message": {
                                "type": [
                                    "string",
                                    "null"
                                ]
                            }
                        }
                    }
                ]
            },
            "progress": {
                "type": "number",
                "minimum": 0,
                "maximum": 1,
                "description": "`step / total_steps`."
            },
            "replyRef": {
                "type": [
                    "string",
                    "null"
                ]
            }
        },
        "example": {
            "id": "job_01jq8m0v3x4y5z6a7b8c9d0e1f",
            "status": "Ready",
            "progress": 1.0,
            "replyRef": null,
            "result": {
                "sample": "http://127.0.0.1:8787/outputs/job_01jq8m0v3x4y5z6a7b8c9d0e1f-0.png",
                "prompt": "draw a rainbow",
                "seed": 42
            }
        }
    })
}

fn file() -> Value {
    let mut s = json!({
        "type": "object",
        "description": "An upload or an output of the account.",
        "properties": {
            "id": {
                "type": "string",
                "description": "The filename without its extension."
            },
            "object": {
                "type": "string",
                "enum": [
                    "upload",
                    "output"
                ]
            },
            "filename": {
                "type": "string"
            },
            "original_filename": {
                "type": [
                    "string",
                    "null"
                ],
                "description": "Uploads: the name the client sent."
            },
            "format": {
                "type": "string",
                "enum": [
                    "png",
                    "apng",
                    "jpeg",
                    "webp",
                    "gif",
                    "mp4"
                ]
            },
            "content_type": {
                "type": "string"
            },
            "width": {
                "type": "integer"
            },
            "height": {
                "type": "integer"
            },
            "frame_count": {
                "type": "integer",
                "minimum": 1
            },
            "size_bytes": {
                "type": "integer"
            },
            "created_at": {
                "type": "string",
                "format": "date-time"
            },
            "job_id": {
                "type": "string",
                "description": "Outputs: the job that made it."
            },
            "url": {
                "type": "string",
                "description": "Outputs: where it is served."
            },
            "deduplicated": {
                "type": "boolean",
                "description": "Uploads, in the POST answer: these bytes were already uploaded."
            },
            "expires_at": {
                "type": "string",
                "format": "date-time",
                "description": "After this the file answers 410 `expired` and is swept."
            }
        }
    });
    let mut formats = derived::image_format();
    formats.as_array_mut().expect("an enum").push(json!("mp4"));
    s["properties"]["format"]["enum"] = formats;
    s
}

fn with_example(mut schema: Value, example: Value) -> Value {
    schema["example"] = example;
    schema
}

/// The 200 answer of the image endpoint for the example job (`edge/src/api/submit.rs`).
fn image_result_example() -> Value {
    let job = examples::completed_image_job();
    json!({
        "created": 1_775_219_706,
        "job_id": job["id"],
        "data": [{"url": job["outputs"][0]["url"]}],
    })
}

/// The 200 answer of the video endpoint for the example job.
fn video_result_example() -> Value {
    let job = examples::completed_video_job();
    json!({
        "created": 1_775_219_706,
        "job_id": job["id"],
        "data": [{"url": job["outputs"][0]["url"]}],
    })
}

/// The 202 answer of `async_mode=true`.
fn job_accepted_example() -> Value {
    let job = examples::queued_image_job();
    json!({
        "job_id": job["id"],
        "status": "queued",
        "queue_position": 1,
        "polling_url": format!("{}/v1/jobs/{}", examples::BASE_URL, job["id"].as_str().unwrap_or_default()),
    })
}

/// A `job.completed` webhook body as `webhooks::body` writes it.
fn webhook_payload_example() -> Value {
    let job = examples::completed_image_job();
    let body = crate::webhooks::body(EventType::Completed, Some("order-42"), &job);
    serde_json::from_str(&body).expect("a webhook body is JSON")
}
