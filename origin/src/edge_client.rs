//! Signed calls from the origin to the edge's internal endpoints
//! ([`kiln_shared::origin`]): job events, output uploads, input fetches and heartbeats.
//!
//! Every attempt is signed afresh with the origin→edge keyring, so a retry late in the
//! budget still carries a timestamp inside the edge's skew window. Network errors and
//! 5xx answers are retried with exponential backoff; a 4xx is the edge refusing the
//! request on purpose and is never retried. The edge answers 2xx to an event it has
//! already applied, so retrying after a lost answer is safe. Its answer to an event is
//! an [`EventAck`]; an answer that does not parse as one is read as "carry on".

use std::time::{Duration, Instant};

use bytes::Bytes;
use kiln_shared::ids::{Filename, JobId};
use kiln_shared::origin::{
    events_path, input_path, output_path, EventAck, EventEnvelope, Heartbeat, HEARTBEAT_PATH,
};
use kiln_shared::signing::Keyring;
use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, StatusCode};

/// A stalled edge must not hold a slot forever; an upload of a 2048×2048 PNG over a
/// healthy link takes well under this.
pub const REQUEST_SECS_MAX: u64 = 30;
/// A heartbeat that takes longer than this is stale before it lands; the next one follows.
pub const HEARTBEAT_REQUEST_MS_MAX: u64 = 2_000;
pub const CONNECT_SECS_MAX: u64 = 5;
pub const BACKOFF_MS_FIRST: u64 = 100;
pub const BACKOFF_MS_MAX: u64 = 5_000;
/// The largest input file the origin takes from the edge: uploads are at most 20 MB,
/// plus a little for an earlier output (a PNG) used as an input. A bigger answer is
/// refused without being read to the end, and not retried.
pub const INPUT_BYTES_MAX: u64 = 20 * 1000 * 1000 + 1024 * 1024;
/// How much of an edge error body goes to the log.
const ERROR_BODY_CHARS_MAX: usize = 300;

/// How hard to try before giving up on one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub attempts_max: u32,
    /// Total time across attempts; no new attempt starts after it.
    pub budget: Duration,
    /// How long one attempt may take.
    pub request_timeout: Duration,
}

impl RetryPolicy {
    /// Progress events: a later event supersedes a lost one, so a few tries suffice.
    pub const PROGRESS: Self = Self {
        attempts_max: 3,
        budget: Duration::from_secs(10),
        request_timeout: Duration::from_secs(REQUEST_SECS_MAX),
    };
    /// Uploads and terminal events: the job's result hangs on them, so ride out an edge
    /// restart (about a minute) before leaving the job to the edge's lease.
    pub const ESSENTIAL: Self = Self {
        attempts_max: u32::MAX,
        budget: Duration::from_secs(60),
        request_timeout: Duration::from_secs(REQUEST_SECS_MAX),
    };
    /// Heartbeats: one quick try; the next heartbeat is the retry.
    pub const HEARTBEAT: Self = Self {
        attempts_max: 1,
        budget: Duration::from_millis(HEARTBEAT_REQUEST_MS_MAX),
        request_timeout: Duration::from_millis(HEARTBEAT_REQUEST_MS_MAX),
    };
}

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The edge answered 4xx: it will not take this request, however often it is sent.
    #[error("edge refused {path} with {status}: {body}")]
    Refused {
        path: String,
        status: StatusCode,
        body: String,
    },
    /// The edge's answer was bigger than the origin takes (see [`INPUT_BYTES_MAX`]).
    #[error("{path} answered more than {bytes_max} bytes")]
    TooLarge { path: String, bytes_max: u64 },
    #[error("gave up on {path} after {attempts} attempt(s): {last}")]
    GaveUp {
        path: String,
        attempts: u32,
        last: String,
    },
}

/// One of a job's input files as the edge served it.
#[derive(Debug, Clone)]
pub struct InputFile {
    pub bytes: Bytes,
    /// The edge's `content-type`, if it sent one; decoding goes by the bytes, not this.
    pub content_type: Option<String>,
}

/// What reading a 2xx answer came to.
enum Read<T> {
    Done(T),
    /// The answer broke off; the request is tried again like a network error.
    Retry(String),
    /// The answer is one the origin will never take.
    Fail(DeliveryError),
}

/// The origin's view of the edge.
#[derive(Debug, Clone)]
pub struct EdgeClient {
    http: reqwest::Client,
    /// Without a trailing slash; paths from kiln-shared start with one.
    base_url: String,
    keys: Keyring,
}

