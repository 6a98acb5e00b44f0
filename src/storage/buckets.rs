//! `/bucket`: list, get, create, update, empty, delete.

use super::access::{self, BucketRow, BUCKETS, OBJECTS};
use super::error::{StorageError, StorageResult};
use super::model::{self, Bucket, BUCKET_COLUMNS};
use super::{caller, names, store};
use crate::app::AppState;
use crate::db::Mode;
use crate::policy::predicate::Command;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use rusqlite::{params, OptionalExtension};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;

fn parse_json<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> StorageResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| StorageError::invalid(format!("Invalid JSON body: {e}")))
}

/// `GET /bucket?limit&offset&search&sortColumn&sortOrder`: the buckets the caller may see.
pub async fn list(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> StorageResult<Json<Value>> {
    let who = caller(&state, &headers)?;
    let visible = who.using(&state.db.schema.get(), BUCKETS, Command::Select);
    let limit: i64 = q.get("limit").and_then(|v| v.parse().ok()).unwrap_or(-1);
    let offset: i64 = q.get("offset").and_then(|v| v.parse().ok()).unwrap_or(0);
    let search = q.get("search").cloned().unwrap_or_default();
    let column = match q.get("sortColumn").map(String::as_str) {
        Some("id") => "id",
        Some("created_at") => "created_at",
        Some("updated_at") => "updated_at",
        _ => "name",
    };
    let order = if q
        .get("sortOrder")
        .is_some_and(|o| o.eq_ignore_ascii_case("desc"))
    {
        "DESC"
    } else {
        "ASC"
    };
    let buckets = state
        .db
        .read(Some(who.ctx.clone()), move |conn| {
            let sql = format!(
                "SELECT {BUCKET_COLUMNS} FROM {BUCKETS} WHERE ({visible}) AND name LIKE ?1 ESCAPE '\\' \
                 ORDER BY {column} {order} LIMIT ?2 OFFSET ?3"
            );
            let pattern = format!("%{}%", like_escape(&search));
            let mut stmt = conn.prepare(&sql)?;
            let rows = stmt
                .query_map(params![pattern, limit, offset], model::bucket_from_row)?
                .collect::<rusqlite::Result<Vec<Bucket>>>()?;
            Ok::<_, StorageError>(rows)
        })
        .await?;
    Ok(Json(Value::Array(
        buckets.iter().map(Bucket::to_json).collect(),
    )))
}

/// Escape `%`, `_` and `\` for a LIKE pattern with `ESCAPE '\'`.
pub fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// `GET /bucket/{id}`.
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> StorageResult<Json<Value>> {
    let who = caller(&state, &headers)?;
    let visible = who.using(&state.db.schema.get(), BUCKETS, Command::Select);
    let bucket = state
        .db
        .read(Some(who.ctx.clone()), move |conn| {
            conn.query_row(
                &format!("SELECT {BUCKET_COLUMNS} FROM {BUCKETS} WHERE id = ?1 AND ({visible})"),
                [&id],
                model::bucket_from_row,
            )
            .optional()
            .map_err(StorageError::from)
        })
        .await?
        .ok_or_else(StorageError::no_such_bucket)?;
    Ok(Json(bucket.to_json()))
}

#[derive(Debug, Deserialize, Default)]
struct BucketBody {
    id: Option<String>,
    name: Option<String>,
    public: Option<bool>,
    file_size_limit: Option<Value>,
    allowed_mime_types: Option<Vec<String>>,
}

/// A size limit as a number of bytes or a string such as `"1.5MB"` or `"100kb"`.
fn parse_size(v: &Value) -> StorageResult<Option<i64>> {
    let bad = || StorageError::invalid(format!("Invalid file size limit: {v}"));
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => n
            .as_i64()
            .filter(|n| *n >= 0)
            .map(|n| Some(n).filter(|n| *n > 0))
            .ok_or_else(bad),
        Value::String(s) => {
            let s = s.trim().to_ascii_lowercase();
            let split = s
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(s.len());
            let (num, unit) = s.split_at(split);
            let num: f64 = num.parse().map_err(|_| bad())?;
            let scale = match unit.trim() {
                "" | "b" => 1.0,
                "kb" | "k" => 1024.0,
                "mb" | "m" => 1024.0 * 1024.0,
                "gb" | "g" => 1024.0 * 1024.0 * 1024.0,
                _ => return Err(bad()),
            };
            Ok(Some((num * scale) as i64).filter(|n| *n > 0))
        }
        _ => Err(bad()),
    }
}

/// `POST /bucket`: `{id, name, public, file_size_limit, allowed_mime_types}` → `{name}`.
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> StorageResult<Json<Value>> {
    let who = caller(&state, &headers)?;
    let body: BucketBody = parse_json(&body)?;
    let id = body.id.or(body.name).unwrap_or_default();
    names::bucket_id(&id)?;
    let limit = body
        .file_size_limit
        .as_ref()
        .map(parse_size)
        .transpose()?
        .flatten();
    let mimes = body.allowed_mime_types.map(|m| Value::from(m).to_string());
    let public = body.public.unwrap_or(false);
    let check = who.check(&state.db.schema.get(), BUCKETS, Command::Insert);
    let uid = who.uid.clone();
    let created = id.clone();
    state
        .db
        .writer
        .write(Mode::Commit, Some(who.ctx.clone()), move |conn| {
            let row = BucketRow {
                id: &id,
                owner: uid.as_deref(),
                public,
                file_size_limit: limit,
                allowed_mime_types: mimes.as_deref(),
            };
            if !access::bucket_passes(conn, &check, &row)? {
                return Err(StorageError::denied());
            }
            if model::bucket(conn, &id)?.is_some() {
                return Err(StorageError::new(
                    StatusCode::CONFLICT,
                    "BucketAlreadyExists",
                    "The resource already exists",
                ));
            }
            conn.execute(
                "INSERT INTO _outpost_storage_buckets (id, name, owner, public, file_size_limit, \
                 allowed_mime_types) VALUES (?1, ?1, ?2, ?3, ?4, ?5)",
                params![id, uid, public, limit, mimes],
            )?;
            Ok(())
        })
        .await?;
    Ok(Json(json!({ "name": created })))
}

