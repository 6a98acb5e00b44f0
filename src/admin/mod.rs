//! Admin: the web UI's own accounts (apart from the app's users) and the admin API's error.

pub mod accounts;
pub mod error;
pub mod overview;
pub mod session;
pub mod ui;

use crate::app::AppState;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

/// Run `work` for an admin (a web UI session or the service_role key); errors become their
/// JSON answers. Every admin API handler goes through it.
pub async fn guarded(
    state: &AppState,
    headers: &HeaderMap,
    work: impl std::future::Future<Output = error::AdminResult<Response>>,
) -> Response {
    match session::authorize(state, headers).await {
        Ok(_) => work.await.unwrap_or_else(IntoResponse::into_response),
        Err(e) => e.into_response(),
    }
}
