//! The HTTP routes, each also under `/api`, and the listener that can play unreachable.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use http_body::{Body as HttpBody, Frame, SizeHint};
use serde_json::{json, Map, Value};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use super::graph::{self, MODEL_FOLDERS};
use super::{
    is_canonical_uuid, now_ms, push_bounded, uuid4, Dequeued, FileKey, Inner, Job, LoggedUpload,
    PromptTiming, Script, Shared, BODY_LIMIT, MAX_LOG, MAX_PENDING, MAX_UPLOAD_LOG,
};

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

fn json_resp(status: StatusCode, v: &Value) -> Response {
    raw_json(status, v.to_string())
}

fn raw_json(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body,
    )
        .into_response()
}

fn ok(v: Value) -> Response {
    json_resp(StatusCode::OK, &v)
}

/// A status with an empty body, as ComfyUI's `web.Response(status=…)`.
fn empty(status: StatusCode) -> Response {
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

fn info_now(sh: &Shared) -> Map<String, Value> {
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

/// A subfolder relative to a type's folder, normalised (`""` at the top); `None` when it
/// would leave that folder.
pub(crate) fn normalize_subfolder(s: &str) -> Option<String> {
    if s.starts_with('/') || s.contains('\\') || s.contains('\0') {
        return None;
    }
    let mut parts: Vec<&str> = Vec::new();
    for p in s.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

/// `"sub/name.png [output]"` → `("output", "sub", "name.png")`, `default_kind` without an
/// annotation.
pub(crate) fn annotated_file(name: &str, default_kind: &str) -> Option<(String, String, String)> {
    let mut kind = default_kind;
    let mut name = name;
    for k in ["input", "output", "temp"] {
        if let Some(n) = name.strip_suffix(&format!(" [{k}]")) {
            kind = k;
            name = n;
        }
    }
    let full = normalize_subfolder(name)?;
    let (sub, file) = match full.rsplit_once('/') {
        Some((s, f)) => (s.to_string(), f.to_string()),
        None => (String::new(), full),
    };
    if file.is_empty() {
        return None;
    }
    Some((kind.to_string(), sub, file))
}

async fn upload_image(State(sh): State<Arc<Shared>>, mut mp: Multipart) -> Response {
    let mut image: Option<(String, Vec<u8>)> = None;
    let (mut kind, mut subfolder, mut overwrite) = ("input".to_string(), String::new(), false);
    loop {
        let field = match mp.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(_) => return empty(StatusCode::BAD_REQUEST),
        };
        let name = field.name().unwrap_or("").to_string();
        match name.as_str() {
            "image" => {
                let file = field.file_name().unwrap_or("").to_string();
                match field.bytes().await {
                    Ok(b) => image = Some((file, b.to_vec())),
                    Err(_) => return empty(StatusCode::BAD_REQUEST),
                }
            }
            "type" | "subfolder" | "overwrite" => {
                let Ok(text) = field.text().await else {
                    return empty(StatusCode::BAD_REQUEST);
                };
                match name.as_str() {
                    "type" => kind = text,
                    "subfolder" => subfolder = text,
                    _ => overwrite = text == "true" || text == "1",
                }
            }
            _ => {}
        }
    }
    let Some((file, bytes)) = image else {
        return empty(StatusCode::BAD_REQUEST);
    };
    let file = file.rsplit(['/', '\\']).next().unwrap_or("").to_string();
    if file.is_empty() || file == "." || file == ".." {
        return empty(StatusCode::BAD_REQUEST);
    }
    if !["input", "temp", "output"].contains(&kind.as_str()) {
        return empty(StatusCode::BAD_REQUEST);
    }
    let Some(sub) = normalize_subfolder(&subfolder) else {
        return empty(StatusCode::BAD_REQUEST);
    };
    let bytes = Arc::new(bytes);
    let mut inner = sh.lock();
    let mut name = file.clone();
    if !overwrite {
        // Python's os.path.splitext: the extension starts at the last dot, not a leading one.
        let (stem, ext) = match file.rfind('.') {
            Some(i) if i > 0 => file.split_at(i),
            _ => (file.as_str(), ""),
        };
        let mut i = 1;
        while let Some((_, existing)) = inner.files.get(&(kind.clone(), sub.clone(), name.clone()))
        {
            if **existing == *bytes || i > 10_000 {
                break;
            }
            name = format!("{stem} ({i}){ext}");
            i += 1;
        }
    }
    inner.put_file((kind.clone(), sub.clone(), name.clone()), bytes.clone());
    push_bounded(
        &mut inner.upload_log,
        LoggedUpload {
            name: name.clone(),
            subfolder: sub.clone(),
            kind: kind.clone(),
            bytes,
        },
        MAX_UPLOAD_LOG,
    );
    ok(json!({"name": name, "subfolder": sub, "type": kind}))
}

async fn prompt_info(State(sh): State<Arc<Shared>>) -> Response {
    let n = sh.lock().queue_remaining();
    ok(json!({"exec_info": {"queue_remaining": n}}))
}

async fn post_prompt(State(sh): State<Arc<Shared>>, body: Bytes) -> Response {
    // The whole body has been read: the prompt has arrived.
    let received = Instant::now();
    let req = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(m)) => m,
        _ => {
            return json_resp(
                StatusCode::BAD_REQUEST,
                &graph::invalid_prompt("Invalid JSON", "The body must be a JSON object"),
            )
        }
    };
    let script = {
        let mut inner = sh.lock();
        push_bounded(&mut inner.prompt_log, Value::Object(req.clone()), MAX_LOG);
        inner.scripts.pop_front().unwrap_or(Script::Clean)
    };
    let bad = |v: Value| json_resp(StatusCode::BAD_REQUEST, &v);
    let Some(prompt) = req.get("prompt") else {
        return bad(graph::no_prompt());
    };
    let Some(prompt) = prompt.as_object() else {
        return bad(graph::invalid_prompt(
            "The prompt must be an object of nodes",
            "",
        ));
    };
    let prompt_id = match req.get("prompt_id") {
        None => uuid4(),
        Some(Value::String(s)) if is_canonical_uuid(s) => s.clone(),
        Some(_) => return bad(graph::invalid_prompt_id()),
    };
    let partial: Option<Vec<String>> = req
        .get("partial_execution_targets")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        });

    let info = info_now(&sh);
    let validated = {
        let inner = sh.lock();
        let exists = |name: &str| {
            annotated_file(name, "input").is_some_and(|key| inner.files.contains_key(&key))
        };
        graph::validate(&info, prompt, partial.as_deref(), &exists)
    };
    let validated = match validated {
        Ok(v) => v,
        Err(body) => return bad(body),
    };
    let node_errors = match script {
        Script::Invalid => {
            let errs = graph::scripted_node_errors(&info, prompt, &validated.outputs);
            return bad(graph::refusal(
                json!({"type": "prompt_outputs_failed_validation",
                       "message": "Prompt outputs failed validation", "details": "", "extra_info": {}}),
                errs,
            ));
        }
        Script::NodeErrors => graph::scripted_node_errors(&info, prompt, &validated.outputs),
        _ => validated.node_errors,
    };

    let mut inner = sh.lock();
    if inner.pending.len() >= MAX_PENDING {
        return json_resp(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"error": {"type": "queue_full", "message": "The fake server's queue is full",
                              "details": "", "extra_info": {}}, "node_errors": {}}),
        );
    }
    let number = match req.get("number") {
        Some(n) => {
            let x = match n {
                Value::String(s) => s.trim().parse::<f64>().ok(),
                other => other.as_f64(),
            };
            match x {
                Some(x) => json!(x),
                None => {
                    return bad(graph::invalid_prompt("number must be a number", ""));
                }
            }
        }
        None => {
            let n = inner.next_number as i64;
            inner.next_number += 1;
            if req.get("front").and_then(Value::as_bool) == Some(true) {
                json!(-n)
            } else {
                json!(n)
            }
        }
    };
    let create_time = now_ms();
    let mut extra_data = req
        .get("extra_data")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if let Some(c) = req.get("client_id") {
        extra_data.insert("client_id".into(), c.clone());
    }
    extra_data.insert("create_time".into(), json!(create_time));
    let job = Job {
        id: prompt_id.clone(),
        number: number.clone(),
        graph: prompt.clone(),
        client_id: req
            .get("client_id")
            .and_then(Value::as_str)
            .map(String::from),
        extra_data,
        outputs: validated.outputs,
        script,
        create_time,
    };
    push_bounded(
        &mut inner.timings,
        PromptTiming {
            prompt_id: prompt_id.clone(),
            received,
            view_served: None,
        },
        MAX_LOG,
    );
    inner.pending.push_back(Arc::new(job));
    inner.broadcast_status();
    drop(inner);
    sh.wake.notify_one();
    ok(json!({"prompt_id": prompt_id, "number": number, "node_errors": node_errors}))
}

