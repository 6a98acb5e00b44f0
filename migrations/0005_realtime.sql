-- Realtime: the tables whose changes are published (`ALTER PUBLICATION supabase_realtime ADD
-- TABLE t`), and whether their old rows go out whole (`REPLICA IDENTITY FULL`).
CREATE TABLE IF NOT EXISTS _outpost_realtime (
    table_name    TEXT PRIMARY KEY,
    full_identity INTEGER NOT NULL DEFAULT 0
);

-- What policies on `realtime.messages` see when a private channel is joined or written to.
-- Rows are never stored here: the columns are the shape policies are written against.
CREATE TABLE IF NOT EXISTS _outpost_realtime_messages (
    topic       TEXT NOT NULL,
    extension   TEXT NOT NULL,
    payload     TEXT,
    event       TEXT,
    private     INTEGER,
    inserted_at TEXT,
    updated_at  TEXT
);

-- `ALTER TABLE t REPLICA IDENTITY FULL`, kept per table whether or not it is published.
CREATE TABLE IF NOT EXISTS _outpost_realtime_identity (
    table_name    TEXT PRIMARY KEY,
    full_identity INTEGER NOT NULL DEFAULT 0
);
