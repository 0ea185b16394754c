//! `GET /v1/models` (the catalog with each model's availability) and
//! `GET /v1/queue/status`. No auth: both help a client decide before it spends.

use kiln_shared::queue::{serves, OriginStatus};
use serde_json::{json, Value};
use worker::{Env, Response};

use crate::durable::dispatcher::proto::{GetQueueStatus, ListOrigins, OriginView};
use crate::platform::bindings;
use crate::platform::error::EdgeResult;
use crate::platform::http::json;

/// The Dispatcher's origin registry.
pub async fn registry(env: &Env) -> EdgeResult<Vec<OriginView>> {
    Ok(bindings::dispatcher(env)?.call(&ListOrigins).await?.origins)
}

/// An origin as `/health` shows it (without its URL).
pub fn origin_object(o: &OriginView) -> Value {
    json!({
        "id": o.id,
        "status": o.status,
        "engine": o.engine,
        "simulated": o.simulated,
        "slots": o.slots,
        "busy": o.busy,
        "models": o.models,
        "resident_models": o.resident_models,
        "vram_free_gb": o.vram_free_gb,
        "problem": o.problem,
        "last_heartbeat_at": o.last_heartbeat_at,
    })
}

pub async fn handle_models(env: &Env) -> EdgeResult<Response> {
    let origins = registry(env).await?;
    // Available: some origin serving the model is up.
    let catalog: Value = kiln_shared::catalog::models(|m| {
        origins
            .iter()
            .any(|o| o.status == OriginStatus::Up && serves(&o.models, m))
    });
    json(200, &catalog)
}

pub async fn handle_queue_status(env: &Env) -> EdgeResult<Response> {
    let status = bindings::dispatcher(env)?.call(&GetQueueStatus).await?;
    json(200, &status)
}
