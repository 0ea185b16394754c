//! `GET /v1/credits`: the caller's balance, held amount and trial status.

use serde_json::Value;
use worker::{Method, Response};

use crate::auth::Caller;
use crate::error::EdgeResult;
use crate::http::{call_do, json};

pub async fn handle_get(caller: &Caller) -> EdgeResult<Response> {
    let credits: Value = call_do(&caller.account, Method::Get, "/credits", None).await?;
    json(200, &credits)
}
