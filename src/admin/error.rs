//! The admin API's error (`/_/api`: jobs, webhooks, functions, secrets), as JSON
//! `{code, message}` with an HTTP status.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Why an admin API request failed.
#[derive(Debug)]
pub struct AdminError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

/// Result of an admin API request.
pub type AdminResult<T> = Result<T, AdminError>;

impl AdminError {
    /// An error with `status`, a stable `code` and a message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> AdminError {
        AdminError {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400 `invalid_request`.
    pub fn invalid(message: impl Into<String>) -> AdminError {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> AdminError {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
}

impl From<crate::db::DbError> for AdminError {
    fn from(e: crate::db::DbError) -> Self {
        match e {
            crate::db::DbError::ReadOnlyReplica(m) => Self::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "read_only_replica",
                m.to_string(),
            ),
            e => {
                tracing::error!(error = %e, "admin request failed");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error, see the server log",
                )
            }
        }
    }
}

impl From<rusqlite::Error> for AdminError {
    fn from(e: rusqlite::Error) -> Self {
        crate::db::DbError::from(e).into()
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        (
            self.status,
            axum::Json(serde_json::json!({"code": self.code, "message": self.message})),
        )
            .into_response()
    }
}
