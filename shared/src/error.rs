//! The API's one error shape. Every failure the edge or the origin reports to a client
//! goes through [`ApiError`], so OpenAI-style clients can parse all of them the same way:
//! `{"error": {"message", "type", "param", "code"}}`.

use serde_json::{json, Value};

/// An error as the client sees it: an HTTP status and the OpenAI-shaped body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    status: u16,
    code: &'static str,
    message: String,
    param: Option<String>,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            param: None,
        }
    }

    /// A 400 naming the parameter at fault.
    pub fn invalid_param(param: &str, code: &'static str, message: impl Into<String>) -> Self {
        Self::new(400, code, message).with_param(param)
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(400, code, message)
    }

    pub fn invalid_json(detail: impl std::fmt::Display) -> Self {
        Self::new(
            400,
            "invalid_json",
            format!("The request body is not valid JSON: {detail}"),
        )
    }

    pub fn missing_key() -> Self {
        Self::new(
            401,
            "missing_api_key",
            "No API key provided. Send it as `Authorization: Bearer <key>`.",
        )
    }

    pub fn invalid_key() -> Self {
        Self::new(
            401,
            "invalid_api_key",
            "The API key is not valid or has been revoked.",
        )
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(403, code, message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(404, code, message)
    }

    pub fn route_not_found(method: &str, path: &str) -> Self {
        Self::new(
            404,
            "unknown_route",
            format!("No route for {method} {path}. See /openapi.json for the API."),
        )
    }

    pub fn method_not_allowed(method: &str, path: &str) -> Self {
        Self::new(
            405,
            "method_not_allowed",
            format!("{method} is not allowed on {path}."),
        )
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(409, code, message)
    }

    pub fn payload_too_large(message: impl Into<String>) -> Self {
        Self::new(413, "payload_too_large", message)
    }

    pub fn unsupported_media(message: impl Into<String>) -> Self {
        Self::new(415, "unsupported_media_type", message)
    }

    /// Internal failures get a generic message; the cause belongs in the log, not the body.
    pub fn internal() -> Self {
        Self::new(500, "internal_error", "Something went wrong on our side.")
    }

    pub fn no_capacity() -> Self {
        Self::new(
            503,
            "no_capacity",
            "No GPU capacity is available right now; retry shortly.",
        )
    }

    pub fn with_param(mut self, param: &str) -> Self {
        self.param = Some(param.to_owned());
        self
    }

    pub fn status(&self) -> u16 {
        self.status
    }

    pub fn code(&self) -> &'static str {
        self.code
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn param(&self) -> Option<&str> {
        self.param.as_deref()
    }

    /// The error type OpenAI clients switch on, derived from the status.
    pub fn error_type(&self) -> &'static str {
        match self.status {
            400 | 405 | 409 | 410 | 413 | 415 | 416 => "invalid_request_error",
            401 => "authentication_error",
            402 => "insufficient_quota",
            403 => "permission_error",
            404 => "not_found_error",
            429 => "rate_limit_error",
            503 => "service_unavailable_error",
            _ => "api_error",
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "error": {
                "message": self.message,
                "type": self.error_type(),
                "param": self.param,
                "code": self.code,
            }
        })
    }

    /// Reads an error back from a body in the API's shape (used by the edge to relay
    /// errors from Durable Objects and by tests).
    pub fn from_json(status: u16, body: &Value) -> Option<Self> {
        let err = body.get("error")?;
        let code = known_code(err.get("code")?.as_str()?);
        Some(Self {
            status,
            code,
            message: err.get("message")?.as_str()?.to_owned(),
            param: err.get("param").and_then(Value::as_str).map(str::to_owned),
        })
    }
}

/// Codes are `&'static str` so they can't be invented at runtime; an unknown one read
/// back from a body maps to the generic internal code.
fn known_code(code: &str) -> &'static str {
    const CODES: &[&str] = &[
        "invalid_json",
        "invalid_type",
        "missing_parameter",
        "unknown_parameter",
        "invalid_value",
        "invalid_dimensions",
        "out_of_range",
        "model_not_found",
        "missing_api_key",
        "invalid_api_key",
        "insufficient_credits",
        "file_not_yours",
        "job_not_found",
        "file_not_found",
        "unknown_route",
        "method_not_allowed",
        "trial_exists",
        "idempotency_conflict",
        "payload_too_large",
        "unsupported_media_type",
        "generation_failed",
        "generation_timeout",
        "no_capacity",
        "internal_error",
        "invalid_signature",
        "duplicate_dispatch",
        "invalid_body",
        "request_timeout",
        "job_ended",
        "job_cancelled",
        "account_exists",
        "range_not_satisfiable",
        "rate_limited",
        "idempotency_in_progress",
        "key_not_found",
        "account_not_found",
        "invalid_admin_token",
        "invalid_num_frames",
        "origin_lost",
        "queue_full",
        "unknown_workflow",
        "cancelled",
        "invalid_reply_url",
        "no_reply_url",
        "job_not_finished",
    ];
    CODES
        .iter()
        .find(|c| **c == code)
        .copied()
        .unwrap_or("internal_error")
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_matches_openai() {
        let e = ApiError::invalid_param("width", "invalid_dimensions", "bad width");
        assert_eq!(
            e.to_json(),
            json!({"error": {"message": "bad width", "type": "invalid_request_error",
                             "param": "width", "code": "invalid_dimensions"}})
        );
        assert_eq!(e.status(), 400);
    }

    #[test]
    fn round_trips_through_json() {
        let e = ApiError::conflict("trial_exists", "taken").with_param("email");
        assert_eq!(ApiError::from_json(409, &e.to_json()), Some(e));
    }
}
