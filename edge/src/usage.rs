//! `GET /v1/usage?limit=50&cursor=`: charges and credits, newest first. A charge whose
//! job failed, timed out or was cancelled shows as refunded.

use serde_json::Value;
use worker::{Method, Request, Response};

use crate::auth::Caller;
use crate::error::EdgeResult;
use crate::http::{call_do, json, query_param};

pub async fn handle_list(req: &Request, caller: &Caller) -> EdgeResult<Response> {
    let mut path = String::from("/usage?");
    for name in ["limit", "cursor"] {
        if let Some(v) = query_param(req, name)? {
            let v: String = worker::url::form_urlencoded::byte_serialize(v.as_bytes()).collect();
            path.push_str(&format!("{name}={v}&"));
        }
    }
    let page: Value = call_do(&caller.account, Method::Get, &path, None).await?;
    json(200, &page)
}
