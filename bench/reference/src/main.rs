//! A bare axum + rusqlite server with the benchmark's `todos` table: the ceiling of this stack on
//! the machine, measured beside Outpost. Usage: `reference <addr> <db-path>`; prints
//! `listening on http://…` when ready.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use rusqlite::{params, Connection, OpenFlags};
use serde_json::{json, Value};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Clone)]
struct AppState {
    path: Arc<String>,
    writer: Arc<Mutex<Connection>>,
}

thread_local! {
    static READER: RefCell<Option<Connection>> = const { RefCell::new(None) };
}

fn with_reader<T>(path: &str, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    READER.with(|slot| {
        let mut slot = slot.borrow_mut();
        if slot.is_none() {
            let c = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
            c.busy_timeout(std::time::Duration::from_secs(5))?;
            *slot = Some(c);
        }
        match slot.as_ref() {
            Some(c) => f(c),
            None => Err(rusqlite::Error::InvalidQuery),
        }
    })
}

fn row_json(r: &rusqlite::Row) -> rusqlite::Result<Value> {
    Ok(json!({
        "id": r.get::<_, i64>(0)?,
        "title": r.get::<_, String>(1)?,
        "done": r.get::<_, bool>(2)?,
        "priority": r.get::<_, i64>(3)?,
        "owner": r.get::<_, Option<String>>(4)?,
        "created_at": r.get::<_, String>(5)?,
    }))
}

// Queries run inline on the async worker, with one read connection per worker thread: for
// queries of tens of microseconds that is the cheapest way this stack has.
async fn by_id(State(s): State<AppState>, Path(id): Path<i64>) -> impl IntoResponse {
    let found = with_reader(&s.path, |c| {
        c.prepare_cached("SELECT id, title, done, priority, owner, created_at FROM todos WHERE id = ?1")?
            .query_row([id], row_json)
    });
    match found {
        Ok(v) => (StatusCode::OK, Json(v)).into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn list(State(s): State<AppState>, Query(q): Query<HashMap<String, String>>) -> impl IntoResponse {
    let priority: i64 = q.get("priority").and_then(|p| p.parse().ok()).unwrap_or(0);
    let rows = with_reader(&s.path, |c| {
        let mut st = c.prepare_cached(
            "SELECT id, title, done, priority, owner, created_at FROM todos WHERE priority = ?1 ORDER BY created_at DESC LIMIT 20",
        )?;
        let rows = st.query_map([priority], row_json)?.collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    });
    match rows {
        Ok(v) => (StatusCode::OK, Json(Value::Array(v))).into_response(),
        _ => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn insert(State(s): State<AppState>, Json(body): Json<Value>) -> impl IntoResponse {
    let done = (|| {
        let c = s.writer.lock().map_err(|_| rusqlite::Error::InvalidQuery)?;
        let mut st = c.prepare_cached("INSERT INTO todos (title, done, priority, owner, created_at) VALUES (?1, ?2, ?3, ?4, strftime('%Y-%m-%dT%H:%M:%fZ'))")?;
        let n = st.execute(params![
            body["title"].as_str().unwrap_or(""),
            body["done"].as_bool().unwrap_or(false),
            body["priority"].as_i64().unwrap_or(0),
            body["owner"].as_str(),
        ])?;
        Ok::<_, rusqlite::Error>(n)
    })();
    match done {
        Ok(_) => StatusCode::CREATED,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

async fn static_json() -> Json<Value> {
    Json(json!({"id": 1, "title": "static", "done": false, "priority": 3}))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let addr = args.get(1).cloned().unwrap_or_else(|| "127.0.0.1:0".into());
    let path = args.get(2).cloned().unwrap_or_else(|| "reference.db".into());
    let writer = Connection::open(&path)?;
    writer.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;
         CREATE TABLE IF NOT EXISTS todos (id INTEGER PRIMARY KEY, title TEXT NOT NULL, done BOOLEAN NOT NULL DEFAULT 0,
           priority INTEGER NOT NULL DEFAULT 0, owner TEXT, created_at TEXT NOT NULL);
         CREATE INDEX IF NOT EXISTS todos_priority ON todos (priority);",
    )?;
    let state = AppState { path: Arc::new(path), writer: Arc::new(Mutex::new(writer)) };
    let app = Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/static", get(static_json))
        .route("/todos", get(list).post(insert))
        .route("/todos/{id}", get(by_id))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
