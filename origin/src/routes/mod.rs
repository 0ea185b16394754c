//! The origin's HTTP surface: one module per resource, each holding only its handlers.
//! [`crate::startup::app`] lists every route in one place.

pub mod health;
pub mod jobs;

use axum::http::{Method, Uri};

use crate::error::AppError;

/// Any path the router does not know, answered in the API's error shape.
pub async fn handle_not_found(method: Method, uri: Uri) -> AppError {
    AppError::RouteNotFound {
        method: method.to_string(),
        path: uri.path().to_owned(),
    }
}

/// A known path with a method it does not serve.
pub async fn handle_method_not_allowed(method: Method, uri: Uri) -> AppError {
    AppError::MethodNotAllowed {
        method: method.to_string(),
        path: uri.path().to_owned(),
    }
}
