//! API key (or dashboard session) authentication. The key names its account, so the edge asks exactly one
//! Account Durable Object — the only one that can say whether the key is live — which
//! also takes the key's rate-limit token in the same call. A revoked key fails on its
//! next request because nothing caches the answer.
//!
//! A request with no key may carry the dashboard's session cookie instead
//! ([`kiln_shared::dashboard`]): the session acts as the key it was opened with. A
//! cookie-authenticated request that can change state (anything but GET and HEAD) must
//! come from the edge's own origin, so another site cannot ride on the cookie (CSRF).

use kiln_shared::dashboard::{self, SessionToken};
use kiln_shared::ids::AccountId;
use kiln_shared::keys::{bearer, ApiKey, KeyKind};
use kiln_shared::ApiError;
use worker::{Env, Method, Request};

use crate::durable::account::proto::{Authenticate, AuthenticateSession, Principal, RateState};
use crate::durable::account::AccountDo;
use crate::platform::bindings;
use crate::platform::config;
use crate::platform::error::EdgeResult;
use crate::platform::rpc::Client;

/// The authenticated caller.
pub struct Caller {
    pub account_id: AccountId,
    pub key_id: String,
    pub kind: KeyKind,
    pub rate: RateState,
    /// The caller's Account DO, for the ledger calls that follow.
    pub account: Client<AccountDo>,
    /// Authenticated by the dashboard's session cookie rather than a key.
    pub via_session: bool,
}

/// Authenticates `Authorization: Bearer <key>`, or `?key=<key>` where `key_in_query`
/// (event streams), or else the session cookie. The header wins when both are present.
pub async fn authenticate(req: &Request, env: &Env, key_in_query: bool) -> EdgeResult<Caller> {
    let header = req.headers().get("authorization")?;
    let from_query = if key_in_query && header.is_none() {
        crate::platform::http::query_param(req, "key")?
    } else {
        None
    };
    if header.is_none() && from_query.is_none() {
        let cookies = req.headers().get("cookie")?;
        if let Some(token) = dashboard::token_from_cookies(cookies.as_deref()) {
            return authenticate_session(req, env, token).await;
        }
    }
    let token = match from_query.as_deref() {
        Some(k) => k,
        None => bearer(header.as_deref()).ok_or_else(ApiError::missing_key)?,
    };
    let key = ApiKey::parse(token).ok_or_else(ApiError::invalid_key)?;
    let account = bindings::account(env, key.account())?;
    let p = account
        .call(&Authenticate {
            hash: key.hash(),
            limit_per_min: config::rate_limit_per_min(env),
        })
        .await?;
    if &p.account_id != key.account() || p.kind != key.kind() {
        return Err(ApiError::invalid_key().into());
    }
    Ok(Caller::new(p, account, false))
}

async fn authenticate_session(req: &Request, env: &Env, token: &str) -> EdgeResult<Caller> {
    let token = SessionToken::parse(token).ok_or_else(dashboard::invalid_session)?;
    if !matches!(req.method(), Method::Get | Method::Head) {
        let origin = req.headers().get("origin")?;
        if !dashboard::same_origin(origin.as_deref(), &crate::api::router::base_url(req)?) {
            return Err(dashboard::cross_origin().into());
        }
    }
    let account = bindings::account(env, token.account())?;
    let p = account
        .call(&AuthenticateSession {
            hash: token.hash(),
            limit_per_min: config::rate_limit_per_min(env),
        })
        .await?;
    if &p.account_id != token.account() {
        return Err(dashboard::invalid_session().into());
    }
    Ok(Caller::new(p, account, true))
}

impl Caller {
    fn new(p: Principal, account: Client<AccountDo>, via_session: bool) -> Self {
        Caller {
            account_id: p.account_id,
            key_id: p.key_id,
            kind: p.kind,
            rate: p.rate,
            account,
            via_session,
        }
    }
}
