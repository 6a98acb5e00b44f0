-- Storage: buckets and object metadata. Object bytes live in the configured OpenDAL operator
-- under `objects/<version>`; a row's `version` names its bytes.
CREATE TABLE IF NOT EXISTS _outpost_storage_buckets (
    id                 TEXT PRIMARY KEY,
    name               TEXT NOT NULL UNIQUE,
    owner              TEXT,
    public             INTEGER NOT NULL DEFAULT 0,
    file_size_limit    INTEGER,
    -- JSON array of MIME types (`image/*` allowed), NULL for any.
    allowed_mime_types TEXT,
    created_at         TEXT NOT NULL DEFAULT (now()),
    updated_at         TEXT NOT NULL DEFAULT (now())
);

CREATE TABLE IF NOT EXISTS _outpost_storage_objects (
    id               TEXT PRIMARY KEY,
    bucket_id        TEXT NOT NULL REFERENCES _outpost_storage_buckets (id),
    name             TEXT NOT NULL,
    owner            TEXT,
    version          TEXT NOT NULL,
    -- {eTag, size, mimetype, cacheControl, lastModified, contentLength, httpStatusCode}
    metadata         TEXT NOT NULL DEFAULT '{}',
    user_metadata    TEXT,
    created_at       TEXT NOT NULL DEFAULT (now()),
    updated_at       TEXT NOT NULL DEFAULT (now()),
    last_accessed_at TEXT NOT NULL DEFAULT (now()),
    UNIQUE (bucket_id, name)
);

-- Bytes written to the store but not yet owned by a committed row, or left by a row that is
-- gone: swept (deleted from the store) unless a row names them. This is what keeps bytes and
-- rows from drifting apart when an upload fails or the process dies half-way.
CREATE TABLE IF NOT EXISTS _outpost_storage_pending (
    version    TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL
);

-- Resumable (TUS) uploads in progress; their bytes are in the data dir until complete.
CREATE TABLE IF NOT EXISTS _outpost_storage_uploads (
    id            TEXT PRIMARY KEY,
    bucket_id     TEXT NOT NULL,
    name          TEXT NOT NULL,
    owner         TEXT,
    length        INTEGER NOT NULL,
    received      INTEGER NOT NULL DEFAULT 0,
    content_type  TEXT,
    cache_control TEXT,
    upsert        INTEGER NOT NULL DEFAULT 0,
    user_metadata TEXT,
    created_at    INTEGER NOT NULL
);
