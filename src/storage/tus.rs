//! Resumable uploads (TUS 1.0.0, creation and termination extensions) at
//! `/storage/v1/upload/resumable`.
//!
//! Received bytes collect in a file under `<data-dir>/uploads/` so that a client can resume
//! after a cut; when the last byte arrives the file is stored as an object the same way a
//! single upload is (limits, policies, pending bytes) and the file is removed.

use super::error::{StorageError, StorageResult};
use super::objects;
use super::upload::{self, Uploader};
use super::{caller, names};
use crate::app::AppState;
use crate::db::Mode;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use futures_util::StreamExt;
use rusqlite::{params, OptionalExtension};
use serde_json::Value;
use tokio::io::AsyncWriteExt;

const TUS_VERSION: &str = "1.0.0";

fn tus_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert("tus-resumable", HeaderValue::from_static(TUS_VERSION));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn with(status: StatusCode, headers: &[(&str, String)]) -> Response {
    let mut r = status.into_response();
    for (k, v) in headers {
        if let (Ok(name), Ok(value)) = (
            header::HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            r.headers_mut().insert(name, value);
        }
    }
    tus_headers(r)
}

/// `OPTIONS`: what this server supports.
pub async fn options(State(state): State<AppState>) -> Response {
    with(
        StatusCode::NO_CONTENT,
        &[
            ("tus-version", TUS_VERSION.into()),
            ("tus-extension", "creation,termination".into()),
            (
                "tus-max-size",
                state.storage.config.max_file_size.to_string(),
            ),
        ],
    )
}

/// TUS requests other than `OPTIONS` must say which protocol version they speak.
fn require_version(headers: &HeaderMap) -> StorageResult<()> {
    match headers.get("tus-resumable").and_then(|v| v.to_str().ok()) {
        Some(TUS_VERSION) => Ok(()),
        _ => Err(StorageError::new(
            StatusCode::PRECONDITION_FAILED,
            "InvalidTusVersion",
            "Tus-Resumable: 1.0.0 is required",
        )),
    }
}

/// `Upload-Metadata`: comma-separated `key base64(value)` pairs.
fn metadata(headers: &HeaderMap) -> StorageResult<std::collections::HashMap<String, String>> {
    let mut out = std::collections::HashMap::new();
    let Some(raw) = headers.get("upload-metadata").and_then(|v| v.to_str().ok()) else {
        return Ok(out);
    };
    for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once(' ').unwrap_or((pair, ""));
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(value.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| {
                StorageError::invalid(format!("Upload-Metadata `{key}` is not base64 text"))
            })?;
        out.insert(key.to_string(), decoded);
    }
    Ok(out)
}

struct Upload {
    bucket_id: String,
    name: String,
    owner: Option<String>,
    length: u64,
    received: u64,
    content_type: Option<String>,
    cache_control: Option<String>,
    upsert: bool,
    user_metadata: Option<String>,
}

async fn load(state: &AppState, id: &str) -> StorageResult<Upload> {
    let id = id.to_string();
    state
        .db
        .read(None, move |conn| {
            conn.query_row(
                "SELECT bucket_id, name, owner, length, received, content_type, cache_control, upsert, \
                 user_metadata FROM _outpost_storage_uploads WHERE id = ?1",
                [&id],
                |r| {
                    Ok(Upload {
                        bucket_id: r.get(0)?,
                        name: r.get(1)?,
                        owner: r.get(2)?,
                        length: r.get::<_, i64>(3)? as u64,
                        received: r.get::<_, i64>(4)? as u64,
                        content_type: r.get(5)?,
                        cache_control: r.get(6)?,
                        upsert: r.get(7)?,
                        user_metadata: r.get(8)?,
                    })
                },
            )
            .optional()
            .map_err(StorageError::from)
        })
        .await?
        .ok_or_else(|| StorageError::new(StatusCode::NOT_FOUND, "NoSuchUpload", "Upload not found"))
}

fn valid_id(id: &str) -> StorageResult<()> {
    if id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(StorageError::new(
            StatusCode::NOT_FOUND,
            "NoSuchUpload",
            "Upload not found",
        ))
    }
}

/// The caller must be the one who created the upload (or the service role).
fn same_owner(who: &super::access::Access, upload: &Upload) -> StorageResult<()> {
    if who.bypass() || who.uid == upload.owner {
        Ok(())
    } else {
        Err(StorageError::new(
            StatusCode::NOT_FOUND,
            "NoSuchUpload",
            "Upload not found",
        ))
    }
}

