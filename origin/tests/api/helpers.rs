//! What every test needs: configs, dispatches and cancels signed like the edge signs
//! them, and a test double of the edge's internal endpoints.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, Method, Request, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use http_body_util::BodyExt;
use kiln_origin::config::Config;
use kiln_origin::startup::Application;
use kiln_shared::ids::JobId;
use kiln_shared::images::ImageParams;
use kiln_shared::jobs::JobParams;
use kiln_shared::origin::{
    cancel_path, DispatchJob, EventAck, EventEnvelope, Heartbeat, OriginEvent, DISPATCH_PATH,
    HEARTBEAT_PATH,
};
use kiln_shared::signing::{
    Keyring, ReceivedHeaders, HEADER_KEY_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP,
};
use kiln_shared::video::VideoParams;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tower::ServiceExt;

pub const EDGE_TO_ORIGIN_KEYS: &str = "edge-2026:0123456789abcdef0123456789abcdef";
pub const ORIGIN_TO_EDGE_KEYS: &str = "origin-2026:fedcba9876543210fedcba9876543210";
/// Generous: the machine running the tests may be slow and busy. Never a timing
/// assertion, only a bound so a broken test fails instead of hanging.
pub const WAIT: Duration = Duration::from_secs(60);
/// Nothing listens on the discard port, so calls to this "edge" fail fast.
pub const NO_EDGE_URL: &str = "http://127.0.0.1:9";
/// Fast enough for tests, slow enough that progress is really paced.
pub const STEP_MS_TEST: u64 = 2;

pub fn edge_to_origin() -> Keyring {
    Keyring::parse(EDGE_TO_ORIGIN_KEYS).unwrap()
}

pub fn origin_to_edge() -> Keyring {
    Keyring::parse(ORIGIN_TO_EDGE_KEYS).unwrap()
}

pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// An origin config on a free port; `step_ms` sets the sim's pace per step.
pub fn config(edge_url: &str, slots: u32, step_ms: u64) -> Config {
    config_with(edge_url, slots, step_ms, &[])
}

/// [`config`] with more variables set, or some replaced.
pub fn config_with(edge_url: &str, slots: u32, step_ms: u64, vars: &[(&str, &str)]) -> Config {
    let mut env = HashMap::from([
        ("KILN_ORIGIN_ADDR", "127.0.0.1:0".to_owned()),
        ("KILN_ORIGIN_ID", "origin-test".to_owned()),
        ("KILN_EDGE_URL", edge_url.to_owned()),
        ("KILN_EDGE_TO_ORIGIN_KEYS", EDGE_TO_ORIGIN_KEYS.to_owned()),
        ("KILN_ORIGIN_TO_EDGE_KEYS", ORIGIN_TO_EDGE_KEYS.to_owned()),
        ("KILN_SLOTS", slots.to_string()),
        ("KILN_SIM_STEP_MS", step_ms.to_string()),
        ("KILN_SIM_LOAD_MS", step_ms.to_string()),
    ]);
    for (k, v) in vars {
        env.insert(*k, (*v).to_owned());
    }
    Config::from_sources(|k| env.get(k).cloned(), []).unwrap()
}

/// A fresh job id.
pub fn job_id() -> JobId {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut random = [0u8; 10];
    random[..8].copy_from_slice(&n.to_be_bytes());
    JobId::generate(now_secs() as u64 * 1000, random)
}

/// An image job as the edge would dispatch it, with a fresh id.
pub fn job(prompt: &str, steps: u32, width: u32, height: u32) -> DispatchJob {
    DispatchJob {
        job_id: job_id(),
        attempt: 1,
        model_id: "flux2-dev".to_owned(),
        workflow: "flux2-dev:txt2img".to_owned(),
        params: JobParams::Image(ImageParams {
            prompt: prompt.to_owned(),
            width,
            height,
            steps,
            cfg: 4.0,
            seed: 42,
            n: 1,
        }),
        input_files: vec![],
        test_mode: true,
    }
}

