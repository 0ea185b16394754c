//! A stand-in for the edge's internal endpoints, used only by `cargo xtask bench` to time
//! the origin on its own. It is not the edge: no Durable Objects, no R2, no queue, no
//! ledger. It answers what an origin calls, at once:
//!
//! - `POST /internal/origin/jobs/{id}/events`: `{"applied": true, "stop": false}`;
//! - `PUT /internal/origin/jobs/{id}/outputs/{file}`: 200 (the bytes are counted, not kept);
//! - `POST /internal/origin/heartbeat`: 200;
//! - `GET /noop`: 200 with an empty body, unsigned: the benchmark's bare axum round trip.
//!
//! Every origin call is verified with the origin→edge keyring (`kiln_shared::signing`), as
//! the edge does; a refused one is answered 401 and listed by [`EdgeStandIn::refused`].
//! Per job it records, as monotonic instants of this process, when each output upload and
//! the terminal event (`completed` or `failed`) arrived (the handler started: the whole
//! body had been read). Bounded: the latest 4096 jobs, bodies up to 64 MiB, loopback only.

use crate::background::BackgroundServer;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use kiln_shared::origin::{EventAck, EventEnvelope, OriginEvent, HEARTBEAT_PATH};
use kiln_shared::signing::{
    Keyring, ReceivedHeaders, HEADER_KEY_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP,
};

const MAX_JOBS: usize = 4096;
const MAX_REFUSED: usize = 64;
const BODY_LIMIT: usize = 64 << 20;

/// One output `PUT` as it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputUpload {
    pub filename: String,
    pub content_type: String,
    pub size_bytes: u64,
    pub at: Instant,
}

/// What the stand-in saw of one job.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSeen {
    pub job_id: String,
    /// Events received, terminal included.
    pub events: u32,
    pub uploads: Vec<OutputUpload>,
    /// The first terminal event and when it arrived.
    pub terminal: Option<(Instant, OriginEvent)>,
}

#[derive(Default)]
struct Seen {
    jobs: VecDeque<JobSeen>,
    heartbeats: u64,
    refused: VecDeque<String>,
}

impl Seen {
    fn job(&mut self, job_id: &str) -> &mut JobSeen {
        if let Some(i) = self.jobs.iter().position(|j| j.job_id == job_id) {
            return &mut self.jobs[i];
        }
        self.jobs.push_back(JobSeen {
            job_id: job_id.to_owned(),
            events: 0,
            uploads: Vec::new(),
            terminal: None,
        });
        while self.jobs.len() > MAX_JOBS {
            self.jobs.pop_front();
        }
        self.jobs.back_mut().expect("just pushed")
    }
}

struct Shared {
    keys: Keyring,
    seen: Mutex<Seen>,
    /// Signalled on every terminal event.
    ended: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn verify(&self, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> bool {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let received = ReceivedHeaders {
            key_id: header(HEADER_KEY_ID),
            timestamp: header(HEADER_TIMESTAMP),
            signature: header(HEADER_SIGNATURE),
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        match self
            .keys
            .verify(now, &received, method.as_str(), uri.path(), body)
        {
            Ok(()) => true,
            Err(e) => {
                let mut seen = self.lock();
                seen.refused
                    .push_back(format!("{method} {}: {e:?}", uri.path()));
                while seen.refused.len() > MAX_REFUSED {
                    seen.refused.pop_front();
                }
                false
            }
        }
    }
}

/// The running stand-in; stopped on drop.
pub struct EdgeStandIn {
    addr: SocketAddr,
    shared: Arc<Shared>,
    /// Stops the server (and its thread) when the stand-in is dropped.
    _server: BackgroundServer,
}

impl EdgeStandIn {
    /// Starts on a free loopback port with its own tokio runtime on its own thread,
    /// verifying origin calls with `origin_to_edge_keys` (`id:secret[,id:secret]`).
    pub fn start(origin_to_edge_keys: &str) -> Result<EdgeStandIn> {
        let keys = Keyring::parse(origin_to_edge_keys)
            .map_err(|e| anyhow!("the origin→edge keyring: {e}"))?;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").context("binding loopback")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            keys,
            seen: Mutex::new(Seen::default()),
            ended: Condvar::new(),
        });
        let app = Router::new()
            .route("/internal/origin/jobs/{job_id}/events", post(event))
            .route(
                "/internal/origin/jobs/{job_id}/outputs/{filename}",
                put(output),
            )
            .route(HEARTBEAT_PATH, post(heartbeat))
            .route("/noop", get(|| async { StatusCode::OK }))
            .layer(DefaultBodyLimit::max(BODY_LIMIT))
            .with_state(shared.clone());
        let server = BackgroundServer::start(
            format!("edge-stand-in-{}", addr.port()),
            listener,
            move |listener| async move {
                let _ = axum::serve(listener, app).await;
            },
        )?;
        Ok(EdgeStandIn {
            addr,
            shared,
            _server: server,
        })
    }

    /// `http://127.0.0.1:PORT`, the origin's `KILN_EDGE_URL`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What arrived for `job_id` so far.
    pub fn job(&self, job_id: &str) -> Option<JobSeen> {
        self.shared
            .lock()
            .jobs
            .iter()
            .find(|j| j.job_id == job_id)
            .cloned()
    }

    /// Waits (blocking this thread) for the terminal event of `job_id`.
    pub fn wait_terminal(&self, job_id: &str, timeout: Duration) -> Result<JobSeen> {
        let deadline = Instant::now() + timeout;
        let mut seen = self.shared.lock();
        loop {
            if let Some(j) = seen
                .jobs
                .iter()
                .find(|j| j.job_id == job_id && j.terminal.is_some())
            {
                return Ok(j.clone());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!("no terminal event for {job_id} within {timeout:?}");
            }
            seen = self
                .shared
                .ended
                .wait_timeout(seen, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Heartbeats received (well signed).
    pub fn heartbeats(&self) -> u64 {
        self.shared.lock().heartbeats
    }

    /// Origin calls refused for their signature (the latest 64): none is expected.
    pub fn refused(&self) -> Vec<String> {
        self.shared.lock().refused.iter().cloned().collect()
    }
}

async fn event(
    State(sh): State<Arc<Shared>>,
    Path(job_id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let at = Instant::now();
    if !sh.verify(&method, &uri, &headers, &body) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let Ok(envelope) = serde_json::from_slice::<EventEnvelope>(&body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let terminal = matches!(
        envelope.event,
        OriginEvent::Completed { .. } | OriginEvent::Failed { .. }
    );
    {
        let mut seen = sh.lock();
        let job = seen.job(&job_id);
        job.events += 1;
        if terminal && job.terminal.is_none() {
            job.terminal = Some((at, envelope.event));
        }
    }
    if terminal {
        sh.ended.notify_all();
    }
    Json(EventAck {
        applied: true,
        stop: false,
    })
    .into_response()
}

async fn output(
    State(sh): State<Arc<Shared>>,
    Path((job_id, filename)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let at = Instant::now();
    if !sh.verify(&method, &uri, &headers, &body) {
        return StatusCode::UNAUTHORIZED;
    }
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    sh.lock().job(&job_id).uploads.push(OutputUpload {
        filename,
        content_type,
        size_bytes: body.len() as u64,
        at,
    });
    StatusCode::OK
}

async fn heartbeat(
    State(sh): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    if !sh.verify(&method, &uri, &headers, &body) {
        return StatusCode::UNAUTHORIZED;
    }
    sh.lock().heartbeats += 1;
    StatusCode::OK
}
