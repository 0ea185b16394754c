//! The Account DO's messages: each route declared once, with its typed request and
//! reply. The API layer turns replies into the API's JSON.

use kiln_shared::ids::{AccountId, JobId};
use kiln_shared::jobs::JobType;
use kiln_shared::keys::{ApiKey, KeyHash, KeyKind};
use kiln_shared::money::MicroUsd;
use kiln_shared::query::UsagePage;
use kiln_shared::ratelimit::Decision;
use serde::{Deserialize, Serialize};

use super::AccountDo;
use crate::message;

/// A key to store: only its hash, never the secret.
#[derive(Serialize, Deserialize)]
pub struct NewKey {
    /// `key_…`
    pub id: String,
    pub hash: KeyHash,
    pub kind: KeyKind,
    /// What listings show: the kind prefix and the last four characters.
    pub prefix: String,
    pub label: String,
    /// A lower limit than the deployment's, for keys handed to integrations.
    pub rate_limit_per_min: Option<u32>,
}

impl NewKey {
    /// The stored form of `key`, under a fresh id (`key_` + 16 base32 chars).
    pub fn new(key: &ApiKey, label: &str, rate_limit_per_min: Option<u32>) -> Self {
        Self {
            id: format!("key_{}", crate::platform::clock::ids_token()),
            hash: key.hash(),
            kind: key.kind(),
            prefix: key.display_prefix(),
            label: label.to_owned(),
            rate_limit_per_min,
        }
    }
}

/// A stored key as the account's key list shows it.
#[derive(Serialize, Deserialize)]
pub struct KeyRecord {
    pub id: String,
    pub kind: KeyKind,
    pub label: String,
    pub prefix: String,
    pub created_at_ms: i64,
    pub last_used_at_ms: Option<i64>,
    pub revoked_at_ms: Option<i64>,
    /// A key Kiln created for the account whose secret has not been revealed yet.
    pub reveal_available: bool,
    pub rate_limit_per_min: Option<u32>,
}

/// Creates the account with its first key and its grant.
#[derive(Serialize, Deserialize)]
pub struct Init {
    pub account_id: AccountId,
    pub email: Option<String>,
    pub is_trial: bool,
    pub grant: MicroUsd,
    pub key: NewKey,
}

#[derive(Serialize, Deserialize)]
pub struct Created {
    pub account_id: AccountId,
}

/// Checks a key hash and takes a rate-limit token for it.
#[derive(Serialize, Deserialize)]
pub struct Authenticate {
    pub hash: KeyHash,
    /// The deployment's limit; a key's own limit can only lower it.
    pub limit_per_min: u32,
}

/// Who the key belongs to, and its rate-limit state after this request.
#[derive(Serialize, Deserialize)]
pub struct Principal {
    pub account_id: AccountId,
    pub key_id: String,
    pub kind: KeyKind,
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

/// Reserves the price of a job (once per job id; a second hold changes nothing).
#[derive(Serialize, Deserialize)]
pub struct Hold {
    pub job_id: JobId,
    pub amount: MicroUsd,
    pub job_type: JobType,
    pub model_id: String,
    pub units: f64,
    pub prompt_preview: String,
}

/// Balances after a movement, for `X-Credits-Remaining-Usd`.
#[derive(Serialize, Deserialize)]
pub struct Balances {
    pub balance: MicroUsd,
    pub held: MicroUsd,
}

/// `balance − held`. The schema keeps `0 ≤ held ≤ balance < 2^53`, so this neither
/// overflows nor goes negative.
fn available(balance: MicroUsd, held: MicroUsd) -> MicroUsd {
    MicroUsd::from_micros(balance.micros() - held.micros())
}

impl Balances {
    pub fn available(&self) -> MicroUsd {
        available(self.balance, self.held)
    }
}

/// Ends a job's hold by capturing or releasing it, exactly once.
#[derive(Serialize, Deserialize)]
pub struct Settle {
    pub job_id: JobId,
    pub capture: bool,
}

#[derive(Serialize, Deserialize)]
pub struct Settled {
    /// False when the hold had already ended (or never existed).
    pub settled: bool,
}

/// The account's balances and status.
#[derive(Serialize, Deserialize)]
pub struct GetAccount;

#[derive(Serialize, Deserialize)]
pub struct Account {
    pub account_id: AccountId,
    pub balance: MicroUsd,
    pub held: MicroUsd,
    pub is_trial: bool,
    pub last_used_at_ms: Option<i64>,
}

impl Account {
    pub fn available(&self) -> MicroUsd {
        available(self.balance, self.held)
    }
}

#[derive(Serialize, Deserialize)]
pub struct ListKeys;

#[derive(Serialize, Deserialize)]
pub struct Keys {
    pub keys: Vec<KeyRecord>,
}

/// Stores a key the caller created; answers it as listed.
#[derive(Serialize, Deserialize)]
pub struct CreateKey {
    pub key: NewKey,
}

#[derive(Serialize, Deserialize)]
pub struct RevokeKey {
    pub id: String,
}

#[derive(Serialize, Deserialize)]
pub struct Revoked {
    pub id: String,
}

/// Hands out the secret of a key Kiln created for the account, exactly once.
#[derive(Serialize, Deserialize)]
pub struct RevealKey {
    pub id: String,
}

#[derive(Serialize, Deserialize)]
pub struct Revealed {
    pub id: String,
    pub api_key: String,
}

/// A page of charges and credits, newest first.
#[derive(Serialize, Deserialize)]
pub struct ListUsage {
    pub page: UsagePage,
}

#[derive(Serialize, Deserialize)]
pub struct Usage {
    pub entries: Vec<UsageEntry>,
    pub has_more: bool,
}

/// What a ledger row records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LedgerKind {
    /// Credit an account starts with (trial or initial).
    Grant,
    /// A job's price reserved.
    Hold,
    /// A hold taken from the balance (the job completed).
    Capture,
    /// A hold given back (the job failed, timed out or was cancelled).
    Release,
    /// A Stripe payment.
    Topup,
    /// An operator's grant or correction (signed).
    Adjustment,
}

