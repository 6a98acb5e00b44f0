-- Outpost's own bookkeeping. System tables start with `_outpost` and are never exposed by /rest/v1.
CREATE TABLE IF NOT EXISTS _outpost_migrations (
    name       TEXT NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('system', 'user')),
    checksum   TEXT NOT NULL,
    applied_at TEXT NOT NULL DEFAULT (now()),
    PRIMARY KEY (kind, name)
);
