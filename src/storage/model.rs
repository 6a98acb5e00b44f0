//! Bucket and object rows, and their JSON forms.

use rusqlite::{Connection, OptionalExtension, Row};
use serde_json::{json, Value};

/// One row of `_outpost_storage_buckets`.
#[derive(Debug, Clone)]
pub struct Bucket {
    pub id: String,
    pub name: String,
    pub owner: Option<String>,
    pub public: bool,
    pub file_size_limit: Option<i64>,
    pub allowed_mime_types: Option<Vec<String>>,
    pub created_at: String,
    pub updated_at: String,
}

/// Columns of a bucket, for `SELECT {BUCKET_COLUMNS} FROM _outpost_storage_buckets`.
pub const BUCKET_COLUMNS: &str =
    "id, name, owner, public, file_size_limit, allowed_mime_types, created_at, updated_at";

/// Read a bucket selected with [`BUCKET_COLUMNS`].
pub fn bucket_from_row(r: &Row) -> rusqlite::Result<Bucket> {
    let mimes: Option<String> = r.get(5)?;
    Ok(Bucket {
        id: r.get(0)?,
        name: r.get(1)?,
        owner: r.get(2)?,
        public: r.get(3)?,
        file_size_limit: r.get(4)?,
        allowed_mime_types: mimes.and_then(|m| serde_json::from_str(&m).ok()),
        created_at: r.get(6)?,
        updated_at: r.get(7)?,
    })
}

/// The bucket with `id`.
pub fn bucket(conn: &Connection, id: &str) -> rusqlite::Result<Option<Bucket>> {
    conn.prepare_cached(&format!(
        "SELECT {BUCKET_COLUMNS} FROM _outpost_storage_buckets WHERE id = ?1"
    ))?
    .query_row([id], bucket_from_row)
    .optional()
}

impl Bucket {
    /// The bucket as the API shows it.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "owner": self.owner.clone().unwrap_or_default(),
            "owner_id": self.owner,
            "public": self.public,
            "file_size_limit": self.file_size_limit,
            "allowed_mime_types": self.allowed_mime_types,
            "type": "STANDARD",
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        })
    }

    /// Whether `mime` is allowed (`image/*` patterns match a whole type).
    pub fn allows_mime(&self, mime: &str) -> bool {
        let Some(allowed) = &self.allowed_mime_types else {
            return true;
        };
        if allowed.is_empty() {
            return true;
        }
        let essence = mime
            .split(';')
            .next()
            .unwrap_or(mime)
            .trim()
            .to_ascii_lowercase();
        allowed.iter().any(|a| {
            let a = a.trim().to_ascii_lowercase();
            match a.strip_suffix("/*") {
                Some(kind) => essence.split('/').next() == Some(kind),
                None => a == essence || a == "*/*" || a == "*",
            }
        })
    }
}

/// One row of `_outpost_storage_objects`.
#[derive(Debug, Clone)]
pub struct Object {
    pub id: String,
    pub bucket_id: String,
    pub name: String,
    pub owner: Option<String>,
    pub version: String,
    pub metadata: Value,
    pub user_metadata: Option<Value>,
    pub created_at: String,
    pub updated_at: String,
    pub last_accessed_at: String,
}

/// Columns of an object, for `SELECT {OBJECT_COLUMNS} FROM _outpost_storage_objects`.
pub const OBJECT_COLUMNS: &str = "id, bucket_id, name, owner, version, metadata, user_metadata, \
    created_at, updated_at, last_accessed_at";

/// Read an object selected with [`OBJECT_COLUMNS`].
pub fn object_from_row(r: &Row) -> rusqlite::Result<Object> {
    let metadata: String = r.get(5)?;
    let user: Option<String> = r.get(6)?;
    Ok(Object {
        id: r.get(0)?,
        bucket_id: r.get(1)?,
        name: r.get(2)?,
        owner: r.get(3)?,
        version: r.get(4)?,
        metadata: serde_json::from_str(&metadata).unwrap_or(Value::Null),
        user_metadata: user.and_then(|u| serde_json::from_str(&u).ok()),
        created_at: r.get(7)?,
        updated_at: r.get(8)?,
        last_accessed_at: r.get(9)?,
    })
}

impl Object {
    /// Size in bytes, from the metadata.
    pub fn size(&self) -> u64 {
        self.metadata["size"].as_u64().unwrap_or(0)
    }

    /// MIME type, from the metadata.
    pub fn mimetype(&self) -> String {
        self.metadata["mimetype"]
            .as_str()
            .unwrap_or("application/octet-stream")
            .to_string()
    }

    /// The quoted ETag, from the metadata.
    pub fn etag(&self) -> String {
        self.metadata["eTag"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The object as list and remove answers show it (`FileObject`).
    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "bucket_id": self.bucket_id,
            "owner": self.owner.clone().unwrap_or_default(),
            "owner_id": self.owner,
            "id": self.id,
            "version": self.version,
            "updated_at": self.updated_at,
            "created_at": self.created_at,
            "last_accessed_at": self.last_accessed_at,
            "metadata": self.metadata,
            "user_metadata": self.user_metadata,
        })
    }

    /// The object as `info` answers it.
    pub fn info_json(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "bucket_id": self.bucket_id,
            "version": self.version,
            "size": self.size(),
            "content_type": self.mimetype(),
            "cache_control": self.metadata["cacheControl"],
            "etag": self.etag(),
            "last_modified": self.metadata["lastModified"],
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "metadata": self.user_metadata,
        })
    }
}
