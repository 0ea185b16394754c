//! What every test needs: configs, dispatches signed like the edge signs them, and a
//! test double of the edge's internal endpoints.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, Method, Request, StatusCode, Uri};
use axum::routing::{post, put};
use axum::Router;
use http_body_util::BodyExt;
use kiln_origin::config::Config;
use kiln_origin::startup::Application;
use kiln_shared::ids::JobId;
use kiln_shared::images::ImageParams;
use kiln_shared::jobs::JobParams;
use kiln_shared::origin::{DispatchJob, EventEnvelope, OriginEvent, DISPATCH_PATH};
use kiln_shared::signing::{
    Keyring, ReceivedHeaders, HEADER_KEY_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP,
};
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
    let env = HashMap::from([
        ("KILN_ORIGIN_ADDR", "127.0.0.1:0".to_owned()),
        ("KILN_ORIGIN_ID", "origin-test".to_owned()),
        ("KILN_EDGE_URL", edge_url.to_owned()),
        ("KILN_EDGE_TO_ORIGIN_KEYS", EDGE_TO_ORIGIN_KEYS.to_owned()),
        ("KILN_ORIGIN_TO_EDGE_KEYS", ORIGIN_TO_EDGE_KEYS.to_owned()),
        ("KILN_SLOTS", slots.to_string()),
        ("KILN_SIM_STEP_MS", step_ms.to_string()),
        ("KILN_SIM_LOAD_MS", step_ms.to_string()),
    ]);
    Config::from_sources(|k| env.get(k).cloned(), []).unwrap()
}

/// A job as the edge would dispatch it, with a fresh id.
pub fn job(prompt: &str, steps: u32, width: u32, height: u32) -> DispatchJob {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut random = [0u8; 10];
    random[..8].copy_from_slice(&n.to_be_bytes());
    DispatchJob {
        job_id: JobId::generate(now_secs() as u64 * 1000, random),
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
        }),
        input_files: vec![],
        test_mode: true,
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
    let signed = keys.sign(unix_secs, "POST", signed_path, &body);
    let mut request = Request::post(path).header("content-type", "application/json");
    for (name, value) in signed.pairs() {
        request = request.header(name, value);
    }
    request.body(Body::from(body)).unwrap()
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
        let body = serde_json::to_vec(job).unwrap();
        let signed = edge_to_origin().sign(now_secs(), "POST", DISPATCH_PATH, &body);
        let mut request = reqwest::Client::new()
            .post(format!("{}{DISPATCH_PATH}", self.url))
            .header("content-type", "application/json")
            .body(body);
        for (name, value) in signed.pairs() {
            request = request.header(name, value);
        }
        let status = request.send().await.unwrap().status().as_u16();
        StatusCode::from_u16(status).unwrap()
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

/// What the edge double saw, in arrival order.
#[derive(Debug, Clone)]
pub enum Received {
    Event(EventEnvelope),
    Upload {
        path: String,
        content_type: String,
        bytes: Vec<u8>,
    },
    /// A request whose signature the edge would refuse; no test expects one.
    BadSignature(String),
}

impl Received {
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Received::Event(EventEnvelope {
                event: OriginEvent::Completed { .. } | OriginEvent::Failed { .. },
                ..
            })
        )
    }
}

/// A test double of the edge's internal endpoints
/// (`kiln_shared::origin::events_path` and `output_path`). It verifies every request's
/// signature with the origin→edge keyring, as the edge does, and records what arrived.
/// The first `upload_failures` uploads are answered 503, as an edge in trouble would.
pub struct EdgeDouble {
    pub url: String,
    received: mpsc::UnboundedReceiver<Received>,
}

#[derive(Clone)]
struct DoubleState {
    keys: Arc<Keyring>,
    received: mpsc::UnboundedSender<Received>,
    upload_failures: Arc<AtomicU32>,
}

impl EdgeDouble {
    pub async fn start(upload_failures: u32) -> Self {
        let (tx, received) = mpsc::unbounded_channel();
        let state = DoubleState {
            keys: Arc::new(origin_to_edge()),
            received: tx,
            upload_failures: Arc::new(AtomicU32::new(upload_failures)),
        };
        let app = Router::new()
            .route("/internal/origin/jobs/{job_id}/events", post(handle_event))
            .route(
                "/internal/origin/jobs/{job_id}/outputs/{filename}",
                put(handle_upload),
            )
            .layer(DefaultBodyLimit::disable())
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, received }
    }

    /// Everything received up to and including the first terminal event.
    pub async fn until_terminal(&mut self) -> Vec<Received> {
        let mut all = Vec::new();
        loop {
            let next = tokio::time::timeout(WAIT, self.received.recv())
                .await
                .unwrap_or_else(|_| panic!("no terminal event; got {all:#?}"))
                .expect("the edge double runs");
            let terminal = next.is_terminal();
            all.push(next);
            if terminal {
                return all;
            }
        }
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
    Path(_job_id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    if !state.verify(&method, &uri, &headers, &body) {
        return StatusCode::UNAUTHORIZED;
    }
    let envelope: EventEnvelope = serde_json::from_slice(&body).expect("an event envelope");
    let _ = state.received.send(Received::Event(envelope));
    StatusCode::OK
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
