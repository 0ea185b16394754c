//! The Account Durable Object: one per account, the only writer of its keys, balance,
//! holds, ledger, idempotency records and rate-limit buckets (SQLite). Every money
//! movement is a run of synchronous SQL statements with no `await` in between, so a
//! check and its write are atomic under any concurrency, and each leaves a ledger row.
//!
//! Balance semantics (integer micro-dollars): `balance` is what the account owns,
//! `held` is reserved by running jobs; `balance − held` is available. A hold needs
//! `available ≥ price`; capture takes the amount from both, release only from `held`.
//! SQL `CHECK`s make a negative balance or an over-hold impossible to store.
//! Ledger rows record magnitudes (always positive) except adjustments (signed); the
//! `kind` says what moved.

use kiln_shared::idempotency::{self, TTL_MS};
use kiln_shared::keys::KeyHash;
use kiln_shared::money::MicroUsd;
use kiln_shared::query::UsagePage;
use kiln_shared::ratelimit::{Bucket, Decision};
use kiln_shared::time::rfc3339;
use kiln_shared::ApiError;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use worker::{
    durable_object, DurableObject, Env, Method, Request, Response, SqlStorage, SqlStorageValue,
    State,
};

use crate::error::{EdgeError, EdgeResult};
use crate::http::{internal_body, json, query_param};
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
    /// A lower limit than the deployment's, for keys handed to integrations.
    #[serde(default)]
    pub rate_limit_per_min: Option<u32>,
}

/// `POST /auth` body.
#[derive(Serialize, Deserialize)]
pub struct AuthRequest {
    pub hash: String,
    pub limit_per_min: u32,
}

/// `POST /auth` answer: who the key belongs to and its rate-limit state.
#[derive(Serialize, Deserialize)]
pub struct Principal {
    pub account_id: String,
    pub key_id: String,
    pub kind: String,
    pub rate: RateState,
}

#[derive(Serialize, Deserialize, Clone, Copy)]
pub struct RateState {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    pub reset_secs: u32,
    pub retry_after_secs: u32,
}

impl From<Decision> for RateState {
    fn from(d: Decision) -> Self {
        Self {
            allowed: d.allowed,
            limit: d.limit,
            remaining: d.remaining,
            reset_secs: d.reset_secs,
            retry_after_secs: d.retry_after_secs,
        }
    }
}

/// `POST /hold`: reserve the price of a job.
#[derive(Serialize, Deserialize)]
pub struct HoldRequest {
    pub job_id: String,
    pub amount_micros: i64,
    pub job_type: String,
    pub model_id: String,
    pub units: f64,
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

/// `POST /idem/begin`.
#[derive(Serialize, Deserialize)]
pub struct IdemBegin {
    pub key: String,
    pub fingerprint: String,
}

/// `POST /idem/begin` answer: go ahead, or the stored first response.
#[derive(Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum IdemOutcome {
    Proceed,
    Replay {
        status: u16,
        body: String,
        headers: Vec<(String, String)>,
    },
}

/// `POST /idem/finish`: store the response of the first request.
#[derive(Serialize, Deserialize)]
pub struct IdemFinish {
    pub key: String,
    pub status: u16,
    pub body: String,
    pub headers: Vec<(String, String)>,
}

/// `POST /topup`: a verified Stripe payment.
#[derive(Serialize, Deserialize)]
pub struct TopUpRequest {
    pub event_id: String,
    pub tier: String,
    pub amount_micros: i64,
    /// The `sk-gen-` key a trial account receives on its first payment.
    pub gen_key: NewKey,
    pub gen_key_secret: String,
}

/// `POST /adjust`: an operator's grant (positive) or correction (negative).
#[derive(Serialize, Deserialize)]
pub struct AdjustRequest {
    pub amount_micros: i64,
    pub reason: String,
}

#[derive(Deserialize)]
struct KeyRow {
    id: String,
    hash: String,
    kind: String,
    rate_limit_per_min: Option<u32>,
}

#[derive(Deserialize)]
struct AccountRow {
    id: String,
    balance: i64,
    held: i64,
    is_trial: i64,
    last_used_at_ms: Option<i64>,
}

#[derive(Deserialize)]
struct AmountRow {
    amount: i64,
}

