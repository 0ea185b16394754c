//! `GET /health`: what the edge's dispatcher reads to decide where jobs can go.

use axum::extract::State;
use axum::Json;
use kiln_shared::origin::OriginHealth;

use crate::startup::AppState;

pub async fn handle_health(State(state): State<AppState>) -> Json<OriginHealth> {
    let engine = &state.runner.engine;
    Json(OriginHealth {
        status: "ok".to_owned(),
        origin_id: state.runner.origin_id.clone(),
        engine: engine.name().to_owned(),
        simulated: engine.simulated(),
        slots: state.slots_total,
        busy: state.busy(),
        models: engine.models().iter().map(|m| (*m).to_owned()).collect(),
        // Only a real GPU engine can report this.
        vram_free_gb: None,
    })
}