/// A text-to-video job of `model` (`ltx-2.3` or `ltx-2.3-fast`) at 960×544, 25 frames.
pub fn video_job(prompt: &str, model: &str) -> DispatchJob {
    DispatchJob {
        model_id: model.to_owned(),
        workflow: format!("{model}:t2v"),
        params: JobParams::Video(VideoParams {
            prompt: prompt.to_owned(),
            negative_prompt: String::new(),
            width: 960,
            height: 544,
            num_frames: 25,
            fps: 24,
            seed: 7,
            two_stage: model == kiln_shared::video::MODEL_FULL,
        }),
        ..job(prompt, 1, 512, 512)
    }
}

/// `POST path` with `body`, signed by `keys` at `unix_secs` over `signed_path`.
pub fn signed_request(
    keys: &Keyring,
    unix_secs: i64,
    path: &str,
    signed_path: &str,
    body: Vec<u8>,
) -> Request<Body> {
    signed_method_request("POST", keys, unix_secs, path, signed_path, body)
}

/// `method path` with `body`, signed by `keys` at `unix_secs` over `signed_path`.
pub fn signed_method_request(
    method: &str,
    keys: &Keyring,
    unix_secs: i64,
    path: &str,
    signed_path: &str,
    body: Vec<u8>,
) -> Request<Body> {
    let signed = keys.sign(unix_secs, method, signed_path, &body);
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json");
    for (name, value) in signed.pairs() {
        request = request.header(name, value);
    }
    request.body(Body::from(body)).unwrap()
}

/// The edge's cancel of `job_id`: `DELETE` with an empty body, signed like a dispatch.
pub fn cancel(job_id: &JobId) -> Request<Body> {
    let path = cancel_path(job_id);
    signed_method_request(
        "DELETE",
        &edge_to_origin(),
        now_secs(),
        &path,
        &path,
        vec![],
    )
}

/// A dispatch of `job`, signed as the edge signs it.
pub fn dispatch(job: &DispatchJob) -> Request<Body> {
    let body = serde_json::to_vec(job).unwrap();
    signed_request(
        &edge_to_origin(),
        now_secs(),
        DISPATCH_PATH,
        DISPATCH_PATH,
        body,
    )
}

/// Sends one request through the router; returns the status and the JSON body.
pub async fn call(app: &Router, request: Request<Body>) -> (StatusCode, Value) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{status}: body is not JSON ({e}): {bytes:?}"));
    (status, body)
}

