//! Uploads: `POST`/`PUT /object/{bucket}/{path}`, checked against limits and policies, bytes
//! streamed to the store, then the row committed.

use super::access::{self, Access, ObjectRow, OBJECTS};
use super::error::{StorageError, StorageResult};
use super::model::Bucket;
use super::objects::load_bucket;
use super::store::{self, WriteError};
use super::{caller, names};
use crate::app::AppState;
use crate::db::functions::now_iso;
use crate::db::Mode;
use crate::policy::predicate::Command;
use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use base64::Engine;
use futures_util::StreamExt;
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Value};

/// What an upload carries besides its bytes.
struct UploadMeta {
    content_type: String,
    cache_control: String,
    user_metadata: Option<Value>,
    declared_length: Option<u64>,
}

fn cache_control(value: Option<&str>) -> String {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => "max-age=3600".into(),
        Some(v) if v.chars().all(|c| c.is_ascii_digit()) => format!("max-age={v}"),
        Some(v) => v.to_string(),
    }
}

fn decode_metadata(b64: &str) -> StorageResult<Value> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| StorageError::invalid("x-metadata must be base64-encoded JSON"))?;
    serde_json::from_slice(&raw)
        .map_err(|_| StorageError::invalid("x-metadata must be base64-encoded JSON"))
}

/// Who an upload is done as, and whether it may replace an existing object.
pub struct Uploader {
    pub access: Access,
    pub owner: Option<String>,
    pub upsert: bool,
    /// A signed upload URL: its token already authorised this exact path.
    pub presigned: bool,
}

pub fn too_large() -> StorageError {
    StorageError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "EntityTooLarge",
        "The object exceeded the maximum allowed size",
    )
}

/// Store an upload: checks, bytes, then the row; returns `{Id, Key}`.
pub async fn store_upload(
    state: &AppState,
    who: Uploader,
    bucket_id: &str,
    name: &str,
    request: Request,
) -> StorageResult<Json<Value>> {
    names::object_name(name)?;
    let bucket = load_bucket(state, bucket_id).await?;
    let limit = bucket
        .file_size_limit
        .map_or(state.storage.config.max_file_size, |l| {
            (l.max(0) as u64).min(state.storage.config.max_file_size)
        });
    let is_multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit + if is_multipart { 64 * 1024 } else { 0 }) {
        return Err(too_large());
    }
    if is_multipart {
        let mut form = Multipart::from_request(request, &())
            .await
            .map_err(|e| StorageError::invalid(format!("Invalid multipart body: {e}")))?;
        let mut cache = None;
        let mut user_metadata = None;
        while let Some(field) = form
            .next_field()
            .await
            .map_err(|e| StorageError::invalid(format!("Invalid multipart body: {e}")))?
        {
            let field_name = field.name().unwrap_or_default().to_string();
            if field.file_name().is_none() && !field_name.is_empty() {
                let text = field
                    .text()
                    .await
                    .map_err(|e| StorageError::invalid(format!("Invalid multipart body: {e}")))?;
                match field_name.as_str() {
                    "cacheControl" => cache = Some(text),
                    "metadata" => {
                        user_metadata = Some(
                            serde_json::from_str(&text)
                                .map_err(|_| StorageError::invalid("metadata must be JSON"))?,
                        )
                    }
                    _ => {}
                }
                continue;
            }
            let meta = UploadMeta {
                content_type: field
                    .content_type()
                    .unwrap_or("application/octet-stream")
                    .to_string(),
                cache_control: cache_control(cache.as_deref()),
                user_metadata,
                declared_length: None,
            };
            let mut field = field;
            let result = write_object(state, who, &bucket, name, meta, &mut field, limit).await;
            if result.is_err() {
                // Read what the client is still sending so that it gets the answer, not a reset.
                let mut left = drain(&mut field, DRAIN_CAP).await;
                while left > 0 {
                    match form.next_field().await {
                        Ok(Some(mut next)) => left = drain(&mut next, left).await,
                        _ => break,
                    }
                }
            }
            return result;
        }
        return Err(StorageError::invalid("The multipart body has no file part"));
    }
    let headers = request.headers();
    let text = |h: &str| {
        headers
            .get(h)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let meta = UploadMeta {
        content_type: text("content-type").unwrap_or_else(|| "text/plain;charset=UTF-8".into()),
        cache_control: cache_control(text("cache-control").as_deref()),
        user_metadata: text("x-metadata")
            .map(|m| decode_metadata(&m))
            .transpose()?,
        declared_length: declared,
    };
    let mut body = request.into_body().into_data_stream();
    let result = write_object(state, who, &bucket, name, meta, &mut body, limit).await;
    if result.is_err() {
        drain(&mut body, DRAIN_CAP).await;
    }
    result
}