impl EdgeClient {
    pub fn new(base_url: &str, keys: Keyring) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(REQUEST_SECS_MAX))
            .connect_timeout(Duration::from_secs(CONNECT_SECS_MAX))
            .build()
            .expect("a client with only timeouts set always builds");
        Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            keys,
        }
    }

    /// `POST` one event of one job attempt. Returns the edge's [`EventAck`], or `None`
    /// when its answer was not one (then the job carries on).
    pub async fn send_event(
        &self,
        job_id: &JobId,
        envelope: &EventEnvelope,
        policy: RetryPolicy,
    ) -> Result<Option<EventAck>, DeliveryError> {
        let body = serde_json::to_vec(envelope).expect("events always serialize");
        let answer = self
            .send(
                Method::POST,
                &events_path(job_id),
                Bytes::from(body),
                "application/json",
                policy,
            )
            .await?;
        Ok(serde_json::from_slice(&answer).ok())
    }

    /// `POST` one heartbeat, tried once.
    pub async fn send_heartbeat(&self, heartbeat: &Heartbeat) -> Result<(), DeliveryError> {
        let body = serde_json::to_vec(heartbeat).expect("heartbeats always serialize");
        self.send(
            Method::POST,
            HEARTBEAT_PATH,
            Bytes::from(body),
            "application/json",
            RetryPolicy::HEARTBEAT,
        )
        .await
        .map(drop)
    }

    /// `PUT` one output file; must succeed before `completed` is sent.
    pub async fn upload_output(
        &self,
        job_id: &JobId,
        filename: &Filename,
        bytes: Bytes,
    ) -> Result<(), DeliveryError> {
        self.send(
            Method::PUT,
            &output_path(job_id, filename),
            bytes,
            filename.content_type(),
            RetryPolicy::ESSENTIAL,
        )
        .await
        .map(drop)
    }

    /// `GET` one of the job's input files (an upload or an earlier output the edge has
    /// checked is the caller's), signed with an empty body. The answer is read up to
    /// [`INPUT_BYTES_MAX`] bytes; more is [`DeliveryError::TooLarge`]. Retried like an
    /// upload: the job cannot start without it.
    pub async fn fetch_input(
        &self,
        job_id: &JobId,
        filename: &Filename,
    ) -> Result<InputFile, DeliveryError> {
        let path = input_path(job_id, filename);
        self.send_then(
            Method::GET,
            &path,
            Bytes::new(),
            None,
            RetryPolicy::ESSENTIAL,
            |response| read_bounded(response, &path, INPUT_BYTES_MAX),
        )
        .await
    }

    /// Sends until a 2xx (whose body it returns), a 4xx, or the policy gives up.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Bytes,
        content_type: &str,
        policy: RetryPolicy,
    ) -> Result<Bytes, DeliveryError> {
        self.send_then(
            method,
            path,
            body,
            Some(content_type),
            policy,
            |response| async move {
                match response.bytes().await {
                    Ok(answer) => Read::Done(answer),
                    // The edge took the request; only its answer was cut short.
                    Err(_) => Read::Done(Bytes::new()),
                }
            },
        )
        .await
    }

    /// Sends until `read` makes something of a 2xx answer, a 4xx, or the policy gives
    /// up. `content_type` is left out for bodyless requests.
    async fn send_then<T, F, Fut>(
        &self,
        method: Method,
        path: &str,
        body: Bytes,
        content_type: Option<&str>,
        policy: RetryPolicy,
        read: F,
    ) -> Result<T, DeliveryError>
    where
        F: Fn(reqwest::Response) -> Fut,
        Fut: std::future::Future<Output = Read<T>>,
    {
        let started = Instant::now();
        let mut backoff = Duration::from_millis(BACKOFF_MS_FIRST);
        let mut attempts = 0;
        loop {
            attempts += 1;
            let signed = self
                .keys
                .sign(crate::unix_secs_now(), method.as_str(), path, &body);
            let mut request = self
                .http
                .request(method.clone(), format!("{}{path}", self.base_url))
                .timeout(policy.request_timeout)
                .body(body.clone());
            if let Some(content_type) = content_type {
                request = request.header(CONTENT_TYPE, content_type);
            }
            for (name, value) in signed.pairs() {
                request = request.header(name, value);
            }
            let last = match request.send().await {
                Ok(response) if response.status().is_success() => match read(response).await {
                    Read::Done(answer) => return Ok(answer),
                    Read::Fail(e) => return Err(e),
                    Read::Retry(last) => last,
                },
                Ok(response) if response.status().is_client_error() => {
                    let status = response.status();
                    let body = response.text().await.unwrap_or_default();
                    return Err(DeliveryError::Refused {
                        path: path.to_owned(),
                        status,
                        body: body.chars().take(ERROR_BODY_CHARS_MAX).collect(),
                    });
                }
                Ok(response) => format!("edge answered {}", response.status()),
                Err(e) => format!("request failed: {e}"),
            };
            let out_of_budget = started.elapsed() + backoff > policy.budget;
            if attempts >= policy.attempts_max || out_of_budget {
                return Err(DeliveryError::GaveUp {
                    path: path.to_owned(),
                    attempts,
                    last,
                });
            }
            tracing::debug!(path, attempts, %last, "retrying a call to the edge");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_millis(BACKOFF_MS_MAX));
        }
    }
}