/// `POST /upload/resumable`: create an upload from `Upload-Length` and `Upload-Metadata`
/// (`bucketName`, `objectName`, `contentType`, `cacheControl`, `metadata`).
pub async fn create(State(state): State<AppState>, headers: HeaderMap) -> StorageResult<Response> {
    require_version(&headers)?;
    let who = caller(&state, &headers)?;
    if headers.get("upload-defer-length").is_some() {
        return Err(StorageError::invalid(
            "Upload-Defer-Length is not supported",
        ));
    }
    let length: u64 = headers
        .get("upload-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| StorageError::invalid("Upload-Length is required"))?;
    let meta = metadata(&headers)?;
    let bucket_id = meta.get("bucketName").cloned().unwrap_or_default();
    let name = meta.get("objectName").cloned().unwrap_or_default();
    names::object_name(&name)?;
    let bucket = objects::load_bucket(&state, &bucket_id).await?;
    let limit = bucket
        .file_size_limit
        .map_or(state.storage.config.max_file_size, |l| {
            (l.max(0) as u64).min(state.storage.config.max_file_size)
        });
    if length > limit {
        return Err(StorageError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "EntityTooLarge",
            "The object exceeded the maximum allowed size",
        ));
    }
    let content_type = meta.get("contentType").cloned();
    if let Some(ct) = &content_type {
        if !bucket.allows_mime(ct) {
            return Err(StorageError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "InvalidMimeType",
                format!("mime type {ct} is not supported"),
            ));
        }
    }
    if let Some(m) = meta.get("metadata") {
        serde_json::from_str::<Value>(m)
            .map_err(|_| StorageError::invalid("metadata must be JSON"))?;
    }
    let upsert = headers
        .get("x-upsert")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let uploader = Uploader {
        owner: who.uid.clone(),
        upsert,
        access: who.clone(),
        presigned: false,
    };
    upload::precheck(&state, &uploader, &bucket_id, &name).await?;
    let id = uuid::Uuid::new_v4().simple().to_string();
    tokio::fs::File::create(state.storage.uploads_dir.join(&id))
        .await
        .map_err(StorageError::internal)?;
    let row_id = id.clone();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    state
        .db
        .writer
        .write(Mode::Commit, None, move |conn| {
            conn.execute(
                "INSERT INTO _outpost_storage_uploads (id, bucket_id, name, owner, length, content_type, \
                 cache_control, upsert, user_metadata, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    row_id,
                    bucket_id,
                    name,
                    who.uid,
                    length as i64,
                    content_type,
                    meta.get("cacheControl"),
                    upsert,
                    meta.get("metadata"),
                    now
                ],
            )?;
            Ok::<_, StorageError>(())
        })
        .await?;
    let location = format!(
        "{}/storage/v1/upload/resumable/{id}",
        state.auth.config.public_url
    );
    Ok(with(
        StatusCode::CREATED,
        &[("location", location), ("upload-offset", "0".into())],
    ))
}