#[derive(Deserialize)]
struct BucketRow {
    tokens_milli: i64,
    updated_ms: i64,
}

#[derive(Deserialize)]
struct IdemRow {
    fingerprint: String,
    state: String,
    status: Option<i64>,
    body: Option<String>,
    headers: Option<String>,
    created_at_ms: i64,
}

#[derive(Deserialize)]
struct KeyListRow {
    id: String,
    kind: String,
    label: String,
    prefix: String,
    created_at_ms: i64,
    last_used_at_ms: Option<i64>,
    revoked_at_ms: Option<i64>,
    reveal_pending: i64,
    rate_limit_per_min: Option<u32>,
}

#[derive(Deserialize)]
struct UsageRow {
    seq: i64,
    ts_ms: i64,
    kind: String,
    amount: i64,
    job_id: Option<String>,
    job_type: Option<String>,
    model_id: Option<String>,
    units: Option<f64>,
    prompt_preview: Option<String>,
    note: Option<String>,
    hold_state: Option<String>,
    settled_at_ms: Option<i64>,
}

/// Characters of the prompt kept in the ledger, enough to recognise a job in usage.
const PROMPT_PREVIEW_CHARS_MAX: usize = 80;
/// Usage pages hold at most this many rows.
/// A request that began this long ago and never finished (its Worker died) no longer
/// blocks its Idempotency-Key: longer than the longest synchronous wait.
const IDEM_STALE_MS: i64 = 10 * 60 * 1000;

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
    // The current signing secret has no expiry; a rotated-out one signs until it expires.
    "CREATE TABLE IF NOT EXISTS webhook_secrets (
        secret TEXT PRIMARY KEY, created_at_ms INTEGER NOT NULL, expires_at_ms INTEGER)",
];

/// After a rotation, the old webhook secret keeps signing (beside the new one) this long.
pub const WEBHOOK_SECRET_OVERLAP_MS: i64 = 24 * 60 * 60 * 1000;

/// The account's webhook signing secrets: `current`, and `previous` while it overlaps.
#[derive(Serialize, Deserialize)]
pub struct WebhookSecrets {
    pub current: String,
    pub created_at_ms: i64,
    pub previous: Option<PreviousSecret>,
}

#[derive(Serialize, Deserialize)]
pub struct PreviousSecret {
    pub secret: String,
    pub expires_at_ms: i64,
}

impl WebhookSecrets {
    /// Every secret that signs now, newest first.
    pub fn signing(&self) -> Vec<&str> {
        let mut out = vec![self.current.as_str()];
        if let Some(p) = &self.previous {
            out.push(p.secret.as_str());
        }
        out
    }
}

fn opt(v: Option<&str>) -> SqlStorageValue {
    v.map(Into::into).unwrap_or(SqlStorageValue::Null)
}

impl DurableObject for AccountDo {
    fn new(state: State, _env: Env) -> Self {
        let sql = state.storage().sql();
        for ddl in SCHEMA {
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
            (Method::Get, "/credits") => self.credits(),
            (Method::Get, "/keys") => self.list_keys(),
            (Method::Get, "/usage") => self.usage(&req),
            (Method::Get, "/webhooks/secret") => self.webhook_secrets(),
            (Method::Post, _) => self.post(&path, &mut req).await,
            _ => Err(ApiError::route_not_found("DO", &path).into()),
        };
        Ok(result.unwrap_or_else(EdgeError::into_response))
    }
}

impl AccountDo {
    async fn post(&self, path: &str, req: &mut Request) -> EdgeResult<Response> {
        match path {
            "/init" => self.init(internal_body(req).await?),
            "/auth" => self.auth(internal_body(req).await?),
            "/hold" => self.hold(internal_body(req).await?),
            "/settle" => self.settle(internal_body(req).await?),
            "/keys" => self.create_key(internal_body(req).await?),
            "/keys/revoke" => self.revoke_key(internal_body::<IdBody>(req).await?.id),
            "/keys/reveal" => self.reveal_key(internal_body::<IdBody>(req).await?.id),
            "/idem/begin" => self.idem_begin(internal_body(req).await?),
            "/idem/finish" => self.idem_finish(internal_body(req).await?),
            "/idem/abort" => self.idem_abort(internal_body::<IdemKeyBody>(req).await?.key),
            "/topup" => self.top_up(internal_body(req).await?),
            "/adjust" => self.adjust(internal_body(req).await?),
            "/webhooks/secret/rotate" => self.rotate_webhook_secret(),
            _ => Err(ApiError::route_not_found("DO", path).into()),
        }
    }