/// `PUT /bucket/{id}`: public flag and limits.
pub async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StorageResult<Json<Value>> {
    let who = caller(&state, &headers)?;
    // A field left out keeps its value; `null` clears it.
    let fields: serde_json::Map<String, Value> = parse_json(&body)?;
    let public = match fields.get("public") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => return Err(StorageError::invalid("public must be a boolean")),
    };
    let limit = fields.get("file_size_limit").map(parse_size).transpose()?;
    let mimes = match fields.get("allowed_mime_types") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(v @ Value::Array(items)) if items.iter().all(Value::is_string) => {
            Some(Some(v.to_string()))
        }
        Some(_) => {
            return Err(StorageError::invalid(
                "allowed_mime_types must be an array of strings",
            ))
        }
    };
    let schema = state.db.schema.get();
    let visible = who.using(&schema, BUCKETS, Command::Update);
    let check = who.check(&schema, BUCKETS, Command::Update);
    state
        .db
        .writer
        .write(Mode::Commit, Some(who.ctx.clone()), move |conn| {
            let current = conn
                .query_row(
                    &format!(
                        "SELECT {BUCKET_COLUMNS} FROM {BUCKETS} WHERE id = ?1 AND ({visible})"
                    ),
                    [&id],
                    model::bucket_from_row,
                )
                .optional()?
                .ok_or_else(StorageError::no_such_bucket)?;
            let public = public.unwrap_or(current.public);
            let limit = limit.unwrap_or(current.file_size_limit);
            let mimes = mimes.unwrap_or_else(|| {
                current
                    .allowed_mime_types
                    .map(|m| Value::from(m).to_string())
            });
            let row = BucketRow {
                id: &id,
                owner: current.owner.as_deref(),
                public,
                file_size_limit: limit,
                allowed_mime_types: mimes.as_deref(),
            };
            if !access::bucket_passes(conn, &check, &row)? {
                return Err(StorageError::denied());
            }
            conn.execute(
                "UPDATE _outpost_storage_buckets SET public = ?2, file_size_limit = ?3, \
                 allowed_mime_types = ?4, updated_at = now() WHERE id = ?1",
                params![id, public, limit, mimes],
            )?;
            Ok(())
        })
        .await?;
    Ok(Json(json!({"message": "Successfully updated"})))
}

/// `POST /bucket/{id}/empty`: delete every object the caller may delete.
pub async fn empty(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> StorageResult<Json<Value>> {
    let who = caller(&state, &headers)?;
    let schema = state.db.schema.get();
    let see = who.using(&schema, BUCKETS, Command::Select);
    let deletable = who.using(&schema, OBJECTS, Command::Delete);
    let versions = state
        .db
        .writer
        .write(Mode::Commit, Some(who.ctx.clone()), move |conn| {
            let exists: bool = conn
                .prepare(&format!(
                    "SELECT 1 FROM {BUCKETS} WHERE id = ?1 AND ({see})"
                ))?
                .exists([&id])?;
            if !exists {
                return Err(StorageError::no_such_bucket());
            }
            let versions = super::objects::delete_where(
                conn,
                &format!("bucket_id = ?1 AND ({deletable})"),
                &[&id],
            )?;
            Ok(versions)
        })
        .await?;
    store::discard(&state.db, &state.storage.op, versions).await;
    Ok(Json(json!({"message": "Successfully emptied"})))
}

/// `DELETE /bucket/{id}`: only an empty bucket.
pub async fn remove(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> StorageResult<Json<Value>> {
    let who = caller(&state, &headers)?;
    let visible = who.using(&state.db.schema.get(), BUCKETS, Command::Delete);
    state
        .db
        .writer
        .write(Mode::Commit, Some(who.ctx.clone()), move |conn| {
            let exists: bool = conn
                .prepare(&format!(
                    "SELECT 1 FROM {BUCKETS} WHERE id = ?1 AND ({visible})"
                ))?
                .exists([&id])?;
            if !exists {
                return Err(StorageError::no_such_bucket());
            }
            let has_objects: bool = conn
                .prepare("SELECT 1 FROM _outpost_storage_objects WHERE bucket_id = ?1 LIMIT 1")?
                .exists([&id])?;
            if has_objects {
                return Err(StorageError::new(
                    StatusCode::CONFLICT,
                    "InvalidRequest",
                    "The bucket you tried to delete is not empty",
                ));
            }
            conn.execute("DELETE FROM _outpost_storage_buckets WHERE id = ?1", [&id])?;
            Ok(())
        })
        .await?;
    Ok(Json(json!({"message": "Successfully deleted"})))
}

#[cfg(test)]
mod tests {
    use super::parse_size;
    use serde_json::json;

    #[test]
    fn size_limits_in_numbers_and_units() {
        assert_eq!(parse_size(&json!(1024)).unwrap(), Some(1024));
        assert_eq!(parse_size(&json!("1KB")).unwrap(), Some(1024));
        assert_eq!(parse_size(&json!("1.5mb")).unwrap(), Some(1_572_864));
        assert_eq!(parse_size(&json!(null)).unwrap(), None);
        assert!(parse_size(&json!("lots")).is_err());
        assert!(parse_size(&json!(-1)).is_err());
    }
}
