//! Admin API for functions under `/_/api` (service_role key until the admin UI brings admin
//! sessions): deploy, list, read and delete functions kept in the database, read their
//! execution logs, and manage the secrets every function sees in `Deno.env`.

use super::service::{valid_name, Origin};
use super::store;
use crate::admin::error::{AdminError, AdminResult};
use crate::admin::guarded;
use crate::app::AppState;
use crate::db::{DbError, Mode};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

/// Routes under `/_/api`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/functions", get(list))
        .route("/functions/{name}", get(read).put(deploy).delete(remove))
        .route("/functions/{name}/logs", get(logs))
        .route("/secrets", get(list_secrets).put(set_secrets))
        .route("/secrets/{name}", delete(remove_secret))
}

async fn list(State(state): State<AppState>, headers: HeaderMap) -> Response {
    guarded(&state, &headers, async {
        let files = state.functions.directory();
        let deployed = state
            .db
            .read(None, |c| store::list(c).map_err(DbError::from))
            .await?;
        let mut out: Vec<Value> = files
            .iter()
            .map(|(name, f)| {
                json!({
                    "name": name,
                    "origin": Origin::Directory,
                    "verify_jwt": f.verify_jwt,
                    "schedule": f.schedule,
                    "size": f.source.len(),
                })
            })
            .collect();
        for f in deployed {
            let hidden = files.iter().any(|(n, _)| *n == f.name);
            let mut v = json!(f);
            v["origin"] = json!(Origin::Database);
            // A folder of the same name is what runs.
            v["shadowed"] = json!(hidden);
            out.push(v);
        }
        out.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
        Ok(Json(out).into_response())
    })
    .await
}

async fn read(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    guarded(&state, &headers, async {
        if let Some((_, f)) = state
            .functions
            .directory()
            .into_iter()
            .find(|(n, _)| *n == name)
        {
            return Ok(Json(json!({
                "name": name,
                "origin": Origin::Directory,
                "source": f.source,
                "verify_jwt": f.verify_jwt,
                "schedule": f.schedule,
            }))
            .into_response());
        }
        let key = name.clone();
        let stored = state
            .db
            .read(None, move |c| store::get(c, &key).map_err(DbError::from))
            .await?
            .ok_or_else(|| AdminError::not_found(format!("no function named {name}")))?;
        let mut v = json!(stored);
        v["origin"] = json!(Origin::Database);
        Ok(Json(v).into_response())
    })
    .await
}

/// A deployment: the module's code and its settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Deployment {
    source: String,
    #[serde(default)]
    verify_jwt: Option<bool>,
    #[serde(default)]
    schedule: Option<String>,
}

async fn deploy(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Result<Json<Deployment>, JsonRejection>,
) -> Response {
    guarded(&state, &headers, async {
        let Json(d) = body.map_err(|e| AdminError::invalid(e.body_text()))?;
        if !valid_name(&name) {
            return Err(AdminError::invalid(
                "name: 1 to 64 letters, digits, `_` or `-`",
            ));
        }
        if state.functions.in_directory(&name) {
            return Err(AdminError::new(
                StatusCode::CONFLICT,
                "conflict",
                format!("{name} is a folder in the functions directory: edit it there"),
            ));
        }
        let limit = state.functions.config.max_body;
        if d.source.len() > limit {
            return Err(AdminError::invalid(format!(
                "source: at most {limit} bytes"
            )));
        }
        if let Some(expr) = &d.schedule {
            crate::jobs::cron::parse(expr)
                .map_err(|e| AdminError::invalid(format!("schedule: {e}")))?;
        }
        super::runtime::check(&d.source)
            .await
            .map_err(|e| AdminError::invalid(format!("source: {e}")))?;
        let key = name.clone();
        let (created, stored) = state
            .db
            .writer
            .write(Mode::Commit, None, move |c| {
                let existed = store::version(c, &key)?.is_some();
                let stored = store::deploy(
                    c,
                    &key,
                    &d.source,
                    d.verify_jwt.unwrap_or(true),
                    d.schedule.as_deref(),
                )?;
                Ok::<_, DbError>((!existed, stored))
            })
            .await?;
        tracing::info!(function = %name, version = stored.version, "function deployed");
        let mut v = json!(stored);
        v["origin"] = json!(Origin::Database);
        if let Some(o) = v.as_object_mut() {
            o.remove("source");
        }
        let status = if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        Ok((status, Json(v)).into_response())
    })
    .await
}

