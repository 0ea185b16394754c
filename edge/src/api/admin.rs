//! `POST /admin/accounts/{id}/credits`: an operator's grant or correction, with a
//! reason kept in the ledger. Authorized by the `ADMIN_TOKEN` secret, compared in
//! constant time; with no token configured the route refuses everyone.

use kiln_shared::accounts::Adjustment;
use kiln_shared::fields::Fields;
use kiln_shared::ids::{AccountId, JobId};
use kiln_shared::jobs::JobType;
use kiln_shared::keys::{bearer, secrets_equal};
use kiln_shared::money::MicroUsd;
use kiln_shared::{ApiError, ErrorCode};
use serde_json::json;
use worker::{Env, Request, Response};

use crate::durable::account::proto::{Adjust, Hold, Settle};
use crate::durable::probe::proto::Ping;
use crate::platform::bindings;
use crate::platform::clock::{now_ms, random_bytes};
use crate::platform::config;
use crate::platform::error::EdgeResult;
use crate::platform::http::{json, json_body};

const BODY_BYTES_MAX: usize = 4 * 1024;

fn require_admin(req: &Request, env: &Env) -> EdgeResult<()> {
    let token = config::admin_token(env);
    let header = req.headers().get("authorization")?;
    let presented = bearer(header.as_deref());
    let authorized =
        matches!((token.as_deref(), presented), (Some(t), Some(p)) if secrets_equal(t, p));
    if !authorized {
        return Err(ApiError::new(
            401,
            ErrorCode::InvalidAdminToken,
            "This route needs the operator's admin token.",
        )
        .into());
    }
    Ok(())
}

pub async fn handle_credits(mut req: Request, env: &Env, id: &str) -> EdgeResult<Response> {
    require_admin(&req, env)?;
    let account = AccountId::parse(id)
        .ok_or_else(|| ApiError::not_found(ErrorCode::AccountNotFound, "No such account."))?;
    let body = json_body(&mut req, BODY_BYTES_MAX).await?;
    let Adjustment { amount, reason } = Adjustment::parse(&body)?;
    let balances = bindings::account(env, &account)?
        .call(&Adjust { amount, reason })
        .await?;
    json(
        200,
        &json!({
            "account_id": account,
            "balance_usd": balances.balance.to_usd_json(),
            "held_usd": balances.held.to_usd_json(),
        }),
    )
}

/// `POST /admin/files/sweep`: runs the file sweep of the Cron Trigger now and answers
/// how many expired files lost their bytes.
pub async fn handle_sweep(req: &Request, env: &Env) -> EdgeResult<Response> {
    require_admin(req, env)?;
    let swept = crate::api::outputs::sweep(env).await?;
    json(200, &json!({"swept": swept}))
}

/// Holds per benchmark request: each hold and its release is one Durable Object call,
/// and a Worker request may make at most 1000 subrequests.
const BENCH_HOLDS_MAX: i64 = 450;
/// In-flight holds at most; one Account DO serialises them anyway.
const BENCH_CONCURRENCY_MAX: i64 = 256;

/// The baseline for the ledger numbers: the same loop against the no-op Probe DO.
async fn probe_bench(env: &Env, calls: i64, concurrency: usize) -> EdgeResult<Response> {
    use futures_util::stream::{self, StreamExt, TryStreamExt};
    let probe = bindings::probe(env)?;
    let started = now_ms();
    stream::iter(0..calls)
        .map(|_| probe.call(&Ping))
        .buffer_unordered(concurrency)
        .try_collect::<Vec<_>>()
        .await?;
    let elapsed_ms = (now_ms() - started).max(1);
    json(
        200,
        &json!({"calls": calls, "concurrency": concurrency, "elapsed_ms": elapsed_ms,
                "calls_per_sec": calls as f64 * 1000.0 / elapsed_ms as f64}),
    )
}

/// `POST /admin/ledger-bench {"account_id", "holds", "concurrency", "target"}`: places `holds`
/// holds of 1 µ$ on one account, `concurrency` at a time, then releases them all, and
/// reports holds per second as measured inside the Worker. An operator diagnostic for
/// the ledger's throughput on one account; it leaves its (released) rows in that
/// account's ledger, so point it at a benchmark account. `"target": "probe"` runs the
/// same loop against the no-op Probe DO instead: the baseline.
pub async fn handle_ledger_bench(mut req: Request, env: &Env) -> EdgeResult<Response> {
    use futures_util::stream::{self, StreamExt, TryStreamExt};

    require_admin(&req, env)?;
    let body = json_body(&mut req, BODY_BYTES_MAX).await?;
    let mut f = Fields::from_body(&body)?;
    let account = f
        .string("account_id")?
        .and_then(|s| AccountId::parse(&s))
        .ok_or_else(|| {
            ApiError::invalid_param(
                "account_id",
                ErrorCode::InvalidValue,
                "`account_id` must be an account id.",
            )
        })?;
    let holds = f.int("holds")?.unwrap_or(BENCH_HOLDS_MAX);
    let probe_only = match f.string("target")?.as_deref() {
        None | Some("ledger") => false,
        Some("probe") => true,
        Some(_) => {
            return Err(ApiError::invalid_param(
                "target",
                ErrorCode::InvalidValue,
                "`target` must be \"ledger\" or \"probe\".",
            )
            .into())
        }
    };
    let concurrency = f.int("concurrency")?.unwrap_or(1);
    if !(1..=BENCH_HOLDS_MAX).contains(&holds) {
        return Err(ApiError::invalid_param(
            "holds",
            ErrorCode::OutOfRange,
            format!("`holds` must be 1–{BENCH_HOLDS_MAX}."),
        )
        .into());
    }
    if !(1..=BENCH_CONCURRENCY_MAX).contains(&concurrency) {
        return Err(ApiError::invalid_param(
            "concurrency",
            ErrorCode::OutOfRange,
            format!("`concurrency` must be 1–{BENCH_CONCURRENCY_MAX}."),
        )
        .into());
    }
    f.finish()?;
    if probe_only {
        return probe_bench(env, holds, concurrency as usize).await;
    }
    let ledger = bindings::account(env, &account)?;
    let jobs: Vec<JobId> = (0..holds)
        .map(|_| JobId::generate(now_ms() as u64, random_bytes()))
        .collect();

    let started = now_ms();
    stream::iter(&jobs)
        .map(|job_id| {
            let hold = Hold {
                job_id: job_id.clone(),
                amount: MicroUsd::from_micros(1),
                job_type: JobType::Image,
                model_id: "ledger-bench".into(),
                units: 0.0,
                prompt_preview: String::new(),
            };
            let ledger = &ledger;
            async move { ledger.call(&hold).await }
        })
        .buffer_unordered(concurrency as usize)
        .try_collect::<Vec<_>>()
        .await?;
    let hold_ms = (now_ms() - started).max(1);

    let started = now_ms();
    stream::iter(&jobs)
        .map(|job_id| {
            let settle = Settle {
                job_id: job_id.clone(),
                capture: false,
            };
            let ledger = &ledger;
            async move { ledger.call(&settle).await }
        })
        .buffer_unordered(concurrency as usize)
        .try_collect::<Vec<_>>()
        .await?;
    let release_ms = (now_ms() - started).max(1);

    json(
        200,
        &json!({
            "holds": holds,
            "concurrency": concurrency,
            "hold_elapsed_ms": hold_ms,
            "holds_per_sec": holds as f64 * 1000.0 / hold_ms as f64,
            "release_elapsed_ms": release_ms,
            "releases_per_sec": holds as f64 * 1000.0 / release_ms as f64,
        }),
    )
}
