//! `/realtime/v1`: Phoenix channels over WebSocket with postgres_changes, broadcast and
//! presence, and the REST broadcast endpoint.
//!
//! Path of a change: the writer's pre-update hook ([`capture`]) → committed batches → the
//! dispatcher ([`changes`]) → filters, policies → each member's bounded queue → its socket
//! ([`socket`]).

pub mod capture;
pub mod changes;
pub mod filter;
pub mod hub;
pub mod private;
pub mod protocol;
pub mod socket;

use crate::app::AppState;
use crate::db::Mode;
use axum::body::Bytes;
use axum::extract::{Path, Query, State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use hub::Hub;
use protocol::{Message, Vsn};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Connection, channel and message limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub channels_per_socket: usize,
    pub max_message_bytes: usize,
    /// Frames queued for a socket before it is cut off as too slow.
    pub queue_depth: usize,
}

impl Limits {
    /// Read `OUTPOST_REALTIME_*` limits from the environment.
    pub fn from_env() -> Limits {
        let get = |k: &str, d: usize| {
            std::env::var(k)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(d)
        };
        Limits {
            max_connections: get("OUTPOST_REALTIME_MAX_CONNECTIONS", 10_000),
            channels_per_socket: get("OUTPOST_REALTIME_MAX_CHANNELS", 100),
            max_message_bytes: get("OUTPOST_REALTIME_MAX_MESSAGE_BYTES", 1024 * 1024),
            queue_depth: get("OUTPOST_REALTIME_QUEUE", 1024),
        }
    }
}

/// The realtime service: the registry of sockets and channels, and its limits.
pub struct Realtime {
    pub hub: Arc<Hub>,
    pub limits: Limits,
}

impl Realtime {
    /// A service with `limits`.
    pub fn new(limits: Limits) -> Realtime {
        Realtime {
            hub: Arc::new(Hub::default()),
            limits,
        }
    }

    /// Broadcast `payload` as `event` on the channel `topic` (name without `realtime:`), as
    /// the server: used by the REST endpoint and by functions.
    pub fn broadcast(&self, topic: &str, event: &str, payload: Value) {
        let full = format!("realtime:{topic}");
        let m = Message {
            join_ref: None,
            msg_ref: None,
            topic: full.clone(),
            event: "broadcast".into(),
            payload: json!({"type": "broadcast", "event": event, "payload": payload}),
        };
        self.hub.broadcast(&full, &m, None);
    }
}

/// Every route of `/realtime/v1`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/websocket", get(upgrade))
        .route("/api/broadcast", post(rest_broadcast))
        .route("/api/tables/{table}", put(publish_table))
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

/// `GET /websocket?apikey=…&vsn=…`: upgrade, after checking the key and the connection limit.
async fn upgrade(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
    ws: WebSocketUpgrade,
) -> Response {
    let apikey = q.get("apikey").cloned().unwrap_or_default();
    if let Err(e) = state.verifier.verify(&apikey) {
        return error(StatusCode::FORBIDDEN, format!("invalid apikey: {e:?}"));
    }
    let vsn = match q.get("vsn").map(String::as_str) {
        Some("2.0.0") => Vsn::V2,
        None | Some("1.0.0") => Vsn::V1,
        Some(other) => return error(StatusCode::BAD_REQUEST, format!("unsupported vsn {other}")),
    };
    let rt = &state.realtime;
    let open = rt.hub.sockets.fetch_add(1, Ordering::Relaxed);
    if open >= rt.limits.max_connections {
        rt.hub.sockets.fetch_sub(1, Ordering::Relaxed);
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many realtime connections",
        );
    }
    let limit = rt.limits.max_message_bytes;
    // tungstenite's default buffers are 128 KiB each way per socket; realtime frames are small,
    // and thousands of idle sockets should cost little.
    ws.read_buffer_size(4 * 1024)
        .write_buffer_size(4 * 1024)
        .max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| socket::serve(socket, state, apikey, vsn))
}

/// `POST /api/broadcast` `{messages: [{topic, event, payload, private}]}`.
async fn rest_broadcast(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let caller = match crate::http::auth::caller(&headers, &state.verifier) {
        Ok(c) => c,
        Err(_) => {
            return error(
                StatusCode::UNAUTHORIZED,
                "a valid apikey or bearer token is required",
            )
        }
    };
    let body: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid JSON: {e}")),
    };
    let Some(messages) = body.get("messages").and_then(Value::as_array) else {
        return error(StatusCode::BAD_REQUEST, "messages must be an array");
    };
    let ctx = crate::policy::context::RequestContext::for_caller(&caller);
    for m in messages {
        let (Some(topic), Some(event)) = (
            m.get("topic").and_then(Value::as_str),
            m.get("event").and_then(Value::as_str),
        ) else {
            return error(
                StatusCode::BAD_REQUEST,
                "every message needs a topic and an event",
            );
        };
        let topic = topic.strip_prefix("realtime:").unwrap_or(topic);
        let private = m.get("private").and_then(Value::as_bool).unwrap_or(false);
        if private && !private::allowed(&state, &ctx, topic, true, "broadcast").await {
            return error(
                StatusCode::FORBIDDEN,
                format!("not allowed to write to {topic}"),
            );
        }
        state.realtime.broadcast(
            topic,
            event,
            m.get("payload").cloned().unwrap_or(Value::Null),
        );
    }
    StatusCode::ACCEPTED.into_response()
}

/// `PUT /api/tables/{table}` `{"enabled": bool, "full_identity": bool}` (service_role): publish a
/// table to realtime or stop, without a migration.
async fn publish_table(
    State(state): State<AppState>,
    Path(table): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match crate::http::auth::caller(&headers, &state.verifier) {
        Ok(c) if c.role == crate::keys::Role::ServiceRole => {}
        _ => return error(StatusCode::FORBIDDEN, "the service_role key is required"),
    }
    if !state.db.schema.get().tables.contains_key(&table) {
        return error(
            StatusCode::NOT_FOUND,
            format!("relation \"{table}\" does not exist"),
        );
    }
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let enabled = body.get("enabled").and_then(Value::as_bool).unwrap_or(true);
    let full = body
        .get("full_identity")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let capture = state.db.capture.clone();
    let result = state
        .db
        .writer
        .write(Mode::Commit, None, move |conn| {
            if enabled {
                conn.execute(
                    "INSERT INTO _outpost_realtime (table_name, full_identity) VALUES (?1, ?2) \
                     ON CONFLICT (table_name) DO UPDATE SET full_identity = excluded.full_identity",
                    rusqlite::params![table, full],
                )?;
            } else {
                conn.execute(
                    "DELETE FROM _outpost_realtime WHERE table_name = ?1",
                    [&table],
                )?;
            }
            capture.load(conn)?;
            Ok::<_, crate::db::DbError>(())
        })
        .await;
    match result {
        Ok(()) => Json(json!({"enabled": enabled, "full_identity": full})).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