    fn account(&self) -> EdgeResult<AccountRow> {
        let rows: Vec<AccountRow> = self
            .sql
            .exec(
                "SELECT id, balance, held, is_trial, last_used_at_ms FROM account",
                None,
            )?
            .to_array()?;
        rows.into_iter()
            .next()
            .ok_or_else(|| ApiError::not_found("account_not_found", "No such account.").into())
    }

    fn balances(&self) -> EdgeResult<Balances> {
        let a = self.account()?;
        Ok(Balances {
            balance_micros: a.balance,
            held_micros: a.held,
        })
    }

    fn init(&self, body: InitAccount) -> EdgeResult<Response> {
        if self.account().is_ok() {
            return Err(
                ApiError::conflict("account_exists", "This account already exists.").into(),
            );
        }
        let now = now_ms();
        self.sql.exec(
            "INSERT INTO account (id, email, balance, held, is_trial, created_at_ms) VALUES (?, ?, ?, 0, ?, ?)",
            vec![
                body.account_id.as_str().into(),
                opt(body.email.as_deref()),
                body.grant_micros.into(),
                i64::from(body.is_trial).into(),
                now.into(),
            ],
        )?;
        let note = if body.is_trial {
            "trial credit"
        } else {
            "initial credit"
        };
        self.ledger(now, "grant", body.grant_micros, None, Some(note))?;
        self.insert_key(&body.key, None, now)?;
        json(201, &json!({"account_id": body.account_id}))
    }

