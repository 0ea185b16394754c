//! Server-sent events: the frame format, and a hub that fans events out to many
//! subscribers of one Durable Object (a job's stream, or an account's). Each subscriber
//! is a channel feeding its response body; a ping goes out every `SSE_PING_SECS` so
//! proxies keep the connection open and clients can tell a quiet job from a dead link.

use std::cell::RefCell;
use std::time::Duration;

use futures_channel::mpsc::{unbounded, UnboundedSender};
use serde_json::Value;
use worker::{Headers, Response};

use crate::platform::error::EdgeResult;

type Chunk = Result<Vec<u8>, worker::Error>;

/// One SSE frame: `event: <name>` and the JSON data on one line.
pub fn frame(event: &str, data: &Value) -> String {
    format!("event: {event}\ndata: {data}\n\n")
}

/// Headers every event stream carries.
pub fn headers() -> EdgeResult<Headers> {
    let h = Headers::new();
    h.set("content-type", "text/event-stream; charset=utf-8")?;
    h.set("cache-control", "no-cache, no-transform")?;
    h.set("x-accel-buffering", "no")?;
    Ok(h)
}

/// Re-wraps a Durable Object's event-stream response so the Worker can add headers
/// (a fetched response's headers are immutable).
pub fn forward(resp: Response) -> EdgeResult<Response> {
    let status = resp.status_code();
    let body = resp.body().clone();
    Ok(Response::from_body(body)?
        .with_status(status)
        .with_headers(headers()?))
}

/// The live subscribers of one Durable Object.
#[derive(Default)]
pub struct Hub {
    subscribers: RefCell<Vec<UnboundedSender<Chunk>>>,
}

impl Hub {
    /// A new event stream that starts with `first` (the current state, for late
    /// subscribers). With `end`, the stream closes after `first` (the job already ended).
    pub fn subscribe(&self, first: &[String], end: bool, ping_secs: u64) -> EdgeResult<Response> {
        let (tx, rx) = unbounded::<Chunk>();
        for f in first {
            let _ = tx.unbounded_send(Ok(f.clone().into_bytes()));
        }
        if end {
            tx.close_channel();
        } else {
            let pinger = tx.clone();
            wasm_bindgen_futures::spawn_local(async move {
                loop {
                    worker::Delay::from(Duration::from_secs(ping_secs.max(1))).await;
                    let ping = frame(
                        "ping",
                        &serde_json::json!({"ts": kiln_shared::time::rfc3339(crate::platform::clock::now_ms())}),
                    );
                    if pinger.unbounded_send(Ok(ping.into_bytes())).is_err() {
                        break;
                    }
                }
            });
            self.subscribers.borrow_mut().push(tx);
        }
        Ok(Response::from_stream(rx)?.with_headers(headers()?))
    }

    /// Sends a frame to every subscriber; those that went away are dropped. With `end`,
    /// every stream closes after this frame.
    pub fn publish(&self, frame: &str, end: bool) {
        let mut subs = self.subscribers.borrow_mut();
        subs.retain(|tx| tx.unbounded_send(Ok(frame.as_bytes().to_vec())).is_ok());
        if end {
            for tx in subs.drain(..) {
                tx.close_channel();
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.subscribers.borrow_mut().retain(|tx| !tx.is_closed());
        self.subscribers.borrow().is_empty()
    }
}
