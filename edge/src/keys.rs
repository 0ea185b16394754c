//! API keys: `GET /v1/keys` (never the secret), `POST /v1/keys` (a labeled key, shown
//! once), `DELETE /v1/keys/{id}` (revoked at once, everywhere), and
//! `POST /v1/keys/{id}/reveal` (the one-time reveal of a key Kiln created for you,
//! such as the `sk-gen-` key of a first payment).

use kiln_shared::keys::{ApiKey, KeyCreate, KeyKind};
use kiln_shared::time::rfc3339;
use serde_json::{json, Value};
use worker::{Method, Response};

use crate::account_do::{IdBody, NewKey};
use crate::auth::Caller;
use crate::error::EdgeResult;
use crate::http::{call_do, json};
use crate::{now_ms, random_bytes};

/// A key-creation body is tiny.
pub const BODY_BYTES_MAX: usize = 4 * 1024;

/// A fresh key id: `key_` + 16 base32 chars.
pub fn new_key_id() -> String {
    format!("key_{}", crate::ids_token())
}

pub async fn handle_list(caller: &Caller) -> EdgeResult<Response> {
    let list: Value = call_do(&caller.account, Method::Get, "/keys", None).await?;
    json(200, &list)
}

pub async fn handle_create(body: Vec<u8>, caller: &Caller) -> EdgeResult<Response> {
    let KeyCreate {
        label,
        test,
        rate_limit_per_min,
    } = KeyCreate::parse(&body)?;
    let kind = if test {
        KeyKind::Test
    } else {
        let credits: Value = call_do(&caller.account, Method::Get, "/credits", None).await?;
        if credits["is_trial"] == true {
            KeyKind::Trial
        } else {
            KeyKind::Gen
        }
    };
    let key = ApiKey::generate(kind, &caller.account_id, random_bytes());
    let id = new_key_id();
    let new = NewKey {
        id: id.clone(),
        hash: key.hash().as_str().to_owned(),
        kind: kind.as_str().to_owned(),
        prefix: key.display_prefix(),
        label: label.clone(),
        rate_limit_per_min,
    };
    let _: Value = call_do(
        &caller.account,
        Method::Post,
        "/keys",
        Some(&serde_json::to_value(&new)?),
    )
    .await?;
    json(
        201,
        &json!({
            "id": id,
            "object": "api_key",
            "kind": kind,
            "label": label,
            "prefix": new.prefix,
            "created_at": rfc3339(now_ms()),
            "rate_limit_per_min": rate_limit_per_min,
            "api_key": key.reveal(),
        }),
    )
}

pub async fn handle_revoke(caller: &Caller, id: &str) -> EdgeResult<Response> {
    let body = serde_json::to_value(IdBody { id: id.to_owned() })?;
    let r: Value = call_do(&caller.account, Method::Post, "/keys/revoke", Some(&body)).await?;
    json(200, &r)
}

pub async fn handle_reveal(caller: &Caller, id: &str) -> EdgeResult<Response> {
    let body = serde_json::to_value(IdBody { id: id.to_owned() })?;
    let r: Value = call_do(&caller.account, Method::Post, "/keys/reveal", Some(&body)).await?;
    json(200, &r)
}
