//! Object rows as the handlers find them: by caller, public, or already authorised.

use super::access::{Access, OBJECTS};
use super::error::{StorageError, StorageResult};
use super::model::{self, Bucket, Object, OBJECT_COLUMNS};
use crate::app::AppState;
use crate::policy::predicate::Command;
use rusqlite::types::ToSql;
use rusqlite::{params, Connection, OptionalExtension};

/// Parse a JSON body; an empty one reads as the default.
pub fn parse_json<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> StorageResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| StorageError::invalid(format!("Invalid JSON body: {e}")))
}

/// The bucket with `id`, read as Outpost (policies apply to what is done in it).
pub async fn load_bucket(state: &AppState, id: &str) -> StorageResult<Bucket> {
    let id = id.to_string();
    state
        .db
        .read(None, move |conn| {
            model::bucket(conn, &id).map_err(StorageError::from)
        })
        .await?
        .ok_or_else(StorageError::no_such_bucket)
}

/// The object at `bucket`/`name` if `visible` (a USING predicate) lets the caller see it.
pub fn visible_object(
    conn: &Connection,
    visible: &str,
    bucket: &str,
    name: &str,
) -> rusqlite::Result<Option<Object>> {
    conn.query_row(
        &format!(
            "SELECT {OBJECT_COLUMNS} FROM {OBJECTS} WHERE bucket_id = ?1 AND name = ?2 AND ({visible})"
        ),
        [bucket, name],
        model::object_from_row,
    )
    .optional()
}

/// Delete the rows matching `cond` (with `args`), recording their bytes as pending; returns the
/// versions whose bytes are to be discarded once the transaction commits.
pub fn delete_where(
    conn: &Connection,
    cond: &str,
    args: &[&dyn ToSql],
) -> rusqlite::Result<Vec<String>> {
    let versions: Vec<String> = conn
        .prepare(&format!("SELECT version FROM {OBJECTS} WHERE {cond}"))?
        .query_map(args, |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    for v in &versions {
        conn.execute(
            "INSERT OR IGNORE INTO _outpost_storage_pending (version, created_at) VALUES (?1, ?2)",
            params![v, now],
        )?;
    }
    conn.execute(&format!("DELETE FROM {OBJECTS} WHERE {cond}"), args)?;
    Ok(versions)
}

/// The object the caller may read (SELECT policies), or 404.
pub async fn find_visible(
    state: &AppState,
    who: &Access,
    bucket: &str,
    path: &str,
) -> StorageResult<Object> {
    let visible = who.using(&state.db.schema.get(), OBJECTS, Command::Select);
    let (bucket, path) = (bucket.to_string(), path.to_string());
    state
        .db
        .read(Some(who.ctx.clone()), move |conn| {
            visible_object(conn, &visible, &bucket, &path).map_err(StorageError::from)
        })
        .await?
        .ok_or_else(StorageError::no_such_key)
}

/// An object of a public bucket, with no policy applied.
pub async fn find_public(state: &AppState, bucket: &str, path: &str) -> StorageResult<Object> {
    let b = load_bucket(state, bucket).await?;
    if !b.public {
        return Err(StorageError::no_such_bucket());
    }
    find_any(state, bucket, path).await
}

/// An object whatever the caller (signed URLs already authorised it).
pub async fn find_any(state: &AppState, bucket: &str, path: &str) -> StorageResult<Object> {
    let (bucket, path) = (bucket.to_string(), path.to_string());
    state
        .db
        .read(None, move |conn| {
            visible_object(conn, "1", &bucket, &path).map_err(StorageError::from)
        })
        .await?
        .ok_or_else(StorageError::no_such_key)
}
