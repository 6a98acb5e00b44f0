//! Admin API for webhooks and the job queue, under `/_/api` (service_role key until the admin
//! UI brings admin sessions): create, list and delete webhooks; list jobs, see a job's attempts,
//! retry a dead one.

use super::error::{JobsError, JobsResult};
use super::{queue, worker};
use crate::app::AppState;
use crate::db::DbError;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;

/// Routes under `/_/api`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/webhooks", get(list_webhooks).post(create_webhook))
        .route("/webhooks/{name}", get(get_webhook).delete(delete_webhook))
        .route("/jobs", get(list_jobs))
        .route("/jobs/{id}", get(get_job))
        .route("/jobs/{id}/retry", post(retry_job))
}

use crate::admin::guarded;

/// A webhook as created through the API.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    name: String,
    table: String,
    #[serde(default)]
    events: Option<Vec<String>>,
    #[serde(default)]
    filter: Option<String>,
    #[serde(default)]
    url: Option<String>,
    /// A function to call instead of a URL.
    #[serde(default)]
    function: Option<String>,
    #[serde(default)]
    headers: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    secret: Option<String>,
    #[serde(default)]
    timeout_ms: Option<u64>,
    #[serde(default)]
    max_attempts: Option<u32>,
}

async fn validate(state: &AppState, w: &NewWebhook) -> JobsResult<(Vec<String>, String)> {
    if w.name.is_empty()
        || w.name.len() > 64
        || !w
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(JobsError::invalid(
            "name: 1 to 64 letters, digits, `_` or `-`",
        ));
    }
    let schema = state.db.schema.get();
    let table = schema
        .tables
        .get(&w.table)
        .filter(|t| !t.is_view && !t.name.starts_with("_outpost"))
        .ok_or_else(|| JobsError::invalid(format!("table: no table {} to watch", w.table)))?;
    let events: Vec<String> = match &w.events {
        None => vec!["INSERT".into(), "UPDATE".into(), "DELETE".into()],
        Some(list) => {
            let mut out = Vec::new();
            for e in list {
                let e = e.to_ascii_uppercase();
                if !["INSERT", "UPDATE", "DELETE"].contains(&e.as_str()) {
                    return Err(JobsError::invalid(format!(
                        "events: {e} is not INSERT, UPDATE or DELETE"
                    )));
                }
                if !out.contains(&e) {
                    out.push(e);
                }
            }
            if out.is_empty() {
                return Err(JobsError::invalid("events: give at least one"));
            }
            out
        }
    };
    if let Some(f) = &w.filter {
        let parsed = crate::realtime::filter::parse_filter(f)
            .map_err(|e| JobsError::invalid(format!("filter: {e}")))?;
        if !table.columns.iter().any(|c| c.name == parsed.column) {
            return Err(JobsError::invalid(format!(
                "filter: {} has no column {}",
                table.name, parsed.column
            )));
        }
    }
    match (&w.url, &w.function) {
        (Some(u), None) => {
            let url =
                reqwest::Url::parse(u).map_err(|e| JobsError::invalid(format!("url: {e}")))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(JobsError::invalid("url: http or https"));
            }
        }
        (None, Some(f)) => {
            if !state.functions.exists(&state.db, f).await {
                return Err(JobsError::invalid(format!(
                    "function: no function named {f}"
                )));
            }
        }
        _ => return Err(JobsError::invalid("give a url or a function, not both")),
    }
    if let Some(h) = &w.headers {
        for (k, v) in h {
            let name_ok = axum::http::HeaderName::from_bytes(k.as_bytes()).is_ok();
            let value_ok = v
                .as_str()
                .is_some_and(|v| axum::http::HeaderValue::from_str(v).is_ok());
            if !name_ok || !value_ok {
                return Err(JobsError::invalid(format!(
                    "headers: {k} must be a header name with a text value"
                )));
            }
        }
    }
    if let Some(t) = w.timeout_ms {
        if !(100..=60_000).contains(&t) {
            return Err(JobsError::invalid("timeout_ms: 100 to 60000"));
        }
    }
    if let Some(m) = w.max_attempts {
        if !(1..=50).contains(&m) {
            return Err(JobsError::invalid("max_attempts: 1 to 50"));
        }
    }
    let secret = match &w.secret {
        Some(s) if s.len() < 16 => {
            return Err(JobsError::invalid("secret: at least 16 characters"));
        }
        Some(s) => s.clone(),
        None => {
            let bytes: [u8; 32] = rand::random();
            bytes.iter().map(|b| format!("{b:02x}")).collect()
        }
    };
    Ok((events, secret))
}

fn hook_json(name: &str, state: &AppState) -> Option<Value> {
    state
        .db
        .hooks
        .get()
        .iter()
        .find(|h| h.name == name)
        .map(|h| json!(h))
}