/// An object whose keys keep the history's order (serde_json's map would sort them).
fn ordered_object<'a>(entries: impl Iterator<Item = (&'a String, &'a Value)>) -> String {
    let parts: Vec<String> = entries
        .map(|(k, v)| format!("{}:{}", Value::String(k.clone()), v))
        .collect();
    format!("{{{}}}", parts.join(","))
}

async fn history(
    State(sh): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let inner = sh.lock();
    let len = inner.history.len() as i64;
    let max_items = q.get("max_items").and_then(|s| s.parse::<i64>().ok());
    let mut offset = q
        .get("offset")
        .and_then(|s| s.parse::<i64>().ok())
        .unwrap_or(-1);
    if offset < 0 {
        offset = match max_items {
            Some(m) => len - m,
            None => 0,
        };
    }
    let take = max_items.map_or(usize::MAX, |m| m.max(0) as usize);
    let body = ordered_object(
        inner
            .history
            .iter()
            .skip(offset.max(0) as usize)
            .take(take)
            .map(|(k, v)| (k, v)),
    );
    raw_json(StatusCode::OK, body)
}

async fn history_one(State(sh): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let inner = sh.lock();
    match inner.history.iter().find(|(k, _)| *k == id) {
        Some((k, v)) => ok(json!({ k.clone(): v })),
        None => ok(json!({})),
    }
}