/// Most bytes read and dropped after a refusal so the client sees the answer.
const DRAIN_CAP: u64 = 32 * 1024 * 1024;

/// Read and drop up to `cap` bytes of `body`; returns how much of the cap is left.
async fn drain<S, E>(body: &mut S, cap: u64) -> u64
where
    S: futures_util::Stream<Item = Result<Bytes, E>> + Unpin,
{
    let mut left = cap;
    while left > 0 {
        match body.next().await {
            Some(Ok(chunk)) => left = left.saturating_sub(chunk.len() as u64),
            _ => break,
        }
    }
    left
}

async fn write_object<S, E>(
    state: &AppState,
    who: Uploader,
    bucket: &Bucket,
    name: &str,
    meta: UploadMeta,
    body: &mut S,
    limit: u64,
) -> StorageResult<Json<Value>>
where
    S: futures_util::Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    if !bucket.allows_mime(&meta.content_type) {
        return Err(StorageError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "InvalidMimeType",
            format!("mime type {} is not supported", meta.content_type),
        ));
    }
    let schema = state.db.schema.get();
    let checks = Checks {
        insert: who.access.check(&schema, OBJECTS, Command::Insert),
        update_using: who.access.using(&schema, OBJECTS, Command::Update),
        update_check: who.access.check(&schema, OBJECTS, Command::Update),
        presigned: who.presigned,
    };
    let user_meta_text = meta.user_metadata.as_ref().map(Value::to_string);
    // Refuse before any byte is stored when the policies already say no.
    precheck(state, &who, &bucket.id, name).await?;
    let version = store::new_version();
    store::mark_pending(&state.db, vec![version.clone()]).await?;
    let written = match store::write(&state.storage.op, &version, &mut *body, limit).await {
        Ok(w) => w,
        Err(e) => {
            store::discard(&state.db, &state.storage.op, vec![version]).await;
            return Err(match e {
                WriteError::TooLarge => too_large(),
                WriteError::Body(why) => {
                    StorageError::invalid(format!("The upload was cut off: {why}"))
                }
                WriteError::Store(e) => StorageError::internal(e),
            });
        }
    };
    if meta.declared_length.is_some_and(|n| n != written.size) {
        store::discard(&state.db, &state.storage.op, vec![version]).await;
        return Err(StorageError::invalid(
            "The upload was cut off before Content-Length bytes",
        ));
    }
    let metadata = json!({
        "eTag": written.etag,
        "size": written.size,
        "mimetype": meta.content_type,
        "cacheControl": meta.cache_control,
        "lastModified": now_iso(),
        "contentLength": written.size,
        "httpStatusCode": 200,
    })
    .to_string();
    let row = NewVersion {
        bucket_id: bucket.id.clone(),
        name: name.to_string(),
        owner: who.owner.clone(),
        version: version.clone(),
        metadata,
        user_metadata: user_meta_text,
        upsert: who.upsert,
    };
    commit(state, &who.access, checks, row).await
}

