//! The HTTP routes, each also under `/api`, and the listener that can play unreachable.
//!
//! Here: the router, the response helpers, and the server's own routes (`/system_stats`,
//! `/features`, `/object_info`, `/models`, `/free`). In `files.rs` uploads and `/view`; in
//! `prompt.rs` `POST /prompt`; in `queue.rs` the queue, history, interrupts and
//! `/api/jobs`; in `listener.rs` the listener.

mod files;
mod listener;
mod prompt;
mod queue;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Map, Value};

pub(crate) use self::files::{annotated_file, normalize_subfolder};
use self::files::{upload_image, view};
pub(crate) use self::listener::DownListener;
use self::prompt::{post_prompt, prompt_info};
use self::queue::{
    cancel_job, history, history_one, history_post, interrupt, job, jobs, queue, queue_post,
};
use super::graph::{self, MODEL_FOLDERS};
use super::state::{Inner, Shared};
use super::BODY_LIMIT;

pub(crate) fn router(sh: Arc<Shared>) -> Router {
    let api = routes()
        .route("/jobs", get(jobs))
        .route("/jobs/{id}", get(job))
        .route("/jobs/{id}/cancel", post(cancel_job));
    Router::new()
        .merge(routes())
        .nest("/api", api)
        .layer(middleware::from_fn_with_state(sh.clone(), delay))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(sh)
}

fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/system_stats", get(system_stats))
        .route("/features", get(features))
        .route("/object_info", get(object_info_all))
        .route("/object_info/{class}", get(object_info_one))
        .route("/models", get(model_folders))
        .route("/models/{folder}", get(models))
        .route("/upload/image", post(upload_image))
        .route("/prompt", get(prompt_info).post(post_prompt))
        .route("/history", get(history).post(history_post))
        .route("/history/{id}", get(history_one))
        .route("/view", get(view))
        .route("/interrupt", post(interrupt))
        .route("/queue", get(queue).post(queue_post))
        .route("/free", post(free))
        .route("/ws", get(super::ws::route))
}

/// The slow-server switch: every HTTP answer but the websocket's waits first.
async fn delay(State(sh): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if path != "/ws" && path != "/api/ws" {
        let ms = sh.delay_ms.load(Ordering::SeqCst);
        if ms > 0 {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
    }
    next.run(req).await
}

pub(super) fn json_resp(status: StatusCode, v: &Value) -> Response {
    raw_json(status, v.to_string())
}

pub(super) fn raw_json(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body,
    )
        .into_response()
}

pub(super) fn ok(v: Value) -> Response {
    json_resp(StatusCode::OK, &v)
}

/// A status with an empty body, as ComfyUI's `web.Response(status=…)`.
pub(super) fn empty(status: StatusCode) -> Response {
    status.into_response()
}

async fn system_stats(State(sh): State<Arc<Shared>>) -> Response {
    let o = &sh.opts;
    let cuda = o.device_name.starts_with("cuda");
    ok(json!({
        "system": {
            "os": "linux",
            "ram_total": 135_089_319_936u64,
            "ram_free": 128_849_018_880u64,
            "comfyui_version": o.version,
            "required_frontend_version": "1.45.19",
            "installed_templates_version": "0.10.7",
            "required_templates_version": "0.10.7",
            "python_version": "3.11.2 (main, Apr 28 2025, 14:11:48) [GCC 12.2.0]",
            "pytorch_version": "2.11.0+cu130",
            "embedded_python": false,
            "argv": ["main.py", "--listen", "127.0.0.1", "--port", "8188", "--disable-api-nodes"],
        },
        "devices": [{
            "name": o.device_name,
            "type": if cuda { "cuda" } else { "cpu" },
            "index": if cuda { json!(0) } else { Value::Null },
            "vram_total": o.vram_total,
            "vram_free": o.vram_free,
            "torch_vram_total": o.vram_total.saturating_sub(o.vram_free),
            "torch_vram_free": 0,
        }],
    }))
}

async fn features() -> Response {
    ok(json!({
        "supports_preview_metadata": true,
        "max_upload_size": BODY_LIMIT,
        "extension": {"manager": {"supports_v4": true}},
        "node_replacements": true,
        "assets": false,
    }))
}

/// `LoadImage`'s choices: the input files, `subfolder/name` where in a subfolder.
fn input_names(inner: &Inner) -> Vec<String> {
    let mut names: Vec<String> = inner
        .files
        .keys()
        .filter(|(kind, _, _)| kind == "input")
        .map(|(_, sub, name)| {
            if sub.is_empty() {
                name.clone()
            } else {
                format!("{sub}/{name}")
            }
        })
        .collect();
    names.sort();
    names
}

pub(super) fn info_now(sh: &Shared) -> Map<String, Value> {
    let (models, inputs) = {
        let inner = sh.lock();
        (inner.models.clone(), input_names(&inner))
    };
    graph::object_info(&sh.snapshot, &models, &inputs)
}

async fn object_info_all(State(sh): State<Arc<Shared>>) -> Response {
    ok(Value::Object(info_now(&sh)))
}

async fn object_info_one(State(sh): State<Arc<Shared>>, Path(class): Path<String>) -> Response {
    let mut info = info_now(&sh);
    match info.remove(&class) {
        Some(v) => ok(json!({ class: v })),
        None => ok(json!({})),
    }
}

async fn model_folders() -> Response {
    ok(json!(MODEL_FOLDERS))
}

async fn models(State(sh): State<Arc<Shared>>, Path(folder): Path<String>) -> Response {
    let inner = sh.lock();
    match inner.models.get(&folder) {
        Some(files) => ok(json!(files)),
        None if MODEL_FOLDERS.contains(&folder.as_str()) => ok(json!([])),
        None => empty(StatusCode::NOT_FOUND),
    }
}

async fn free() -> Response {
    empty(StatusCode::OK)
}
