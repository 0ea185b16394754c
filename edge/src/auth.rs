//! API key authentication. The key names its account, so the edge asks exactly one
//! Account Durable Object — the only one that can say whether the key is live. A
//! revoked key fails on its next request because nothing caches the answer.

use kiln_shared::ids::AccountId;
use kiln_shared::keys::{bearer, ApiKey, KeyKind};
use kiln_shared::ApiError;
use serde_json::json;
use worker::{Env, Method, Request, Stub};

use crate::account_do::Principal;
use crate::error::EdgeResult;
use crate::http::call_do;

/// The authenticated caller.
pub struct Caller {
    pub account_id: AccountId,
    pub key_id: String,
    pub kind: KeyKind,
    /// The caller's Account DO, for the ledger calls that follow.
    pub account: Stub,
}

pub fn account_stub(env: &Env, account: &AccountId) -> EdgeResult<Stub> {
    Ok(env
        .durable_object("ACCOUNTS")?
        .id_from_name(account.as_str())?
        .get_stub()?)
}

/// Authenticates `Authorization: Bearer <key>`.
pub async fn authenticate(req: &Request, env: &Env) -> EdgeResult<Caller> {
    let header = req.headers().get("authorization")?;
    let token = bearer(header.as_deref()).ok_or_else(ApiError::missing_key)?;
    let key = ApiKey::parse(token).ok_or_else(ApiError::invalid_key)?;
    let account = account_stub(env, key.account())?;
    let p: Principal = call_do(
        &account,
        Method::Post,
        "/auth",
        Some(&json!({"hash": key.hash().as_str()})),
    )
    .await?;
    let kind = KeyKind::parse(&p.kind).ok_or_else(ApiError::invalid_key)?;
    let account_id = AccountId::parse(&p.account_id).ok_or_else(ApiError::invalid_key)?;
    if &account_id != key.account() {
        return Err(ApiError::invalid_key().into());
    }
    Ok(Caller {
        account_id,
        key_id: p.key_id,
        kind,
        account,
    })
}
