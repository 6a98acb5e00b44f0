//! Auth errors in GoTrue's shape: `{code, error_code, msg}`, plus `weak_password` reasons.

use crate::db::DbError;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// The API version Outpost speaks; echoed on every auth response.
pub const API_VERSION: &str = "2024-01-01";

/// An auth request that failed, with the status and GoTrue error code it answers.
#[derive(Debug, Clone)]
pub struct AuthError {
    pub status: StatusCode,
    pub code: &'static str,
    pub msg: String,
    /// Why a password was refused (`length`, `characters`).
    pub weak_reasons: Vec<&'static str>,
}

/// Result of an auth operation.
pub type AuthResult<T> = Result<T, AuthError>;

impl AuthError {
    /// An error with `status`, GoTrue code `code` and message `msg`.
    pub fn new(status: StatusCode, code: &'static str, msg: impl Into<String>) -> Self {
        AuthError {
            status,
            code,
            msg: msg.into(),
            weak_reasons: Vec::new(),
        }
    }

    /// 400 `validation_failed`.
    pub fn validation(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "validation_failed", msg)
    }

    /// 400 `invalid_credentials`.
    pub fn invalid_credentials() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_credentials",
            "Invalid login credentials",
        )
    }

    /// 404 `user_not_found`.
    pub fn user_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "user_not_found", "User not found")
    }

    /// 403 `otp_expired`, for codes and links that are wrong, used or too old alike.
    pub fn otp_expired() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "otp_expired",
            "Token has expired or is invalid",
        )
    }

    /// 422 `phone_provider_disabled`: Outpost has no SMS provider.
    pub fn phone_disabled() -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "phone_provider_disabled",
            "Phone logins are not available on this server",
        )
    }

    /// 422 `email_exists`.
    pub fn email_exists() -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "email_exists",
            "A user with this email address has already been registered",
        )
    }

    /// 429 `over_request_rate_limit`.
    pub fn rate_limited() -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "over_request_rate_limit",
            "Request rate limit reached",
        )
    }

    /// 500 `unexpected_failure`; the cause goes to the log, not to the client.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "auth request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "unexpected_failure",
            "Unexpected failure, please check server logs for more information",
        )
    }
}

impl From<DbError> for AuthError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::ReadOnlyReplica(msg) => Self::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "read_only_replica",
                msg.to_string(),
            ),
            e => AuthError::internal(e),
        }
    }
}

impl From<rusqlite::Error> for AuthError {
    fn from(e: rusqlite::Error) -> Self {
        AuthError::internal(e)
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        // Clients on API version 2024-01-01 read `code` when it is a string, older ones read
        // `error_code`: both carry the same name.
        let mut body = json!({
            "code": self.code,
            "error_code": self.code,
            "msg": self.msg,
        });
        if !self.weak_reasons.is_empty() {
            body["weak_password"] = json!({ "reasons": self.weak_reasons });
        }
        let mut response = (self.status, axum::Json(body)).into_response();
        with_api_version(&mut response);
        response
    }
}

/// Add `X-Supabase-Api-Version` to a response.
pub fn with_api_version(response: &mut Response) {
    response.headers_mut().insert(
        "x-supabase-api-version",
        HeaderValue::from_static(API_VERSION),
    );
}

/// A JSON body answered with the API version header.
pub fn json_ok(status: StatusCode, body: Value) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    with_api_version(&mut response);
    response
}