impl LedgerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LedgerKind::Grant => "grant",
            LedgerKind::Hold => "hold",
            LedgerKind::Capture => "capture",
            LedgerKind::Release => "release",
            LedgerKind::Topup => "topup",
            LedgerKind::Adjustment => "adjustment",
        }
    }
}

/// Where a job's hold stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldState {
    Held,
    Captured,
    Released,
}

impl HoldState {
    pub fn as_str(self) -> &'static str {
        match self {
            HoldState::Held => "held",
            HoldState::Captured => "captured",
            HoldState::Released => "released",
        }
    }
}

/// A ledger row as usage shows it: holds (with their state) and credits.
#[derive(Serialize, Deserialize)]
pub struct UsageEntry {
    pub seq: i64,
    pub ts_ms: i64,
    pub kind: LedgerKind,
    pub amount: MicroUsd,
    pub job_id: Option<String>,
    pub job_type: Option<String>,
    pub model_id: Option<String>,
    pub units: Option<f64>,
    pub prompt_preview: Option<String>,
    pub note: Option<String>,
    pub hold_state: Option<HoldState>,
    pub settled_at_ms: Option<i64>,
}

/// Starts a request under an `Idempotency-Key`.
#[derive(Serialize, Deserialize)]
pub struct IdemBegin {
    pub key: String,
    pub fingerprint: String,
}

/// Go ahead, or the stored response of the first request.
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

/// Stores the response of the first request under its key.
#[derive(Serialize, Deserialize)]
pub struct IdemFinish {
    pub key: String,
    pub status: u16,
    pub body: String,
    pub headers: Vec<(String, String)>,
}

/// Forgets a key whose request failed before it produced a response worth replaying.
#[derive(Serialize, Deserialize)]
pub struct IdemAbort {
    pub key: String,
}

#[derive(Serialize, Deserialize)]
pub struct Done;

/// A verified Stripe payment, applied once per event id.
#[derive(Serialize, Deserialize)]
pub struct TopUp {
    pub event_id: String,
    pub tier: String,
    pub amount: MicroUsd,
    /// The `sk-gen-` key a trial account receives on its first payment.
    pub gen_key: NewKey,
    pub gen_key_secret: String,
}

#[derive(Serialize, Deserialize)]
pub struct ToppedUp {
    /// False for an event applied before.
    pub applied: bool,
    /// The account was a trial and is now paid.
    pub converted: bool,
    pub gen_key_id: Option<String>,
}

/// An operator's grant (positive) or correction (negative).
#[derive(Serialize, Deserialize)]
pub struct Adjust {
    pub amount: MicroUsd,
    pub reason: String,
}

/// The webhook signing secrets, the first created on first use.
#[derive(Serialize, Deserialize)]
pub struct GetWebhookSecrets;

/// A new current secret; the old one keeps signing for a day.
#[derive(Serialize, Deserialize)]
pub struct RotateWebhookSecret;

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

/// Which list a file is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    /// Sent by the account (`POST /v1/uploads`).
    Upload,
    /// Made by one of the account's jobs.
    Output,
}

impl FileKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Upload => "upload",
            FileKind::Output => "output",
        }
    }
}

