//! The data API's error type, rendered as PostgREST's `{code, details, hint, message}`.

use crate::db::{sqlite_message, DbError};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answered to a `/rest/v1` client.
#[derive(Debug, Clone)]
pub struct RestError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub details: Option<String>,
    pub hint: Option<String>,
}

/// Result alias for the data API.
pub type RestResult<T> = Result<T, RestError>;

impl RestError {
    /// An error with a status, code and message.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        RestError {
            status,
            code: code.to_string(),
            message: message.into(),
            details: None,
            hint: None,
        }
    }

    /// Add details.
    pub fn details(mut self, details: impl Into<String>) -> Self {
        self.details = Some(details.into());
        self
    }

    /// Add a hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// PGRST100: the query string cannot be parsed.
    pub fn parse(message: impl Into<String>, details: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "PGRST100", message).details(details)
    }

    /// PGRST102: the request body is not what the endpoint takes.
    pub fn body(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "PGRST102", message)
    }

    /// PGRST205: no such table or view.
    pub fn no_table(name: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "PGRST205",
            format!("Could not find the table 'public.{name}' in the schema cache"),
        )
    }

    /// 42703: a column named in the query does not exist.
    pub fn no_column(table: &str, column: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "42703",
            format!("column {table}.{column} does not exist"),
        )
    }

    /// PGRST204: a column named in a write body does not exist.
    pub fn no_column_in_body(table: &str, column: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "PGRST204",
            format!("Could not find the '{column}' column of '{table}' in the schema cache"),
        )
    }

    /// 22P02: a value cannot be read as its column's type.
    pub fn invalid_input(type_name: &str, value: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "22P02",
            format!("invalid input syntax for type {type_name}: \"{value}\""),
        )
    }

    /// PGRST116: a singular response was asked for but the result has `n` rows.
    pub fn not_single(n: usize) -> Self {
        Self::new(
            StatusCode::NOT_ACCEPTABLE,
            "PGRST116",
            "Cannot coerce the result to a single JSON object",
        )
        .details(format!("The result contains {n} rows"))
    }

    /// 42501: the role may not use this table.
    pub fn permission_denied(table: &str, authenticated: bool) -> Self {
        let status = if authenticated {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::UNAUTHORIZED
        };
        Self::new(
            status,
            "42501",
            format!("permission denied for table {table}"),
        )
    }

    /// 42501: a written row fails the table's row-level security policies.
    pub fn rls_violation(table: &str, authenticated: bool) -> Self {
        let mut e = Self::permission_denied(table, authenticated);
        e.message = format!("new row violates row-level security policy for table \"{table}\"");
        e
    }

    /// Map an error raised by SQLite while running a statement.
    pub fn from_sqlite(e: &rusqlite::Error) -> Self {
        let msg = sqlite_message(e);
        let code = match e {
            rusqlite::Error::SqliteFailure(f, _) => Some(f.extended_code),
            _ => None,
        };
        use rusqlite::ffi;
        match code {
            Some(ffi::SQLITE_CONSTRAINT_UNIQUE) | Some(ffi::SQLITE_CONSTRAINT_PRIMARYKEY) => {
                let cols = msg.trim_start_matches("UNIQUE constraint failed: ");
                let (table, columns) = split_constraint_columns(cols);
                let suffix = if code == Some(ffi::SQLITE_CONSTRAINT_PRIMARYKEY) {
                    "pkey".to_string()
                } else {
                    format!("{}_key", columns.join("_"))
                };
                Self::new(
                    StatusCode::CONFLICT,
                    "23505",
                    format!("duplicate key value violates unique constraint \"{table}_{suffix}\""),
                )
                .details(format!("Key ({}) already exists.", columns.join(", ")))
            }
            Some(ffi::SQLITE_CONSTRAINT_FOREIGNKEY) => Self::new(
                StatusCode::CONFLICT,
                "23503",
                "insert or update on table violates foreign key constraint",
            )
            .details(msg),
            Some(ffi::SQLITE_CONSTRAINT_NOTNULL) => {
                let cols = msg.trim_start_matches("NOT NULL constraint failed: ");
                let (table, columns) = split_constraint_columns(cols);
                Self::new(
                    StatusCode::BAD_REQUEST,
                    "23502",
                    format!(
                        "null value in column \"{}\" of relation \"{table}\" violates not-null constraint",
                        columns.join(", ")
                    ),
                )
            }
            Some(ffi::SQLITE_CONSTRAINT_CHECK) => {
                let name = msg.trim_start_matches("CHECK constraint failed: ");
                Self::new(
                    StatusCode::BAD_REQUEST,
                    "23514",
                    format!("new row violates check constraint \"{name}\""),
                )
            }
            Some(ffi::SQLITE_CONSTRAINT_TRIGGER) | Some(ffi::SQLITE_CONSTRAINT_FUNCTION) => {
                Self::new(StatusCode::BAD_REQUEST, "P0001", msg)
            }
            Some(ffi::SQLITE_CONSTRAINT_DATATYPE) => {
                Self::new(StatusCode::BAD_REQUEST, "22P02", msg)
            }
            Some(c) if c & 0xff == ffi::SQLITE_BUSY || c & 0xff == ffi::SQLITE_LOCKED => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "PGRST003", msg)
            }
            Some(c) if c & 0xff == ffi::SQLITE_READONLY => {
                Self::new(StatusCode::METHOD_NOT_ALLOWED, "25006", msg)
            }
            Some(c) if c & 0xff == ffi::SQLITE_FULL || c & 0xff == ffi::SQLITE_IOERR => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "PGRST000", msg)
            }
            _ if msg.contains("ON CONFLICT clause does not match") => Self::new(
                StatusCode::BAD_REQUEST,
                "42P10",
                "there is no unique or exclusion constraint matching the ON CONFLICT specification",
            ),
            _ if msg.contains("malformed JSON") => Self::new(StatusCode::BAD_REQUEST, "22P02", msg),
            _ => Self::new(StatusCode::BAD_REQUEST, "XX000", msg),
        }
    }
}

/// `t.a, t.b` → (`t`, [`a`, `b`]).
fn split_constraint_columns(list: &str) -> (String, Vec<String>) {
    let mut table = String::new();
    let mut columns = Vec::new();
    for part in list.split(", ") {
        match part.split_once('.') {
            Some((t, c)) => {
                table = t.to_string();
                columns.push(c.to_string());
            }
            None => columns.push(part.to_string()),
        }
    }
    (table, columns)
}

impl From<DbError> for RestError {
    fn from(e: DbError) -> Self {
        match &e {
            DbError::Sqlite(inner) => RestError::from_sqlite(inner),
            // PostgREST answers a write in a read-only transaction (25006) with 405.
            DbError::ReadOnlyReplica(msg) => {
                Self::new(StatusCode::METHOD_NOT_ALLOWED, "25006", msg.to_string())
            }
            DbError::WriterGone | DbError::Pool(_) => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "PGRST001", e.to_string())
            }
            _ => Self::new(StatusCode::SERVICE_UNAVAILABLE, "PGRST000", e.to_string()),
        }
    }
}

impl From<rusqlite::Error> for RestError {
    fn from(e: rusqlite::Error) -> Self {
        RestError::from_sqlite(&e)
    }
}

impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        let body = json!({
            "code": self.code,
            "details": self.details,
            "hint": self.hint,
            "message": self.message,
        });
        let mut res = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            res.headers_mut()
                .insert("retry-after", axum::http::HeaderValue::from_static("1"));
        }
        res
    }
}
