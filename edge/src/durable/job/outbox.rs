//! The webhook outbox of a Job Durable Object (`docs/architecture.md`, "9. Webhooks"). Every event a job's
//! `replyUrl` should hear about becomes a row, with its body frozen and its
//! `webhook-id` fixed, in the same Durable Object as the job, so an event is never lost
//! between the state change and the delivery. The Job DO's alarm sends due rows,
//! records every attempt, and re-arms at the next due time: at-least-once delivery
//! that survives restarts of the runtime, with retries on the schedule of `docs/api.md` ("Delivery and retries")
//! (jitter, 410 stops, `Retry-After` respected).

use std::time::Duration;

use kiln_shared::jobs::{JobState, JobStatus};
use kiln_shared::webhooks::{self, Attempt, DeliveryState, EventType};
use kiln_shared::{ApiError, ErrorCode};
use serde::{Deserialize, Serialize};
use worker::{Env, Method, SqlStorage};

use crate::durable::account::proto::{GetWebhookSecrets, WebhookSecrets};
use crate::platform::bindings;
use crate::platform::clock::{now_ms, random_bytes};
use crate::platform::config;
use crate::platform::error::EdgeResult;
use crate::platform::http::fetch_with_timeout;

/// Error texts kept in the delivery log are cut to this length.
const ERROR_CHARS_MAX: usize = 300;

pub const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS outbox (
        msg_id TEXT PRIMARY KEY, seq INTEGER NOT NULL, event_type TEXT NOT NULL,
        body TEXT NOT NULL, url TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
        state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'gone', 'gave_up')),
        next_at_ms INTEGER, created_at_ms INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS deliveries (
        id INTEGER PRIMARY KEY AUTOINCREMENT, msg_id TEXT NOT NULL, event_type TEXT NOT NULL,
        attempt INTEGER NOT NULL, at_ms INTEGER NOT NULL, status INTEGER, latency_ms INTEGER,
        error TEXT, replay INTEGER NOT NULL DEFAULT 0)",
];

/// One event of the job, with where its delivery stands.
#[derive(Serialize, Deserialize)]
pub struct EventRecord {
    pub webhook_id: String,
    pub event_type: String,
    pub state: DeliveryState,
    pub attempts: u32,
    pub next_at_ms: Option<i64>,
}

/// One delivery attempt.
#[derive(Serialize, Deserialize)]
pub struct AttemptRecord {
    pub webhook_id: String,
    pub event_type: String,
    pub attempt: u32,
    pub at_ms: i64,
    pub status: Option<u16>,
    pub latency_ms: Option<i64>,
    pub error: Option<String>,
    pub replay: bool,
}

#[derive(Serialize, Deserialize)]
pub struct Deliveries {
    pub events: Vec<EventRecord>,
    pub attempts: Vec<AttemptRecord>,
}

#[derive(Deserialize)]
struct Row {
    msg_id: String,
    event_type: String,
    body: String,
    url: String,
    attempts: u32,
    state: DeliveryState,
    next_at_ms: Option<i64>,
}

#[derive(Deserialize)]
struct AttemptRow {
    msg_id: String,
    event_type: String,
    attempt: u32,
    at_ms: i64,
    status: Option<u16>,
    latency_ms: Option<i64>,
    error: Option<String>,
    replay: i64,
}

/// The result of one POST to the receiver.
struct Sent {
    latency_ms: i64,
    error: Option<String>,
    /// What it leaves for the schedule.
    attempt: Attempt,
}

pub struct Outbox<'a> {
    pub sql: &'a SqlStorage,
    pub env: &'a Env,
}

/// The runtime's message of a fetch error, without Rust's debug wrapping.
fn plain(e: &crate::platform::error::EdgeError) -> String {
    let text = format!("{e:?}");
    // JS errors arrive as `…UnknownJsError { message: "…" }` or `JsError("…")`.
    text.split('"')
        .nth(1)
        .filter(|m| !m.is_empty())
        .map(str::to_owned)
        .unwrap_or(text)
}

