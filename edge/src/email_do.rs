//! The Email Durable Object: one per normalised email address, so "one trial per
//! email" is decided by a single writer without scanning accounts. It records which
//! account claimed the address; a registration interrupted before its account was
//! created resumes with the same account id instead of burning the address.

use kiln_shared::ApiError;
use serde::{Deserialize, Serialize};
use worker::{durable_object, DurableObject, Env, Method, Request, Response, SqlStorage, State};

use crate::error::{EdgeError, EdgeResult};
use crate::http::{internal_body, json};
use crate::now_ms;

#[durable_object]
pub struct EmailDo {
    sql: SqlStorage,
}

#[derive(Serialize, Deserialize)]
pub struct Claim {
    pub account_id: String,
}

#[derive(Deserialize)]
struct ClaimRow {
    account_id: String,
    done: i64,
}

impl DurableObject for EmailDo {
    fn new(state: State, _env: Env) -> Self {
        let sql = state.storage().sql();
        if let Err(e) = sql.exec(
            "CREATE TABLE IF NOT EXISTS claim (account_id TEXT NOT NULL, done INTEGER NOT NULL, at_ms INTEGER NOT NULL)",
            None,
        ) {
            worker::console_error!("email schema: {e}");
        }
        Self { sql }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let path = req.path();
        let result = match (req.method(), path.as_str()) {
            (Method::Post, "/claim") => match internal_body::<Claim>(&mut req).await {
                Ok(c) => self.claim(c),
                Err(e) => Err(e),
            },
            (Method::Post, "/done") => self.done(),
            _ => Err(ApiError::route_not_found("DO", &path).into()),
        };
        Ok(result.unwrap_or_else(EdgeError::into_response))
    }
}

impl EmailDo {
    fn row(&self) -> EdgeResult<Option<ClaimRow>> {
        let rows: Vec<ClaimRow> = self
            .sql
            .exec("SELECT account_id, done FROM claim", None)?
            .to_array()?;
        Ok(rows.into_iter().next())
    }

    /// Claims the address for `account_id`, or answers which account holds an
    /// unfinished claim; a finished claim is a 409.
    fn claim(&self, c: Claim) -> EdgeResult<Response> {
        match self.row()? {
            Some(r) if r.done != 0 => Err(ApiError::conflict(
                "trial_exists",
                "A trial account already exists for this email address.",
            )
            .with_param("email")
            .into()),
            Some(r) => json(
                200,
                &Claim {
                    account_id: r.account_id,
                },
            ),
            None => {
                self.sql.exec(
                    "INSERT INTO claim (account_id, done, at_ms) VALUES (?, 0, ?)",
                    vec![c.account_id.as_str().into(), now_ms().into()],
                )?;
                json(200, &c)
            }
        }
    }

    fn done(&self) -> EdgeResult<Response> {
        self.sql.exec("UPDATE claim SET done = 1", None)?;
        json(200, &serde_json::json!({"done": true}))
    }
}
