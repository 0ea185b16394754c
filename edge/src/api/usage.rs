//! `GET /v1/usage?limit=50&cursor=`: charges and credits, newest first. A charge whose
//! job failed, timed out or was cancelled shows as refunded.

use kiln_shared::query::UsagePage;
use kiln_shared::time::rfc3339;
use serde_json::{json, Value};
use worker::{Request, Response};

use crate::api::auth::Caller;
use crate::durable::account::proto::{HoldState, LedgerKind, ListUsage, UsageEntry};
use crate::platform::error::EdgeResult;
use crate::platform::http::{json, query_param};

pub async fn handle_list(req: &Request, caller: &Caller) -> EdgeResult<Response> {
    let page = UsagePage::parse(
        query_param(req, "limit")?.as_deref(),
        query_param(req, "cursor")?.as_deref(),
    )?;
    let usage = caller.account.call(&ListUsage { page }).await?;
    let next_cursor = if usage.has_more {
        usage.entries.last().map(|e| UsagePage::cursor_after(e.seq))
    } else {
        None
    };
    let data: Vec<Value> = usage.entries.iter().map(usage_object).collect();
    json(
        200,
        &json!({"object": "list", "data": data, "has_more": usage.has_more, "next_cursor": next_cursor}),
    )
}

/// A ledger row as the API shows it: charges with their state (a released hold is a
/// refund), and credits with their source.
fn usage_object(e: &UsageEntry) -> Value {
    let id = UsagePage::cursor_after(e.seq);
    let ts = rfc3339(e.ts_ms);
    if e.kind == LedgerKind::Hold {
        let status = match e.hold_state {
            Some(HoldState::Captured) => "charged",
            Some(HoldState::Released) => "refunded",
            Some(HoldState::Held) | None => "pending",
        };
        return json!({
            "id": id,
            "type": "charge",
            "status": status,
            "refunded": status == "refunded",
            "job_id": e.job_id,
            "job_type": e.job_type,
            "model_id": e.model_id,
            "units": e.units,
            "cost_usd": e.amount.to_usd_json(),
            "prompt_preview": e.prompt_preview,
            "ts": ts,
            "settled_at": e.settled_at_ms.map(rfc3339),
        });
    }
    let source = match e.kind {
        LedgerKind::Topup => "top_up",
        LedgerKind::Adjustment => "adjustment",
        _ => "grant",
    };
    json!({
        "id": id,
        "type": "credit",
        "source": source,
        "amount_usd": e.amount.to_usd_json(),
        "note": e.note,
        "ts": ts,
    })
}
