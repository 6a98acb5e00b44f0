//! The admin web UI's files (`ui/`, embedded in the binary), served at `/_/`. The UI is plain
//! HTML, CSS and JavaScript modules: nothing to build, so building Outpost needs no Node.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

#[derive(rust_embed::RustEmbed)]
#[folder = "ui/"]
struct Assets;

/// Routes for the UI itself (the admin API is under `/_/api`).
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            "/_",
            get(|| async { axum::response::Redirect::permanent("/_/") }),
        )
        .route("/_/", get(|| async { asset("index.html") }))
        .route(
            "/_/{*path}",
            get(|Path(path): Path<String>| async move { asset(&path) }),
        )
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or_default() {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "json" => "application/json",
        "png" => "image/png",
        "ico" => "image/x-icon",
        _ => "application/octet-stream",
    }
}

/// The file at `path`; any other path is a page of the single-page app, which `index.html`
/// renders.
fn asset(path: &str) -> Response {
    let (name, file) = match Assets::get(path) {
        Some(f) => (path, f),
        None if path.starts_with("api/") => return StatusCode::NOT_FOUND.into_response(),
        None => match Assets::get("index.html") {
            Some(f) => ("index.html", f),
            None => return StatusCode::NOT_FOUND.into_response(),
        },
    };
    (
        [
            (header::CONTENT_TYPE, content_type(name)),
            // The UI changes with the binary; a reload after an upgrade must not mix versions.
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::X_FRAME_OPTIONS, "DENY"),
        ],
        file.data.into_owned(),
    )
        .into_response()
}
