//! The Account Durable Object: one per account, the only writer of its keys, balance,
//! holds and ledger (SQLite). Every money movement is a run of synchronous SQL
//! statements with no `await` in between, so a check and its write are atomic under
//! any concurrency, and each leaves a ledger row.
//!
//! Balance semantics (integer micro-dollars): `balance` is what the account owns,
//! `held` is reserved by running jobs; `balance − held` is available. A hold needs
//! `available ≥ price`; capture takes the amount from both, release only from `held`.
//! Ledger rows record magnitudes (always positive); the `kind` says what moved.

use kiln_shared::keys::KeyHash;
use kiln_shared::money::MicroUsd;
use kiln_shared::time::rfc3339;
use kiln_shared::ApiError;
use serde::{Deserialize, Serialize};
use serde_json::json;
use worker::{durable_object, DurableObject, Env, Method, Request, Response, SqlStorage, State};

use crate::error::{EdgeError, EdgeResult};
use crate::http::{internal_body, json};
use crate::now_ms;

#[durable_object]
pub struct AccountDo {
    sql: SqlStorage,
}

/// `POST /init`: creates the account with its first key.
#[derive(Serialize, Deserialize)]
pub struct InitAccount {
    pub account_id: String,
    pub email: Option<String>,
    pub is_trial: bool,
    pub grant_micros: i64,
    pub key: NewKey,
}

#[derive(Serialize, Deserialize)]
pub struct NewKey {
    pub id: String,
    pub hash: String,
    pub kind: String,
    pub prefix: String,
    pub label: String,
}

/// `POST /auth` answer: who the key belongs to.
#[derive(Serialize, Deserialize)]
pub struct Principal {
    pub account_id: String,
    pub key_id: String,
    pub kind: String,
}

/// `POST /hold`: reserve the price of a job.
#[derive(Serialize, Deserialize)]
pub struct HoldRequest {
    pub job_id: String,
    pub amount_micros: i64,
    pub job_type: String,
    pub model_id: String,
    pub prompt_preview: String,
}

/// Balances after a movement, for `X-Credits-Remaining-Usd`.
#[derive(Serialize, Deserialize)]
pub struct Balances {
    pub balance_micros: i64,
    pub held_micros: i64,
}

impl Balances {
    pub fn available(&self) -> MicroUsd {
        MicroUsd::from_micros(self.balance_micros - self.held_micros)
    }
}

/// `POST /settle`: end a hold by capturing or releasing it.
#[derive(Serialize, Deserialize)]
pub struct SettleRequest {
    pub job_id: String,
    pub capture: bool,
}

#[derive(Deserialize)]
struct KeyRow {
    id: String,
    hash: String,
    kind: String,
    revoked_at_ms: Option<i64>,
}

#[derive(Deserialize)]
struct AccountRow {
    balance: i64,
    held: i64,
    is_trial: i64,
    last_used_at_ms: Option<i64>,
}

#[derive(Deserialize)]
struct AmountRow {
    amount: i64,
}

/// Characters of the prompt kept in the ledger, enough to recognise a job in usage.
const PROMPT_PREVIEW_CHARS_MAX: usize = 80;

impl DurableObject for AccountDo {
    fn new(state: State, _env: Env) -> Self {
        let sql = state.storage().sql();
        for ddl in [
            "CREATE TABLE IF NOT EXISTS account (
                id TEXT PRIMARY KEY, email TEXT, balance INTEGER NOT NULL CHECK (balance >= 0),
                held INTEGER NOT NULL DEFAULT 0 CHECK (held >= 0 AND held <= balance),
                is_trial INTEGER NOT NULL, created_at_ms INTEGER NOT NULL, last_used_at_ms INTEGER)",
            "CREATE TABLE IF NOT EXISTS keys (
                id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, kind TEXT NOT NULL, label TEXT NOT NULL,
                prefix TEXT NOT NULL, created_at_ms INTEGER NOT NULL, last_used_at_ms INTEGER,
                revoked_at_ms INTEGER)",
            "CREATE TABLE IF NOT EXISTS holds (
                job_id TEXT PRIMARY KEY, amount INTEGER NOT NULL, state TEXT NOT NULL,
                created_at_ms INTEGER NOT NULL, settled_at_ms INTEGER)",
            "CREATE TABLE IF NOT EXISTS ledger (
                seq INTEGER PRIMARY KEY AUTOINCREMENT, ts_ms INTEGER NOT NULL, kind TEXT NOT NULL,
                amount INTEGER NOT NULL, job_id TEXT, job_type TEXT, model_id TEXT,
                prompt_preview TEXT, note TEXT)",
        ] {
            // Table creation only fails on a broken runtime; the first query will report it.
            if let Err(e) = sql.exec(ddl, None) {
                worker::console_error!("account schema: {e}");
            }
        }
        Self { sql }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let path = req.path();
        let result = match (req.method(), path.as_str()) {
            (Method::Post, "/init") => match internal_body(&mut req).await {
                Ok(body) => self.init(body),
                Err(e) => Err(e),
            },
            (Method::Post, "/auth") => match internal_body::<KeyHashBody>(&mut req).await {
                Ok(body) => self.auth(&KeyHash::from_stored(body.hash)),
                Err(e) => Err(e),
            },
            (Method::Post, "/hold") => match internal_body(&mut req).await {
                Ok(body) => self.hold(body),
                Err(e) => Err(e),
            },
            (Method::Post, "/settle") => match internal_body(&mut req).await {
                Ok(body) => self.settle(body),
                Err(e) => Err(e),
            },
            (Method::Get, "/credits") => self.credits(),
            _ => Err(ApiError::route_not_found("DO", &path).into()),
        };
        Ok(result.unwrap_or_else(EdgeError::into_response))
    }
}