async fn history_post(State(sh): State<Arc<Shared>>, body: Bytes) -> Response {
    let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut inner = sh.lock();
    if req.get("clear").and_then(Value::as_bool) == Some(true) {
        inner.history.clear();
    }
    if let Some(ids) = req.get("delete").and_then(Value::as_array) {
        let ids: Vec<&str> = ids.iter().filter_map(Value::as_str).collect();
        inner.history.retain(|(k, _)| !ids.contains(&k.as_str()));
    }
    empty(StatusCode::OK)
}

fn content_type(file: &str) -> &'static str {
    let ext = file.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("webp") => "image/webp",
        Some("gif") => "image/gif",
        Some("mp4") => "video/mp4",
        Some("webm") => "video/webm",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

async fn view(State(sh): State<Arc<Shared>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let Some(filename) = q.get("filename") else {
        return empty(StatusCode::NOT_FOUND);
    };
    let mut kind = q.get("type").map(String::as_str).unwrap_or("output");
    let mut filename = filename.as_str();
    for k in ["input", "output", "temp"] {
        if let Some(f) = filename.strip_suffix(&format!(" [{k}]")) {
            kind = k;
            filename = f;
        }
    }
    if filename.is_empty() || filename.starts_with('/') || filename.contains("..") {
        return empty(StatusCode::BAD_REQUEST);
    }
    if !["input", "output", "temp"].contains(&kind) {
        return empty(StatusCode::BAD_REQUEST);
    }
    let sub = q.get("subfolder").map(String::as_str).unwrap_or("");
    let Some(sub) = normalize_subfolder(sub) else {
        return empty(StatusCode::FORBIDDEN);
    };
    let full = if sub.is_empty() {
        filename.to_string()
    } else {
        format!("{sub}/{filename}")
    };
    let Some((_, sub, file)) = annotated_file(&full, kind) else {
        return empty(StatusCode::NOT_FOUND);
    };
    let key = (kind.to_string(), sub, file.clone());
    let bytes = {
        let inner = sh.lock();
        match inner.files.get(&key) {
            Some((_, b)) => b.clone(),
            None => return empty(StatusCode::NOT_FOUND),
        }
    };
    let body = TimedBody {
        bytes: Some(Bytes::from(bytes.to_vec())),
        served: Some((sh.clone(), key)),
    };
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type(&file).to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("filename=\"{}\"", file.replace('"', "")),
            ),
        ],
        Body::new(body),
    )
        .into_response()
}

/// A `/view` body (one frame) that records, in the prompt's [`super::PromptTiming`], the
/// instant hyper polls its bytes to write them: as close to "the answer was sent" as an
/// axum handler can see (the socket write follows in the same task, on loopback at once
/// for the small files a benchmark fetches).
struct TimedBody {
    bytes: Option<Bytes>,
    served: Option<(Arc<Shared>, FileKey)>,
}

