-- Functions deployed through the admin API, and the secrets every function sees in `Deno.env`.
-- Both live in the database so a replica or a restore carries them.

CREATE TABLE _outpost_js_functions (
    name TEXT PRIMARY KEY,
    source TEXT NOT NULL,                    -- the module's JavaScript
    verify_jwt INTEGER NOT NULL DEFAULT 1,   -- 0: a public endpoint (inbound webhooks)
    schedule TEXT,                           -- cron, 5 or 6 fields, UTC
    version INTEGER NOT NULL DEFAULT 1,      -- bumped on every deploy
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE _outpost_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
