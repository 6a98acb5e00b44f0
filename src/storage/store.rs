//! Object bytes in the OpenDAL operator, kept in step with the rows that name them.
//!
//! Bytes live under `objects/<version>`, a fresh id per write. Before bytes are written their
//! version is recorded in `_outpost_storage_pending` (committed first); the transaction that
//! commits the object row removes it. Bytes a failed or cut-off upload left, and bytes of
//! replaced or deleted objects, are deleted from the store; if the process dies first, the
//! sweep at start-up finds them through the pending table. So the store never keeps bytes no
//! row names, and no row names bytes that are not there.

use super::error::{StorageError, StorageResult};
use crate::db::{Db, Mode};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use md5::{Digest, Md5};
use opendal::Operator;
use rusqlite::params;

/// The store key of a version's bytes (never derived from a client's name).
pub fn key(version: &str) -> String {
    format!("objects/{version}")
}

/// A fresh version id.
pub fn new_version() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Record `versions` as pending before their bytes are written (or after their rows went).
pub async fn mark_pending(db: &Db, versions: Vec<String>) -> StorageResult<()> {
    if versions.is_empty() {
        return Ok(());
    }
    db.writer
        .write(Mode::Commit, None, move |conn| {
            for v in &versions {
                conn.prepare_cached(
                    "INSERT OR IGNORE INTO _outpost_storage_pending (version, created_at) VALUES (?1, ?2)",
                )?
                .execute(params![v, unix_now()])?;
            }
            Ok::<_, StorageError>(())
        })
        .await
}

/// Delete the bytes of `versions` no row names any more, then forget them.
pub async fn discard(db: &Db, op: &Operator, versions: Vec<String>) {
    for v in versions {
        if let Err(e) = op.delete(&key(&v)).await {
            tracing::warn!(version = %v, error = %e, "cannot delete object bytes; the sweep will retry");
            continue;
        }
        let done = v.clone();
        let forgot = db
            .writer
            .write(Mode::Commit, None, move |conn| {
                conn.prepare_cached("DELETE FROM _outpost_storage_pending WHERE version = ?1")?
                    .execute([&done])
                    .map(|_| ())
                    .map_err(StorageError::from)
            })
            .await;
        if let Err(e) = forgot {
            tracing::warn!(version = %v, error = %e.message, "cannot clear a pending version");
        }
    }
}

/// Delete pending bytes older than `min_age_secs` that no object row names; clear the rest.
pub async fn sweep(db: &Db, op: &Operator, min_age_secs: i64) -> StorageResult<usize> {
    let cutoff = unix_now() - min_age_secs;
    let (orphans, owned): (Vec<String>, Vec<String>) = db
        .read(None, move |conn| {
            let mut stmt = conn.prepare(
                "SELECT p.version, EXISTS (SELECT 1 FROM _outpost_storage_objects o \
                 WHERE o.version = p.version) FROM _outpost_storage_pending p WHERE p.created_at <= ?1",
            )?;
            let rows = stmt
                .query_map([cutoff], |r| Ok((r.get::<_, String>(0)?, r.get::<_, bool>(1)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let (owned, orphans): (Vec<_>, Vec<_>) = rows.into_iter().partition(|(_, o)| *o);
            Ok::<_, StorageError>((
                orphans.into_iter().map(|(v, _)| v).collect(),
                owned.into_iter().map(|(v, _)| v).collect(),
            ))
        })
        .await?;
    if !owned.is_empty() {
        db.writer
            .write(Mode::Commit, None, move |conn| {
                for v in &owned {
                    conn.execute(
                        "DELETE FROM _outpost_storage_pending WHERE version = ?1",
                        [v],
                    )?;
                }
                Ok::<_, StorageError>(())
            })
            .await?;
    }
    let n = orphans.len();
    discard(db, op, orphans).await;
    Ok(n)
}

/// What a finished write stored.
#[derive(Debug, Clone)]
pub struct Written {
    pub size: u64,
    /// Quoted hex MD5, as S3 and Supabase give ETags.
    pub etag: String,
}

/// Why a write did not finish.
pub enum WriteError {
    TooLarge,
    Body(String),
    Store(opendal::Error),
}

/// Stream `body` into `objects/<version>`, at most `limit` bytes; on any failure the partial
/// bytes are removed from the store.
pub async fn write<S, E>(
    op: &Operator,
    version: &str,
    mut body: S,
    limit: u64,
) -> Result<Written, WriteError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let key = key(version);
    // S3 wants parts of at least 5 MiB; buffering one part bounds memory per upload.
    let mut writer = op
        .writer_with(&key)
        .chunk(8 * 1024 * 1024)
        .await
        .map_err(WriteError::Store)?;
    let mut md5 = Md5::new();
    let mut size: u64 = 0;
    let result: Result<(), WriteError> = async {
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| WriteError::Body(e.to_string()))?;
            size += chunk.len() as u64;
            if size > limit {
                return Err(WriteError::TooLarge);
            }
            md5.update(&chunk);
            writer.write(chunk).await.map_err(WriteError::Store)?;
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        let _ = writer.abort().await;
        let _ = op.delete(&key).await;
        return Err(e);
    }
    if let Err(e) = writer.close().await {
        let _ = op.delete(&key).await;
        return Err(WriteError::Store(e));
    }
    Ok(Written {
        size,
        etag: format!("\"{}\"", hex::encode(md5.finalize())),
    })
}

/// Pending bytes older than this are orphans even while serving (no upload takes a day).
const STALE_PENDING_SECS: i64 = 24 * 3600;
/// Resumable uploads untouched this long are abandoned.
const STALE_UPLOAD_SECS: i64 = 24 * 3600;

/// Every hour: delete orphaned bytes and abandoned resumable uploads.
pub async fn janitor(state: crate::app::AppState) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        if let Err(e) = sweep(&state.db, &state.storage.op, STALE_PENDING_SECS).await {
            tracing::warn!(error = %e.message, "cannot sweep orphaned object bytes");
        }
        let cutoff = unix_now() - STALE_UPLOAD_SECS;
        let stale: Result<Vec<String>, StorageError> = state
            .db
            .writer
            .write(Mode::Commit, None, move |conn| {
                let ids: Vec<String> = conn
                    .prepare("SELECT id FROM _outpost_storage_uploads WHERE created_at < ?1")?
                    .query_map([cutoff], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
                conn.execute(
                    "DELETE FROM _outpost_storage_uploads WHERE created_at < ?1",
                    [cutoff],
                )?;
                Ok(ids)
            })
            .await;
        for id in stale.unwrap_or_default() {
            let _ = tokio::fs::remove_file(state.storage.uploads_dir.join(id)).await;
        }
    }
}
