//! Wiring: the shared state and the one router every service mounts into.

use crate::auth::{self, AuthService};
use crate::config::Config;
use crate::db::Db;
use crate::http;
use crate::keys::{ProjectKeys, Verifier};
use crate::rest;
use crate::storage::{self, StorageService};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{middleware, Json, Router};
use std::sync::Arc;
/// State every handler can reach. Cloned for every request, so it is one `Arc`.
#[derive(Clone)]
pub struct AppState(Arc<Services>);

/// What [`AppState`] shares.
pub struct Services {
    pub db: Db,
    pub verifier: Verifier,
    pub keys: ProjectKeys,
    pub auth: AuthService,
    pub storage: StorageService,
    pub realtime: crate::realtime::Realtime,
    pub functions: std::sync::Arc<crate::functions::FunctionsService>,
    pub config: Config,
    /// Replication progress, when this server ships to or follows a replica.
    pub replication: Option<crate::replication::status::Status>,
    /// On a read replica that forwards writes: the way to the primary.
    pub write_proxy: Option<crate::replication::proxy::Proxy>,
    /// The one-time token of the setup link, while no admin account exists.
    pub admin_setup: std::sync::Mutex<Option<String>>,
    /// When the server started.
    pub started: std::time::Instant,
}

impl AppState {
    /// Share `services` with every handler.
    pub fn new(services: Services) -> AppState {
        AppState(Arc::new(services))
    }
}

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

/// The whole HTTP surface of Outpost.
pub fn router(state: AppState) -> Router {
    let cors = http::cors::layer(state.config.cors_origins.as_deref());
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/_/api/replication", get(replication_status))
        .nest(
            "/_/api",
            crate::jobs::api::router()
                .merge(crate::functions::api::router())
                .merge(crate::admin::overview::router())
                .nest("/admin", crate::admin::session::router()),
        )
        // supabase-js asks for the OpenAPI document at `/rest/v1/`; nesting only serves `/rest/v1`.
        .route("/rest/v1/", any(rest::handle_root))
        .nest("/rest/v1", rest::router())
        .nest("/auth/v1", auth::router())
        .nest("/storage/v1", storage::router())
        .nest("/realtime/v1", crate::realtime::router())
        .nest("/functions/v1", crate::functions::router())
        .merge(crate::admin::ui::router())
        .layer(middleware::from_fn_with_state(
            state.clone(),
            forward_writes,
        ))
        .with_state(state)
        .layer(cors)
        .layer(middleware::from_fn(http::log::requests))
}

/// On a read replica that forwards writes, send them to the primary.
async fn forward_writes(
    State(state): State<AppState>,
    req: axum::extract::Request,
    next: middleware::Next,
) -> Response {
    match &state.write_proxy {
        Some(p) if crate::replication::proxy::is_write(req.method(), req.uri().path()) => {
            p.forward(req).await
        }
        _ => next.run(req).await,
    }
}

async fn health(State(state): State<AppState>) -> Json<serde_json::Value> {
    let mut body = serde_json::json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")});
    if let Some(r) = &state.replication {
        let s = r.get();
        body["replication"] = serde_json::json!({
            "role": s.role,
            "txid": format!("{:016x}", s.txid),
            "lag_seconds": s.lag_seconds,
            "last_error": s.last_error,
        });
    }
    Json(body)
}

/// Prometheus text: replication gauges (more metrics join as services expose them).
async fn metrics(State(state): State<AppState>) -> Response {
    let mut out = String::new();
    if let Some(r) = &state.replication {
        let s = r.get();
        let role = s.role;
        let gauges: [(&str, &str, f64); 7] = [
            ("outpost_replication_txid", "Newest TXID written (primary) or applied (replica).", s.txid as f64),
            ("outpost_replication_uploaded_txid", "Newest TXID the destination holds.", s.uploaded_txid as f64),
            ("outpost_replication_lag_seconds", "Age of the oldest change not yet at the destination (primary), or of the replica's state (replica).", s.lag_seconds),
            ("outpost_replication_pending_files", "LTX files waiting on local disk for the destination.", s.pending_files as f64),
            ("outpost_replication_pending_bytes", "Bytes waiting on local disk for the destination.", s.pending_bytes as f64),
            ("outpost_replication_shipped_bytes_total", "Bytes uploaded since start.", s.bytes_shipped as f64),
            ("outpost_replication_remote_txid", "Newest TXID seen on the replica (replica).", s.remote_txid as f64),
        ];
        for (name, help, value) in gauges {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name}{{role=\"{role}\"}} {value}\n"
            ));
        }
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        out,
    )
        .into_response()
}

/// `GET /_/api/replication` (service_role): the whole replication status.
async fn replication_status(State(state): State<AppState>, headers: HeaderMap) -> Response {
    crate::admin::guarded(&state, &headers, async {
        Ok(match &state.replication {
            Some(r) => Json(serde_json::json!(r.get())).into_response(),
            None => Json(serde_json::json!({"role": "standalone"})).into_response(),
        })
    })
    .await
}
