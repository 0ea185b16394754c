//! The edge's one error type. Handlers return `Result<Response, EdgeError>`; the router
//! turns every error into the API's error shape in [`EdgeError::into_response`].

use kiln_shared::ApiError;
use worker::Response;

#[derive(Debug)]
pub enum EdgeError {
    /// A failure the client should see as is.
    Api(ApiError),
    /// A runtime failure (binding, storage, fetch): logged, shown as a generic 500.
    Runtime(worker::Error),
}

pub type EdgeResult<T> = Result<T, EdgeError>;

impl From<ApiError> for EdgeError {
    fn from(e: ApiError) -> Self {
        EdgeError::Api(e)
    }
}

impl From<worker::Error> for EdgeError {
    fn from(e: worker::Error) -> Self {
        EdgeError::Runtime(e)
    }
}

impl From<serde_json::Error> for EdgeError {
    fn from(e: serde_json::Error) -> Self {
        EdgeError::Runtime(worker::Error::SerdeJsonError(e))
    }
}

impl EdgeError {
    pub fn into_response(self) -> Response {
        let api = match self {
            EdgeError::Api(e) => e,
            EdgeError::Runtime(e) => {
                worker::console_error!("internal error: {e}");
                ApiError::internal()
            }
        };
        api_error_response(&api)
    }
}

/// The JSON response for an API error. Building it cannot fail in practice; if it did,
/// a bare 500 is still better than a panic that resets every Durable Object.
pub fn api_error_response(e: &ApiError) -> Response {
    Response::from_json(&e.to_json())
        .map(|r| r.with_status(e.status()))
        .unwrap_or_else(|_| Response::error("internal error", 500).expect("static response"))
}
