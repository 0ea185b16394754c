use serde_json::{json, Value};

use super::prelude::*;

/// The 401 of every admin route.
fn invalid_admin_token() -> Value {
    err(
        &[InvalidAdminToken],
        json!({
            "description": "`invalid_admin_token`: no bearer token, a wrong one, or ADMIN_TOKEN unset."
        }),
    )
}

/// `POST /admin/accounts/{id}/credits`
pub(crate) fn admin_adjust_credits() -> Op {
    Op::new(
        Post,
        "/admin/accounts/{id}/credits",
        Admin,
        json!({
            "operationId": "adminAdjustCredits",
            "tags": [
                "admin"
            ],
            "summary": "Operator grant or correction, with a reason",
            "description": "Order: admin token (401), account id (404), body size (413, 4 KiB), fields (400). Adds `amount_usd` to the balance (a negative amount removes credit) and appends an `adjustment` ledger row with the reason. Does not change `is_trial`. No `Idempotency-Key`, no rate limiting.",
            "parameters": [
                {
                    "name": "id",
                    "in": "path",
                    "required": true,
                    "schema": {
                        "type": "string",
                        "pattern": "^acct_[0-9a-hjkmnp-tv-z]{16}$"
                    },
                    "description": "The account id (`acct_…`)."
                }
            ],
            "requestBody": {
                "required": true,
                "content": json_example(
                    schema_ref("AdminCreditRequest"),
                    json!({
                        "amount_usd": "3.5",
                        "reason": "goodwill credit"
                    })
                )
            },
            "responses": small_body_responses(json!({
                "200": {
                    "description": "Balances after the adjustment.",
                    "content": json_body(schema_ref("AdminCreditResult"))
                },
                "400": err(&[InvalidJson, MissingParameter, InvalidType, InvalidValue, UnknownParameter], json!({
                    "description": "`invalid_json`; `missing_parameter` (`amount_usd`, `reason`); `invalid_type`; `invalid_value` (`amount_usd` not an exact amount, zero, or leaving balance below held; `reason` empty, whitespace or over 500 characters); `unknown_parameter`."
                })),
                "401": invalid_admin_token(),
                "404": err(&[AccountNotFound], json!({
                    "description": "`account_not_found`: malformed or unknown account id."
                }))
            }))
        }),
    )
}

/// `POST /admin/ledger-bench`
pub(crate) fn admin_ledger_bench() -> Op {
    Op::new(
        Post,
        "/admin/ledger-bench",
        Admin,
        json!({
            "operationId": "adminLedgerBench",
            "tags": [
                "admin"
            ],
            "summary": "Operator diagnostic: ledger throughput on one account",
            "description": "Used by `cargo xtask bench`. Order: admin token (401), body size (413, 4 KiB), fields (400). With `target: \"ledger\"` places `holds` holds of 1 µ$ on the account through the Account DO, `concurrency` at a time, then releases them all, and reports the rates measured inside the Worker. The balance ends where it started, but every released hold stays in the account's ledger (a refunded `bench` charge in /v1/usage): point it at a benchmark account. With `target: \"probe\"` runs the same loop against the no-op Probe DO instead. No rate limiting, no `Idempotency-Key`.",
            "requestBody": {
                "required": true,
                "content": json_example(
                    schema_ref("LedgerBenchRequest"),
                    json!({
                        "account_id": "acct_0123456789abcdef",
                        "holds": 450,
                        "concurrency": 32,
                        "target": "ledger"
                    })
                )
            },
            "responses": small_body_responses(json!({
                "200": {
                    "description": "Rates for the chosen target.",
                    "content": {
                        "application/json": {
                            "schema": {
                                "oneOf": [
                                    {
                                        "$ref": "#/components/schemas/LedgerBenchResult"
                                    },
                                    {
                                        "$ref": "#/components/schemas/ProbeBenchResult"
                                    }
                                ]
                            }
                        }
                    }
                },
                "400": err(&[InvalidJson, InvalidValue, OutOfRange, InvalidType, UnknownParameter], json!({
                    "description": "`invalid_json`; `invalid_value` (`account_id` missing or not an account id, `target` not `ledger`/`probe`); `out_of_range` (`holds` outside 1–450, `concurrency` outside 1–256); `invalid_type`; `unknown_parameter`."
                })),
                "401": invalid_admin_token(),
                "404": err(&[AccountNotFound], json!({
                    "description": "`account_not_found`: with `target: \"ledger\"`, the account does not exist."
                })),
                "402": err(&[InsufficientCredits], json!({
                    "description": "`insufficient_credits`: the account cannot hold another 1 µ$ (`target: \"ledger\"`)."
                }))
            }))
        }),
    )
}

/// `POST /admin/files/sweep`
pub(crate) fn sweep_files() -> Op {
    Op::new(
        Post,
        "/admin/files/sweep",
        Admin,
        json!({
            "summary": "Run the expired-file sweep now",
            "operationId": "sweepFiles",
            "tags": [
                "admin"
            ],
            "responses": {
                "200": {
                    "description": "How many expired files lost their bytes.",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "swept": {
                                        "type": "integer"
                                    }
                                }
                            }
                        }
                    }
                },
                "401": invalid_admin_token(),
                "500": {
                    "$ref": "#/components/responses/InternalError"
                }
            }
        }),
    )
}
