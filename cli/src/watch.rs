//! Following a job on its event stream until it ends, and what Ctrl-C does meanwhile.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;
use tokio::sync::Notify;

use crate::api::Api;
use crate::error::{CliError, EXIT_INTERRUPTED};
use crate::progress::Progress;

/// Whether a job is being followed: Ctrl-C then stops following instead of exiting.
static WATCHING: AtomicBool = AtomicBool::new(false);
static INTERRUPTED: Notify = Notify::const_new();

/// How many times in a row a broken stream is opened again before giving up.
const REOPEN_ATTEMPTS: u32 = 5;

/// Installs the Ctrl-C (and SIGTERM) handler: while a job is followed it stops
/// following (the job keeps running, and the CLI says how to follow it again);
/// otherwise it exits at once, as if there were no handler.
pub fn install_interrupt_handler() {
    let _ = ctrlc::set_handler(|| {
        if WATCHING.load(Ordering::SeqCst) {
            INTERRUPTED.notify_one();
        } else {
            std::process::exit(EXIT_INTERRUPTED);
        }
    });
}

/// Marks the time a job is followed; Ctrl-C exits again once it is dropped.
struct Watching;

impl Watching {
    fn start() -> Watching {
        WATCHING.store(true, Ordering::SeqCst);
        Watching
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        WATCHING.store(false, Ordering::SeqCst);
    }
}

pub fn is_terminal(status: &str) -> bool {
    matches!(status, "completed" | "failed" | "cancelled")
}

/// Follows the job's events, showing them in `progress`, and answers the job object of
/// its terminal event. Ctrl-C answers [`CliError::Interrupted`] and leaves the job be.
pub async fn follow(api: &Api, job_id: &str, progress: &mut Progress) -> Result<Value, CliError> {
    let _watching = Watching::start();
    let outcome = tokio::select! {
        r = follow_stream(api, job_id, progress) => Some(r),
        _ = INTERRUPTED.notified() => None,
    };
    match outcome {
        Some(r) => r,
        None => {
            progress.finish();
            Err(CliError::Interrupted {
                job_id: job_id.to_owned(),
            })
        }
    }
}

async fn follow_stream(
    api: &Api,
    job_id: &str,
    progress: &mut Progress,
) -> Result<Value, CliError> {
    let mut failures = 0;
    loop {
        let problem = match api.job_events(job_id).await {
            Ok(mut events) => {
                let mut problem = "the event stream ended before the job did".to_owned();
                while let Some(item) = events.next().await {
                    let sse = match item {
                        Ok(sse) => sse,
                        Err(e) => {
                            problem = format!("the event stream broke: {e}");
                            break;
                        }
                    };
                    failures = 0;
                    if let Some(job) = job_of(&sse) {
                        progress.update(&job);
                        if is_terminal(job["status"].as_str().unwrap_or_default()) {
                            return Ok(job);
                        }
                    }
                }
                problem
            }
            // Passing trouble: the stream is opened again.
            Err(e @ CliError::Network(_)) => e.to_string(),
            Err(e @ CliError::Http { .. }) => e.to_string(),
            Err(CliError::Api { status, .. }) if status == 429 || status >= 500 => {
                format!("the stream answered HTTP {status}")
            }
            // The job or the key is wrong: nothing to retry.
            Err(e) => return Err(e),
        };
        failures += 1;
        if failures > REOPEN_ATTEMPTS {
            progress.finish();
            return Err(CliError::Network(format!(
                "lost job {job_id}'s event stream ({problem}); it may still be running: kiln jobs watch {job_id}"
            )));
        }
        tokio::time::sleep(Duration::from_secs(u64::from(failures))).await;
    }
}

/// The job object an event carries; `None` for pings and anything else.
fn job_of(sse: &sse_stream::Sse) -> Option<Value> {
    if sse.event.as_deref() == Some("ping") {
        return None;
    }
    let job: Value = serde_json::from_str(sse.data.as_deref()?).ok()?;
    (job["object"] == "job" && job["status"].is_string()).then_some(job)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::progress::Mode;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    /// A one-thread HTTP server that answers its connections, in order, with `answers`
    /// (status line and body; the body is SSE for a 200), then closes each.
    fn server(answers: Vec<(&'static str, String)>) -> (String, std::thread::JoinHandle<usize>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            let mut served = 0;
            for (status, body) in answers {
                let (mut conn, _) = listener.accept().unwrap();
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf).unwrap();
                let request = String::from_utf8_lossy(&buf);
                assert!(
                    request.starts_with("GET /v1/jobs/job_1/stream "),
                    "{request}"
                );
                assert!(
                    request.contains("authorization: Bearer sk-test-x"),
                    "{request}"
                );
                let kind = if status.starts_with("200") {
                    "text/event-stream"
                } else {
                    "application/json"
                };
                let head = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: {kind}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                conn.write_all(head.as_bytes()).unwrap();
                conn.write_all(body.as_bytes()).unwrap();
                served += 1;
            }
            served
        });
        (url, handle)
    }

    fn api(url: &str) -> Api {
        Api::new(&Config::new(url, Some("sk-test-x"))).unwrap()
    }

    fn frame(status: &str, step: u32) -> String {
        format!(
            "event: {status}\ndata: {{\"id\":\"job_1\",\"object\":\"job\",\"status\":\"{status}\",\"progress\":{{\"step\":{step},\"total_steps\":8}}}}\n\n"
        )
    }

    #[tokio::test]
    async fn a_stream_that_ends_early_is_opened_again() {
        let (url, server) = server(vec![
            (
                "200 OK",
                frame("processing", 3) + "event: ping\ndata: {}\n\n",
            ),
            ("503 Service Unavailable", "{}".to_owned()),
            ("200 OK", frame("processing", 5) + &frame("completed", 8)),
        ]);
        let mut progress = Progress::new(Mode::Quiet);
        let job = follow(&api(&url), "job_1", &mut progress).await.unwrap();
        assert_eq!(job["status"], "completed");
        assert_eq!(job["progress"]["step"], 8);
        assert_eq!(server.join().unwrap(), 3);
    }

    #[tokio::test]
    async fn an_unknown_job_is_not_retried() {
        let body = r#"{"error": {"message": "No job with this id.", "type": "not_found_error", "param": null, "code": "job_not_found"}}"#;
        let (url, server) = server(vec![("404 Not Found", body.to_owned())]);
        let mut progress = Progress::new(Mode::Quiet);
        let e = follow(&api(&url), "job_1", &mut progress)
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "No job with this id. (job_not_found, HTTP 404)"
        );
        assert_eq!(server.join().unwrap(), 1);
    }

    #[test]
    fn events_carry_jobs_and_pings_do_not() {
        let ev = |event: &str, data: &str| sse_stream::Sse::default().event(event).data(data);
        assert!(job_of(&ev("ping", r#"{"ts": "2026-04-03T12:35:15Z"}"#)).is_none());
        assert!(job_of(&ev("processing", "not json")).is_none());
        let job = job_of(&ev(
            "processing",
            r#"{"id": "job_1", "object": "job", "status": "processing"}"#,
        ))
        .unwrap();
        assert_eq!(job["id"], "job_1");
        assert!(is_terminal("cancelled") && !is_terminal("processing"));
    }
}