/// A version of an object whose bytes are stored, ready to become the object's row.
pub struct NewVersion {
    pub bucket_id: String,
    pub name: String,
    pub owner: Option<String>,
    pub version: String,
    pub metadata: String,
    pub user_metadata: Option<String>,
    pub upsert: bool,
}

/// Commit `row` (insert, or replace with upsert) after the policies pass once more inside the
/// transaction; replaced bytes are discarded after the commit, the new ones if it fails.
/// Answers `{Id, Key}`.
pub async fn commit(
    state: &AppState,
    who: &Access,
    checks: Checks,
    row: NewVersion,
) -> StorageResult<Json<Value>> {
    let version = row.version.clone();
    let key = format!("{}/{}", row.bucket_id, row.name);
    let committed = state
        .db
        .writer
        .write(Mode::Commit, Some(who.ctx.clone()), move |conn| {
            let existing = authorize_write(
                conn,
                &checks,
                &row.bucket_id,
                &row.name,
                row.owner.as_deref(),
                &row.metadata,
                row.user_metadata.as_deref(),
                row.upsert,
            )?;
            let id = match &existing {
                Some((id, old_version)) => {
                    conn.execute(
                        "UPDATE _outpost_storage_objects SET version = ?2, metadata = ?3, user_metadata = ?4, \
                         owner = ?5, updated_at = now(), last_accessed_at = now() WHERE id = ?1",
                        params![id, row.version, row.metadata, row.user_metadata, row.owner],
                    )?;
                    conn.execute(
                        "INSERT OR IGNORE INTO _outpost_storage_pending (version, created_at) VALUES (?1, 0)",
                        [old_version],
                    )?;
                    id.clone()
                }
                None => {
                    let id = uuid::Uuid::new_v4().to_string();
                    conn.execute(
                        "INSERT INTO _outpost_storage_objects (id, bucket_id, name, owner, version, metadata, \
                         user_metadata) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                        params![id, row.bucket_id, row.name, row.owner, row.version, row.metadata, row.user_metadata],
                    )?;
                    id
                }
            };
            conn.execute("DELETE FROM _outpost_storage_pending WHERE version = ?1", [&row.version])?;
            Ok::<_, StorageError>((id, existing.map(|(_, v)| v)))
        })
        .await;
    match committed {
        Ok((id, replaced)) => {
            store::discard(&state.db, &state.storage.op, replaced.into_iter().collect()).await;
            Ok(Json(json!({"Id": id, "Key": key})))
        }
        Err(e) => {
            store::discard(&state.db, &state.storage.op, vec![version]).await;
            Err(e)
        }
    }
}

/// Refuse an upload of `bucket`/`name` by `who` before any byte arrives, when the policies (or
/// an existing object without upsert) already say no.
pub async fn precheck(
    state: &AppState,
    who: &Uploader,
    bucket: &str,
    name: &str,
) -> StorageResult<()> {
    let schema = state.db.schema.get();
    let checks = Checks {
        insert: who.access.check(&schema, OBJECTS, Command::Insert),
        update_using: who.access.using(&schema, OBJECTS, Command::Update),
        update_check: who.access.check(&schema, OBJECTS, Command::Update),
        presigned: who.presigned,
    };
    let (bucket, name, owner, upsert) = (
        bucket.to_string(),
        name.to_string(),
        who.owner.clone(),
        who.upsert,
    );
    state
        .db
        .read(Some(who.access.ctx.clone()), move |conn| {
            authorize_write(
                conn,
                &checks,
                &bucket,
                &name,
                owner.as_deref(),
                "{}",
                None,
                upsert,
            )
            .map(|_| ())
        })
        .await
}

/// The policy checks one upload needs.
#[derive(Clone)]
pub struct Checks {
    pub insert: String,
    pub update_using: String,
    pub update_check: String,
    pub presigned: bool,
}

