//! `POST /admin/accounts/{id}/credits`: an operator's grant or correction, with a
//! reason kept in the ledger. Authorized by the `ADMIN_TOKEN` secret, compared in
//! constant time; with no token configured the route refuses everyone.

use kiln_shared::fields::Fields;
use kiln_shared::ids::AccountId;
use kiln_shared::keys::{bearer, secrets_equal};
use kiln_shared::money::MicroUsd;
use kiln_shared::ApiError;
use serde_json::json;
use worker::{Env, Method, Request, Response};

use crate::account_do::{AdjustRequest, Balances};
use crate::auth::account_stub;
use crate::config;
use crate::error::EdgeResult;
use crate::http::{body_bytes, call_do, json};

const BODY_BYTES_MAX: usize = 4 * 1024;
/// Reasons are read by people auditing the ledger.
const REASON_CHARS_MAX: usize = 500;

pub async fn handle_credits(mut req: Request, env: &Env, id: &str) -> EdgeResult<Response> {
    let token = config::admin_token(env);
    let header = req.headers().get("authorization")?;
    let presented = bearer(header.as_deref());
    let authorized =
        matches!((token.as_deref(), presented), (Some(t), Some(p)) if secrets_equal(t, p));
    if !authorized {
        return Err(ApiError::new(
            401,
            "invalid_admin_token",
            "This route needs the operator's admin token.",
        )
        .into());
    }
    let account = AccountId::parse(id)
        .ok_or_else(|| ApiError::not_found("account_not_found", "No such account."))?;
    let body = body_bytes(&mut req, BODY_BYTES_MAX).await?;
    let mut f = Fields::from_body(&body)?;
    let amount_text = f.decimal_text("amount_usd")?.ok_or_else(|| {
        ApiError::invalid_param(
            "amount_usd",
            "missing_parameter",
            "`amount_usd` is required.",
        )
    })?;
    let amount = MicroUsd::parse_usd(&amount_text).ok_or_else(|| {
        ApiError::invalid_param(
            "amount_usd",
            "invalid_value",
            "`amount_usd` must be a dollar amount with at most six decimals.",
        )
    })?;
    let reason = f.required_string("reason")?;
    if reason.trim().is_empty() || reason.chars().count() > REASON_CHARS_MAX {
        return Err(ApiError::invalid_param(
            "reason",
            "invalid_value",
            format!("`reason` must be 1–{REASON_CHARS_MAX} characters."),
        )
        .into());
    }
    f.finish()?;
    let request = serde_json::to_value(AdjustRequest {
        amount_micros: amount.micros(),
        reason,
    })?;
    let balances: Balances = call_do(
        &account_stub(env, &account)?,
        Method::Post,
        "/adjust",
        Some(&request),
    )
    .await
    .map_err(|e| match e {
        crate::error::EdgeError::Api(a) if a.code() == "invalid_api_key" => {
            ApiError::not_found("account_not_found", "No such account.").into()
        }
        other => other,
    })?;
    json(
        200,
        &json!({
            "account_id": account,
            "balance_usd": MicroUsd::from_micros(balances.balance_micros).to_usd_json(),
            "held_usd": MicroUsd::from_micros(balances.held_micros).to_usd_json(),
        }),
    )
}
