//! `GET /v1/credits`: the caller's balance, held amount and trial status.

use kiln_shared::time::rfc3339;
use serde_json::json;
use worker::Response;

use crate::api::auth::Caller;
use crate::durable::account::proto::GetAccount;
use crate::platform::error::EdgeResult;
use crate::platform::http::json;

pub async fn handle_get(caller: &Caller) -> EdgeResult<Response> {
    let a = caller.account.call(&GetAccount).await?;
    json(
        200,
        &json!({
            "account_id": a.account_id,
            "balance_usd": a.balance.to_usd_json(),
            "held_usd": a.held.to_usd_json(),
            "available_usd": a.available().to_usd_json(),
            "is_trial": a.is_trial,
            "last_used_at": a.last_used_at_ms.map(rfc3339),
        }),
    )
}