    fn insert_key(&self, key: &NewKey, reveal_secret: Option<&str>, now: i64) -> EdgeResult<()> {
        self.sql.exec(
            "INSERT INTO keys (id, hash, kind, label, prefix, created_at_ms, reveal_secret, rate_limit_per_min)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            vec![
                key.id.as_str().into(),
                key.hash.as_str().into(),
                key.kind.as_str().into(),
                key.label.as_str().into(),
                key.prefix.as_str().into(),
                now.into(),
                opt(reveal_secret),
                key.rate_limit_per_min
                    .map(|n| SqlStorageValue::from(i64::from(n)))
                    .unwrap_or(SqlStorageValue::Null),
            ],
        )?;
        Ok(())
    }

    /// Checks a key hash and takes a rate-limit token. Revoked keys fail at once: the
    /// answer is never cached outside this object.
    fn auth(&self, body: AuthRequest) -> EdgeResult<Response> {
        let presented = KeyHash::from_stored(body.hash);
        let rows: Vec<KeyRow> = self
            .sql
            .exec(
                "SELECT id, hash, kind, rate_limit_per_min FROM keys WHERE hash = ? AND revoked_at_ms IS NULL",
                vec![presented.as_str().into()],
            )?
            .to_array()?;
        let key = rows
            .into_iter()
            .find(|k| KeyHash::from_stored(k.hash.clone()).matches(&presented))
            .ok_or_else(ApiError::invalid_key)?;
        let account = self.account()?;
        let now = now_ms();
        let limit = key
            .rate_limit_per_min
            .map_or(body.limit_per_min, |k| k.min(body.limit_per_min));
        let buckets: Vec<BucketRow> = self
            .sql
            .exec(
                "SELECT tokens_milli, updated_ms FROM rate WHERE key_id = ?",
                vec![key.id.as_str().into()],
            )?
            .to_array()?;
        let bucket = buckets
            .into_iter()
            .next()
            .map(|b| Bucket {
                tokens_milli: b.tokens_milli,
                updated_ms: b.updated_ms,
            })
            .unwrap_or_else(|| Bucket::full(limit, now));
        let (bucket, decision) = bucket.take(limit, now);
        self.sql.exec(
            "INSERT INTO rate (key_id, tokens_milli, updated_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT(key_id) DO UPDATE SET tokens_milli = ?2, updated_ms = ?3",
            vec![
                key.id.as_str().into(),
                bucket.tokens_milli.into(),
                bucket.updated_ms.into(),
            ],
        )?;
        if decision.allowed {
            self.sql.exec(
                "UPDATE keys SET last_used_at_ms = ? WHERE id = ?",
                vec![now.into(), key.id.as_str().into()],
            )?;
            self.sql
                .exec("UPDATE account SET last_used_at_ms = ?", vec![now.into()])?;
        }
        json(
            200,
            &Principal {
                account_id: account.id,
                key_id: key.id,
                kind: key.kind,
                rate: decision.into(),
            },
        )
    }

    fn hold(&self, body: HoldRequest) -> EdgeResult<Response> {
        if body.amount_micros < 0 {
            return Err(worker::Error::RustError("hold of a negative amount".into()).into());
        }
        let existing: Vec<AmountRow> = self
            .sql
            .exec(
                "SELECT amount FROM holds WHERE job_id = ?",
                vec![body.job_id.as_str().into()],
            )?
            .to_array()?;
        if body.amount_micros > 0 && existing.is_empty() {
            let taken: Vec<Balances> = self
                .sql
                .exec(
                    "UPDATE account SET held = held + ?1 WHERE balance - held >= ?1
                     RETURNING balance AS balance_micros, held AS held_micros",
                    vec![body.amount_micros.into()],
                )?
                .to_array()?;
            if taken.is_empty() {
                let available = self.balances()?.available();
                return Err(ApiError::new(
                    402,
                    "insufficient_credits",
                    format!(
                        "This request costs {} but your available balance is {available}. Top up to continue.",
                        MicroUsd::from_micros(body.amount_micros),
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
                "INSERT INTO ledger (ts_ms, kind, amount, job_id, job_type, model_id, units, prompt_preview)
                 VALUES (?, 'hold', ?, ?, ?, ?, ?, ?)",
                vec![
                    now.into(),
                    body.amount_micros.into(),
                    body.job_id.as_str().into(),
                    body.job_type.as_str().into(),
                    body.model_id.as_str().into(),
                    body.units.into(),
                    preview.into(),
                ],
            )?;
        }
        json(200, &self.balances()?)
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
                opt(job_id),
                opt(note),
            ],
        )?;
        Ok(())
    }

    fn credits(&self) -> EdgeResult<Response> {
        let acct = self.account()?;
        json(
            200,
            &json!({
                "account_id": acct.id,
                "balance_usd": MicroUsd::from_micros(acct.balance).to_usd_json(),
                "held_usd": MicroUsd::from_micros(acct.held).to_usd_json(),
                "available_usd": MicroUsd::from_micros(acct.balance - acct.held).to_usd_json(),
                "is_trial": acct.is_trial != 0,
                "last_used_at": acct.last_used_at_ms.map(rfc3339),
            }),
        )
    }

    /// The signing secrets, creating the first on first use.
    fn load_webhook_secrets(&self) -> EdgeResult<WebhookSecrets> {
        #[derive(Deserialize)]
        struct Row {
            secret: String,
            created_at_ms: i64,
            expires_at_ms: Option<i64>,
        }
        self.account()?;
        let now = now_ms();
        self.sql.exec(
            "DELETE FROM webhook_secrets WHERE expires_at_ms IS NOT NULL AND expires_at_ms <= ?",
            vec![now.into()],
        )?;
        let rows: Vec<Row> = self
            .sql
            .exec(
                "SELECT secret, created_at_ms, expires_at_ms FROM webhook_secrets
                 ORDER BY created_at_ms DESC",
                None,
            )?
            .to_array()?;
        let (current, previous): (Vec<&Row>, Vec<&Row>) =
            rows.iter().partition(|r| r.expires_at_ms.is_none());
        let (secret, created_at_ms) = match current.first() {
            Some(r) => (r.secret.clone(), r.created_at_ms),
            None => {
                let secret = kiln_shared::webhooks::new_secret(crate::random_bytes());
                self.sql.exec(
                    "INSERT INTO webhook_secrets (secret, created_at_ms) VALUES (?, ?)",
                    vec![secret.as_str().into(), now.into()],
                )?;
                (secret, now)
            }
        };
        Ok(WebhookSecrets {
            current: secret,
            created_at_ms,
            previous: previous.first().map(|r| PreviousSecret {
                secret: r.secret.clone(),
                expires_at_ms: r.expires_at_ms.unwrap_or(now),
            }),
        })
    }

    fn webhook_secrets(&self) -> EdgeResult<Response> {
        json(200, &self.load_webhook_secrets()?)
    }

    /// A new current secret; the old one keeps signing for 24 h. A secret rotated out
    /// earlier stops at once (at most two sign at any time).
    fn rotate_webhook_secret(&self) -> EdgeResult<Response> {
        let old = self.load_webhook_secrets()?;
        let now = now_ms();
        let secret = kiln_shared::webhooks::new_secret(crate::random_bytes());
        self.sql.exec(
            "DELETE FROM webhook_secrets WHERE expires_at_ms IS NOT NULL",
            None,
        )?;
        self.sql.exec(
            "UPDATE webhook_secrets SET expires_at_ms = ? WHERE secret = ?",
            vec![
                (now + WEBHOOK_SECRET_OVERLAP_MS).into(),
                old.current.as_str().into(),
            ],
        )?;
        self.sql.exec(
            "INSERT INTO webhook_secrets (secret, created_at_ms) VALUES (?, ?)",
            vec![
                secret.as_str().into(),
                (now + 1).max(old.created_at_ms + 1).into(),
            ],
        )?;
        json(200, &self.load_webhook_secrets()?)
    }

    fn list_keys(&self) -> EdgeResult<Response> {
        let rows: Vec<KeyListRow> = self
            .sql
            .exec(
                "SELECT id, kind, label, prefix, created_at_ms, last_used_at_ms, revoked_at_ms,
                        (reveal_secret IS NOT NULL) AS reveal_pending, rate_limit_per_min
                 FROM keys ORDER BY created_at_ms, id",
                None,
            )?
            .to_array()?;
        let data: Vec<Value> = rows
            .into_iter()
            .map(|k| {
                json!({
                    "id": k.id,
                    "object": "api_key",
                    "kind": k.kind,
                    "label": k.label,
                    "prefix": k.prefix,
                    "created_at": rfc3339(k.created_at_ms),
                    "last_used_at": k.last_used_at_ms.map(rfc3339),
                    "revoked_at": k.revoked_at_ms.map(rfc3339),
                    "reveal_available": k.reveal_pending != 0,
                    "rate_limit_per_min": k.rate_limit_per_min,
                })
            })
            .collect();
        json(200, &json!({"object": "list", "data": data}))
    }

    fn create_key(&self, key: NewKey) -> EdgeResult<Response> {
        self.account()?;
        self.insert_key(&key, None, now_ms())?;
        json(201, &json!({"id": key.id}))
    }

    fn revoke_key(&self, id: String) -> EdgeResult<Response> {
        let revoked: Vec<IdBody> = self
            .sql
            .exec(
                "UPDATE keys SET revoked_at_ms = ?, reveal_secret = NULL WHERE id = ? AND revoked_at_ms IS NULL RETURNING id",
                vec![now_ms().into(), id.as_str().into()],
            )?
            .to_array()?;
        if revoked.is_empty() {
            return Err(ApiError::not_found("key_not_found", "No active key with this id.").into());
        }
        self.sql.exec(
            "DELETE FROM rate WHERE key_id = ?",
            vec![id.as_str().into()],
        )?;
        json(200, &json!({"id": id, "revoked": true}))
    }

    /// Hands out a key created for the account (the `sk-gen-` key of a first payment)
    /// exactly once, then forgets the secret.
    fn reveal_key(&self, id: String) -> EdgeResult<Response> {
        #[derive(Deserialize)]
        struct Secret {
            reveal_secret: String,
        }
        let rows: Vec<Secret> = self
            .sql
            .exec(
                "SELECT reveal_secret FROM keys WHERE id = ? AND reveal_secret IS NOT NULL AND revoked_at_ms IS NULL",
                vec![id.as_str().into()],
            )?
            .to_array()?;
        // No await between the read and the wipe: two reveals cannot both succeed.
        self.sql.exec(
            "UPDATE keys SET reveal_secret = NULL WHERE id = ?",
            vec![id.as_str().into()],
        )?;
        match rows.into_iter().next() {
            Some(s) => json(200, &json!({"id": id, "api_key": s.reveal_secret})),
            None => Err(ApiError::not_found(
                "key_not_found",
                "No key with this id is waiting to be revealed; secrets are shown once.",
            )
            .into()),
        }
    }

    fn usage(&self, req: &Request) -> EdgeResult<Response> {
        let page = UsagePage::parse(
            query_param(req, "limit")?.as_deref(),
            query_param(req, "cursor")?.as_deref(),
        )?;
        let (limit, cursor) = (page.limit, page.before_seq);
        let rows: Vec<UsageRow> = self
            .sql
            .exec(
                "SELECT l.seq, l.ts_ms, l.kind, l.amount, l.job_id, l.job_type, l.model_id, l.units,
                        l.prompt_preview, l.note, h.state AS hold_state, h.settled_at_ms
                 FROM ledger l LEFT JOIN holds h ON l.kind = 'hold' AND h.job_id = l.job_id
                 WHERE l.kind IN ('hold', 'grant', 'topup', 'adjustment') AND (?1 IS NULL OR l.seq < ?1)
                 ORDER BY l.seq DESC LIMIT ?2",
                vec![
                    cursor.map(SqlStorageValue::from).unwrap_or(SqlStorageValue::Null),
                    i64::from(limit + 1).into(),
                ],
            )?
            .to_array()?;
        let has_more = rows.len() > limit as usize;
        let rows: Vec<UsageRow> = rows.into_iter().take(limit as usize).collect();
        let next_cursor = if has_more {
            rows.last().map(|r| UsagePage::cursor_after(r.seq))
        } else {
            None
        };
        let data: Vec<Value> = rows.into_iter().map(usage_entry).collect();
        json(
            200,
            &json!({"object": "list", "data": data, "has_more": has_more, "next_cursor": next_cursor}),
        )
    }

    fn idem_begin(&self, body: IdemBegin) -> EdgeResult<Response> {
        let now = now_ms();
        self.sql.exec(
            "DELETE FROM idem WHERE created_at_ms < ?",
            vec![(now - TTL_MS).into()],
        )?;
        let rows: Vec<IdemRow> = self
            .sql
            .exec(
                "SELECT fingerprint, state, status, body, headers, created_at_ms FROM idem WHERE key = ?",
                vec![body.key.as_str().into()],
            )?
            .to_array()?;
        match rows.into_iter().next() {
            Some(r) if r.fingerprint != body.fingerprint => Err(idempotency::conflict().into()),
            Some(r) if r.state == "done" => json(
                200,
                &IdemOutcome::Replay {
                    status: r.status.unwrap_or(200) as u16,
                    body: r.body.unwrap_or_default(),
                    headers: r
                        .headers
                        .and_then(|h| serde_json::from_str(&h).ok())
                        .unwrap_or_default(),
                },
            ),
            Some(r) if now - r.created_at_ms < IDEM_STALE_MS => {
                Err(idempotency::in_progress().into())
            }
            stale_or_new => {
                if stale_or_new.is_some() {
                    self.sql.exec(
                        "DELETE FROM idem WHERE key = ?",
                        vec![body.key.as_str().into()],
                    )?;
                }
                self.sql.exec(
                    "INSERT INTO idem (key, fingerprint, state, created_at_ms) VALUES (?, ?, 'in_progress', ?)",
                    vec![body.key.as_str().into(), body.fingerprint.as_str().into(), now.into()],
                )?;
                json(200, &IdemOutcome::Proceed)
            }
        }
    }

    fn idem_finish(&self, body: IdemFinish) -> EdgeResult<Response> {
        self.sql.exec(
            "UPDATE idem SET state = 'done', status = ?, body = ?, headers = ? WHERE key = ?",
            vec![
                i64::from(body.status).into(),
                body.body.into(),
                serde_json::to_string(&body.headers)?.into(),
                body.key.as_str().into(),
            ],
        )?;
        json(200, &json!({"stored": true}))
    }

    fn idem_abort(&self, key: String) -> EdgeResult<Response> {
        self.sql.exec(
            "DELETE FROM idem WHERE key = ? AND state = 'in_progress'",
            vec![key.as_str().into()],
        )?;
        json(200, &json!({"aborted": true}))
    }

    /// Applies a Stripe payment once per event id; a trial account becomes paid and
    /// receives an `sk-gen-` key (revealed once through `POST /v1/keys/{id}/reveal`).
    fn top_up(&self, body: TopUpRequest) -> EdgeResult<Response> {
        let account = self.account()?;
        let now = now_ms();
        let fresh: Vec<IdBody> = self
            .sql
            .exec(
                "INSERT INTO stripe_events (event_id, at_ms) VALUES (?, ?) ON CONFLICT DO NOTHING RETURNING event_id AS id",
                vec![body.event_id.as_str().into(), now.into()],
            )?
            .to_array()?;
        if fresh.is_empty() {
            return json(200, &json!({"applied": false, "reason": "duplicate event"}));
        }
        self.sql.exec(
            "UPDATE account SET balance = balance + ?, is_trial = 0",
            vec![body.amount_micros.into()],
        )?;
        let note = format!("stripe {} ({})", body.event_id, body.tier);
        self.ledger(now, "topup", body.amount_micros, None, Some(&note))?;
        let converted = account.is_trial != 0;
        if converted {
            self.insert_key(&body.gen_key, Some(&body.gen_key_secret), now)?;
        }
        json(
            200,
            &json!({"applied": true, "converted": converted, "gen_key_id": converted.then_some(body.gen_key.id)}),
        )
    }

    fn adjust(&self, body: AdjustRequest) -> EdgeResult<Response> {
        let acct = self.account()?;
        // Checked: the balance stays within the ledger's range (below 2^53) or the
        // adjustment is refused.
        let new_balance = MicroUsd::from_micros(acct.balance)
            .checked_add(MicroUsd::from_micros(body.amount_micros))
            .map(MicroUsd::micros);
        if body.amount_micros == 0 || new_balance.is_none_or(|b| b < acct.held) {
            return Err(ApiError::invalid_param(
                "amount_usd",
                "invalid_value",
                format!(
                    "The adjustment must be non-zero and leave the balance at least the held amount ({}) and within the ledger's range.",
                    MicroUsd::from_micros(acct.held)
                ),
            )
            .into());
        }
        let now = now_ms();
        self.sql.exec(
            "UPDATE account SET balance = balance + ?",
            vec![body.amount_micros.into()],
        )?;
        self.ledger(
            now,
            "adjustment",
            body.amount_micros,
            None,
            Some(&body.reason),
        )?;
        json(200, &self.balances()?)
    }
}