#[derive(Deserialize, Serialize)]
pub struct KeyHashBody {
    pub hash: String,
}

impl AccountDo {
    fn account(&self) -> EdgeResult<Option<AccountRow>> {
        let rows: Vec<AccountRow> = self
            .sql
            .exec(
                "SELECT balance, held, is_trial, last_used_at_ms FROM account",
                None,
            )?
            .to_array()?;
        Ok(rows.into_iter().next())
    }

    fn init(&self, body: InitAccount) -> EdgeResult<Response> {
        if self.account()?.is_some() {
            return Err(
                ApiError::conflict("account_exists", "This account already exists.").into(),
            );
        }
        let now = now_ms();
        self.sql.exec(
            "INSERT INTO account (id, email, balance, held, is_trial, created_at_ms) VALUES (?, ?, ?, 0, ?, ?)",
            vec![
                body.account_id.as_str().into(),
                body.email.map(Into::into).unwrap_or(worker::SqlStorageValue::Null),
                body.grant_micros.into(),
                i64::from(body.is_trial).into(),
                now.into(),
            ],
        )?;
        self.ledger(
            now,
            "grant",
            body.grant_micros,
            None,
            Some(if body.is_trial {
                "trial credit"
            } else {
                "initial credit"
            }),
        )?;
        self.insert_key(&body.key, now)?;
        json(201, &json!({"account_id": body.account_id}))
    }

    fn insert_key(&self, key: &NewKey, now: i64) -> EdgeResult<()> {
        self.sql.exec(
            "INSERT INTO keys (id, hash, kind, label, prefix, created_at_ms) VALUES (?, ?, ?, ?, ?, ?)",
            vec![
                key.id.as_str().into(),
                key.hash.as_str().into(),
                key.kind.as_str().into(),
                key.label.as_str().into(),
                key.prefix.as_str().into(),
                now.into(),
            ],
        )?;
        Ok(())
    }

    fn auth(&self, presented: &KeyHash) -> EdgeResult<Response> {
        let rows: Vec<KeyRow> = self
            .sql
            .exec(
                "SELECT id, hash, kind, revoked_at_ms FROM keys WHERE hash = ?",
                vec![presented.as_str().into()],
            )?
            .to_array()?;
        let key = rows
            .into_iter()
            .find(|k| {
                KeyHash::from_stored(k.hash.clone()).matches(presented) && k.revoked_at_ms.is_none()
            })
            .ok_or_else(ApiError::invalid_key)?;
        let now = now_ms();
        self.sql.exec(
            "UPDATE keys SET last_used_at_ms = ? WHERE id = ?",
            vec![now.into(), key.id.as_str().into()],
        )?;
        self.sql
            .exec("UPDATE account SET last_used_at_ms = ?", vec![now.into()])?;
        let account_id: Vec<IdRow> = self.sql.exec("SELECT id FROM account", None)?.to_array()?;
        let account_id = account_id
            .into_iter()
            .next()
            .ok_or_else(ApiError::invalid_key)?
            .id;
        json(
            200,
            &Principal {
                account_id,
                key_id: key.id,
                kind: key.kind,
            },
        )
    }

