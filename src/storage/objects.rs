//! `/object`: upload, download, info, list, remove, move, copy.

use super::access::{self, Access, ObjectRow, OBJECTS};
use super::buckets::like_escape;
use super::error::{StorageError, StorageResult};
use super::model::{self, Bucket, Object, OBJECT_COLUMNS};
use super::store::{self, WriteError};
use super::{caller, names};
use crate::app::AppState;
use crate::db::functions::now_iso;
use crate::db::Mode;
use crate::policy::predicate::Command;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use base64::Engine;
use futures_util::StreamExt;
use rusqlite::types::ToSql;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;

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

fn too_large() -> StorageError {
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
            return write_object(state, who, &bucket, name, meta, field, limit).await;
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
    let body = request.into_body().into_data_stream();
    write_object(state, who, &bucket, name, meta, body, limit).await
}

async fn write_object<S, E>(
    state: &AppState,
    who: Uploader,
    bucket: &Bucket,
    name: &str,
    meta: UploadMeta,
    body: S,
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
    {
        let (bucket_id, name, owner, umeta, checks, upsert) = (
            bucket.id.clone(),
            name.to_string(),
            who.owner.clone(),
            user_meta_text.clone(),
            checks.clone(),
            who.upsert,
        );
        state
            .db
            .read(Some(who.access.ctx.clone()), move |conn| {
                authorize_write(
                    conn,
                    &checks,
                    &bucket_id,
                    &name,
                    owner.as_deref(),
                    "{}",
                    umeta.as_deref(),
                    upsert,
                )
            })
            .await?;
    }
    let version = store::new_version();
    store::mark_pending(&state.db, vec![version.clone()]).await?;
    let written = match store::write(&state.storage.op, &version, body, limit).await {
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
    let (bucket_id, object_name, owner, new_version) = (
        bucket.id.clone(),
        name.to_string(),
        who.owner.clone(),
        version.clone(),
    );
    let upsert = who.upsert;
    let committed = state
        .db
        .writer
        .write(Mode::Commit, Some(who.access.ctx.clone()), move |conn| {
            let existing = authorize_write(
                conn,
                &checks,
                &bucket_id,
                &object_name,
                owner.as_deref(),
                &metadata,
                user_meta_text.as_deref(),
                upsert,
            )?;
            let id = match &existing {
                Some((id, old_version)) => {
                    conn.execute(
                        "UPDATE _outpost_storage_objects SET version = ?2, metadata = ?3, user_metadata = ?4, \
                         owner = ?5, updated_at = now(), last_accessed_at = now() WHERE id = ?1",
                        params![id, new_version, metadata, user_meta_text, owner],
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
                        params![id, bucket_id, object_name, owner, new_version, metadata, user_meta_text],
                    )?;
                    id
                }
            };
            conn.execute("DELETE FROM _outpost_storage_pending WHERE version = ?1", [&new_version])?;
            Ok::<_, StorageError>((id, existing.map(|(_, v)| v)))
        })
        .await;
    match committed {
        Ok((id, replaced)) => {
            store::discard(&state.db, &state.storage.op, replaced.into_iter().collect()).await;
            Ok(Json(
                json!({"Id": id, "Key": format!("{}/{}", bucket.id, name)}),
            ))
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
struct Checks {
    insert: String,
    update_using: String,
    update_check: String,
    presigned: bool,
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

fn upsert_header(headers: &HeaderMap) -> bool {
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

/// `GET /object/{bucket}/{path}` (and `/object/authenticated/…`): download as the caller.
pub async fn download(
    State(state): State<AppState>,
    Path((bucket, path)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> StorageResult<Response> {
    let who = caller(&state, &headers)?;
    let object = find_visible(&state, &who, &bucket, &path).await?;
    serve(
        &state,
        &object,
        &headers,
        q.get("download").map(String::as_str),
    )
    .await
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

/// `GET /object/public/{bucket}/{path}`: anyone, for public buckets.
pub async fn download_public(
    State(state): State<AppState>,
    Path((bucket, path)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> StorageResult<Response> {
    let object = find_public(&state, &bucket, &path).await?;
    serve(
        &state,
        &object,
        &headers,
        q.get("download").map(String::as_str),
    )
    .await
}

/// A requested byte range, resolved against the object's size.
enum Range {
    Whole,
    Part(u64, u64),
    Unsatisfiable,
}

fn parse_range(headers: &HeaderMap, size: u64) -> Range {
    let Some(spec) = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("bytes="))
    else {
        return Range::Whole;
    };
    // One range only; several (multipart/byteranges) are answered with the whole object.
    if spec.contains(',') {
        return Range::Whole;
    }
    let Some((start, end)) = spec.split_once('-') else {
        return Range::Unsatisfiable;
    };
    let (start, end) = (start.trim(), end.trim());
    let parsed = match (start.is_empty(), end.is_empty()) {
        (true, false) => end
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .map(|n| (size.saturating_sub(n), size - 1)),
        (false, true) => start
            .parse::<u64>()
            .ok()
            .map(|s| (s, size.saturating_sub(1))),
        (false, false) => match (start.parse::<u64>(), end.parse::<u64>()) {
            (Ok(s), Ok(e)) if s <= e => Some((s, e.min(size.saturating_sub(1)))),
            _ => None,
        },
        (true, true) => None,
    };
    match parsed {
        Some((s, e)) if size > 0 && s < size && s <= e => Range::Part(s, e),
        _ => Range::Unsatisfiable,
    }
}

/// Answer with an object's bytes: streamed, with validators, ranges and disposition.
pub async fn serve(
    state: &AppState,
    object: &Object,
    headers: &HeaderMap,
    download: Option<&str>,
) -> StorageResult<Response> {
    let etag = object.etag();
    let size = object.size();
    let last_modified = object.metadata["lastModified"]
        .as_str()
        .and_then(|t| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
        })
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc2822)
                .ok()
        })
        .map(|t| t.replace("+0000", "GMT"));
    let mut builder = Response::builder()
        .header(header::ETAG, &etag)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(
            header::CACHE_CONTROL,
            object.metadata["cacheControl"]
                .as_str()
                .unwrap_or("no-cache"),
        );
    if let Some(lm) = &last_modified {
        builder = builder.header(header::LAST_MODIFIED, lm);
    }
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if not_modified {
        return builder
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
            .map_err(StorageError::internal);
    }
    builder = builder.header(header::CONTENT_TYPE, object.mimetype());
    if let Some(name) = download {
        let file = if name.is_empty() {
            object.name.rsplit('/').next().unwrap_or_default()
        } else {
            name
        };
        let ascii: String = file
            .chars()
            .map(|c| {
                if c.is_ascii_graphic() && c != '"' || c == ' ' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let encoded: String = form_urlencoded::byte_serialize(file.as_bytes())
            .collect::<String>()
            .replace('+', "%20");
        builder = builder.header(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"),
        );
    }
    let key = store::key(&object.version);
    let (status, start, end) = match parse_range(headers, size) {
        Range::Whole => (StatusCode::OK, 0, size),
        Range::Part(s, e) => {
            builder = builder.header(header::CONTENT_RANGE, format!("bytes {s}-{e}/{size}"));
            (StatusCode::PARTIAL_CONTENT, s, e + 1)
        }
        Range::Unsatisfiable => {
            return builder
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(header::CONTENT_RANGE, format!("bytes */{size}"))
                .body(Body::empty())
                .map_err(StorageError::internal);
        }
    };
    builder = builder.header(header::CONTENT_LENGTH, end - start);
    let body = if end > start {
        let reader = state.storage.op.reader(&key).await?;
        let stream = reader.into_bytes_stream(start..end).await?;
        Body::from_stream(stream)
    } else {
        Body::empty()
    };
    builder
        .status(status)
        .body(body)
        .map_err(StorageError::internal)
}

/// `GET /object/info/{bucket}/{path}`.
pub async fn info(
    State(state): State<AppState>,
    Path((bucket, path)): Path<(String, String)>,
    headers: HeaderMap,
) -> StorageResult<Json<Value>> {
    let who = caller(&state, &headers)?;
    let object = find_visible(&state, &who, &bucket, &path).await?;
    Ok(Json(object.info_json()))
}

/// `GET /object/info/public/{bucket}/{path}`.
pub async fn info_public(
    State(state): State<AppState>,
    Path((bucket, path)): Path<(String, String)>,
) -> StorageResult<Json<Value>> {
    let object = find_public(&state, &bucket, &path).await?;
    Ok(Json(object.info_json()))
}

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

#[derive(Debug, Deserialize, Default)]
struct RemoveBody {
    prefixes: Option<Vec<String>>,
}

/// `DELETE /object/{bucket}` `{prefixes}`: the objects removed (those the caller may delete).
pub async fn remove(
    State(state): State<AppState>,
    Path(bucket): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StorageResult<Json<Value>> {
    let who = caller(&state, &headers)?;
    let body: RemoveBody = parse_json(&body)?;
    let names = body
        .prefixes
        .filter(|p| !p.is_empty())
        .ok_or_else(|| StorageError::invalid("prefixes must be a non-empty array of paths"))?;
    if names.len() > 1000 {
        return Err(StorageError::invalid("at most 1000 paths at once"));
    }
    let deletable = who.using(&state.db.schema.get(), OBJECTS, Command::Delete);
    let (removed, versions) = state
        .db
        .writer
        .write(Mode::Commit, Some(who.ctx.clone()), move |conn| {
            let mut removed = Vec::new();
            let mut versions = Vec::new();
            for name in &names {
                if let Some(o) = visible_object(conn, &deletable, &bucket, name)? {
                    versions.extend(delete_where(conn, "id = ?1", &[&o.id])?);
                    removed.push(o.to_json());
                }
            }
            Ok::<_, StorageError>((removed, versions))
        })
        .await?;
    store::discard(&state.db, &state.storage.op, versions).await;
    Ok(Json(Value::Array(removed)))
}

/// `DELETE /object/{bucket}/{path}`: one object.
pub async fn remove_one(
    State(state): State<AppState>,
    Path((bucket, path)): Path<(String, String)>,
    headers: HeaderMap,
) -> StorageResult<Json<Value>> {
    let who = caller(&state, &headers)?;
    let deletable = who.using(&state.db.schema.get(), OBJECTS, Command::Delete);
    let versions = state
        .db
        .writer
        .write(Mode::Commit, Some(who.ctx.clone()), move |conn| {
            let o = visible_object(conn, &deletable, &bucket, &path)?
                .ok_or_else(StorageError::no_such_key)?;
            Ok::<_, StorageError>(delete_where(conn, "id = ?1", &[&o.id])?)
        })
        .await?;
    store::discard(&state.db, &state.storage.op, versions).await;
    Ok(Json(json!({"message": "Successfully deleted"})))
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct MoveBody {
    bucket_id: Option<String>,
    source_key: Option<String>,
    destination_key: Option<String>,
    destination_bucket: Option<String>,
    copy_metadata: Option<bool>,
    metadata: Option<Value>,
}

struct Transfer {
    from_bucket: String,
    from: String,
    to_bucket: String,
    to: String,
}

fn transfer(body: &MoveBody) -> StorageResult<Transfer> {
    let need = |v: &Option<String>, what: &str| {
        v.clone()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| StorageError::invalid(format!("{what} is required")))
    };
    let from_bucket = need(&body.bucket_id, "bucketId")?;
    let from = need(&body.source_key, "sourceKey")?;
    let to = need(&body.destination_key, "destinationKey")?;
    names::object_name(&from)?;
    names::object_name(&to)?;
    Ok(Transfer {
        to_bucket: body
            .destination_bucket
            .clone()
            .filter(|b| !b.is_empty())
            .unwrap_or_else(|| from_bucket.clone()),
        from_bucket,
        from,
        to,
    })
}

/// `POST /object/move`: rename, within or across buckets (rows only; bytes stay).
pub async fn move_object(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> StorageResult<Json<Value>> {
    let who = caller(&state, &headers)?;
    let body: MoveBody = parse_json(&body)?;
    let t = transfer(&body)?;
    load_bucket(&state, &t.to_bucket).await?;
    let schema = state.db.schema.get();
    let using = who.using(&schema, OBJECTS, Command::Update);
    let check = who.check(&schema, OBJECTS, Command::Update);
    state
        .db
        .writer
        .write(Mode::Commit, Some(who.ctx.clone()), move |conn| {
            let o = visible_object(conn, &using, &t.from_bucket, &t.from)?.ok_or_else(StorageError::no_such_key)?;
            if visible_object(conn, "1", &t.to_bucket, &t.to)?.is_some() {
                return Err(StorageError::duplicate());
            }
            let metadata = o.metadata.to_string();
            let user = o.user_metadata.as_ref().map(Value::to_string);
            let row = ObjectRow {
                id: &o.id,
                bucket_id: &t.to_bucket,
                name: &t.to,
                owner: o.owner.as_deref(),
                metadata: &metadata,
                user_metadata: user.as_deref(),
            };
            if !access::object_passes(conn, &check, &row)? {
                return Err(StorageError::denied());
            }
            conn.execute(
                "UPDATE _outpost_storage_objects SET bucket_id = ?2, name = ?3, updated_at = now() WHERE id = ?1",
                params![o.id, t.to_bucket, t.to],
            )?;
            Ok(())
        })
        .await?;
    Ok(Json(json!({"message": "Successfully moved"})))
}

/// `POST /object/copy`: a new object with the source's bytes (and metadata unless told).
pub async fn copy_object(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> StorageResult<Json<Value>> {
    let who = caller(&state, &headers)?;
    let upsert = upsert_header(&headers);
    let body: MoveBody = parse_json(&body)?;
    let t = transfer(&body)?;
    let dest = load_bucket(&state, &t.to_bucket).await?;
    let source = find_visible(&state, &who, &t.from_bucket, &t.from).await?;
    if !dest.allows_mime(&source.mimetype()) {
        return Err(StorageError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "InvalidMimeType",
            format!("mime type {} is not supported", source.mimetype()),
        ));
    }
    if dest
        .file_size_limit
        .is_some_and(|l| source.size() > l.max(0) as u64)
    {
        return Err(too_large());
    }
    let schema = state.db.schema.get();
    let checks = Checks {
        insert: who.check(&schema, OBJECTS, Command::Insert),
        update_using: who.using(&schema, OBJECTS, Command::Update),
        update_check: who.check(&schema, OBJECTS, Command::Update),
        presigned: false,
    };
    let user_meta = if body.copy_metadata.unwrap_or(true) {
        body.metadata.clone().or(source.user_metadata.clone())
    } else {
        body.metadata.clone()
    };
    let user_meta = user_meta.map(|v| v.to_string());
    let mut metadata = source.metadata.clone();
    metadata["lastModified"] = json!(now_iso());
    let metadata = metadata.to_string();
    let version = store::new_version();
    store::mark_pending(&state.db, vec![version.clone()]).await?;
    if let Err(e) = state
        .storage
        .op
        .copy(&store::key(&source.version), &store::key(&version))
        .await
    {
        store::discard(&state.db, &state.storage.op, vec![version]).await;
        return Err(e.into());
    }
    let owner = who.uid.clone();
    let (to_bucket, to, new_version) = (t.to_bucket.clone(), t.to.clone(), version.clone());
    let committed = state
        .db
        .writer
        .write(Mode::Commit, Some(who.ctx.clone()), move |conn| {
            let existing = authorize_write(conn, &checks, &to_bucket, &to, owner.as_deref(), &metadata, user_meta.as_deref(), upsert)?;
            let id = match &existing {
                Some((id, old)) => {
                    conn.execute(
                        "UPDATE _outpost_storage_objects SET version = ?2, metadata = ?3, user_metadata = ?4, \
                         owner = ?5, updated_at = now() WHERE id = ?1",
                        params![id, new_version, metadata, user_meta, owner],
                    )?;
                    conn.execute(
                        "INSERT OR IGNORE INTO _outpost_storage_pending (version, created_at) VALUES (?1, 0)",
                        [old],
                    )?;
                    id.clone()
                }
                None => {
                    let id = uuid::Uuid::new_v4().to_string();
                    conn.execute(
                        "INSERT INTO _outpost_storage_objects (id, bucket_id, name, owner, version, metadata, \
                         user_metadata) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                        params![id, to_bucket, to, owner, new_version, metadata, user_meta],
                    )?;
                    id
                }
            };
            conn.execute("DELETE FROM _outpost_storage_pending WHERE version = ?1", [&new_version])?;
            Ok::<_, StorageError>((id, existing.map(|(_, v)| v)))
        })
        .await;
    match committed {
        Ok((id, replaced)) => {
            store::discard(&state.db, &state.storage.op, replaced.into_iter().collect()).await;
            Ok(Json(
                json!({"Id": id, "Key": format!("{}/{}", t.to_bucket, t.to)}),
            ))
        }
        Err(e) => {
            store::discard(&state.db, &state.storage.op, vec![version]).await;
            Err(e)
        }
    }
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
    write_object(state, who, &bucket, name, meta, body, limit).await
}

/// What a streamed object is stored with.
pub struct StreamMeta {
    pub content_type: String,
    pub cache_control: Option<String>,
    pub user_metadata: Option<Value>,
}
