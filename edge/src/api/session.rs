//! The web dashboard's session (`/v1/session`): sign up with an email (a trial, as
//! `POST /v1/accounts`) or sign in with an API key, and get an `HttpOnly; Secure;
//! SameSite=Strict` cookie that authenticates the dashboard's calls to the same API.
//! The key never reaches page storage; the session acts as the key it was opened with.

use kiln_shared::dashboard::{self, SessionToken, SignIn, SESSION_TTL_SECS};
use kiln_shared::time::rfc3339;
use serde_json::json;
use worker::{Env, Request, Response};

use crate::api::accounts::register;
use crate::api::auth::Caller;
use crate::api::router::base_url;
use crate::durable::account::proto::{CloseSession, OpenSession};
use crate::platform::bindings;
use crate::platform::clock::{now_ms, random_bytes};
use crate::platform::error::EdgeResult;
use crate::platform::http::{json, json_body};

/// A sign-in body is one small JSON object.
const BODY_BYTES_MAX: usize = 4 * 1024;

/// A browser's `Origin`, when it sends one, must be this site's: another site must not
/// sign a visitor into an account of its choosing (login CSRF). API clients send none.
fn check_origin(req: &Request) -> EdgeResult<()> {
    match req.headers().get("origin")? {
        Some(o) if !dashboard::same_origin(Some(&o), &base_url(req)?) => {
            Err(dashboard::cross_origin().into())
        }
        _ => Ok(()),
    }
}

/// `POST /v1/session`.
pub async fn handle_open(mut req: Request, env: &Env) -> EdgeResult<Response> {
    check_origin(&req)?;
    let body = json_body(&mut req, BODY_BYTES_MAX).await?;
    let (key, status, mut answer) = match dashboard::parse_sign_in(&body)? {
        SignIn::Email(email) => {
            let trial = register(env, &email).await?;
            let answer = trial.to_json();
            (trial.key, 201, answer)
        }
        SignIn::ApiKey(key) => {
            let answer = json!({"account_id": key.account(), "kind": key.kind()});
            (key, 200, answer)
        }
    };
    // SESSION_TTL_SECS is a week: far from overflow.
    let expires_at_ms = now_ms() + SESSION_TTL_SECS as i64 * 1000;
    let token = SessionToken::generate(key.account(), random_bytes());
    bindings::account(env, key.account())?
        .call(&OpenSession {
            key_hash: key.hash(),
            session_hash: token.hash(),
            expires_at_ms,
        })
        .await?;
    answer["object"] = "session".into();
    answer["expires_at"] = rfc3339(expires_at_ms).into();
    let resp = json(status, &answer)?;
    resp.headers()
        .set("set-cookie", &dashboard::set_cookie(&token))?;
    resp.headers().set("cache-control", "no-store")?;
    Ok(resp)
}

/// `DELETE /v1/session`: forgets the session (if any) and clears the cookie.
pub async fn handle_close(req: Request, env: &Env) -> EdgeResult<Response> {
    check_origin(&req)?;
    let cookies = req.headers().get("cookie")?;
    if let Some(token) =
        dashboard::token_from_cookies(cookies.as_deref()).and_then(SessionToken::parse)
    {
        bindings::account(env, token.account())?
            .call(&CloseSession { hash: token.hash() })
            .await?;
    }
    let resp = json(200, &json!({"object": "session", "signed_out": true}))?;
    resp.headers()
        .set("set-cookie", &dashboard::clear_cookie())?;
    Ok(resp)
}

/// `GET /v1/session`: who the caller is (by key or by session).
pub async fn handle_get(caller: &Caller) -> EdgeResult<Response> {
    json(
        200,
        &json!({
            "object": "session",
            "account_id": caller.account_id,
            "key_id": caller.key_id,
            "kind": caller.kind,
            "via": if caller.via_session { "session" } else { "api_key" },
        }),
    )
}
