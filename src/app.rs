//! Wiring: the shared state and the one router every service mounts into.

use crate::auth::{self, AuthService};
use crate::config::Config;
use crate::db::Db;
use crate::http;
use crate::keys::{ProjectKeys, Verifier};
use crate::rest;
use crate::storage::{self, StorageService};
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
    pub config: Config,
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
        // supabase-js asks for the OpenAPI document at `/rest/v1/`; nesting only serves `/rest/v1`.
        .route("/rest/v1/", any(rest::handle_root))
        .nest("/rest/v1", rest::router())
        .nest("/auth/v1", auth::router())
        .nest("/storage/v1", storage::router())
        .nest("/realtime/v1", crate::realtime::router())
        .with_state(state)
        .layer(cors)
        .layer(middleware::from_fn(http::log::requests))
}

async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")}))
}
