use serde_json::{json, Value};

use super::prelude::*;

/// `id` of the `/v1/keys/{id}` routes.
fn key_id_param() -> Value {
    json!({
        "name": "id",
        "in": "path",
        "required": true,
        "schema": {
            "type": "string"
        },
        "description": "A key id (`key_…`)."
    })
}

/// `GET /v1/keys`
pub(crate) fn list_keys() -> Op {
    Op::new(
        Get,
        "/v1/keys",
        Key,
        json!({
            "operationId": "listKeys",
            "tags": [
                "keys"
            ],
            "summary": "List the account's keys (never the secrets)",
            "responses": {
                "200": {
                    "description": "Every key of the account, oldest first.",
                    "content": json_body(schema_ref("KeyList"))
                },
                "500": internal_error()
            }
        }),
    )
}

/// `POST /v1/keys`
pub(crate) fn create_key() -> Op {
    Op::new(
        Post,
        "/v1/keys",
        Key,
        json!({
            "operationId": "createKey",
            "tags": [
                "keys"
            ],
            "summary": "Create a labeled key (shown once)",
            "description": "Any key of the account may create keys. All keys share the account's balance. Body at most 4 KiB. Order: key (401), rate limit (429), body size (413), `Idempotency-Key`, fields (400).",
            "parameters": [
                {
                    "$ref": "#/components/parameters/IdempotencyKey"
                }
            ],
            "requestBody": {
                "required": false,
                "content": json_example(
                    schema_ref("KeyCreateRequest"),
                    json!({
                        "label": "n8n",
                        "rate_limit_per_min": 60
                    })
                )
            },
            "responses": {
                "201": {
                    "description": "Created. `api_key` is the only copy of the secret.",
                    "content": json_body(schema_ref("ApiKeyCreated")),
                    "headers": {
                        "Idempotent-Replayed": {
                            "$ref": "#/components/headers/Idempotent-Replayed"
                        }
                    }
                },
                "400": err(&[InvalidJson, InvalidType, UnknownParameter, InvalidValue, OutOfRange], json!({
                    "description": "Invalid body or `Idempotency-Key`. `param` names the field at fault: `invalid_json`, `invalid_type`, `unknown_parameter`, `invalid_value` (`label`, `mode`, or a malformed `Idempotency-Key`), `out_of_range` (`rate_limit_per_min`)."
                })),
                "409": err(&[IdempotencyConflict, IdempotencyInProgress], json!({
                    "description": "`idempotency_conflict`: the `Idempotency-Key` was used with a different request; or `idempotency_in_progress`: a request with this key is still running (retry shortly). `param` is `Idempotency-Key`."
                })),
                "413": err(&[PayloadTooLarge], json!({
                    "description": "`payload_too_large`: the body is over 4 KiB."
                })),
                "415": {
                    "$ref": "#/components/responses/UnsupportedMediaType"
                },
                "500": internal_error()
            }
        }),
    )
}

/// `DELETE /v1/keys/{id}`
pub(crate) fn revoke_key() -> Op {
    Op::new(
        Delete,
        "/v1/keys/{id}",
        Key,
        json!({
            "operationId": "revokeKey",
            "tags": [
                "keys"
            ],
            "summary": "Revoke a key",
            "description": "Takes effect on the next request with that key, everywhere (401 `invalid_api_key`). Any key of the account may revoke any other, or itself. A pending reveal is discarded.",
            "parameters": [
                key_id_param()
            ],
            "responses": {
                "200": {
                    "description": "Revoked.",
                    "content": json_body(schema_ref("KeyRevoked"))
                },
                "404": err(&[KeyNotFound], json!({
                    "description": "`key_not_found`: no active key with this id in the account (unknown, another account's, or already revoked)."
                })),
                "500": internal_error()
            }
        }),
    )
}

/// `POST /v1/keys/{id}/reveal`
pub(crate) fn reveal_key() -> Op {
    Op::new(
        Post,
        "/v1/keys/{id}/reveal",
        Key,
        json!({
            "operationId": "revealKey",
            "tags": [
                "keys"
            ],
            "summary": "One-time reveal of a key Kiln created for you",
            "description": "Returns the secret of a key whose `reveal_available` is true (the `sk-gen-` key a trial account receives with its first Stripe payment), then forgets it. The body is ignored. Not covered by `Idempotency-Key`.",
            "parameters": [
                key_id_param()
            ],
            "responses": {
                "200": {
                    "description": "The secret, shown this once.",
                    "content": json_body(schema_ref("KeyRevealed"))
                },
                "404": err(&[KeyNotFound], json!({
                    "description": "`key_not_found`: no key with this id waits to be revealed (never, already revealed, or revoked)."
                })),
                "500": internal_error()
            }
        }),
    )
}
