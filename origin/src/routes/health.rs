//! `GET /health`: what the edge's dispatcher reads to decide where jobs can go.

use axum::extract::State;
use axum::Json;
use kiln_shared::origin::OriginHealth;

use crate::startup::AppState;

pub async fn handle_health(State(state): State<AppState>) -> Json<OriginHealth> {
    Json(state.health())
}