/// Reads a 2xx answer of at most `bytes_max` bytes, refusing a longer one as soon as its
/// `content-length` or its running total says so.
async fn read_bounded(
    mut response: reqwest::Response,
    path: &str,
    bytes_max: u64,
) -> Read<InputFile> {
    let too_large = || {
        Read::Fail(DeliveryError::TooLarge {
            path: path.to_owned(),
            bytes_max,
        })
    };
    if response.content_length().is_some_and(|n| n > bytes_max) {
        return too_large();
    }
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut bytes = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if (bytes.len() + chunk.len()) as u64 > bytes_max {
                    return too_large();
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => return Read::Retry(format!("answer cut short: {e}")),
        }
    }
    Read::Done(InputFile {
        bytes: Bytes::from(bytes),
        content_type,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    use axum::extract::State;
    use axum::http::{HeaderMap, Method as HttpMethod, StatusCode as HttpStatus, Uri};
    use axum::response::{IntoResponse, Response};
    use axum::Router;
    use kiln_shared::signing::{
        ReceivedHeaders, HEADER_KEY_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP,
    };

    use super::*;

    const KEYS: &str = "origin-2026:fedcba9876543210fedcba9876543210";

    /// How the stand-in answers `GET …/inputs/{file}`.
    #[derive(Clone)]
    struct Serve {
        /// Answered 503 this many times first.
        unavailable: Arc<AtomicU32>,
        status: HttpStatus,
        bytes: Bytes,
        /// Streamed without a `content-length`, so only the running total can stop it.
        chunked: bool,
        /// Every request seen: (method, path, signature verified).
        seen: Arc<std::sync::Mutex<Vec<(String, String, bool)>>>,
    }

    /// Stands in for the edge's `GET /internal/origin/jobs/{id}/inputs/{file}` on
    /// 127.0.0.1: checks the origin→edge signature with [`Keyring::verify`] as the edge
    /// does (401 if it fails), then serves `serve.bytes` as a PNG.
    async fn stand_in_edge(serve: Serve) -> String {
        async fn handle(
            State(serve): State<Serve>,
            method: HttpMethod,
            uri: Uri,
            headers: HeaderMap,
            body: Bytes,
        ) -> Response {
            let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
            let received = ReceivedHeaders {
                key_id: header(HEADER_KEY_ID),
                timestamp: header(HEADER_TIMESTAMP),
                signature: header(HEADER_SIGNATURE),
            };
            let verified = Keyring::parse(KEYS)
                .unwrap()
                .verify(
                    crate::unix_secs_now(),
                    &received,
                    method.as_str(),
                    uri.path(),
                    &body,
                )
                .is_ok();
            serve
                .seen
                .lock()
                .unwrap()
                .push((method.to_string(), uri.path().to_owned(), verified));
            if !verified {
                return HttpStatus::UNAUTHORIZED.into_response();
            }
            let fail = serve
                .unavailable
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            if fail {
                return HttpStatus::SERVICE_UNAVAILABLE.into_response();
            }
            if serve.status != HttpStatus::OK {
                let error = r#"{"error":{"type":"invalid_request_error","code":"not_found","message":"No such file.","param":null}}"#;
                return (serve.status, [("content-type", "application/json")], error)
                    .into_response();
            }
            let body = if serve.chunked {
                let chunks: Vec<Result<Bytes, std::io::Error>> = serve
                    .bytes
                    .chunks(1 << 20)
                    .map(|c| Ok(Bytes::copy_from_slice(c)))
                    .collect();
                axum::body::Body::from_stream(futures_util::stream::iter(chunks))
            } else {
                axum::body::Body::from(serve.bytes.clone())
            };
            ([("content-type", "image/png")], body).into_response()
        }
        let app = Router::new()
            .route(
                "/internal/origin/jobs/{job_id}/inputs/{filename}",
                axum::routing::get(handle),
            )
            .with_state(serve);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    fn serve(status: HttpStatus, bytes: Vec<u8>, unavailable: u32) -> Serve {
        Serve {
            unavailable: Arc::new(AtomicU32::new(unavailable)),
            status,
            bytes: Bytes::from(bytes),
            chunked: false,
            seen: Arc::default(),
        }
    }

    fn job_and_file() -> (JobId, Filename) {
        (
            JobId::generate(1_775_219_730_000, [7; 10]),
            Filename::parse("upl_cat.png").unwrap(),
        )
    }

    #[tokio::test]
    async fn an_input_is_fetched_with_a_signed_get() {
        let serve = serve(HttpStatus::OK, b"\x89PNG pretend".to_vec(), 0);
        let seen = Arc::clone(&serve.seen);
        let client = EdgeClient::new(&stand_in_edge(serve).await, Keyring::parse(KEYS).unwrap());
        let (job, file) = job_and_file();
        let input = client.fetch_input(&job, &file).await.unwrap();
        assert_eq!(&input.bytes[..], b"\x89PNG pretend");
        assert_eq!(input.content_type.as_deref(), Some("image/png"));
        let seen = seen.lock().unwrap().clone();
        assert_eq!(
            seen,
            vec![("GET".to_owned(), input_path(&job, &file), true)],
            "one GET of the input path, its signature verified by the edge's rule"
        );
    }

    #[tokio::test]
    async fn a_wrong_key_is_refused_and_not_retried() {
        let serve = serve(HttpStatus::OK, b"x".to_vec(), 0);
        let seen = Arc::clone(&serve.seen);
        let other = Keyring::parse("origin-2026:0000000000000000000000000000000000").unwrap();
        let client = EdgeClient::new(&stand_in_edge(serve).await, other);
        let (job, file) = job_and_file();
        let e = client.fetch_input(&job, &file).await.unwrap_err();
        assert!(
            matches!(e, DeliveryError::Refused { status, .. } if status == StatusCode::UNAUTHORIZED),
            "{e}"
        );
        assert_eq!(seen.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_missing_input_is_refused_at_once_and_5xx_is_retried() {
        let (job, file) = job_and_file();
        let missing = serve(HttpStatus::NOT_FOUND, vec![], 0);
        let seen = Arc::clone(&missing.seen);
        let client = EdgeClient::new(&stand_in_edge(missing).await, Keyring::parse(KEYS).unwrap());
        let e = client.fetch_input(&job, &file).await.unwrap_err();
        let DeliveryError::Refused { status, body, .. } = e else {
            panic!("want refused, got {e}");
        };
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(body.contains("not_found"), "{body}");
        assert_eq!(seen.lock().unwrap().len(), 1);

        let flaky = serve(HttpStatus::OK, b"late".to_vec(), 2);
        let seen = Arc::clone(&flaky.seen);
        let client = EdgeClient::new(&stand_in_edge(flaky).await, Keyring::parse(KEYS).unwrap());
        let input = client.fetch_input(&job, &file).await.unwrap();
        assert_eq!(&input.bytes[..], b"late");
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 3);
        assert!(
            seen.iter().all(|(_, _, verified)| *verified),
            "each try signed afresh"
        );
    }

    #[tokio::test]
    async fn an_oversized_input_is_refused_whether_announced_or_streamed() {
        let (job, file) = job_and_file();
        let big = vec![0u8; INPUT_BYTES_MAX as usize + 1];
        for chunked in [false, true] {
            let serve = Serve {
                chunked,
                ..serve(HttpStatus::OK, big.clone(), 0)
            };
            let seen = Arc::clone(&serve.seen);
            let client =
                EdgeClient::new(&stand_in_edge(serve).await, Keyring::parse(KEYS).unwrap());
            let e = client.fetch_input(&job, &file).await.unwrap_err();
            assert!(
                matches!(e, DeliveryError::TooLarge { .. }),
                "chunked {chunked}: {e}"
            );
            assert_eq!(seen.lock().unwrap().len(), 1, "not retried");
        }
        // Exactly at the limit is fine.
        let exact = serve(HttpStatus::OK, vec![1u8; INPUT_BYTES_MAX as usize], 0);
        let client = EdgeClient::new(&stand_in_edge(exact).await, Keyring::parse(KEYS).unwrap());
        let input = client.fetch_input(&job, &file).await.unwrap();
        assert_eq!(input.bytes.len() as u64, INPUT_BYTES_MAX);
    }
}
