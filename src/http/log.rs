//! One structured log line per request (method, path, status, duration), and the counts the
//! admin overview shows.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Requests answered since start, and those answered with a 5xx.
static ANSWERED: AtomicU64 = AtomicU64::new(0);
static FAILED: AtomicU64 = AtomicU64::new(0);

/// Requests answered since start, and how many of them with a server error (5xx).
pub fn counts() -> (u64, u64) {
    (
        ANSWERED.load(Ordering::Relaxed),
        FAILED.load(Ordering::Relaxed),
    )
}

/// Middleware logging each request once it is answered.
pub async fn requests(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let start = Instant::now();
    let res = next.run(req).await;
    let micros = start.elapsed().as_micros() as u64;
    let status = res.status().as_u16();
    ANSWERED.fetch_add(1, Ordering::Relaxed);
    if status >= 500 {
        FAILED.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(%method, %path, status, micros, "request");
    } else {
        tracing::info!(%method, %path, status, micros, "request");
    }
    res
}
