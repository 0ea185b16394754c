//! `GET /health`: the edge and every origin the Dispatcher knows (configured or
//! registered by heartbeat), as its heartbeats describe it. An origin never heard from
//! is probed directly, with a short timeout so one dead origin cannot stall the answer.

use std::time::Duration;

use kiln_shared::origin::OriginHealth;
use kiln_shared::queue::OriginStatus;
use serde_json::{json, Value};
use worker::{Env, Method, Response};

use crate::api::catalog::{origin_object, registry};
use crate::durable::probe::proto::Ping;
use crate::platform::bindings;
use crate::platform::clock::now_ms;
use crate::platform::error::EdgeResult;
use crate::platform::http::{fetch_with_timeout, json, request};

/// An origin that takes longer than this to answer its health check counts as down.
const PROBE_TIMEOUT_MS: u64 = 2_000;

async fn probe(id: &str, url: &str) -> Value {
    let down = |why: String| json!({"id": id, "status": "down", "error": why});
    let req = match request(&format!("{url}/health"), Method::Get, &[], None) {
        Ok(r) => r,
        Err(e) => return down(format!("{e:?}")),
    };
    match fetch_with_timeout(req, Duration::from_millis(PROBE_TIMEOUT_MS)).await {
        Ok(Some(mut resp)) if resp.status_code() == 200 => {
            match resp.json::<OriginHealth>().await {
                // It answers, but says it cannot run jobs (e.g. no ComfyUI server ready).
                Ok(h) if h.status != "ok" => json!({
                    "id": id,
                    "status": "down",
                    "engine": h.engine,
                    "problem": h.problem.unwrap_or_else(|| format!("origin status {:?}", h.status)),
                }),
                Ok(h) => json!({
                    "id": id,
                    "status": "up",
                    "engine": h.engine,
                    "simulated": h.simulated,
                    "slots": h.slots,
                    "busy": h.busy,
                    "models": h.models,
                    "resident_models": h.resident_models,
                    "vram_free_gb": h.vram_free_gb,
                }),
                Err(e) => down(format!("unreadable health answer: {e}")),
            }
        }
        Ok(Some(resp)) => down(format!("answered {}", resp.status_code())),
        Ok(None) => down("timed out".into()),
        Err(e) => down(format!("{e:?}")),
    }
}

pub async fn handle(env: &Env) -> EdgeResult<Response> {
    let origins = registry(env).await?;
    let probes = origins.iter().map(|o| async move {
        if o.status == OriginStatus::Unknown {
            probe(&o.id, &o.url).await
        } else {
            origin_object(o)
        }
    });
    let results = futures_util::future::join_all(probes).await;
    let any_up = results.iter().any(|o| o["status"] == "up");
    json(
        200,
        &json!({
            "status": if any_up { "ok" } else { "degraded" },
            "service": "kiln-edge",
            "origins": results,
        }),
    )
}

/// `GET /health/durable-object`: one round trip to a Durable Object that does nothing.
pub async fn handle_durable_object(env: &Env) -> EdgeResult<Response> {
    let started = now_ms();
    bindings::probe(env)?.call(&Ping).await?;
    json(
        200,
        &json!({"status": "ok", "round_trip_ms": now_ms() - started}),
    )
}
