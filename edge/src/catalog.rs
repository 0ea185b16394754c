//! `GET /v1/models` (the catalog with each model's availability) and
//! `GET /v1/queue/status`. No auth: both help a client decide before it spends.

use serde_json::Value;
use worker::{Env, Method, Response};

use crate::dispatcher_do::{dispatcher_stub, serving, OriginView, QueueStatus};
use crate::error::EdgeResult;
use crate::http::{call_do, json};

/// The Dispatcher's origin registry.
pub async fn registry(env: &Env) -> EdgeResult<Vec<OriginView>> {
    call_do(&dispatcher_stub(env)?, Method::Get, "/origins", None).await
}

pub async fn handle_models(env: &Env) -> EdgeResult<Response> {
    let origins = registry(env).await?;
    let catalog: Value = kiln_shared::catalog::models(|m| serving(&origins, m));
    json(200, &catalog)
}

pub async fn handle_queue_status(env: &Env) -> EdgeResult<Response> {
    let status: QueueStatus = call_do(&dispatcher_stub(env)?, Method::Get, "/status", None).await?;
    json(200, &status)
}