/// May this write happen? Returns the existing object's `(id, version)` when it is replaced.
#[allow(clippy::too_many_arguments)]
fn authorize_write(
    conn: &Connection,
    checks: &Checks,
    bucket_id: &str,
    name: &str,
    owner: Option<&str>,
    metadata: &str,
    user_metadata: Option<&str>,
    upsert: bool,
) -> StorageResult<Option<(String, String)>> {
    let existing: Option<(String, String)> = conn
        .query_row(
            &format!("SELECT id, version FROM {OBJECTS} WHERE bucket_id = ?1 AND name = ?2"),
            [bucket_id, name],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let passes = |check: &str, id: &str| {
        let row = ObjectRow {
            id,
            bucket_id,
            name,
            owner,
            metadata,
            user_metadata,
        };
        access::object_passes(conn, check, &row)
    };
    match &existing {
        Some(_) if !upsert => Err(StorageError::duplicate()),
        Some((id, _)) => {
            if !checks.presigned {
                let may_update = conn
                    .prepare(&format!(
                        "SELECT 1 FROM {OBJECTS} WHERE id = ?1 AND ({})",
                        checks.update_using
                    ))?
                    .exists([id])?;
                if !may_update || !passes(&checks.update_check, id)? {
                    return Err(StorageError::denied());
                }
            }
            Ok(existing)
        }
        None => {
            if !checks.presigned && !passes(&checks.insert, "")? {
                return Err(StorageError::denied());
            }
            Ok(None)
        }
    }
}

pub fn upsert_header(headers: &HeaderMap) -> bool {
    headers
        .get("x-upsert")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// `POST /object/{bucket}/{path}`: create (replace with `x-upsert: true`).
pub async fn upload_post(
    State(state): State<AppState>,
    Path((bucket, path)): Path<(String, String)>,
    request: Request,
) -> StorageResult<Json<Value>> {
    let access = caller(&state, request.headers())?;
    let who = Uploader {
        owner: access.uid.clone(),
        upsert: upsert_header(request.headers()),
        access,
        presigned: false,
    };
    store_upload(&state, who, &bucket, &path, request).await
}

/// `PUT /object/{bucket}/{path}`: replace (or create).
pub async fn upload_put(
    State(state): State<AppState>,
    Path((bucket, path)): Path<(String, String)>,
    request: Request,
) -> StorageResult<Json<Value>> {
    let access = caller(&state, request.headers())?;
    let who = Uploader {
        owner: access.uid.clone(),
        upsert: true,
        access,
        presigned: false,
    };
    store_upload(&state, who, &bucket, &path, request).await
}

/// Stream a file from disk as an upload body (resumable uploads finishing).
pub fn file_stream(
    file: tokio::fs::File,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Unpin {
    futures_util::stream::unfold(file, |mut f| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 256 * 1024];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), f))
            }
            Err(e) => Some((Err(e), f)),
        }
    })
    .boxed()
}

/// Write a whole stream as an object for `who` (resumable uploads finishing).
pub async fn write_stream<S, E>(
    state: &AppState,
    who: Uploader,
    bucket_id: &str,
    name: &str,
    meta: StreamMeta,
    body: S,
) -> StorageResult<Json<Value>>
where
    S: futures_util::Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    names::object_name(name)?;
    let bucket = load_bucket(state, bucket_id).await?;
    let limit = bucket
        .file_size_limit
        .map_or(state.storage.config.max_file_size, |l| {
            (l.max(0) as u64).min(state.storage.config.max_file_size)
        });
    let meta = UploadMeta {
        content_type: meta.content_type,
        cache_control: cache_control(meta.cache_control.as_deref()),
        user_metadata: meta.user_metadata,
        declared_length: None,
    };
    let mut body = body;
    write_object(state, who, &bucket, name, meta, &mut body, limit).await
}

/// What a streamed object is stored with.
pub struct StreamMeta {
    pub content_type: String,
    pub cache_control: Option<String>,
    pub user_metadata: Option<Value>,
}
