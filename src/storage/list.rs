//! `POST /object/list/{bucket}` and `/object/list-v2/{bucket}`.

use super::access::{Access, OBJECTS};
use super::buckets::like_escape;
use super::caller;
use super::error::{StorageError, StorageResult};
use super::model::{self, Object, OBJECT_COLUMNS};
use super::objects::{load_bucket, parse_json};
use crate::app::AppState;
use crate::policy::predicate::Command;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Debug, Deserialize, Default)]
struct SortBy {
    column: Option<String>,
    order: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
struct ListBody {
    prefix: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
    #[serde(rename = "sortBy")]
    sort_by: Option<SortBy>,
    search: Option<String>,
    cursor: Option<String>,
    with_delimiter: Option<bool>,
}

/// The objects below `prefix` the caller may see, name order.
async fn objects_below(
    state: &AppState,
    who: &Access,
    bucket: &str,
    prefix: &str,
) -> StorageResult<Vec<Object>> {
    let visible = who.using(&state.db.schema.get(), OBJECTS, Command::Select);
    let (bucket, pattern) = (bucket.to_string(), format!("{}%", like_escape(prefix)));
    state
        .db
        .read(Some(who.ctx.clone()), move |conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {OBJECT_COLUMNS} FROM {OBJECTS} WHERE bucket_id = ?1 AND name LIKE ?2 ESCAPE '\\' \
                 AND ({visible}) ORDER BY name"
            ))?;
            let rows = stmt
                .query_map([&bucket, &pattern], model::object_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok::<_, StorageError>(rows)
        })
        .await
}

fn folder_prefix(prefix: Option<&str>) -> String {
    let p = prefix.unwrap_or_default().trim_matches('/');
    if p.is_empty() {
        String::new()
    } else {
        format!("{p}/")
    }
}

/// `POST /object/list/{bucket}`: the files and folders directly below `prefix`.
pub async fn list(
    State(state): State<AppState>,
    Path(bucket): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StorageResult<Json<Value>> {
    let who = caller(&state, &headers)?;
    let body: ListBody = parse_json(&body)?;
    load_bucket(&state, &bucket).await?;
    let prefix = folder_prefix(body.prefix.as_deref());
    let objects = objects_below(&state, &who, &bucket, &prefix).await?;
    let search = body.search.unwrap_or_default().to_lowercase();
    let mut folders: Vec<String> = Vec::new();
    let mut files: Vec<(String, &Object)> = Vec::new();
    for o in &objects {
        let rest = &o.name[prefix.len()..];
        match rest.split_once('/') {
            Some((folder, _)) => {
                if folders.last().map(String::as_str) != Some(folder)
                    && !folders.iter().any(|f| f == folder)
                {
                    folders.push(folder.to_string());
                }
            }
            None => files.push((rest.to_string(), o)),
        }
    }
    folders.retain(|f| f.to_lowercase().starts_with(&search));
    files.retain(|(n, _)| n.to_lowercase().starts_with(&search));
    let sort = body.sort_by.unwrap_or_default();
    let desc = sort
        .order
        .as_deref()
        .is_some_and(|o| o.eq_ignore_ascii_case("desc"));
    let column = sort.column.unwrap_or_else(|| "name".into());
    let key = |o: &Object| -> String {
        match column.as_str() {
            "created_at" => o.created_at.clone(),
            "updated_at" => o.updated_at.clone(),
            "last_accessed_at" => o.last_accessed_at.clone(),
            _ => o.name.clone(),
        }
    };
    files.sort_by(|a, b| key(a.1).cmp(&key(b.1)).then_with(|| a.0.cmp(&b.0)));
    folders.sort();
    if desc {
        files.reverse();
        folders.reverse();
    }
    let mut entries: Vec<Value> = folders
        .into_iter()
        .map(|f| json!({"name": f, "id": null, "updated_at": null, "created_at": null, "last_accessed_at": null, "metadata": null}))
        .collect();
    entries.extend(files.into_iter().map(|(n, o)| {
        json!({"name": n, "id": o.id, "updated_at": o.updated_at, "created_at": o.created_at,
               "last_accessed_at": o.last_accessed_at, "metadata": o.metadata, "user_metadata": o.user_metadata})
    }));
    let offset = body.offset.unwrap_or(0).max(0) as usize;
    let limit = body.limit.unwrap_or(100).clamp(0, 10_000) as usize;
    Ok(Json(Value::Array(
        entries.into_iter().skip(offset).take(limit).collect(),
    )))
}

/// `POST /object/list-v2/{bucket}`: paged by cursor; folders when `with_delimiter`.
pub async fn list_v2(
    State(state): State<AppState>,
    Path(bucket): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StorageResult<Json<Value>> {
    let who = caller(&state, &headers)?;
    let body: ListBody = parse_json(&body)?;
    load_bucket(&state, &bucket).await?;
    let raw_prefix = body.prefix.clone().unwrap_or_default();
    let prefix = if body.with_delimiter.unwrap_or(false) {
        folder_prefix(Some(&raw_prefix))
    } else {
        raw_prefix
    };
    let objects = objects_below(&state, &who, &bucket, &prefix).await?;
    let cursor = body
        .cursor
        .as_deref()
        .and_then(|c| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(c)
                .ok()
        })
        .and_then(|c| String::from_utf8(c).ok());
    let limit = body.limit.unwrap_or(1000).clamp(1, 1000) as usize;
    // Entries are (sort key, value): folders by their full prefix, objects by name.
    let mut entries: Vec<(String, bool, Value)> = Vec::new();
    let mut seen_folders: Vec<String> = Vec::new();
    for o in &objects {
        let rest = &o.name[prefix.len()..];
        if body.with_delimiter.unwrap_or(false) {
            if let Some((folder, _)) = rest.split_once('/') {
                let key = format!("{prefix}{folder}/");
                if !seen_folders.contains(&key) {
                    seen_folders.push(key.clone());
                    entries.push((key.clone(), true, json!({"name": folder, "key": key})));
                }
                continue;
            }
        }
        entries.push((o.name.clone(), false, {
            let mut v = o.to_json();
            v["key"] = json!(o.name);
            if body.with_delimiter.unwrap_or(false) {
                v["name"] = json!(rest);
            }
            v
        }));
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    if let Some(c) = &cursor {
        entries.retain(|(k, _, _)| k.as_str() > c.as_str());
    }
    let has_next = entries.len() > limit;
    entries.truncate(limit);
    let next_cursor = entries
        .last()
        .filter(|_| has_next)
        .map(|(k, _, _)| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(k));
    let (folders, objects): (Vec<_>, Vec<_>) = entries.into_iter().partition(|(_, f, _)| *f);
    Ok(Json(json!({
        "hasNext": has_next,
        "nextCursor": next_cursor,
        "folders": folders.into_iter().map(|(_, _, v)| v).collect::<Vec<_>>(),
        "objects": objects.into_iter().map(|(_, _, v)| v).collect::<Vec<_>>(),
    })))
}
