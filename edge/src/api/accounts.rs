//! `POST /v1/accounts`: register an email, get a trial account with $2.00 and its
//! first `sk-trial-` key (shown once). One trial per normalised email.

use kiln_shared::accounts::{parse_registration, TRIAL_GRANT};
use kiln_shared::ids::AccountId;
use kiln_shared::keys::{ApiKey, KeyKind};
use kiln_shared::{ApiError, ErrorCode};
use serde_json::{json, Value};
use worker::{Env, Request, Response};

use crate::durable::account::proto::{Init, NewKey};
use crate::durable::email::proto::{Claim, Done};
use crate::platform::bindings;
use crate::platform::clock::random_bytes;
use crate::platform::error::{EdgeError, EdgeResult};
use crate::platform::http::{json, json_body};

/// A registration body is one small JSON object.
const BODY_BYTES_MAX: usize = 4 * 1024;

pub async fn handle_register(mut req: Request, env: &Env) -> EdgeResult<Response> {
    let body = json_body(&mut req, BODY_BYTES_MAX).await?;
    let email = parse_registration(&body)?;
    let trial = register(env, &email).await?;
    json(201, &trial.to_json())
}

/// A new trial account and its first key, whose secret is shown once.
pub struct Trial {
    pub account_id: AccountId,
    pub email: String,
    pub key: ApiKey,
    pub key_id: String,
}

impl Trial {
    /// The answer to a registration: the account and its key, secret included.
    pub fn to_json(&self) -> Value {
        json!({
            "account_id": self.account_id,
            "email": self.email,
            "is_trial": true,
            "balance_usd": TRIAL_GRANT.to_usd_json(),
            "api_key": self.key.reveal(),
            "key": {"id": self.key_id, "label": "default", "prefix": self.key.display_prefix()},
        })
    }
}

/// Registers the trial of a normalised `email` (409 `trial_exists` when it has one);
/// `POST /v1/accounts` and the dashboard's sign-up share it.
pub async fn register(env: &Env, email: &str) -> EdgeResult<Trial> {
    let email_do = bindings::email(env, email)?;
    let proposed = AccountId::generate(random_bytes());
    let claimed = email_do
        .call(&Claim {
            account_id: proposed,
        })
        .await?;
    let account_id = claimed.account_id;

    let key = ApiKey::generate(KeyKind::Trial, &account_id, random_bytes());
    let new_key = NewKey::new(&key, "default", None);
    let key_id = new_key.id.clone();
    let created = bindings::account(env, &account_id)?
        .call(&Init {
            account_id: account_id.clone(),
            email: Some(email.to_owned()),
            is_trial: true,
            grant: TRIAL_GRANT,
            key: new_key,
        })
        .await;
    let mark_done = || email_do.call(&Done);
    match created {
        Ok(_) => {
            mark_done().await?;
        }
        // An earlier, interrupted registration of this email already created the account.
        Err(EdgeError::Api(e)) if e.code() == ErrorCode::AccountExists => {
            mark_done().await?;
            return Err(ApiError::conflict(
                ErrorCode::TrialExists,
                "A trial account already exists for this email address.",
            )
            .with_param("email")
            .into());
        }
        Err(e) => return Err(e),
    }
    Ok(Trial {
        account_id,
        email: email.to_owned(),
        key,
        key_id,
    })
}