/// Asserts `body` is the API's error shape with `code`.
pub fn assert_api_error(body: &Value, code: &str) {
    let error = &body["error"];
    assert_eq!(error["code"], code, "{body}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(error["type"].as_str().is_some(), "{body}");
    assert!(error.get("param").is_some(), "{body}");
}

/// A running origin on a free port; dropping the handle leaves it to the test runtime.
pub struct Origin {
    pub url: String,
    stop: Option<oneshot::Sender<()>>,
    served: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Origin {
    pub async fn start(config: Config) -> Self {
        let app = Application::build(config).await.unwrap();
        let url = format!("http://127.0.0.1:{}", app.port());
        let (stop, stopped) = oneshot::channel::<()>();
        let served = tokio::spawn(app.run_until(async {
            let _ = stopped.await;
        }));
        Self {
            url,
            stop: Some(stop),
            served,
        }
    }

    /// Stops accepting, then waits for running jobs like a SIGTERM would.
    pub async fn shut_down(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(WAIT, self.served)
            .await
            .expect("the origin stops")
            .unwrap()
            .unwrap();
    }

    /// Dispatches `job` over HTTP; returns the status.
    pub async fn dispatch(&self, job: &DispatchJob) -> StatusCode {
        dispatch_over_http(&self.url, job).await
    }

    /// Cancels `job_id` over HTTP as the edge does (signed `DELETE`, empty body), or
    /// unsigned; returns the status and the JSON body.
    pub async fn cancel(&self, job_id: &JobId, signed: bool) -> (StatusCode, Value) {
        let path = cancel_path(job_id);
        let mut request = reqwest::Client::new().delete(format!("{}{path}", self.url));
        if signed {
            for (name, value) in edge_to_origin()
                .sign(now_secs(), "DELETE", &path, b"")
                .pairs()
            {
                request = request.header(name, value);
            }
        }
        let response = request.send().await.unwrap();
        let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
        (status, response.json().await.unwrap())
    }

    /// Waits until the origin reports no busy slot.
    pub async fn wait_until_idle(&self) {
        tokio::time::timeout(WAIT, async {
            while self.health().await["busy"] != 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("the slot is freed");
    }

    pub async fn health(&self) -> Value {
        reqwest::get(format!("{}/health", self.url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// The events among `received`, in order.
pub fn events(received: &[Received]) -> Vec<&EventEnvelope> {
    received
        .iter()
        .filter_map(|r| match r {
            Received::Event(_, e) => Some(e),
            _ => None,
        })
        .collect()
}

/// Every request was signed as the edge wants, and the events of one job attempt
/// (all of `received`) are numbered 1, 2, 3… by `origin-test`.
pub fn assert_well_signed_and_numbered(received: &[Received]) {
    for r in received {
        if let Received::BadSignature(refused) = r {
            panic!("the edge would refuse {refused}");
        }
    }
    let seqs: Vec<u32> = events(received).iter().map(|e| e.seq).collect();
    let want: Vec<u32> = (1..=seqs.len() as u32).collect();
    assert_eq!(seqs, want, "seq counts from 1 without gaps");
    for e in events(received) {
        assert_eq!((e.origin_id.as_str(), e.attempt), ("origin-test", 1));
    }
}

/// Dispatches `job` to the origin at `origin_url`, signed as the edge signs it.
pub async fn dispatch_over_http(origin_url: &str, job: &DispatchJob) -> StatusCode {
    let body = serde_json::to_vec(job).unwrap();
    let signed = edge_to_origin().sign(now_secs(), "POST", DISPATCH_PATH, &body);
    let mut request = reqwest::Client::new()
        .post(format!("{origin_url}{DISPATCH_PATH}"))
        .header("content-type", "application/json")
        .body(body);
    for (name, value) in signed.pairs() {
        request = request.header(name, value);
    }
    let status = request.send().await.unwrap().status().as_u16();
    StatusCode::from_u16(status).unwrap()
}

/// What the edge double saw, in arrival order (heartbeats apart, see
/// [`EdgeDouble::next_heartbeat`]).
#[derive(Debug, Clone)]
pub enum Received {
    /// An event, with the job id from its path.
    Event(JobId, EventEnvelope),
    Upload {
        path: String,
        content_type: String,
        bytes: Vec<u8>,
    },
    /// A `GET` of one of a job's input files, whether or not the double had it.
    InputFetch { path: String },
    /// A request whose signature the edge would refuse; no test expects one.
    BadSignature(String),
}

impl Received {
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Received::Event(
                _,
                EventEnvelope {
                    event: OriginEvent::Completed { .. } | OriginEvent::Failed { .. },
                    ..
                }
            )
        )
    }

    /// The job this is about: an event's or an upload's.
    pub fn job_id(&self) -> Option<String> {
        match self {
            Received::Event(job_id, _) => Some(job_id.to_string()),
            Received::Upload { path, .. } | Received::InputFetch { path } => path
                .strip_prefix("/internal/origin/jobs/")
                .and_then(|rest| rest.split('/').next())
                .map(str::to_owned),
            Received::BadSignature(_) => None,
        }
    }
}

/// How the edge double answers, beyond recording.
#[derive(Debug, Default, Clone)]
pub struct EdgeBehaviour {
    /// The first this many uploads are answered 503, as an edge in trouble would.
    pub upload_failures: u32,
    /// Events of this job with this `seq` or a later one are answered `{"applied":
    /// true, "stop": true}`, as the edge does for a cancelled or superseded job.
    pub stop_at: Option<(JobId, u32)>,
    /// Events are answered 200 with an empty body, as an edge from before acks did.
    pub no_ack: bool,
    /// The input files the double serves, by filename, to any job that asks; others
    /// are answered 404 in the API's error shape.
    pub inputs: HashMap<String, Vec<u8>>,
}

/// A test double of the edge's internal endpoints
/// (`kiln_shared::origin::events_path`, `output_path`, `input_path` and
/// `HEARTBEAT_PATH`). It verifies
/// every request's signature with the origin→edge keyring, as the edge does, records
/// what arrived, and answers events with an `EventAck` as the edge does.
pub struct EdgeDouble {
    pub url: String,
    received: mpsc::UnboundedReceiver<Received>,
    heartbeats: mpsc::UnboundedReceiver<Heartbeat>,
    terminal_dispatches: mpsc::UnboundedReceiver<StatusCode>,
    next_dispatch: Arc<Mutex<Option<(String, DispatchJob)>>>,
}

#[derive(Clone)]
struct DoubleState {
    keys: Arc<Keyring>,
    received: mpsc::UnboundedSender<Received>,
    heartbeats: mpsc::UnboundedSender<Heartbeat>,
    upload_failures: Arc<AtomicU32>,
    behaviour: Arc<EdgeBehaviour>,
    /// Dispatched, like the real edge does, on the next terminal event, before answering it.
    next_dispatch: Arc<Mutex<Option<(String, DispatchJob)>>>,
    terminal_dispatches: mpsc::UnboundedSender<StatusCode>,
}

impl EdgeDouble {
    /// An edge double whose first `upload_failures` uploads are answered 503.
    pub async fn start(upload_failures: u32) -> Self {
        Self::start_with(EdgeBehaviour {
            upload_failures,
            ..EdgeBehaviour::default()
        })
        .await
    }

    pub async fn start_with(behaviour: EdgeBehaviour) -> Self {
        let (tx, received) = mpsc::unbounded_channel();
        let (heartbeats_tx, heartbeats) = mpsc::unbounded_channel();
        let (dispatches_tx, terminal_dispatches) = mpsc::unbounded_channel();
        let next_dispatch = Arc::new(Mutex::new(None));
        let state = DoubleState {
            keys: Arc::new(origin_to_edge()),
            received: tx,
            heartbeats: heartbeats_tx,
            upload_failures: Arc::new(AtomicU32::new(behaviour.upload_failures)),
            behaviour: Arc::new(behaviour),
            next_dispatch: Arc::clone(&next_dispatch),
            terminal_dispatches: dispatches_tx,
        };
        let app = Router::new()
            .route("/internal/origin/jobs/{job_id}/events", post(handle_event))
            .route(
                "/internal/origin/jobs/{job_id}/outputs/{filename}",
                put(handle_upload),
            )
            .route(
                "/internal/origin/jobs/{job_id}/inputs/{filename}",
                get(handle_input),
            )
            .route(HEARTBEAT_PATH, post(handle_heartbeat))
            .layer(DefaultBodyLimit::disable())
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url,
            received,
            heartbeats,
            terminal_dispatches,
            next_dispatch,
        }
    }

    /// Everything received up to and including the first terminal event.
    pub async fn until_terminal(&mut self) -> Vec<Received> {
        let mut all = Vec::new();
        loop {
            let next = self.next().await;
            let terminal = next.is_terminal();
            all.push(next);
            if terminal {
                return all;
            }
        }
    }

    /// The next thing received (heartbeats apart).
    pub async fn next(&mut self) -> Received {
        tokio::time::timeout(WAIT, self.received.recv())
            .await
            .expect("the origin sends something")
            .expect("the edge double runs")
    }

    /// Whatever arrived and is not yet read, without waiting.
    pub fn drain(&mut self) -> Vec<Received> {
        std::iter::from_fn(|| self.received.try_recv().ok()).collect()
    }

    /// Drops the heartbeats received so far; returns how many there were.
    pub fn drain_heartbeats(&mut self) -> usize {
        std::iter::from_fn(|| self.heartbeats.try_recv().ok()).count()
    }

    /// The next heartbeat that satisfies `want`, skipping others.
    pub async fn heartbeat_where(&mut self, want: impl Fn(&Heartbeat) -> bool) -> Heartbeat {
        tokio::time::timeout(WAIT, async {
            loop {
                let beat = self.heartbeats.recv().await.expect("the edge double runs");
                if want(&beat) {
                    return beat;
                }
            }
        })
        .await
        .expect("a matching heartbeat")
    }

    /// On the next terminal event, before answering it, dispatches `job` to the origin
    /// at `origin_url` — what the real edge does once a slot is free again.
    pub fn dispatch_on_terminal(&self, origin_url: &str, job: DispatchJob) {
        *self.next_dispatch.lock().unwrap() = Some((origin_url.to_owned(), job));
    }

    /// The status of the dispatch made by [`EdgeDouble::dispatch_on_terminal`].
    pub async fn terminal_dispatch_status(&mut self) -> StatusCode {
        tokio::time::timeout(WAIT, self.terminal_dispatches.recv())
            .await
            .expect("a terminal event arrived")
            .unwrap()
    }
}

impl DoubleState {
    fn verify(&self, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> bool {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let received = ReceivedHeaders {
            key_id: header(HEADER_KEY_ID),
            timestamp: header(HEADER_TIMESTAMP),
            signature: header(HEADER_SIGNATURE),
        };
        let result = self
            .keys
            .verify(now_secs(), &received, method.as_str(), uri.path(), body);
        if let Err(e) = result {
            let _ = self
                .received
                .send(Received::BadSignature(format!("{method} {uri}: {e}")));
        }
        result.is_ok()
    }
}

async fn handle_event(
    State(state): State<DoubleState>,
    Path(job_id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !state.verify(&method, &uri, &headers, &body) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let envelope: EventEnvelope = serde_json::from_slice(&body).expect("an event envelope");
    let job_id = JobId::parse(&job_id).expect("a job id");
    let stop = state
        .behaviour
        .stop_at
        .as_ref()
        .is_some_and(|(job, seq)| *job == job_id && envelope.seq >= *seq);
    let received = Received::Event(job_id, envelope);
    if received.is_terminal() {
        let next = state.next_dispatch.lock().unwrap().take();
        if let Some((origin_url, job)) = next {
            let status = dispatch_over_http(&origin_url, &job).await;
            let _ = state.terminal_dispatches.send(status);
        }
    }
    let _ = state.received.send(received);
    if state.behaviour.no_ack {
        return StatusCode::OK.into_response();
    }
    Json(EventAck {
        applied: true,
        stop,
    })
    .into_response()
}

async fn handle_heartbeat(
    State(state): State<DoubleState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    if !state.verify(&method, &uri, &headers, &body) {
        return StatusCode::UNAUTHORIZED;
    }
    let beat: Heartbeat = serde_json::from_slice(&body).expect("a heartbeat");
    let _ = state.heartbeats.send(beat);
    StatusCode::NO_CONTENT
}

async fn handle_upload(
    State(state): State<DoubleState>,
    Path((_job_id, _filename)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    if !state.verify(&method, &uri, &headers, &body) {
        return StatusCode::UNAUTHORIZED;
    }
    let failing = state
        .upload_failures
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if failing {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let _ = state.received.send(Received::Upload {
        path: uri.path().to_owned(),
        content_type,
        bytes: body.to_vec(),
    });
    StatusCode::OK
}

/// Stands in for the edge's `GET /internal/origin/jobs/{id}/inputs/{file}`: checks the
/// signature (method `GET`, the path, an empty body), then serves the file's bytes as
/// `application/octet-stream`, or 404 `not_found` in the API's error shape.
async fn handle_input(
    State(state): State<DoubleState>,
    Path((_job_id, filename)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !state.verify(&method, &uri, &headers, &body) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let _ = state.received.send(Received::InputFetch {
        path: uri.path().to_owned(),
    });
    match state.behaviour.inputs.get(&filename) {
        Some(bytes) => (
            [("content-type", "application/octet-stream")],
            bytes.clone(),
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({"error": {
                "type": "invalid_request_error",
                "code": "not_found",
                "message": "No such input file.",
                "param": null,
            }})),
        )
            .into_response(),
    }
}
