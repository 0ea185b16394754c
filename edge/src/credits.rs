//! `GET /v1/credits`: the caller's balance, held amount and trial status.

use serde_json::Value;
use worker::{Env, Method, Request, Response};

use crate::auth::authenticate;
use crate::error::EdgeResult;
use crate::http::{call_do, json};

pub async fn handle_get(req: &Request, env: &Env) -> EdgeResult<Response> {
    let caller = authenticate(req, env).await?;
    let credits: Value = call_do(&caller.account, Method::Get, "/credits", None).await?;
    json(200, &credits)
}
