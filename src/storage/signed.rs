//! Signed URLs: time-limited download links and one-shot upload links, as HS256 tokens signed
//! with the project secret.

use super::access::OBJECTS;
use super::download;
use super::error::{StorageError, StorageResult};
use super::objects::{self, parse_json};
use super::upload::{self, Uploader};
use super::{caller, names};
use crate::app::AppState;
use crate::keys::{self, Caller, Role};
use crate::policy::predicate::Command;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// How long a signed upload URL lives (Supabase's two hours).
const UPLOAD_URL_LIFETIME: i64 = 2 * 3600;

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn sign_token(state: &AppState, claims: Value) -> StorageResult<String> {
    keys::sign(&state.auth.signer.secret, &claims).map_err(StorageError::internal)
}

/// Verify a storage token for `bucket/path` of kind `typ`; returns its claims.
pub fn verify(
    state: &AppState,
    token: Option<&str>,
    bucket: &str,
    path: &str,
    typ: &str,
) -> StorageResult<Map<String, Value>> {
    let token = token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| StorageError::invalid("querystring must have required property 'token'"))?;
    let claims = state
        .verifier
        .verify(token)
        .map_err(|e| match e {
            keys::TokenError::Expired => {
                StorageError::new(StatusCode::BAD_REQUEST, "InvalidJWT", "jwt expired")
            }
            keys::TokenError::Invalid(_) => StorageError::new(
                StatusCode::BAD_REQUEST,
                "InvalidSignature",
                "invalid signature",
            ),
        })?
        .claims
        .clone();
    let url = format!("{bucket}/{path}");
    if claims.get("url").and_then(Value::as_str) != Some(url.as_str())
        || claims.get("typ").and_then(Value::as_str) != Some(typ)
    {
        return Err(StorageError::new(
            StatusCode::BAD_REQUEST,
            "InvalidSignature",
            "The token does not belong to this object",
        ));
    }
    Ok(claims)
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct SignBody {
    expires_in: Option<i64>,
    paths: Option<Vec<String>>,
    transform: Option<Value>,
}

fn lifetime(state: &AppState, expires_in: Option<i64>) -> StorageResult<i64> {
    match expires_in {
        Some(n) if n >= 1 && n <= state.storage.config.signed_url_max_age => Ok(n),
        _ => Err(StorageError::invalid(format!(
            "expiresIn must be between 1 and {} seconds",
            state.storage.config.signed_url_max_age
        ))),
    }
}

fn download_url(
    state: &AppState,
    bucket: &str,
    path: &str,
    expires_in: i64,
    transform: Option<&Value>,
) -> StorageResult<String> {
    let now = unix_now();
    let mut claims = json!({"typ": "storage-download", "url": format!("{bucket}/{path}"), "iat": now, "exp": now + expires_in});
    if let Some(t) = transform {
        claims["transformations"] = t.clone();
    }
    let token = sign_token(state, claims)?;
    // The path goes out as it is: the client percent-encodes the URL it is given.
    let route = if transform.is_some() {
        "render/image/sign"
    } else {
        "object/sign"
    };
    Ok(format!("/{route}/{bucket}/{path}?token={token}"))
}

/// `POST /object/sign/{bucket}/{path}` `{expiresIn}` → `{signedURL}`.
pub async fn sign(
    State(state): State<AppState>,
    Path((bucket, path)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> StorageResult<Json<Value>> {
    let who = caller(&state, &headers)?;
    let body: SignBody = parse_json(&body)?;
    let expires = lifetime(&state, body.expires_in)?;
    objects::find_visible(&state, &who, &bucket, &path).await?;
    let url = download_url(&state, &bucket, &path, expires, body.transform.as_ref())?;
    Ok(Json(json!({ "signedURL": url })))
}

/// `POST /object/sign/{bucket}` `{expiresIn, paths}` → `[{error, path, signedURL}]`.
pub async fn sign_many(
    State(state): State<AppState>,
    Path(bucket): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StorageResult<Json<Value>> {
    let who = caller(&state, &headers)?;
    let body: SignBody = parse_json(&body)?;
    let expires = lifetime(&state, body.expires_in)?;
    let paths = body.paths.unwrap_or_default();
    let visible = who.using(&state.db.schema.get(), OBJECTS, Command::Select);
    let (b, ps) = (bucket.clone(), paths.clone());
    let found: Vec<bool> = state
        .db
        .read(Some(who.ctx.clone()), move |conn| {
            ps.iter()
                .map(|p| objects::visible_object(conn, &visible, &b, p).map(|o| o.is_some()))
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(StorageError::from)
        })
        .await?;
    let mut out = Vec::new();
    for (path, ok) in paths.iter().zip(found) {
        if ok {
            let url = download_url(&state, &bucket, path, expires, None)?;
            out.push(json!({"error": null, "path": path, "signedURL": url}));
        } else {
            out.push(json!({"error": "Either the object does not exist or you do not have access to it", "path": path, "signedURL": null}));
        }
    }
    Ok(Json(Value::Array(out)))
}

/// `GET /object/sign/{bucket}/{path}?token=…`: download with a signed URL.
pub async fn download(
    State(state): State<AppState>,
    Path((bucket, path)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> StorageResult<Response> {
    verify(
        &state,
        q.get("token").map(String::as_str),
        &bucket,
        &path,
        "storage-download",
    )?;
    let object = objects::find_any(&state, &bucket, &path).await?;
    download::serve(
        &state,
        &object,
        &headers,
        q.get("download").map(String::as_str),
    )
    .await
}

/// `POST /object/upload/sign/{bucket}/{path}` → `{url, token}`: the caller must be allowed to
/// upload there now; whoever holds the URL may then upload once.
pub async fn sign_upload(
    State(state): State<AppState>,
    Path((bucket, path)): Path<(String, String)>,
    headers: HeaderMap,
) -> StorageResult<Json<Value>> {
    let access = caller(&state, &headers)?;
    names::object_name(&path)?;
    objects::load_bucket(&state, &bucket).await?;
    let upsert = headers
        .get("x-upsert")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let who = Uploader {
        owner: access.uid.clone(),
        upsert,
        access,
        presigned: false,
    };
    upload::precheck(&state, &who, &bucket, &path).await?;
    let now = unix_now();
    let token = sign_token(
        &state,
        json!({"typ": "storage-upload", "url": format!("{bucket}/{path}"), "owner": who.owner,
               "upsert": upsert, "iat": now, "exp": now + UPLOAD_URL_LIFETIME}),
    )?;
    Ok(Json(json!({
        "url": format!("/object/upload/sign/{bucket}/{path}?token={token}"),
        "token": token,
    })))
}

/// `PUT /object/upload/sign/{bucket}/{path}?token=…`: the upload a signed URL allows.
pub async fn upload(
    State(state): State<AppState>,
    Path((bucket, path)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    request: Request,
) -> StorageResult<Json<Value>> {
    let claims = verify(
        &state,
        q.get("token").map(String::as_str),
        &bucket,
        &path,
        "storage-upload",
    )?;
    let anon = Caller {
        role: Role::Anon,
        claims: Map::new(),
    };
    let who = Uploader {
        access: super::access::Access::of(&anon),
        owner: claims
            .get("owner")
            .and_then(Value::as_str)
            .map(str::to_string),
        upsert: claims
            .get("upsert")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        presigned: true,
    };
    let stored = upload::store_upload(&state, who, &bucket, &path, request).await?;
    let key = stored.0["Key"].clone();
    Ok(Json(json!({"Key": key, "Id": stored.0["Id"]})))
}
