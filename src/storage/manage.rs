//! Remove, move and copy.

use super::access::{self, ObjectRow, OBJECTS};
use super::error::{StorageError, StorageResult};
use super::objects::{delete_where, find_visible, load_bucket, parse_json, visible_object};
use super::store::{self};
use super::upload::{commit, too_large, upsert_header, Checks, NewVersion};
use super::{caller, names};
use crate::app::AppState;
use crate::db::functions::now_iso;
use crate::db::Mode;
use crate::policy::predicate::Command;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use rusqlite::params;
use serde::Deserialize;
use serde_json::{json, Value};

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
    let row = NewVersion {
        bucket_id: t.to_bucket.clone(),
        name: t.to.clone(),
        owner: who.uid.clone(),
        version,
        metadata,
        user_metadata: user_meta,
        upsert,
    };
    commit(&state, &who, checks, row).await
}