/// A file of the account, as its lists show it.
#[derive(Serialize, Deserialize, Clone)]
pub struct FileRecord {
    /// `up_…` for an upload, the job-derived name for an output.
    pub filename: String,
    pub kind: FileKind,
    pub sha256: String,
    /// `png`, `apng`, `jpeg`, `webp`, `gif`, `mp4`.
    pub format: String,
    pub content_type: String,
    pub width: u32,
    pub height: u32,
    pub frame_count: u32,
    pub size_bytes: u64,
    pub original_filename: Option<String>,
    pub job_id: Option<String>,
    pub created_at_ms: i64,
    /// After this the file answers 410 `expired` and is swept.
    pub expires_at_ms: i64,
}

/// Records an upload, unless the account already has the same bytes: then answers
/// that one (`deduplicated`).
#[derive(Serialize, Deserialize)]
pub struct RecordUpload {
    pub file: FileRecord,
}

#[derive(Serialize, Deserialize)]
pub struct Recorded {
    pub file: FileRecord,
    pub deduplicated: bool,
}

/// Records a completed job's outputs (again: a repeat changes nothing).
#[derive(Serialize, Deserialize)]
pub struct RecordOutputs {
    pub files: Vec<FileRecord>,
}

/// Checks that every one of `filenames` is a file of this account (an upload or an
/// output); 403 `file_not_yours` (`param: "input_files"`) naming the first that is not.
#[derive(Serialize, Deserialize)]
pub struct OwnFiles {
    pub filenames: Vec<String>,
}

#[derive(Serialize, Deserialize)]
pub struct Owned {
    pub files: Vec<FileRecord>,
}

/// A page of the account's files of one kind, newest first.
#[derive(Serialize, Deserialize)]
pub struct ListFiles {
    pub kind: FileKind,
    pub limit: u32,
    pub offset: u32,
}

#[derive(Serialize, Deserialize)]
pub struct Files {
    pub files: Vec<FileRecord>,
    pub has_more: bool,
}

/// Forgets one of the account's files, named by its filename or (without the
/// extension) its id; answers it (404 `file_not_found` when the account has no such
/// file). The caller deletes the bytes.
#[derive(Serialize, Deserialize)]
pub struct DeleteFile {
    pub kind: FileKind,
    pub name: String,
}

/// Opens a dashboard session acting as the live key with hash `key_hash`.
#[derive(Serialize, Deserialize)]
pub struct OpenSession {
    pub key_hash: KeyHash,
    pub session_hash: KeyHash,
    pub expires_at_ms: i64,
}

#[derive(Serialize, Deserialize)]
pub struct SessionOpened {
    pub key_id: String,
}

/// As [`Authenticate`], for a session token's hash: the session's key is checked and
/// rate-limited.
#[derive(Serialize, Deserialize)]
pub struct AuthenticateSession {
    pub hash: KeyHash,
    pub limit_per_min: u32,
}

/// Signs a session out (a session that is already gone changes nothing).
#[derive(Serialize, Deserialize)]
pub struct CloseSession {
    pub hash: KeyHash,
}

message!(AccountDo, Init => "/init", Created);
message!(AccountDo, OpenSession => "/sessions/open", SessionOpened);
message!(AccountDo, AuthenticateSession => "/sessions/auth", Principal);
message!(AccountDo, CloseSession => "/sessions/close", Done);
message!(AccountDo, RecordUpload => "/files/upload", Recorded);
message!(AccountDo, RecordOutputs => "/files/outputs", Done);
message!(AccountDo, ListFiles => "/files/list", Files);
message!(AccountDo, OwnFiles => "/files/own", Owned);
message!(AccountDo, DeleteFile => "/files/delete", FileRecord);
message!(AccountDo, Authenticate => "/auth", Principal);
message!(AccountDo, Hold => "/hold", Balances);
message!(AccountDo, Settle => "/settle", Settled);
message!(AccountDo, GetAccount => "/account", Account);
message!(AccountDo, ListKeys => "/keys/list", Keys);
message!(AccountDo, CreateKey => "/keys/create", KeyRecord);
message!(AccountDo, RevokeKey => "/keys/revoke", Revoked);
message!(AccountDo, RevealKey => "/keys/reveal", Revealed);
message!(AccountDo, ListUsage => "/usage", Usage);
message!(AccountDo, IdemBegin => "/idem/begin", IdemOutcome);
message!(AccountDo, IdemFinish => "/idem/finish", Done);
message!(AccountDo, IdemAbort => "/idem/abort", Done);
message!(AccountDo, TopUp => "/topup", ToppedUp);
message!(AccountDo, Adjust => "/adjust", Balances);
message!(AccountDo, GetWebhookSecrets => "/webhooks/secrets", WebhookSecrets);
message!(AccountDo, RotateWebhookSecret => "/webhooks/rotate", WebhookSecrets);
