//! `GET /_/api/overview`: what the admin UI's first page shows — health, version, uptime,
//! database size, counts of tables, users and objects, requests and errors, replication.

use super::guarded;
use crate::app::AppState;
use crate::db::DbError;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

/// Routes under `/_/api`.
pub fn router() -> Router<AppState> {
    Router::new().route("/overview", get(overview))
}

async fn overview(State(state): State<AppState>, headers: HeaderMap) -> Response {
    guarded(&state, &headers, async {
        let (db_bytes, users, objects, buckets) = state
            .db
            .read(None, |c| {
                let pages: i64 = c.query_row("PRAGMA page_count", [], |r| r.get(0))?;
                let size: i64 = c.query_row("PRAGMA page_size", [], |r| r.get(0))?;
                let count = |sql: &str| c.query_row(sql, [], |r| r.get::<_, i64>(0));
                Ok::<_, DbError>((
                    pages * size,
                    count("SELECT count(*) FROM _outpost_auth_users")?,
                    count("SELECT count(*) FROM _outpost_storage_objects")?,
                    count("SELECT count(*) FROM _outpost_storage_buckets")?,
                ))
            })
            .await?;
        let schema = state.db.schema.get();
        let (tables, views) = schema
            .tables
            .values()
            .filter(|t| !t.name.starts_with("_outpost"))
            .fold(
                (0, 0),
                |(t, v), x| if x.is_view { (t, v + 1) } else { (t + 1, v) },
            );
        let (requests, errors) = crate::http::log::counts();
        let uptime = state.started.elapsed().as_secs_f64();
        let replication = state
            .replication
            .as_ref()
            .map(|r| serde_json::json!(r.get()))
            .unwrap_or_else(|| serde_json::json!({"role": "standalone"}));
        Ok(Json(serde_json::json!({
            "status": "ok",
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_seconds": uptime,
            "database_bytes": db_bytes,
            "tables": tables,
            "views": views,
            "users": users,
            "buckets": buckets,
            "objects": objects,
            "requests": requests,
            "server_errors": errors,
            "replication": replication,
        }))
        .into_response())
    })
    .await
}
