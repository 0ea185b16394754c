//! The Email Durable Object: one per normalised email address, so "one trial per
//! email" is decided by a single writer without scanning accounts. It records which
//! account claimed the address; a registration interrupted before its account was
//! created resumes with the same account id instead of burning the address.

pub mod proto;

use kiln_shared::ids::AccountId;
use kiln_shared::{ApiError, ErrorCode};
use serde::Deserialize;
use worker::{durable_object, DurableObject, Env, Request, Response, SqlStorage, State};

use crate::platform::clock::now_ms;
use crate::platform::error::EdgeResult;
use crate::platform::rpc::{self, Message};
use proto::{Claim, Claimed, Done, Finished};

#[durable_object]
pub struct EmailDo {
    sql: SqlStorage,
}

#[derive(Deserialize)]
struct ClaimRow {
    account_id: AccountId,
    done: i64,
}

impl DurableObject for EmailDo {
    fn new(state: State, _env: Env) -> Self {
        let sql = state.storage().sql();
        rpc::create_tables(
            &sql,
            "email",
            &["CREATE TABLE IF NOT EXISTS claim (account_id TEXT NOT NULL, done INTEGER NOT NULL, at_ms INTEGER NOT NULL)"],
        );
        Self { sql }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        rpc::respond(self.route(&mut req).await)
    }
}

impl EmailDo {
    async fn route(&self, req: &mut Request) -> EdgeResult<Response> {
        match req.path().as_str() {
            Claim::PATH => rpc::answer::<Claim>(self.claim(rpc::read(req).await?)),
            Done::PATH => rpc::answer::<Done>(self.done()),
            other => Err(rpc::unknown_route(other)),
        }
    }

    fn row(&self) -> EdgeResult<Option<ClaimRow>> {
        let rows: Vec<ClaimRow> = self
            .sql
            .exec("SELECT account_id, done FROM claim", None)?
            .to_array()?;
        Ok(rows.into_iter().next())
    }

    /// Claims the address for `account_id`, or answers which account holds an
    /// unfinished claim; a finished claim is a 409.
    fn claim(&self, c: Claim) -> EdgeResult<Claimed> {
        match self.row()? {
            Some(r) if r.done != 0 => Err(ApiError::conflict(
                ErrorCode::TrialExists,
                "A trial account already exists for this email address.",
            )
            .with_param("email")
            .into()),
            Some(r) => Ok(Claimed {
                account_id: r.account_id,
            }),
            None => {
                self.sql.exec(
                    "INSERT INTO claim (account_id, done, at_ms) VALUES (?, 0, ?)",
                    vec![c.account_id.as_str().into(), now_ms().into()],
                )?;
                Ok(Claimed {
                    account_id: c.account_id,
                })
            }
        }
    }

    fn done(&self) -> EdgeResult<Finished> {
        self.sql.exec("UPDATE claim SET done = 1", None)?;
        Ok(Finished)
    }
}
