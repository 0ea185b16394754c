//! The Account Durable Object: one per account, the only writer of its keys, balance,
//! holds, ledger, idempotency records, rate-limit buckets and webhook secrets (SQLite).
//! Every money movement is a run of synchronous SQL statements with no `await` in
//! between, so a check and its write are atomic under any concurrency, and each leaves
//! a ledger row.
//!
//! - [`proto`] — its messages; [`keys`] — authentication, rate limits, the key list;
//!   [`files`] — the account's uploads and outputs (deduplicated by content);
//!   [`sessions`] — dashboard sessions, each acting as one of the account's keys;
//!   [`ledger`] — balances, holds, usage, top-ups, adjustments; [`idempotency`] — stored
//!   responses per `Idempotency-Key`; [`webhooks`] — the signing secrets.
//!
//! Balance semantics (integer micro-dollars): `balance` is what the account owns,
//! `held` is reserved by running jobs; `balance − held` is available. A hold needs
//! `available ≥ price`; capture takes the amount from both, release only from `held`.
//! SQL `CHECK`s make a negative balance or an over-hold impossible to store.
//! Ledger rows record magnitudes (always positive) except adjustments (signed); the
//! `kind` ([`proto::LedgerKind`]) says what moved.

pub mod files;
pub mod idempotency;
pub mod keys;
pub mod ledger;
pub mod proto;
pub mod sessions;
pub mod webhooks;

use kiln_shared::ids::AccountId;
use kiln_shared::{ApiError, ErrorCode};
use serde::Deserialize;
use worker::{
    durable_object, DurableObject, Env, Request, Response, SqlStorage, SqlStorageValue, State,
};

use crate::platform::error::EdgeResult;
use crate::platform::rpc::{self, Message};
use proto::*;

#[durable_object]
pub struct AccountDo {
    sql: SqlStorage,
}

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS account (
        id TEXT PRIMARY KEY, email TEXT, balance INTEGER NOT NULL CHECK (balance >= 0),
        held INTEGER NOT NULL DEFAULT 0 CHECK (held >= 0 AND held <= balance),
        is_trial INTEGER NOT NULL, created_at_ms INTEGER NOT NULL, last_used_at_ms INTEGER)",
    "CREATE TABLE IF NOT EXISTS keys (
        id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, kind TEXT NOT NULL, label TEXT NOT NULL,
        prefix TEXT NOT NULL, created_at_ms INTEGER NOT NULL, last_used_at_ms INTEGER,
        revoked_at_ms INTEGER, reveal_secret TEXT, rate_limit_per_min INTEGER)",
    "CREATE TABLE IF NOT EXISTS holds (
        job_id TEXT PRIMARY KEY, amount INTEGER NOT NULL CHECK (amount > 0), state TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL, settled_at_ms INTEGER)",
    "CREATE TABLE IF NOT EXISTS ledger (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, ts_ms INTEGER NOT NULL, kind TEXT NOT NULL,
        amount INTEGER NOT NULL, job_id TEXT, job_type TEXT, model_id TEXT, units REAL,
        prompt_preview TEXT, note TEXT)",
    "CREATE TABLE IF NOT EXISTS idem (
        key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, state TEXT NOT NULL, status INTEGER,
        body TEXT, headers TEXT, created_at_ms INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS rate (key_id TEXT PRIMARY KEY, tokens_milli INTEGER NOT NULL, updated_ms INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS stripe_events (event_id TEXT PRIMARY KEY, at_ms INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS files (
        filename TEXT PRIMARY KEY, kind TEXT NOT NULL, sha256 TEXT NOT NULL, format TEXT NOT NULL,
        content_type TEXT NOT NULL, width INTEGER NOT NULL, height INTEGER NOT NULL,
        frame_count INTEGER NOT NULL, size_bytes INTEGER NOT NULL, original_filename TEXT,
        job_id TEXT, created_at_ms INTEGER NOT NULL, expires_at_ms INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS files_by_hash ON files (kind, sha256)",
    "CREATE INDEX IF NOT EXISTS files_by_age ON files (kind, created_at_ms)",
    // The current signing secret has no expiry; a rotated-out one signs until it expires.
    "CREATE TABLE IF NOT EXISTS webhook_secrets (
        secret TEXT PRIMARY KEY, created_at_ms INTEGER NOT NULL, expires_at_ms INTEGER)",
    // A dashboard session: the hash of its cookie token and the key it acts as.
    "CREATE TABLE IF NOT EXISTS sessions (
        hash TEXT PRIMARY KEY, key_id TEXT NOT NULL, created_at_ms INTEGER NOT NULL,
        expires_at_ms INTEGER NOT NULL)",
];

