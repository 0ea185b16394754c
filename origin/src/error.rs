//! The origin's one error type. Every failure a caller can see becomes
//! [`kiln_shared::ApiError`] here, so the edge parses origin errors exactly like its own:
//! `{"error": {"message", "type", "param", "code"}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use kiln_shared::ids::JobId;
use kiln_shared::signing::SignatureError;
use kiln_shared::{ApiError, ErrorCode};

use crate::routes::jobs::BODY_BYTES_MAX;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("request signature refused: {0}")]
    Signature(SignatureError),
    #[error("body is not a dispatch: {0}")]
    InvalidJson(#[from] serde_json::Error),
    #[error("the request body could not be read")]
    UnreadableBody,
    #[error("body is larger than {BODY_BYTES_MAX} bytes")]
    PayloadTooLarge,
    #[error("{job_id} attempt {attempt} was already dispatched here")]
    DuplicateDispatch { job_id: JobId, attempt: u32 },
    #[error("every slot is busy")]
    NoCapacity,
    #[error("no attempt of job {job_id:?} is in progress here")]
    JobNotFound { job_id: String },
    #[error("no route for {method} {path}")]
    RouteNotFound { method: String, path: String },
    #[error("{method} is not allowed on {path}")]
    MethodNotAllowed { method: String, path: String },
    #[error("the request took too long")]
    Timeout,
    /// A bug or an environment failure: the caller gets a generic body, the log the cause.
    #[error("internal error: {0}")]
    Internal(String),
}

// By hand: `SignatureError` does not implement `std::error::Error`, which `#[from]` needs.
impl From<SignatureError> for AppError {
    fn from(e: SignatureError) -> Self {
        AppError::Signature(e)
    }
}

impl AppError {
    pub fn to_api_error(&self) -> ApiError {
        match self {
            AppError::Signature(e) => ApiError::from(*e),
            AppError::InvalidJson(e) => ApiError::invalid_json(e),
            AppError::UnreadableBody => ApiError::bad_request(
                ErrorCode::InvalidBody,
                "The request body could not be read.",
            ),
            AppError::PayloadTooLarge => ApiError::payload_too_large(format!(
                "The request body is larger than {BODY_BYTES_MAX} bytes."
            )),
            AppError::DuplicateDispatch { job_id, attempt } => ApiError::conflict(
                ErrorCode::DuplicateDispatch,
                format!("Job {job_id} attempt {attempt} was already dispatched to this origin."),
            ),
            AppError::NoCapacity => ApiError::no_capacity(),
            AppError::JobNotFound { job_id } => ApiError::not_found(
                ErrorCode::JobNotFound,
                format!("No job {job_id} is running on this origin."),
            ),
            AppError::RouteNotFound { method, path } => ApiError::route_not_found(method, path),
            AppError::MethodNotAllowed { method, path } => {
                ApiError::method_not_allowed(method, path)
            }
            AppError::Timeout => ApiError::new(
                408,
                ErrorCode::RequestTimeout,
                "The request took too long to arrive.",
            ),
            AppError::Internal(_) => ApiError::internal(),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match &self {
            AppError::Internal(cause) => tracing::error!(%cause, "internal error"),
            // Refused signatures are worth seeing: a misconfigured keyring or an attack.
            AppError::Signature(_) => tracing::warn!(error = %self, "request refused"),
            _ => tracing::debug!(error = %self, "request refused"),
        }
        let api = self.to_api_error();
        let status =
            StatusCode::from_u16(api.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(api.to_json())).into_response()
    }
}
