//! What can go wrong, as one line on stderr and an exit code.

use std::fmt;

use serde_json::Value;

/// Exit code of a command that failed (an API error, a failed job, a network error).
pub const EXIT_FAILURE: i32 = 1;
/// Exit code of a usage error (clap's own, and a missing API key).
pub const EXIT_USAGE: i32 = 2;
/// Exit code after Ctrl-C (128 + SIGINT), as shells report it.
pub const EXIT_INTERRUPTED: i32 = 130;

#[derive(Debug, Clone, PartialEq)]
pub enum CliError {
    /// The API answered with an error (`{"error": {"code", "message", "param"}}`).
    Api {
        status: u16,
        code: String,
        message: String,
        param: Option<String>,
    },
    /// The server answered an error that is not in the API's shape (a proxy, a crash).
    Http { status: u16, body: String },
    /// The server could not be reached, or the connection broke.
    Network(String),
    /// The command was given something it cannot use (exit 2).
    Usage(String),
    /// A job ended without completing: `failed` or `cancelled`.
    JobEnded {
        job_id: String,
        status: String,
        code: Option<String>,
        message: Option<String>,
    },
    /// Ctrl-C while following a job: it keeps running.
    Interrupted { job_id: String },
    /// Anything else (a file that cannot be read or written, a malformed answer).
    Other(String),
}

impl CliError {
    /// The error of an API answer with a non-2xx status.
    pub fn from_response(status: u16, body: &str) -> CliError {
        let parsed: Option<Value> = serde_json::from_str(body).ok();
        let error = parsed.as_ref().map(|v| &v["error"]);
        match error.and_then(|e| Some((e, e["message"].as_str()?))) {
            Some((e, message)) => CliError::Api {
                status,
                code: e["code"].as_str().unwrap_or("unknown_error").to_owned(),
                message: message.to_owned(),
                param: e["param"].as_str().map(str::to_owned),
            },
            None => CliError::Http {
                status,
                body: one_line(body, 200),
            },
        }
    }

    /// A failed or cancelled job, from its job object.
    pub fn job_ended(job: &Value) -> CliError {
        CliError::JobEnded {
            job_id: job["id"].as_str().unwrap_or_default().to_owned(),
            status: job["status"].as_str().unwrap_or_default().to_owned(),
            code: job["error_code"].as_str().map(str::to_owned),
            message: job["error_message"].as_str().map(str::to_owned),
        }
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_) => EXIT_USAGE,
            CliError::Interrupted { .. } => EXIT_INTERRUPTED,
            _ => EXIT_FAILURE,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Api {
                status,
                code,
                message,
                param,
            } => {
                write!(f, "{message} ({code}")?;
                if let Some(p) = param {
                    write!(f, ", param {p}")?;
                }
                write!(f, ", HTTP {status})")
            }
            CliError::Http { status, body } if body.is_empty() => {
                write!(f, "the server answered HTTP {status}")
            }
            CliError::Http { status, body } => {
                write!(f, "the server answered HTTP {status}: {body}")
            }
            CliError::Network(m) | CliError::Usage(m) | CliError::Other(m) => f.write_str(m),
            CliError::JobEnded {
                job_id,
                status,
                code,
                message,
            } => {
                write!(f, "job {job_id} {status}")?;
                match (message, code) {
                    (Some(m), Some(c)) => write!(f, ": {m} ({c})"),
                    (Some(m), None) => write!(f, ": {m}"),
                    (None, Some(c)) => write!(f, " ({c})"),
                    (None, None) => Ok(()),
                }
            }
            CliError::Interrupted { job_id } => write!(
                f,
                "job {job_id} is still running; follow it with: kiln jobs watch {job_id}"
            ),
        }
    }
}

impl std::error::Error for CliError {}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError::Other(e.to_string())
    }
}

/// A reqwest error as one line: what failed and why, with its causes (reqwest's own
/// message alone is often just "error sending request").
pub fn network(what: &str, e: &reqwest::Error) -> CliError {
    let mut parts: Vec<String> = Vec::new();
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(err) = source {
        let text = err.to_string();
        // reqwest's outermost text repeats the URL that `what` names; causes often
        // repeat the text of the error they wrap. Keep each thing once.
        let repeats_url = text.starts_with("error sending request for url");
        if !repeats_url && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = err.source();
    }
    if parts.is_empty() {
        parts.push(e.to_string());
    }
    if e.is_timeout() {
        parts.push("timed out".to_owned());
    }
    CliError::Network(format!("{what}: {}", parts.join(": ")))
}

/// `text` on one line, at most `max` characters.
fn one_line(text: &str, max: usize) -> String {
    let flat: String = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(max)
        .collect();
    flat
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_errors_show_the_message_code_and_status() {
        let body = r#"{"error": {"message": "Invalid API key.", "type": "authentication_error", "param": null, "code": "invalid_api_key"}}"#;
        let e = CliError::from_response(401, body);
        assert_eq!(
            e.to_string(),
            "Invalid API key. (invalid_api_key, HTTP 401)"
        );
        assert_eq!(e.exit_code(), EXIT_FAILURE);
    }

    #[test]
    fn api_errors_name_the_param() {
        let body = r#"{"error": {"message": "`width` must be 512–2048.", "type": "invalid_request_error", "param": "width", "code": "invalid_dimensions"}}"#;
        let e = CliError::from_response(400, body);
        assert_eq!(
            e.to_string(),
            "`width` must be 512–2048. (invalid_dimensions, param width, HTTP 400)"
        );
    }

    #[test]
    fn other_bodies_are_shown_on_one_line() {
        let e = CliError::from_response(502, "<html>\n  <h1>Bad gateway</h1>\n</html>");
        assert_eq!(
            e.to_string(),
            "the server answered HTTP 502: <html> <h1>Bad gateway</h1> </html>"
        );
        let e = CliError::from_response(500, "");
        assert_eq!(e.to_string(), "the server answered HTTP 500");
        // JSON, but not the error shape.
        let e = CliError::from_response(500, r#"{"oops": 1}"#);
        assert!(matches!(e, CliError::Http { status: 500, .. }));
    }

    #[test]
    fn ended_jobs_say_why() {
        let job = serde_json::json!({"id": "job_1", "status": "failed",
            "error_code": "generation_failed", "error_message": "Simulated failure requested by the prompt."});
        assert_eq!(
            CliError::job_ended(&job).to_string(),
            "job job_1 failed: Simulated failure requested by the prompt. (generation_failed)"
        );
    }

    #[test]
    fn interrupting_says_how_to_follow_again() {
        let e = CliError::Interrupted {
            job_id: "job_1".into(),
        };
        assert_eq!(
            e.to_string(),
            "job job_1 is still running; follow it with: kiln jobs watch job_1"
        );
        assert_eq!(e.exit_code(), 130);
        assert_eq!(CliError::Usage("x".into()).exit_code(), 2);
    }
}
