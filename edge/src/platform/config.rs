//! The edge's configuration, from Worker vars and secrets (`wrangler.toml` `[vars]`,
//! `wrangler secret put`, or `wrangler dev --var` locally). Read per request: bindings
//! are cheap and this keeps no state in the isolate.

use kiln_shared::signing::Keyring;
use worker::Env;

use crate::platform::error::EdgeResult;

/// How long a synchronous generation waits before answering 202 with the job:
/// under the 100 s at which proxies and no-code clouds cut requests.
pub const SYNC_WAIT_SECS_DEFAULT: u64 = 90;
/// A job that has not ended after this long is failed with 504 and refunded.
pub const JOB_TIMEOUT_SECS_DEFAULT: u64 = 600;

fn string(env: &Env, name: &str) -> Option<String> {
    env.secret(name)
        .map(|s| s.to_string())
        .or_else(|_| env.var(name).map(|v| v.to_string()))
        .ok()
        .filter(|s| !s.is_empty())
}

fn required(env: &Env, name: &str) -> EdgeResult<String> {
    string(env, name)
        .ok_or_else(|| worker::Error::RustError(format!("config {name} is not set")).into())
}

fn keyring(env: &Env, name: &str) -> EdgeResult<Keyring> {
    Keyring::parse(&required(env, name)?)
        .map_err(|e| worker::Error::RustError(format!("config {name}: {e}")).into())
}

/// Signs what the edge sends to origins.
pub fn edge_to_origin_keys(env: &Env) -> EdgeResult<Keyring> {
    keyring(env, "EDGE_TO_ORIGIN_KEYS")
}

/// Verifies what origins send to the edge.
pub fn origin_to_edge_keys(env: &Env) -> EdgeResult<Keyring> {
    keyring(env, "ORIGIN_TO_EDGE_KEYS")
}

/// The GPU origins, `id=url` pairs separated by commas (`origin-1=http://127.0.0.1:8788`).
pub fn origins(env: &Env) -> EdgeResult<Vec<(String, String)>> {
    let spec = required(env, "ORIGINS")?;
    Ok(spec
        .split(',')
        .filter_map(|entry| {
            let (id, url) = entry.trim().split_once('=')?;
            Some((
                id.trim().to_owned(),
                url.trim().trim_end_matches('/').to_owned(),
            ))
        })
        .collect())
}

/// No duration setting goes beyond a year, so `secs * 1000` and `now + ms` stay far
/// from overflow whatever an operator types.
const SECS_MAX: u64 = 365 * 24 * 3600;

fn secs(env: &Env, name: &str, default: u64) -> u64 {
    string(env, name)
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(default)
        .min(SECS_MAX)
}

/// A running job whose origin sends no heartbeat listing it for this long is taken
/// back (`docs/architecture.md`, "6. Lost origins").
pub const LEASE_SECS_DEFAULT: u64 = 30;
/// Event streams send a `ping` this often.
pub const SSE_PING_SECS_DEFAULT: u64 = 15;

pub fn lease_secs(env: &Env) -> u64 {
    secs(env, "LEASE_SECS", LEASE_SECS_DEFAULT).max(1)
}

pub fn sse_ping_secs(env: &Env) -> u64 {
    secs(env, "SSE_PING_SECS", SSE_PING_SECS_DEFAULT).max(1)
}

/// Uploads and outputs are kept this long, then answer 410 and are swept.
pub const FILE_RETENTION_SECS_DEFAULT: u64 = 7 * 24 * 3600;

/// How long files are kept, in ms (`FILE_RETENTION_SECS`, at least 1 s).
pub fn file_retention_ms(env: &Env) -> i64 {
    let secs = secs(env, "FILE_RETENTION_SECS", FILE_RETENTION_SECS_DEFAULT).max(1);
    i64::try_from(secs * 1000).unwrap_or(i64::MAX)
}

pub fn sync_wait_secs(env: &Env) -> u64 {
    secs(env, "SYNC_WAIT_SECS", SYNC_WAIT_SECS_DEFAULT)
}

pub fn job_timeout_secs(env: &Env) -> u64 {
    secs(env, "JOB_TIMEOUT_SECS", JOB_TIMEOUT_SECS_DEFAULT)
}

/// Requests per minute per API key (a token bucket of that size).
pub fn rate_limit_per_min(env: &Env) -> u32 {
    string(env, "RATE_LIMIT_PER_MIN")
        .and_then(|s| s.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(kiln_shared::ratelimit::LIMIT_PER_MIN_DEFAULT)
}

/// The Stripe endpoint secret (`whsec_…`) that signs billing webhooks.
pub fn stripe_webhook_secret(env: &Env) -> EdgeResult<String> {
    required(env, "STRIPE_WEBHOOK_SECRET")
}

/// Stripe's secret API key, for creating Checkout sessions; unset (a local stack) means
/// the dashboard cannot sell credits.
pub fn stripe_secret_key(env: &Env) -> Option<String> {
    string(env, "STRIPE_SECRET_KEY")
}

/// The operator token for `/admin/*`; unset means the admin routes refuse everyone.
pub fn admin_token(env: &Env) -> Option<String> {
    string(env, "ADMIN_TOKEN")
}

/// Webhook destinations allowed although private (`WEBHOOK_ALLOW_HOSTS`: hostnames, IPs
/// or CIDRs, comma-separated). Unset or malformed allows nothing extra; a malformed
/// setting is logged.
pub fn webhook_allow_list(env: &Env) -> kiln_shared::webhooks::AllowList {
    let spec = string(env, "WEBHOOK_ALLOW_HOSTS").unwrap_or_default();
    kiln_shared::webhooks::AllowList::parse(&spec).unwrap_or_else(|e| {
        worker::console_error!("WEBHOOK_ALLOW_HOSTS: {e}");
        kiln_shared::webhooks::AllowList::default()
    })
}

/// Webhook retry delays in ms (`WEBHOOK_RETRY_SCHEDULE_MS`, for tests); the API's
/// schedule (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h) otherwise.
pub fn webhook_retry_schedule_ms(env: &Env) -> Vec<u64> {
    string(env, "WEBHOOK_RETRY_SCHEDULE_MS")
        .and_then(|s| kiln_shared::webhooks::parse_schedule(&s))
        .unwrap_or_else(kiln_shared::webhooks::default_schedule_ms)
}
