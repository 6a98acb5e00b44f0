//! Storage errors in Supabase Storage's shape: `{statusCode, code, error, message}`.

use crate::db::DbError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// A storage request that failed.
#[derive(Debug, Clone)]
pub struct StorageError {
    pub status: StatusCode,
    /// Supabase's error code (`NoSuchKey`, `Duplicate`, `EntityTooLarge`, …).
    pub code: &'static str,
    pub message: String,
}

/// Result of a storage operation.
pub type StorageResult<T> = Result<T, StorageError>;

impl StorageError {
    /// An error with `status`, `code` and `message`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        StorageError {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400 `InvalidRequest`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidRequest", message)
    }

    /// 404 `NoSuchKey`.
    pub fn no_such_key() -> Self {
        Self::new(StatusCode::NOT_FOUND, "NoSuchKey", "Object not found")
    }

    /// 404 `NoSuchBucket`.
    pub fn no_such_bucket() -> Self {
        Self::new(StatusCode::NOT_FOUND, "NoSuchBucket", "Bucket not found")
    }

    /// 403 `AccessDenied`: a policy refused the operation.
    pub fn denied() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "new row violates row-level security policy",
        )
    }

    /// 409 `Duplicate`.
    pub fn duplicate() -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "Duplicate",
            "The resource already exists",
        )
    }

    /// 500 `InternalError`; the cause goes to the log.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "storage request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "Internal server error",
        )
    }
}

impl From<DbError> for StorageError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::ReadOnlyReplica(msg) => Self::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "ReadOnlyReplica",
                msg.to_string(),
            ),
            e => StorageError::internal(e),
        }
    }
}

impl From<rusqlite::Error> for StorageError {
    fn from(e: rusqlite::Error) -> Self {
        StorageError::internal(e)
    }
}

impl From<opendal::Error> for StorageError {
    fn from(e: opendal::Error) -> Self {
        if e.kind() == opendal::ErrorKind::NotFound {
            return StorageError::no_such_key();
        }
        StorageError::internal(e)
    }
}

impl IntoResponse for StorageError {
    fn into_response(self) -> Response {
        let body = json!({
            "statusCode": self.status.as_u16().to_string(),
            "code": self.code,
            "error": self.code,
            "message": self.message,
        });
        (self.status, axum::Json(body)).into_response()
    }
}