    fn hold(&self, body: HoldRequest) -> EdgeResult<Response> {
        if body.amount_micros <= 0 {
            return Err(worker::Error::RustError("hold of a non-positive amount".into()).into());
        }
        let existing: Vec<AmountRow> = self
            .sql
            .exec(
                "SELECT amount FROM holds WHERE job_id = ?",
                vec![body.job_id.as_str().into()],
            )?
            .to_array()?;
        if existing.is_empty() {
            let taken: Vec<Balances> = self
                .sql
                .exec(
                    "UPDATE account SET held = held + ?1 WHERE balance - held >= ?1
                     RETURNING balance AS balance_micros, held AS held_micros",
                    vec![body.amount_micros.into()],
                )?
                .to_array()?;
            if taken.is_empty() {
                let acct = self.account()?.ok_or_else(ApiError::invalid_key)?;
                let available = MicroUsd::from_micros(acct.balance - acct.held);
                return Err(ApiError::new(
                    402,
                    "insufficient_credits",
                    format!(
                        "This request costs {} but your available balance is {}. Top up to continue.",
                        MicroUsd::from_micros(body.amount_micros),
                        available
                    ),
                )
                .into());
            }
            let now = now_ms();
            self.sql.exec(
                "INSERT INTO holds (job_id, amount, state, created_at_ms) VALUES (?, ?, 'held', ?)",
                vec![
                    body.job_id.as_str().into(),
                    body.amount_micros.into(),
                    now.into(),
                ],
            )?;
            let preview: String = body
                .prompt_preview
                .chars()
                .take(PROMPT_PREVIEW_CHARS_MAX)
                .collect();
            self.sql.exec(
                "INSERT INTO ledger (ts_ms, kind, amount, job_id, job_type, model_id, prompt_preview)
                 VALUES (?, 'hold', ?, ?, ?, ?, ?)",
                vec![
                    now.into(),
                    body.amount_micros.into(),
                    body.job_id.as_str().into(),
                    body.job_type.as_str().into(),
                    body.model_id.as_str().into(),
                    preview.into(),
                ],
            )?;
        }
        let acct = self.account()?.ok_or_else(ApiError::invalid_key)?;
        json(
            200,
            &Balances {
                balance_micros: acct.balance,
                held_micros: acct.held,
            },
        )
    }

    /// Ends a hold exactly once; a second settle of the same job changes nothing.
    fn settle(&self, body: SettleRequest) -> EdgeResult<Response> {
        let now = now_ms();
        let new_state = if body.capture { "captured" } else { "released" };
        let ended: Vec<AmountRow> = self
            .sql
            .exec(
                "UPDATE holds SET state = ?, settled_at_ms = ? WHERE job_id = ? AND state = 'held' RETURNING amount",
                vec![new_state.into(), now.into(), body.job_id.as_str().into()],
            )?
            .to_array()?;
        let Some(hold) = ended.into_iter().next() else {
            return json(200, &json!({"settled": false}));
        };
        if body.capture {
            self.sql.exec(
                "UPDATE account SET balance = balance - ?1, held = held - ?1",
                vec![hold.amount.into()],
            )?;
            self.ledger(now, "capture", hold.amount, Some(&body.job_id), None)?;
        } else {
            self.sql.exec(
                "UPDATE account SET held = held - ?1",
                vec![hold.amount.into()],
            )?;
            self.ledger(
                now,
                "release",
                hold.amount,
                Some(&body.job_id),
                Some("refund"),
            )?;
        }
        json(200, &json!({"settled": true}))
    }

    fn ledger(
        &self,
        ts_ms: i64,
        kind: &str,
        amount: i64,
        job_id: Option<&str>,
        note: Option<&str>,
    ) -> EdgeResult<()> {
        self.sql.exec(
            "INSERT INTO ledger (ts_ms, kind, amount, job_id, note) VALUES (?, ?, ?, ?, ?)",
            vec![
                ts_ms.into(),
                kind.into(),
                amount.into(),
                job_id
                    .map(Into::into)
                    .unwrap_or(worker::SqlStorageValue::Null),
                note.map(Into::into)
                    .unwrap_or(worker::SqlStorageValue::Null),
            ],
        )?;
        Ok(())
    }

    fn credits(&self) -> EdgeResult<Response> {
        let acct = self.account()?.ok_or_else(ApiError::invalid_key)?;
        json(
            200,
            &json!({
                "balance_usd": MicroUsd::from_micros(acct.balance).to_usd_json(),
                "held_usd": MicroUsd::from_micros(acct.held).to_usd_json(),
                "available_usd": MicroUsd::from_micros(acct.balance - acct.held).to_usd_json(),
                "is_trial": acct.is_trial != 0,
                "last_used_at": acct.last_used_at_ms.map(rfc3339),
            }),
        )
    }
}

#[derive(Deserialize)]
struct IdRow {
    id: String,
}
