//! The API's one error shape. Every failure the edge or the origin reports to a client
//! goes through [`ApiError`], so OpenAI-style clients can parse all of them the same way:
//! `{"error": {"message", "type", "param", "code"}}`.

use serde_json::{json, Value};

/// Declares [`ErrorCode`] with each code's wire name, once.
macro_rules! error_codes {
    ($($variant:ident => $name:literal,)*) => {
        /// Every `code` the API's errors carry (`docs/api.md`, "Errors").
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($variant,)*
        }

        impl ErrorCode {
            /// Every code, for documents and tests.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The code as the API's JSON spells it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $name,)*
                }
            }

            /// The code of a wire name, if it is one.
            pub fn parse(name: &str) -> Option<Self> {
                match name {
                    $($name => Some(ErrorCode::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

error_codes! {
    InvalidJson => "invalid_json",
    InvalidType => "invalid_type",
    MissingParameter => "missing_parameter",
    UnknownParameter => "unknown_parameter",
    InvalidValue => "invalid_value",
    InvalidDimensions => "invalid_dimensions",
    OutOfRange => "out_of_range",
    ModelNotFound => "model_not_found",
    MissingApiKey => "missing_api_key",
    InvalidApiKey => "invalid_api_key",
    InsufficientCredits => "insufficient_credits",
    FileNotYours => "file_not_yours",
    JobNotFound => "job_not_found",
    FileNotFound => "file_not_found",
    UnknownRoute => "unknown_route",
    MethodNotAllowed => "method_not_allowed",
    TrialExists => "trial_exists",
    IdempotencyConflict => "idempotency_conflict",
    PayloadTooLarge => "payload_too_large",
    UnsupportedMediaType => "unsupported_media_type",
    GenerationFailed => "generation_failed",
    GenerationTimeout => "generation_timeout",
    NoCapacity => "no_capacity",
    InternalError => "internal_error",
    InvalidSignature => "invalid_signature",
    DuplicateDispatch => "duplicate_dispatch",
    InvalidBody => "invalid_body",
    RequestTimeout => "request_timeout",
    JobEnded => "job_ended",
    JobCancelled => "job_cancelled",
    AccountExists => "account_exists",
    RangeNotSatisfiable => "range_not_satisfiable",
    RateLimited => "rate_limited",
    IdempotencyInProgress => "idempotency_in_progress",
    KeyNotFound => "key_not_found",
    AccountNotFound => "account_not_found",
    InvalidAdminToken => "invalid_admin_token",
    InvalidNumFrames => "invalid_num_frames",
    OriginLost => "origin_lost",
    QueueFull => "queue_full",
    UnknownWorkflow => "unknown_workflow",
    Cancelled => "cancelled",
    InvalidReplyUrl => "invalid_reply_url",
    NoReplyUrl => "no_reply_url",
    JobNotFinished => "job_not_finished",
    Expired => "expired",
    ImageTooLarge => "image_too_large",
    InvalidImage => "invalid_image",
    CrossOrigin => "cross_origin",
    InvalidSession => "invalid_session",
    BillingNotConfigured => "billing_not_configured",
}

impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error as the client sees it: an HTTP status and the OpenAI-shaped body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    status: u16,
    code: ErrorCode,
    message: String,
    param: Option<String>,
}

impl ApiError {
    pub fn new(status: u16, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            param: None,
        }
    }

    /// A 400 naming the parameter at fault.
    pub fn invalid_param(param: &str, code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(400, code, message).with_param(param)
    }

    pub fn bad_request(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(400, code, message)
    }

    pub fn invalid_json(detail: impl std::fmt::Display) -> Self {
        Self::new(
            400,
            ErrorCode::InvalidJson,
            format!("The request body is not valid JSON: {detail}"),
        )
    }

    pub fn missing_key() -> Self {
        Self::new(
            401,
            ErrorCode::MissingApiKey,
            "No API key provided. Send it as `Authorization: Bearer <key>`.",
        )
    }

    pub fn invalid_key() -> Self {
        Self::new(
            401,
            ErrorCode::InvalidApiKey,
            "The API key is not valid or has been revoked.",
        )
    }

    pub fn forbidden(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(403, code, message)
    }

    pub fn not_found(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(404, code, message)
    }

    pub fn route_not_found(method: &str, path: &str) -> Self {
        Self::new(
            404,
            ErrorCode::UnknownRoute,
            format!("No route for {method} {path}. See /openapi.json for the API."),
        )
    }

    pub fn method_not_allowed(method: &str, path: &str) -> Self {
        Self::new(
            405,
            ErrorCode::MethodNotAllowed,
            format!("{method} is not allowed on {path}."),
        )
    }

    pub fn conflict(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(409, code, message)
    }

    pub fn payload_too_large(message: impl Into<String>) -> Self {
        Self::new(413, ErrorCode::PayloadTooLarge, message)
    }

    pub fn unsupported_media(message: impl Into<String>) -> Self {
        Self::new(415, ErrorCode::UnsupportedMediaType, message)
    }

    /// Internal failures get a generic message; the cause belongs in the log, not the body.
    pub fn internal() -> Self {
        Self::new(
            500,
            ErrorCode::InternalError,
            "Something went wrong on our side.",
        )
    }

    pub fn no_capacity() -> Self {
        Self::new(
            503,
            ErrorCode::NoCapacity,
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

    pub fn code(&self) -> ErrorCode {
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
                "code": self.code.as_str(),
            }
        })
    }

    /// Reads an error back from a body in the API's shape (used by the edge to relay
    /// errors from Durable Objects and by tests).
    pub fn from_json(status: u16, body: &Value) -> Option<Self> {
        let err = body.get("error")?;
        // An unknown code read back maps to the generic internal one.
        let code = ErrorCode::parse(err.get("code")?.as_str()?).unwrap_or(ErrorCode::InternalError);
        Some(Self {
            status,
            code,
            message: err.get("message")?.as_str()?.to_owned(),
            param: err.get("param").and_then(Value::as_str).map(str::to_owned),
        })
    }
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
        let e = ApiError::invalid_param("width", ErrorCode::InvalidDimensions, "bad width");
        assert_eq!(
            e.to_json(),
            json!({"error": {"message": "bad width", "type": "invalid_request_error",
                             "param": "width", "code": "invalid_dimensions"}})
        );
        assert_eq!(e.status(), 400);
    }

    #[test]
    fn every_code_reads_back_as_itself() {
        for &code in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
            let e = ApiError::new(400, code, "m");
            assert_eq!(ApiError::from_json(400, &e.to_json()), Some(e));
        }
        let unknown = json!({"error": {"message": "m", "code": "made_up", "param": null}});
        assert_eq!(
            ApiError::from_json(500, &unknown).map(|e| e.code()),
            Some(ErrorCode::InternalError)
        );
    }

    #[test]
    fn round_trips_through_json() {
        let e = ApiError::conflict(ErrorCode::TrialExists, "taken").with_param("email");
        assert_eq!(ApiError::from_json(409, &e.to_json()), Some(e));
    }
}