/// `HEAD /upload/resumable/{id}`: how much has arrived.
pub async fn head(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> StorageResult<Response> {
    require_version(&headers)?;
    let who = caller(&state, &headers)?;
    valid_id(&id)?;
    let upload = load(&state, &id).await?;
    same_owner(&who, &upload)?;
    Ok(with(
        StatusCode::OK,
        &[
            ("upload-offset", upload.received.to_string()),
            ("upload-length", upload.length.to_string()),
        ],
    ))
}

/// `PATCH /upload/resumable/{id}`: append bytes at `Upload-Offset`; the last byte stores the
/// object.
pub async fn patch(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> StorageResult<Response> {
    let headers = request.headers().clone();
    require_version(&headers)?;
    let who = caller(&state, &headers)?;
    valid_id(&id)?;
    // One PATCH at a time per upload: a second one racing for the same offset is refused
    // (423 Locked, as tusd does) rather than interleaving bytes.
    let _writing = PatchLock::take(&state, &id)?;
    let upload = load(&state, &id).await?;
    same_owner(&who, &upload)?;
    let is_octets = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("application/offset+octet-stream"));
    if !is_octets {
        return Err(StorageError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "InvalidContentType",
            "PATCH bodies must be application/offset+octet-stream",
        ));
    }
    let offset: u64 = headers
        .get("upload-offset")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| StorageError::invalid("Upload-Offset is required"))?;
    if offset != upload.received {
        return Err(StorageError::new(
            StatusCode::CONFLICT,
            "InvalidUploadOffset",
            format!(
                "Upload-Offset is {offset}, the upload is at {}",
                upload.received
            ),
        ));
    }
    let path = state.storage.uploads_dir.join(&id);
    let mut file = tokio::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .await
        .map_err(StorageError::internal)?;
    let mut received = upload.received;
    let mut body = request.into_body().into_data_stream();
    let mut failure = None;
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(bytes) => {
                if received + bytes.len() as u64 > upload.length {
                    failure = Some(StorageError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "EntityTooLarge",
                        "More bytes than Upload-Length",
                    ));
                    break;
                }
                if let Err(e) = file.write_all(&bytes).await {
                    failure = Some(StorageError::internal(e));
                    break;
                }
                received += bytes.len() as u64;
            }
            // A cut connection keeps what arrived: the client resumes from Upload-Offset.
            Err(_) => break,
        }
    }
    file.flush().await.map_err(StorageError::internal)?;
    drop(file);
    if let Some(e) = failure {
        // Keep the file at the last good offset so the client can retry the chunk.
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(StorageError::internal)?;
        f.set_len(upload.received).map_err(StorageError::internal)?;
        return Err(e);
    }
    let row_id = id.clone();
    state
        .db
        .writer
        .write(Mode::Commit, None, move |conn| {
            conn.execute(
                "UPDATE _outpost_storage_uploads SET received = ?2 WHERE id = ?1",
                params![row_id, received as i64],
            )?;
            Ok::<_, StorageError>(())
        })
        .await?;
    if received < upload.length {
        return Ok(with(
            StatusCode::NO_CONTENT,
            &[("upload-offset", received.to_string())],
        ));
    }
    let finished = finish(&state, who, &id, &upload).await;
    forget(&state, &id).await;
    finished?;
    Ok(with(
        StatusCode::NO_CONTENT,
        &[("upload-offset", received.to_string())],
    ))
}

/// Marks an upload as being written; released when dropped.
struct PatchLock {
    state: AppState,
    id: String,
}

impl PatchLock {
    fn take(state: &AppState, id: &str) -> StorageResult<PatchLock> {
        let mut busy = match state.storage.patching.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if !busy.insert(id.to_string()) {
            return Err(StorageError::new(
                StatusCode::LOCKED,
                "UploadLocked",
                "Another PATCH is writing to this upload",
            ));
        }
        Ok(PatchLock {
            state: state.clone(),
            id: id.to_string(),
        })
    }
}

impl Drop for PatchLock {
    fn drop(&mut self) {
        let mut busy = match self.state.storage.patching.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        busy.remove(&self.id);
    }
}

async fn finish(
    state: &AppState,
    who: super::access::Access,
    id: &str,
    upload: &Upload,
) -> StorageResult<()> {
    let file = tokio::fs::File::open(state.storage.uploads_dir.join(id))
        .await
        .map_err(StorageError::internal)?;
    let uploader = Uploader {
        owner: upload.owner.clone(),
        upsert: upload.upsert,
        access: who,
        presigned: false,
    };
    let user_metadata = upload
        .user_metadata
        .as_deref()
        .and_then(|m| serde_json::from_str::<Value>(m).ok());
    upload::write_stream(
        state,
        uploader,
        &upload.bucket_id,
        &upload.name,
        upload::StreamMeta {
            content_type: upload
                .content_type
                .clone()
                .unwrap_or_else(|| "application/octet-stream".into()),
            cache_control: upload.cache_control.clone(),
            user_metadata,
        },
        upload::file_stream(file),
    )
    .await
    .map(|_| ())
}

async fn forget(state: &AppState, id: &str) {
    let _ = tokio::fs::remove_file(state.storage.uploads_dir.join(id)).await;
    let row_id = id.to_string();
    let _ = state
        .db
        .writer
        .write(Mode::Commit, None, move |conn| {
            conn.execute(
                "DELETE FROM _outpost_storage_uploads WHERE id = ?1",
                [&row_id],
            )
            .map_err(StorageError::from)
        })
        .await;
}

/// `DELETE /upload/resumable/{id}`: abandon an upload.
pub async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> StorageResult<Response> {
    let who = caller(&state, &headers)?;
    valid_id(&id)?;
    let upload = load(&state, &id).await?;
    same_owner(&who, &upload)?;
    forget(&state, &id).await;
    Ok(with(StatusCode::NO_CONTENT, &[]))
}
