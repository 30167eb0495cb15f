//! The API's error envelope: a status and `{"error": {"code", "message"}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::error::Error;
use crate::store::StoreError;

/// An error response: a status and `{"error": {"code", "message"}}`.
#[derive(Debug)]
pub struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({ "error": { "code": self.code, "message": self.message } })),
        )
            .into_response()
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e {
            Error::InvalidRequest(_) | Error::RequestValue { .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", e.to_string())
            }
            Error::Lookup(_) | Error::HandlerNotServed(_) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_handler",
                e.to_string(),
            ),
            Error::Payload(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_payload", e.to_string())
            }
            Error::Context(_) | Error::InvalidContext { .. } | Error::Serialize { .. } => {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_context",
                    e.to_string(),
                )
            }
            Error::Store(StoreError::NotFound { .. }) => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", e.to_string())
            }
            Error::Store(StoreError::Conflict { .. }) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string())
            }
            Error::Store(StoreError::Invalid(_)) => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", e.to_string())
            }
            other => {
                // Never leak internals (SQL, driver messages) to callers.
                tracing::error!("API request failed: {other}");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error; the server log has the details",
                )
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        Error::Store(e).into()
    }
}