impl HttpBody for TimedBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        let Some(bytes) = this.bytes.take() else {
            return Poll::Ready(None);
        };
        if let Some((sh, key)) = this.served.take() {
            let at = Instant::now();
            sh.lock().view_served(&key, at);
        }
        Poll::Ready(Some(Ok(Frame::data(bytes))))
    }

    fn is_end_stream(&self) -> bool {
        self.bytes.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.bytes.as_ref().map_or(0, |b| b.len() as u64))
    }
}

async fn interrupt(State(sh): State<Arc<Shared>>, body: Bytes) -> Response {
    let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let target = req
        .get("prompt_id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(String::from);
    let mut inner = sh.lock();
    let running = inner
        .running
        .as_ref()
        .map(|r| (r.job.id.clone(), r.ctl.clone()));
    match (target, running) {
        (Some(id), running) => {
            push_bounded(&mut inner.cancel_log, id.clone(), MAX_LOG);
            if let Some((_, ctl)) = running.filter(|(r, _)| *r == id) {
                ctl.interrupt();
            }
        }
        (None, Some((id, ctl))) => {
            push_bounded(&mut inner.cancel_log, id, MAX_LOG);
            ctl.interrupt();
        }
        (None, None) => {}
    }
    empty(StatusCode::OK)
}

/// Removes pending prompts matching `pred`; true when any was removed.
fn dequeue(inner: &mut Inner, pred: impl Fn(&Job) -> bool) -> bool {
    let (gone, kept): (Vec<_>, Vec<_>) = inner.pending.drain(..).partition(|j| pred(j));
    inner.pending = kept.into();
    for j in &gone {
        push_bounded(
            &mut inner.dequeued,
            Dequeued {
                id: j.id.clone(),
                number: j.number.clone(),
                create_time: j.create_time,
            },
            MAX_LOG,
        );
    }
    if !gone.is_empty() {
        inner.broadcast_status();
    }
    !gone.is_empty()
}

async fn queue(State(sh): State<Arc<Shared>>) -> Response {
    let inner = sh.lock();
    let running: Vec<Value> = inner.running.iter().map(|r| r.job.queue_tuple()).collect();
    let pending: Vec<Value> = inner.pending.iter().map(|j| j.queue_tuple()).collect();
    ok(json!({"queue_running": running, "queue_pending": pending}))
}

async fn queue_post(State(sh): State<Arc<Shared>>, body: Bytes) -> Response {
    let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut inner = sh.lock();
    if req.get("clear").and_then(Value::as_bool) == Some(true) {
        dequeue(&mut inner, |_| true);
    }
    if let Some(ids) = req.get("delete").and_then(Value::as_array) {
        let ids: Vec<String> = ids
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect();
        dequeue(&mut inner, |j| ids.contains(&j.id));
    }
    empty(StatusCode::OK)
}

async fn free() -> Response {
    empty(StatusCode::OK)
}

/// A job as `/api/jobs` shows it.
fn job_view(inner: &Inner, id: &str, full: bool) -> Option<Value> {
    let base = |job: &Job, status: &str| {
        json!({"id": job.id, "status": status, "priority": job.number,
               "create_time": job.create_time, "outputs_count": 0})
    };
    if let Some(r) = inner.running.as_ref().filter(|r| r.job.id == id) {
        let mut v = base(&r.job, "in_progress");
        v["execution_start_time"] = json!(r.start_time);
        if full {
            v["workflow"] = json!({"prompt": r.job.graph, "extra_data": r.job.extra_data});
        }
        return Some(v);
    }
    if let Some(j) = inner.pending.iter().find(|j| j.id == id) {
        let mut v = base(j, "pending");
        if full {
            v["workflow"] = json!({"prompt": j.graph, "extra_data": j.extra_data});
        }
        return Some(v);
    }
    if let Some((_, h)) = inner.history.iter().find(|(k, _)| k == id) {
        let status = &h["status"];
        let messages = status["messages"].as_array().cloned().unwrap_or_default();
        let last = messages.last().cloned().unwrap_or(Value::Null);
        let state = match (status["status_str"].as_str(), last[0].as_str()) {
            (Some("success"), _) => "completed",
            (_, Some("execution_interrupted")) => "cancelled",
            _ => "failed",
        };
        let count: usize = h["outputs"]
            .as_object()
            .map(|o| {
                o.values()
                    .map(|v| v["images"].as_array().map_or(0, Vec::len))
                    .sum()
            })
            .unwrap_or(0);
        let mut v = json!({"id": id, "status": state, "priority": h["prompt"][0],
            "create_time": h["prompt"][3]["create_time"],
            "execution_start_time": messages.first().map(|m| m[1]["timestamp"].clone()),
            "execution_end_time": last[1]["timestamp"], "outputs_count": count});
        if state == "failed" {
            v["execution_error"] = last[1].clone();
        }
        if full {
            v["outputs"] = h["outputs"].clone();
            v["execution_status"] = status.clone();
            v["workflow"] = json!({"prompt": h["prompt"][2], "extra_data": h["prompt"][3]});
        }
        return Some(v);
    }
    inner.dequeued.iter().find(|d| d.id == id).map(|d| {
        json!({"id": d.id, "status": "cancelled", "priority": d.number,
               "create_time": d.create_time, "outputs_count": 0})
    })
}

async fn jobs(State(sh): State<Arc<Shared>>) -> Response {
    let inner = sh.lock();
    let mut ids: Vec<String> = inner.pending.iter().map(|j| j.id.clone()).collect();
    ids.extend(inner.running.iter().map(|r| r.job.id.clone()));
    ids.extend(inner.history.iter().map(|(k, _)| k.clone()));
    ids.extend(inner.dequeued.iter().map(|d| d.id.clone()));
    let mut all: Vec<Value> = ids
        .iter()
        .filter_map(|id| job_view(&inner, id, false))
        .collect();
    all.sort_by_key(|v| std::cmp::Reverse(v["create_time"].as_u64().unwrap_or(0)));
    all.dedup_by(|a, b| a["id"] == b["id"]);
    let total = all.len();
    ok(
        json!({"jobs": all, "pagination": {"offset": 0, "limit": null, "total": total, "has_more": false}}),
    )
}

async fn job(State(sh): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let inner = sh.lock();
    match job_view(&inner, &id, true) {
        Some(v) => ok(v),
        None => json_resp(StatusCode::NOT_FOUND, &json!({"error": "Job not found"})),
    }
}

async fn cancel_job(State(sh): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let mut inner = sh.lock();
    push_bounded(&mut inner.cancel_log, id.clone(), MAX_LOG);
    let cancelled = match inner.running.as_ref().filter(|r| r.job.id == id) {
        Some(r) => {
            r.ctl.interrupt();
            true
        }
        None => dequeue(&mut inner, |j| j.id == id),
    };
    ok(json!({"cancelled": cancelled}))
}

/// Accepts connections, dropping them unanswered while the server is down.
pub(crate) struct DownListener {
    pub(crate) inner: TcpListener,
    pub(crate) shared: Arc<Shared>,
}

impl axum::serve::Listener for DownListener {
    type Io = DownIo;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    if self.shared.down.load(Ordering::SeqCst) {
                        drop(stream);
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    return (
                        DownIo {
                            stream,
                            shared: self.shared.clone(),
                        },
                        addr,
                    );
                }
                // Out of file descriptors and the like: wait and go on.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A connection that ends (EOF on read, an error on write) once the server goes down, so
/// kept-alive connections fail too.
pub(crate) struct DownIo {
    stream: TcpStream,
    shared: Arc<Shared>,
}

impl DownIo {
    fn down(&self) -> bool {
        self.shared.down.load(Ordering::SeqCst)
    }
}

impl AsyncRead for DownIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.down() {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for DownIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.down() {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        Pin::new(&mut this.stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subfolders_stay_inside() {
        assert_eq!(normalize_subfolder("").as_deref(), Some(""));
        assert_eq!(normalize_subfolder("a/./b/").as_deref(), Some("a/b"));
        assert_eq!(normalize_subfolder("a/../b").as_deref(), Some("b"));
        assert_eq!(normalize_subfolder("../x"), None);
        assert_eq!(normalize_subfolder("/etc"), None);
    }

    #[test]
    fn annotated_names() {
        assert_eq!(
            annotated_file("probe/ref.png", "input"),
            Some(("input".into(), "probe".into(), "ref.png".into()))
        );
        assert_eq!(
            annotated_file("x.png [output]", "input"),
            Some(("output".into(), "".into(), "x.png".into()))
        );
    }
}