/// The account row.
#[derive(Deserialize)]
struct AccountRow {
    id: AccountId,
    balance: i64,
    held: i64,
    is_trial: i64,
    last_used_at_ms: Option<i64>,
}

fn opt(v: Option<&str>) -> SqlStorageValue {
    v.map(Into::into).unwrap_or(SqlStorageValue::Null)
}

impl DurableObject for AccountDo {
    fn new(state: State, _env: Env) -> Self {
        let sql = state.storage().sql();
        rpc::create_tables(&sql, "account", SCHEMA);
        Self { sql }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        rpc::respond(self.route(&mut req).await)
    }
}

impl AccountDo {
    async fn route(&self, req: &mut Request) -> EdgeResult<Response> {
        match req.path().as_str() {
            Init::PATH => rpc::answer::<Init>(self.init(rpc::read(req).await?)),
            Authenticate::PATH => {
                rpc::answer::<Authenticate>(self.authenticate(rpc::read(req).await?))
            }
            OpenSession::PATH => {
                rpc::answer::<OpenSession>(self.open_session(rpc::read(req).await?))
            }
            AuthenticateSession::PATH => {
                rpc::answer::<AuthenticateSession>(self.authenticate_session(rpc::read(req).await?))
            }
            CloseSession::PATH => {
                rpc::answer::<CloseSession>(self.close_session(rpc::read(req).await?))
            }
            Hold::PATH => rpc::answer::<Hold>(self.hold(rpc::read(req).await?)),
            Settle::PATH => rpc::answer::<Settle>(self.settle(rpc::read(req).await?)),
            GetAccount::PATH => rpc::answer::<GetAccount>(self.get_account()),
            ListKeys::PATH => rpc::answer::<ListKeys>(self.list_keys()),
            CreateKey::PATH => rpc::answer::<CreateKey>(self.create_key(rpc::read(req).await?)),
            RevokeKey::PATH => rpc::answer::<RevokeKey>(self.revoke_key(rpc::read(req).await?)),
            RevealKey::PATH => rpc::answer::<RevealKey>(self.reveal_key(rpc::read(req).await?)),
            ListUsage::PATH => rpc::answer::<ListUsage>(self.usage(rpc::read(req).await?)),
            IdemBegin::PATH => rpc::answer::<IdemBegin>(self.idem_begin(rpc::read(req).await?)),
            IdemFinish::PATH => rpc::answer::<IdemFinish>(self.idem_finish(rpc::read(req).await?)),
            IdemAbort::PATH => rpc::answer::<IdemAbort>(self.idem_abort(rpc::read(req).await?)),
            TopUp::PATH => rpc::answer::<TopUp>(self.top_up(rpc::read(req).await?)),
            RecordUpload::PATH => {
                rpc::answer::<RecordUpload>(self.record_upload(rpc::read(req).await?))
            }
            RecordOutputs::PATH => {
                rpc::answer::<RecordOutputs>(self.record_outputs(rpc::read(req).await?))
            }
            ListFiles::PATH => rpc::answer::<ListFiles>(self.list_files(rpc::read(req).await?)),
            OwnFiles::PATH => rpc::answer::<OwnFiles>(self.own_files(rpc::read(req).await?)),
            DeleteFile::PATH => rpc::answer::<DeleteFile>(self.delete_file(rpc::read(req).await?)),
            Adjust::PATH => rpc::answer::<Adjust>(self.adjust(rpc::read(req).await?)),
            GetWebhookSecrets::PATH => rpc::answer::<GetWebhookSecrets>(self.webhook_secrets()),
            RotateWebhookSecret::PATH => {
                rpc::answer::<RotateWebhookSecret>(self.rotate_webhook_secret())
            }
            other => Err(rpc::unknown_route(other)),
        }
    }

    /// The account, or 404 `account_not_found` before it is created.
    fn account(&self) -> EdgeResult<AccountRow> {
        let rows: Vec<AccountRow> = self
            .sql
            .exec(
                "SELECT id, balance, held, is_trial, last_used_at_ms FROM account",
                None,
            )?
            .to_array()?;
        rows.into_iter().next().ok_or_else(|| {
            ApiError::not_found(ErrorCode::AccountNotFound, "No such account.").into()
        })
    }
}