fn cut(s: String) -> String {
    if s.chars().count() <= ERROR_CHARS_MAX {
        s
    } else {
        s.chars().take(ERROR_CHARS_MAX).collect::<String>() + "…"
    }
}

/// The webhook event a job's new state calls for, if any.
fn event_for(job: &JobState) -> Option<EventType> {
    match job.status {
        JobStatus::Queued => None,
        JobStatus::LoadingModel => Some(EventType::Started),
        JobStatus::Processing => Some(EventType::Progress),
        JobStatus::Completed => Some(EventType::Completed),
        JobStatus::Failed => Some(EventType::Failed),
        JobStatus::Cancelled => Some(EventType::Cancelled),
    }
}

impl Outbox<'_> {
    fn rows(&self, query: &str, args: Vec<worker::SqlStorageValue>) -> EdgeResult<Vec<Row>> {
        Ok(self.sql.exec(query, args)?.to_array()?)
    }

    fn has(&self, event: EventType) -> EdgeResult<bool> {
        Ok(!self
            .rows(
                "SELECT msg_id, event_type, body, url, attempts, state, next_at_ms FROM outbox
                 WHERE event_type = ? LIMIT 1",
                vec![event.as_str().into()],
            )?
            .is_empty())
    }

    /// Queues the events the job's new state calls for: `job.started` once (on the first
    /// sign of work, whatever its status) unless turned off, `job.progress` per step when
    /// asked for, and the terminal event once. Returns whether anything was queued.
    pub fn record(&self, job: &JobState, view: &serde_json::Value) -> EdgeResult<bool> {
        let Some(url) = job.reply_url.as_deref() else {
            return Ok(false);
        };
        let Some(event) = event_for(job) else {
            return Ok(false);
        };
        let mut events = Vec::new();
        let started = job.started_at_ms.is_some() || event == EventType::Started;
        if started
            && job.webhook_started
            && event != EventType::Cancelled
            && !self.has(EventType::Started)?
        {
            events.push(EventType::Started);
        }
        match event {
            EventType::Started => {}
            // One per step, when asked for.
            EventType::Progress => {
                if event.is_sent(job.webhook_progress) {
                    events.push(event);
                }
            }
            // Terminal: once.
            terminal => {
                if !self.has(terminal)? {
                    events.push(terminal);
                }
            }
        }
        let now = now_ms();
        for e in &events {
            let body = webhooks::body(*e, job.reply_ref.as_deref(), view);
            self.sql.exec(
                "INSERT INTO outbox (msg_id, seq, event_type, body, url, state, next_at_ms,
                                     created_at_ms)
                 VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM outbox), ?, ?, ?, ?, ?, ?)",
                vec![
                    webhooks::new_message_id(random_bytes()).into(),
                    e.as_str().into(),
                    body.into(),
                    url.into(),
                    DeliveryState::Pending.as_str().into(),
                    now.into(),
                    now.into(),
                ],
            )?;
        }
        Ok(!events.is_empty())
    }

    /// When the next row is due, if any.
    pub fn next_due_ms(&self) -> EdgeResult<Option<i64>> {
        #[derive(Deserialize)]
        struct Next {
            next: Option<i64>,
        }
        let rows: Vec<Next> = self
            .sql
            .exec(
                "SELECT MIN(next_at_ms) AS next FROM outbox WHERE state = ?",
                vec![DeliveryState::Pending.as_str().into()],
            )?
            .to_array()?;
        Ok(rows.first().and_then(|n| n.next))
    }

    async fn secrets(&self, job: &JobState) -> EdgeResult<WebhookSecrets> {
        bindings::account(self.env, &job.account_id)?
            .call(&GetWebhookSecrets)
            .await
    }

    /// POSTs one event, signed with every active secret of the account.
    async fn send(&self, secrets: &WebhookSecrets, msg_id: &str, url: &str, body: &str) -> Sent {
        let started = now_ms();
        let failed = |error: String| Sent {
            latency_ms: now_ms() - started,
            error: Some(cut(error)),
            attempt: Attempt {
                status: None,
                refused: false,
                retry_after_ms: None,
            },
        };
        // The allow-list may have changed since submission; check at every attempt.
        let allow = config::webhook_allow_list(self.env);
        // What was checked is what is fetched: the normalised URL.
        let url = match webhooks::check_destination(url, &allow) {
            Ok(dest) => dest.url,
            Err(why) => {
                let mut sent = failed(format!("destination not allowed: {why}"));
                sent.attempt.refused = true;
                return sent;
            }
        };
        let signed =
            match webhooks::headers(&secrets.signing(), msg_id, started / 1000, body.as_bytes()) {
                Ok(h) => h,
                Err(e) => return failed(format!("signing: {e:?}")),
            };
        let mut headers = vec![
            ("content-type", "application/json"),
            ("user-agent", "Kiln-Webhooks/1"),
        ];
        headers.extend(signed.iter().map(|(name, value)| (*name, value.as_str())));
        // Redirects are not followed: one could lead to an address the guard refuses.
        let req = match request_no_redirect(&url, &headers, body.as_bytes()) {
            Ok(r) => r,
            Err(e) => return failed(format!("{e:?}")),
        };
        let timeout = Duration::from_secs(webhooks::DELIVERY_TIMEOUT_SECS);
        match fetch_with_timeout(req, timeout).await {
            Ok(Some(resp)) => {
                let status = resp.status_code();
                let retry_after_ms = resp
                    .headers()
                    .get("retry-after")
                    .ok()
                    .flatten()
                    .and_then(|v| webhooks::parse_retry_after(&v, now_ms()));
                Sent {
                    latency_ms: now_ms() - started,
                    error: (!(200..300).contains(&status)).then(|| format!("answered {status}")),
                    attempt: Attempt {
                        status: Some(status),
                        refused: false,
                        retry_after_ms,
                    },
                }
            }
            Ok(None) => failed(format!(
                "no answer within {} s",
                webhooks::DELIVERY_TIMEOUT_SECS
            )),
            Err(e) => failed(format!("could not connect: {}", plain(&e))),
        }
    }

    fn log(
        &self,
        msg_id: &str,
        event_type: &str,
        attempt: u32,
        sent: &Sent,
        replay: bool,
    ) -> EdgeResult<()> {
        self.sql.exec(
            "INSERT INTO deliveries (msg_id, event_type, attempt, at_ms, status, latency_ms, error,
                                     replay)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            vec![
                msg_id.into(),
                event_type.into(),
                i64::from(attempt).into(),
                (now_ms() - sent.latency_ms).into(),
                sent.attempt.status.map(i64::from).into(),
                sent.latency_ms.into(),
                sent.error.clone().into(),
                i64::from(replay).into(),
            ],
        )?;
        Ok(())
    }

    /// Sends every due row, oldest first, and schedules the next try of each that
    /// failed.
    pub async fn deliver_due(&self, job: &JobState) -> EdgeResult<()> {
        let now = now_ms();
        let due = self.rows(
            "SELECT msg_id, event_type, body, url, attempts, state, next_at_ms FROM outbox
             WHERE state = ? AND next_at_ms <= ? ORDER BY seq",
            vec![DeliveryState::Pending.as_str().into(), now.into()],
        )?;
        if due.is_empty() {
            return Ok(());
        }
        let secrets = self.secrets(job).await?;
        let schedule = config::webhook_retry_schedule_ms(self.env);
        for row in due {
            let attempt = row.attempts + 1;
            let sent = self.send(&secrets, &row.msg_id, &row.url, &row.body).await;
            self.log(&row.msg_id, &row.event_type, attempt, &sent, false)?;
            let jitter = u32::from_le_bytes(random_bytes());
            let (state, delay) = webhooks::after_attempt(sent.attempt, attempt, &schedule, jitter);
            let next = delay.map(|d| now_ms().saturating_add(i64::try_from(d).unwrap_or(i64::MAX)));
            self.sql.exec(
                "UPDATE outbox SET attempts = ?, state = ?, next_at_ms = ? WHERE msg_id = ?",
                vec![
                    i64::from(attempt).into(),
                    state.as_str().into(),
                    next.into(),
                    row.msg_id.as_str().into(),
                ],
            )?;
        }
        Ok(())
    }

    /// `POST /v1/jobs/{id}/webhook`: sends the terminal event again now, with its
    /// `webhook-id` and body and a fresh timestamp and signature.
    pub async fn replay(&self, job: &JobState) -> EdgeResult<AttemptRecord> {
        if job.reply_url.is_none() {
            return Err(ApiError::conflict(
                ErrorCode::NoReplyUrl,
                "This job was submitted without a replyUrl; there is no webhook to replay.",
            )
            .into());
        }
        if !job.status.is_terminal() {
            return Err(ApiError::conflict(
                ErrorCode::JobNotFinished,
                "The job has not ended yet; its terminal event can be replayed once it has.",
            )
            .into());
        }
        let rows = self.rows(
            "SELECT msg_id, event_type, body, url, attempts, state, next_at_ms FROM outbox
             WHERE event_type IN (?, ?, ?) ORDER BY seq DESC LIMIT 1",
            vec![
                EventType::Completed.as_str().into(),
                EventType::Failed.as_str().into(),
                EventType::Cancelled.as_str().into(),
            ],
        )?;
        let row = rows.into_iter().next().ok_or_else(ApiError::internal)?;
        let secrets = self.secrets(job).await?;
        let sent = self.send(&secrets, &row.msg_id, &row.url, &row.body).await;
        // A replay is logged but does not use up one of the event's scheduled retries.
        let attempt = row.attempts + 1;
        self.log(&row.msg_id, &row.event_type, attempt, &sent, true)?;
        let delivered = sent.attempt.status.is_some_and(|s| (200..300).contains(&s));
        if delivered {
            self.sql.exec(
                "UPDATE outbox SET state = ?, next_at_ms = NULL WHERE msg_id = ?",
                vec![
                    DeliveryState::Delivered.as_str().into(),
                    row.msg_id.as_str().into(),
                ],
            )?;
        }
        Ok(AttemptRecord {
            webhook_id: row.msg_id,
            event_type: row.event_type,
            attempt,
            at_ms: now_ms() - sent.latency_ms,
            status: sent.attempt.status,
            latency_ms: Some(sent.latency_ms),
            error: sent.error,
            replay: true,
        })
    }

    /// The events and every attempt, oldest first.
    pub fn list(&self) -> EdgeResult<Deliveries> {
        let events = self
            .rows(
                "SELECT msg_id, event_type, body, url, attempts, state, next_at_ms FROM outbox
                 ORDER BY seq",
                vec![],
            )?
            .into_iter()
            .map(|r| EventRecord {
                webhook_id: r.msg_id,
                event_type: r.event_type,
                state: r.state,
                attempts: r.attempts,
                next_at_ms: r.next_at_ms,
            })
            .collect();
        let rows: Vec<AttemptRow> = self
            .sql
            .exec(
                "SELECT msg_id, event_type, attempt, at_ms, status, latency_ms, error, replay
                 FROM deliveries ORDER BY id",
                None,
            )?
            .to_array()?;
        let attempts = rows
            .into_iter()
            .map(|r| AttemptRecord {
                webhook_id: r.msg_id,
                event_type: r.event_type,
                attempt: r.attempt,
                at_ms: r.at_ms,
                status: r.status,
                latency_ms: r.latency_ms,
                error: r.error,
                replay: r.replay != 0,
            })
            .collect();
        Ok(Deliveries { events, attempts })
    }
}

/// A signed webhook POST that does not follow redirects (a 3xx is a failed attempt).
fn request_no_redirect(
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> EdgeResult<worker::Request> {
    let h = worker::Headers::new();
    for (k, v) in headers {
        h.set(k, v)?;
    }
    let mut init = worker::RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(h)
        .with_redirect(worker::RequestRedirect::Manual)
        .with_body(Some(worker::js_sys::Uint8Array::from(body).into()));
    Ok(worker::Request::new_with_init(url, &init)?)
}