async fn create_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<NewWebhook>, axum::extract::rejection::JsonRejection>,
) -> Response {
    guarded(&state, &headers, async {
        let Json(w) = body.map_err(|e| JobsError::invalid(e.body_text()))?;
        let (events, secret) = validate(&state, &w).await?;
        let name = w.name.clone();
        let stored_secret = secret.clone();
        let inserted = state
            .db
            .writer
            .write(crate::db::Mode::Commit, None, move |c| -> Result<usize, DbError> {
                Ok(c.execute(
                    "INSERT INTO _outpost_webhooks
                       (name, table_name, events, filter, url, headers, secret, timeout_ms, max_attempts,
                        function_name)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                     ON CONFLICT (name) DO NOTHING",
                    rusqlite::params![
                        w.name,
                        w.table,
                        events.join(","),
                        w.filter,
                        w.url.unwrap_or_default(),
                        Value::Object(w.headers.unwrap_or_default()).to_string(),
                        stored_secret,
                        w.timeout_ms.unwrap_or(5000) as i64,
                        w.max_attempts.unwrap_or(5),
                        w.function,
                    ],
                )?)
            })
            .await?;
        if inserted == 0 {
            return Err(JobsError::new(
                StatusCode::CONFLICT,
                "already_exists",
                format!("a webhook named {name} exists"),
            ));
        }
        worker::reload(&state.db).await?;
        let mut out = hook_json(&name, &state).unwrap_or_else(|| json!({"name": name}));
        // The secret is shown once, at creation.
        out["secret"] = json!(secret);
        Ok::<_, JobsError>((StatusCode::CREATED, Json(out)).into_response())
    })
    .await
}

async fn list_webhooks(State(state): State<AppState>, headers: HeaderMap) -> Response {
    guarded(&state, &headers, async {
        Ok(Json(json!(*state.db.hooks.get())).into_response())
    })
    .await
}

async fn get_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    guarded(&state, &headers, async {
        hook_json(&name, &state)
            .map(|h| Json(h).into_response())
            .ok_or_else(|| JobsError::not_found(format!("no webhook named {name}")))
    })
    .await
}

async fn delete_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    guarded(&state, &headers, async {
        let n = name.clone();
        let deleted = state
            .db
            .writer
            .write(
                crate::db::Mode::Commit,
                None,
                move |c| -> Result<usize, DbError> {
                    let n_hooks =
                        c.execute("DELETE FROM _outpost_webhooks WHERE name = ?1", [&n])?;
                    // Deliveries not yet made go with it; finished ones stay in the log.
                    c.execute(
                        "DELETE FROM _outpost_jobs WHERE kind = 'webhook' AND target = ?1
                     AND state IN ('pending', 'dead')",
                        [&n],
                    )?;
                    Ok(n_hooks)
                },
            )
            .await?;
        if deleted == 0 {
            return Err(JobsError::not_found(format!("no webhook named {name}")));
        }
        worker::reload(&state.db).await?;
        Ok(StatusCode::NO_CONTENT.into_response())
    })
    .await
}

async fn list_jobs(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    guarded(&state, &headers, async {
        let st = q.get("state").cloned();
        if let Some(s) = &st {
            if !["pending", "running", "done", "dead"].contains(&s.as_str()) {
                return Err(JobsError::invalid("state: pending, running, done or dead"));
            }
        }
        let target = q.get("target").cloned();
        let limit = match q.get("limit") {
            None => 100,
            Some(l) => l
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| JobsError::invalid("limit: 1 to 1000"))?,
        };
        let jobs = state
            .db
            .read(None, move |c| {
                queue::list(c, st.as_deref(), target.as_deref(), limit).map_err(DbError::from)
            })
            .await?;
        Ok(Json(json!(jobs)).into_response())
    })
    .await
}

fn job_id(raw: &str) -> JobsResult<i64> {
    raw.parse::<i64>()
        .map_err(|_| JobsError::invalid(format!("{raw} is not a job id")))
}

async fn get_job(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    guarded(&state, &headers, async {
        let id = job_id(&id)?;
        let found = state
            .db
            .read(None, move |c| -> Result<_, DbError> {
                Ok(match queue::get(c, id)? {
                    Some(job) => Some((job, queue::attempts(c, id)?)),
                    None => None,
                })
            })
            .await?;
        let (job, attempts) = found.ok_or_else(|| JobsError::not_found(format!("no job {id}")))?;
        let mut out = json!(job);
        out["payload"] = serde_json::from_str(&job.payload).unwrap_or(Value::Null);
        out["attempt_log"] = json!(attempts);
        Ok(Json(out).into_response())
    })
    .await
}

async fn retry_job(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    guarded(&state, &headers, async {
        let id = job_id(&id)?;
        let job = state
            .db
            .writer
            .write(
                crate::db::Mode::Commit,
                None,
                move |c| -> Result<_, DbError> {
                    match queue::retry(c, id)? {
                        Some(j) => Ok(Ok(j)),
                        None => Ok(Err(queue::get(c, id)?.map(|j| j.state))),
                    }
                },
            )
            .await?;
        match job {
            Ok(j) => {
                state.db.jobs_wake.notify_one();
                Ok(Json(json!(j)).into_response())
            }
            Err(None) => Err(JobsError::not_found(format!("no job {id}"))),
            Err(Some(s)) => Err(JobsError::new(
                StatusCode::CONFLICT,
                "not_retryable",
                format!("job {id} is {s}: only dead or done jobs are retried"),
            )),
        }
    })
    .await
}
