//! API keys: `GET /v1/keys` (never the secret), `POST /v1/keys` (a labeled key, shown
//! once), `DELETE /v1/keys/{id}` (revoked at once, everywhere), and
//! `POST /v1/keys/{id}/reveal` (the one-time reveal of a key Kiln created for you,
//! such as the `sk-gen-` key of a first payment).

use kiln_shared::keys::{ApiKey, KeyCreate, KeyKind};
use kiln_shared::time::rfc3339;
use serde_json::{json, Value};
use worker::Response;

use crate::api::auth::Caller;
use crate::durable::account::proto::{
    CreateKey, GetAccount, KeyRecord, ListKeys, NewKey, RevealKey, RevokeKey,
};
use crate::platform::clock::random_bytes;
use crate::platform::error::EdgeResult;
use crate::platform::http::json;

/// A key-creation body is tiny.
pub const BODY_BYTES_MAX: usize = 4 * 1024;

/// A key as the API shows it (never its secret).
pub fn key_object(k: &KeyRecord) -> Value {
    json!({
        "id": k.id,
        "object": "api_key",
        "kind": k.kind,
        "label": k.label,
        "prefix": k.prefix,
        "created_at": rfc3339(k.created_at_ms),
        "last_used_at": k.last_used_at_ms.map(rfc3339),
        "revoked_at": k.revoked_at_ms.map(rfc3339),
        "reveal_available": k.reveal_available,
        "rate_limit_per_min": k.rate_limit_per_min,
    })
}

pub async fn handle_list(caller: &Caller) -> EdgeResult<Response> {
    let list = caller.account.call(&ListKeys).await?;
    let data: Vec<Value> = list.keys.iter().map(key_object).collect();
    json(200, &json!({"object": "list", "data": data}))
}

pub async fn handle_create(body: Vec<u8>, caller: &Caller) -> EdgeResult<Response> {
    let KeyCreate {
        label,
        test,
        rate_limit_per_min,
    } = KeyCreate::parse(&body)?;
    let kind = if test {
        KeyKind::Test
    } else if caller.account.call(&GetAccount).await?.is_trial {
        KeyKind::Trial
    } else {
        KeyKind::Gen
    };
    let key = ApiKey::generate(kind, &caller.account_id, random_bytes());
    let record = caller
        .account
        .call(&CreateKey {
            key: NewKey::new(&key, &label, rate_limit_per_min),
        })
        .await?;
    let mut object = key_object(&record);
    object["api_key"] = key.reveal().into();
    json(201, &object)
}

pub async fn handle_revoke(caller: &Caller, id: &str) -> EdgeResult<Response> {
    let r = caller
        .account
        .call(&RevokeKey { id: id.to_owned() })
        .await?;
    json(200, &json!({"id": r.id, "revoked": true}))
}

pub async fn handle_reveal(caller: &Caller, id: &str) -> EdgeResult<Response> {
    let r = caller
        .account
        .call(&RevealKey { id: id.to_owned() })
        .await?;
    json(200, &json!({"id": r.id, "api_key": r.api_key}))
}
