//! Downloads and `info`: streamed bytes with ETag, Last-Modified, Range and disposition.

use super::caller;
use super::error::{StorageError, StorageResult};
use super::model::Object;
use super::objects::{find_public, find_visible};
use super::store::{self};
use crate::app::AppState;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use serde_json::Value;
use std::collections::HashMap;

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
    let modified = object.metadata["lastModified"]
        .as_str()
        .and_then(|t| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
        })
        .map(|t| {
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(t.unix_timestamp().max(0) as u64)
        });
    let last_modified = modified.map(httpdate::fmt_http_date);
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
    // If-None-Match wins; If-Modified-Since counts only without it (RFC 9110 §13.1.3).
    let not_modified = match headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
    {
        Some(v) => v.split(',').any(|t| t.trim() == etag || t.trim() == "*"),
        None => headers
            .get(header::IF_MODIFIED_SINCE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok())
            .zip(modified)
            .is_some_and(|(since, modified)| modified <= since),
    };
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
