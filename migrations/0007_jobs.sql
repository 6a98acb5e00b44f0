-- Database webhooks and the durable job queue behind them (and, later, functions and cron).

CREATE TABLE _outpost_webhooks (
    name TEXT PRIMARY KEY,
    table_name TEXT NOT NULL,
    events TEXT NOT NULL,                    -- comma-separated: INSERT,UPDATE,DELETE
    filter TEXT,                             -- realtime-style `column=op.value`, on the new row (old for DELETE)
    url TEXT NOT NULL,
    headers TEXT NOT NULL DEFAULT '{}',      -- JSON object of extra request headers
    secret TEXT NOT NULL,                    -- HMAC-SHA256 key for the signature header
    timeout_ms INTEGER NOT NULL DEFAULT 5000,
    max_attempts INTEGER NOT NULL DEFAULT 5,
    enabled INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE _outpost_jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,                      -- 'webhook'
    target TEXT NOT NULL,                    -- the webhook's name
    payload TEXT NOT NULL,                   -- the request body
    idempotency_key TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL DEFAULT 'pending',   -- pending | running | done | dead
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    run_at INTEGER NOT NULL,                 -- ms since the epoch: not before
    last_error TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX _outpost_jobs_due ON _outpost_jobs (state, run_at);

CREATE TABLE _outpost_job_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    status_code INTEGER,                     -- the receiver's answer, if any
    duration_ms INTEGER NOT NULL,
    error TEXT,
    at INTEGER NOT NULL
);
CREATE INDEX _outpost_job_log_job ON _outpost_job_log (job_id);
