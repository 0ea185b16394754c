use serde_json::json;

use super::prelude::*;

/// `POST /v1/accounts`
pub(crate) fn create_account() -> Op {
    Op::new(
        Post,
        "/v1/accounts",
        Public,
        json!({
            "operationId": "createAccount",
            "tags": [
                "accounts"
            ],
            "summary": "Register an email: a trial account with $2.00 and its first sk-trial- key",
            "requestBody": {
                "required": true,
                "content": json_body(schema_ref("AccountRequest"))
            },
            "responses": small_body_responses(json!({
                "201": {
                    "description": "Created. `api_key` is shown only here.",
                    "content": json_body(schema_ref("AccountCreated"))
                },
                "400": err(&[InvalidJson, InvalidType, MissingParameter, UnknownParameter, InvalidValue], json!({
                    "description": "Invalid body; `param` names the field at fault: `invalid_json`, `invalid_type`, `missing_parameter` or `invalid_value` (`email`), `unknown_parameter`."
                })),
                "409": err(&[TrialExists], json!({
                    "description": "`trial_exists` (param `email`): this normalised email already has a trial account."
                }))
            }))
        }),
    )
}

/// `GET /v1/credits`
pub(crate) fn get_credits() -> Op {
    Op::new(
        Get,
        "/v1/credits",
        Key,
        json!({
            "operationId": "getCredits",
            "tags": [
                "accounts"
            ],
            "summary": "The caller's account id, balance, held amount and trial status",
            "responses": {
                "200": {
                    "description": "Balances.",
                    "content": json_body(schema_ref("Credits"))
                },
                "500": internal_error()
            }
        }),
    )
}
