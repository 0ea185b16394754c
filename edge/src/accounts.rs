//! `POST /v1/accounts`: register an email, get a trial account with $2.00 and its
//! first `sk-trial-` key (shown once). One trial per normalised email.

use kiln_shared::accounts::{parse_registration, TRIAL_GRANT};
use kiln_shared::ids::AccountId;
use kiln_shared::keys::{ApiKey, KeyKind};
use kiln_shared::ApiError;
use serde_json::json;
use worker::{Env, Method, Request, Response};

use crate::account_do::{InitAccount, NewKey};
use crate::auth::account_stub;
use crate::email_do::Claim;
use crate::error::{EdgeError, EdgeResult};
use crate::http::{call_do, json, json_body};
use crate::random_bytes;

/// A registration body is one small JSON object.
const BODY_BYTES_MAX: usize = 4 * 1024;

pub async fn handle_register(mut req: Request, env: &Env) -> EdgeResult<Response> {
    let body = json_body(&mut req, BODY_BYTES_MAX).await?;
    let email = parse_registration(&body)?;

    let email_do = env
        .durable_object("EMAILS")?
        .id_from_name(&email)?
        .get_stub()?;
    let proposed = AccountId::generate(random_bytes());
    let claim: Claim = call_do(
        &email_do,
        Method::Post,
        "/claim",
        Some(&json!({"account_id": proposed.as_str()})),
    )
    .await?;
    let account_id = AccountId::parse(&claim.account_id).ok_or_else(ApiError::internal)?;

    let key = ApiKey::generate(KeyKind::Trial, &account_id, random_bytes());
    let key_id = crate::keys::new_key_id();
    let init = InitAccount {
        account_id: account_id.to_string(),
        email: Some(email.clone()),
        is_trial: true,
        grant_micros: TRIAL_GRANT.micros(),
        key: NewKey {
            id: key_id.clone(),
            hash: key.hash().as_str().to_owned(),
            kind: KeyKind::Trial.as_str().to_owned(),
            prefix: key.display_prefix(),
            label: "default".to_owned(),
            rate_limit_per_min: None,
        },
    };
    let created = call_do::<serde_json::Value>(
        &account_stub(env, &account_id)?,
        Method::Post,
        "/init",
        Some(&serde_json::to_value(&init)?),
    )
    .await;
    let mark_done =
        || async { call_do::<serde_json::Value>(&email_do, Method::Post, "/done", None).await };
    match created {
        Ok(_) => {
            mark_done().await?;
        }
        // An earlier, interrupted registration of this email already created the account.
        Err(EdgeError::Api(e)) if e.code() == "account_exists" => {
            mark_done().await?;
            return Err(ApiError::conflict(
                "trial_exists",
                "A trial account already exists for this email address.",
            )
            .with_param("email")
            .into());
        }
        Err(e) => return Err(e),
    }
    json(
        201,
        &json!({
            "account_id": account_id,
            "email": email,
            "is_trial": true,
            "balance_usd": TRIAL_GRANT.to_usd_json(),
            "api_key": key.reveal(),
            "key": {"id": key_id, "label": "default", "prefix": key.display_prefix()},
        }),
    )
}