async fn remove(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    guarded(&state, &headers, async {
        if state.functions.in_directory(&name) {
            return Err(AdminError::new(
                StatusCode::CONFLICT,
                "conflict",
                format!("{name} is a folder in the functions directory: remove it there"),
            ));
        }
        let key = name.clone();
        let removed = state
            .db
            .writer
            .write(Mode::Commit, None, move |c| {
                store::delete(c, &key).map_err(DbError::from)
            })
            .await?;
        if !removed {
            return Err(AdminError::not_found(format!("no function named {name}")));
        }
        state.functions.logs.forget(&name);
        Ok(StatusCode::NO_CONTENT.into_response())
    })
    .await
}

#[derive(Debug, Deserialize)]
struct LogQuery {
    limit: Option<usize>,
    after: Option<u64>,
    errors: Option<bool>,
}

async fn logs(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    query: Result<Query<LogQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    guarded(&state, &headers, async {
        let Query(q) = query.map_err(|e| AdminError::invalid(e.body_text()))?;
        if !state.functions.exists(&state.db, &name).await {
            return Err(AdminError::not_found(format!("no function named {name}")));
        }
        let entries = state.functions.logs.recent(
            &name,
            q.limit.unwrap_or(50).min(1000),
            q.after.unwrap_or(0),
            q.errors.unwrap_or(false),
        );
        Ok(Json(entries).into_response())
    })
    .await
}

async fn list_secrets(State(state): State<AppState>, headers: HeaderMap) -> Response {
    guarded(&state, &headers, async {
        let list = state
            .db
            .read(None, |c| store::secret_list(c).map_err(DbError::from))
            .await?;
        Ok(Json(list).into_response())
    })
    .await
}

/// A secret's name: an environment variable name, not one of the project's own.
fn check_secret_name(name: &str) -> AdminResult<()> {
    let shaped = !name.is_empty()
        && name.len() <= 256
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !shaped {
        return Err(AdminError::invalid(format!(
            "{name:?}: a secret's name is letters, digits and `_`, not starting with a digit"
        )));
    }
    if name.to_ascii_uppercase().starts_with("SUPABASE_") {
        return Err(AdminError::invalid(format!(
            "{name}: names starting with SUPABASE_ are the project's own"
        )));
    }
    Ok(())
}

/// `{"NAME": "value", …}` or `[{"name": "NAME", "value": "value"}, …]`.
fn secret_pairs(body: Value) -> AdminResult<Vec<(String, String)>> {
    let pairs: Vec<(String, Value)> = match body {
        Value::Object(map) => map.into_iter().collect(),
        Value::Array(list) => list
            .into_iter()
            .map(|item| {
                let name = item.get("name").and_then(Value::as_str).map(str::to_string);
                match (name, item.get("value")) {
                    (Some(n), Some(v)) => Ok((n, v.clone())),
                    _ => Err(AdminError::invalid(
                        "each secret is {\"name\": …, \"value\": …}",
                    )),
                }
            })
            .collect::<AdminResult<_>>()?,
        _ => {
            return Err(AdminError::invalid(
                "give an object of names to values, or a list of {name, value}",
            ))
        }
    };
    if pairs.is_empty() {
        return Err(AdminError::invalid("give at least one secret"));
    }
    pairs
        .into_iter()
        .map(|(name, value)| {
            check_secret_name(&name)?;
            let value = value
                .as_str()
                .ok_or_else(|| AdminError::invalid(format!("{name}: the value must be text")))?
                .to_string();
            if value.len() > 64 * 1024 {
                return Err(AdminError::invalid(format!("{name}: at most 64 KiB")));
            }
            Ok((name, value))
        })
        .collect()
}

async fn set_secrets(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<Value>, JsonRejection>,
) -> Response {
    guarded(&state, &headers, async {
        let Json(body) = body.map_err(|e| AdminError::invalid(e.body_text()))?;
        let pairs = secret_pairs(body)?;
        let names: Vec<String> = pairs.iter().map(|(n, _)| n.clone()).collect();
        state
            .db
            .writer
            .write(Mode::Commit, None, move |c| {
                store::set_secrets(c, &pairs).map_err(DbError::from)
            })
            .await?;
        Ok(Json(json!({ "set": names })).into_response())
    })
    .await
}

async fn remove_secret(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    guarded(&state, &headers, async {
        let key = name.clone();
        let removed = state
            .db
            .writer
            .write(Mode::Commit, None, move |c| {
                store::delete_secret(c, &key).map_err(DbError::from)
            })
            .await?;
        if !removed {
            return Err(AdminError::not_found(format!("no secret named {name}")));
        }
        Ok(StatusCode::NO_CONTENT.into_response())
    })
    .await
}
