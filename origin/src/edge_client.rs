//! Signed calls from the origin to the edge's internal endpoints
//! ([`kiln_shared::origin`]): job events, output uploads and heartbeats.
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
    events_path, output_path, EventAck, EventEnvelope, Heartbeat, HEARTBEAT_PATH,
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
    #[error("gave up on {path} after {attempts} attempt(s): {last}")]
    GaveUp {
        path: String,
        attempts: u32,
        last: String,
    },
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

    /// Sends until a 2xx (whose body it returns), a 4xx, or the policy gives up.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Bytes,
        content_type: &str,
        policy: RetryPolicy,
    ) -> Result<Bytes, DeliveryError> {
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
                .header(CONTENT_TYPE, content_type)
                .timeout(policy.request_timeout)
                .body(body.clone());
            for (name, value) in signed.pairs() {
                request = request.header(name, value);
            }
            let last = match request.send().await {
                Ok(response) if response.status().is_success() => match response.bytes().await {
                    Ok(answer) => return Ok(answer),
                    // The edge took the request; only its answer was cut short.
                    Err(_) => return Ok(Bytes::new()),
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