/// A ledger row as `GET /v1/usage` shows it: charges with their state (a released hold
/// is a refund), and credits with their source.
fn usage_entry(r: UsageRow) -> Value {
    let ts = rfc3339(r.ts_ms);
    if r.kind == "hold" {
        let status = match r.hold_state.as_deref() {
            Some("captured") => "charged",
            Some("released") => "refunded",
            _ => "pending",
        };
        return json!({
            "id": format!("u_{}", r.seq),
            "type": "charge",
            "status": status,
            "refunded": status == "refunded",
            "job_id": r.job_id,
            "job_type": r.job_type,
            "model_id": r.model_id,
            "units": r.units,
            "cost_usd": MicroUsd::from_micros(r.amount).to_usd_json(),
            "prompt_preview": r.prompt_preview,
            "ts": ts,
            "settled_at": r.settled_at_ms.map(rfc3339),
        });
    }
    let source = match r.kind.as_str() {
        "topup" => "top_up",
        "adjustment" => "adjustment",
        _ => "grant",
    };
    json!({
        "id": format!("u_{}", r.seq),
        "type": "credit",
        "source": source,
        "amount_usd": MicroUsd::from_micros(r.amount).to_usd_json(),
        "note": r.note,
        "ts": ts,
    })
}

#[derive(Serialize, Deserialize)]
pub struct IdBody {
    pub id: String,
}

#[derive(Serialize, Deserialize)]
pub struct IdemKeyBody {
    pub key: String,
}
